//! The gateway's request log as clients see it: one row per `/v1` request, written when the
//! request ends (however it ends), so `reagent gateway log` answers "who used what, how fast,
//! at what cost, and how did it go" without the daemon keeping prompts unless asked to.

use serde::{Deserialize, Serialize};

/// Where the gateway sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayRoute {
    /// A model server the daemon runs (ready, or launched for this request).
    Local,
    /// A configured provider, with the daemon's key.
    Provider,
    /// Nowhere: refused before routing (bad JSON, an unknown model), or answered by the
    /// gateway itself (`/v1/models`).
    None,
}

impl GatewayRoute {
    /// Its name in the store and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Provider => "provider",
            Self::None => "none",
        }
    }

    /// The route a stored name means; unknown names (a newer daemon's) read as `None`.
    pub fn parse(text: &str) -> Self {
        match text {
            "local" => Self::Local,
            "provider" => Self::Provider,
            _ => Self::None,
        }
    }
}

/// How a gateway request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayOutcome {
    /// The upstream answered with success and, for a stream, ended it properly.
    Ok,
    /// The upstream refused or failed (a 4xx/5xx, an error event mid-stream, a cut stream,
    /// no connection): `detail` says which kind.
    UpstreamError,
    /// The client disconnected while the answer streamed; the upstream request was dropped.
    ClientGone,
    /// The client disconnected before any answer came (waiting for a launch or for the
    /// upstream's headers); the upstream request, if any, was dropped.
    Cancelled,
    /// The model the request named had to be launched, and the launch failed.
    LaunchFailed,
    /// The gateway refused the request itself (malformed JSON, an unknown model, a body
    /// over the limit, a protocol mismatch); `detail` says why.
    Refused,
}

impl GatewayOutcome {
    /// Its name in the store and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UpstreamError => "upstream_error",
            Self::ClientGone => "client_gone",
            Self::Cancelled => "cancelled",
            Self::LaunchFailed => "launch_failed",
            Self::Refused => "refused",
        }
    }

    /// The outcome a stored name means; unknown names read as `UpstreamError`, the one that
    /// makes a reader look closer.
    pub fn parse(text: &str) -> Self {
        match text {
            "ok" => Self::Ok,
            "client_gone" => Self::ClientGone,
            "cancelled" => Self::Cancelled,
            "launch_failed" => Self::LaunchFailed,
            "refused" => Self::Refused,
            _ => Self::UpstreamError,
        }
    }
}

/// One `/v1` request, as the request log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRequest {
    /// Its row id: increasing, so a reader can page on it.
    pub id: i64,
    /// When it arrived, ms since the epoch.
    pub ts: i64,
    /// The name of the token it carried (never the token).
    pub token: String,
    /// Where it went.
    pub route: GatewayRoute,
    /// The model it asked for, as the client wrote it.
    pub model: String,
    /// The HTTP status the client got (for a stream whose headers went out before a launch
    /// finished: the upstream's status).
    pub status: u16,
    /// From arrival to the upstream's first body byte, ms; none when no byte came.
    pub ttfb_ms: Option<f64>,
    /// From arrival to the end of the answer (or of the client), ms.
    pub duration_ms: f64,
    /// Prompt tokens, as the upstream reported them.
    pub tokens_in: Option<u64>,
    /// Answer tokens, as the upstream reported them.
    pub tokens_out: Option<u64>,
    /// What it cost at the provider's configured prices; none without prices or usage.
    pub cost: Option<f64>,
    /// How it ended.
    pub outcome: GatewayOutcome,
    /// More about the outcome: the upstream error's kind, why it was refused.
    pub detail: Option<String>,
    /// Request and answer bodies with keys and tokens redacted, only with
    /// `[http] log_bodies = true`.
    pub body: Option<String>,
}
