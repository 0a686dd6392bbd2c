//! Params and replies of the token methods, which guard the daemon's HTTP face.

use serde::{Deserialize, Serialize};

use crate::token::Scope;

/// `token.create` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateToken {
    /// A unique name for the token's holder.
    pub name: String,
    /// What it may be used for; every scope when empty.
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

/// `token.create` reply: the only time the token itself is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    /// Its name.
    pub name: String,
    /// The token: send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// What it may be used for.
    pub scopes: Vec<Scope>,
}

/// `tokens.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListTokens {}

/// `token.revoke` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeToken {
    /// The token's name.
    pub name: String,
}

/// `gateway.log` params: the gateway's request log, oldest first, filtered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GatewayLog {
    /// Only requests made with this token (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Only requests that arrived at or after this time, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// At most this many, the newest (default 1000, at most 100000): the log grows with
    /// every request, and a reply must stay a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}
