//! Tokens for the daemon's HTTP face: every request to `/v1`, `/rpc` or `/metrics` carries
//! one. The daemon keeps only each token's SHA-256 hash; the token itself is shown once,
//! when it is created.

use serde::{Deserialize, Serialize};

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `/v1`: models, local and from providers, with the daemon's keys.
    Gateway,
    /// `/rpc`: the whole JSON-RPC protocol over WebSocket, as the Unix socket has it.
    Rpc,
    /// `/metrics`: Prometheus exposition.
    Metrics,
}

impl Scope {
    /// Every scope: what a token gets when none is named.
    pub const ALL: [Scope; 3] = [Scope::Gateway, Scope::Rpc, Scope::Metrics];

    /// Its name in commands and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Rpc => "rpc",
            Self::Metrics => "metrics",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as clients see it: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its unique name (who or what holds it): the request log names it.
    pub name: String,
    /// What it may be used for.
    pub scopes: Vec<Scope>,
    /// When it was created, ms since the epoch.
    pub created_at: i64,
}
