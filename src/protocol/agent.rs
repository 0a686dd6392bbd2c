//! Params of the agent methods (tools, approvals, MCP servers, a session's agent settings,
//! wild mode); their replies are the shapes in [`crate::agent`].

use serde::{Deserialize, Serialize};

use crate::agent::PolicyMode;

/// `tools.list` params (none): every tool, built-in and MCP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListTools {}

/// `mcp.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListMcp {}

/// `session.agent` params: turn a session's tools on or off and set how acting tools run.
/// A field left out is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetSessionAgent {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// Whether the session's model gets tools.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `ask`, `auto` or `deny`.
    #[serde(default)]
    pub mode: Option<PolicyMode>,
    /// Acting tools that run without asking (replaces the list).
    #[serde(default)]
    pub auto: Option<Vec<String>>,
}

/// `approvals.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListApprovals {
    /// Settled ones too, not only those waiting.
    #[serde(default)]
    pub all: bool,
    /// Only this session's (id, title or unique id prefix).
    #[serde(default)]
    pub session: Option<String>,
}

/// `approval.answer` params: approve or deny one request; the first answer settles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerApproval {
    /// The approval's id or unique id prefix.
    pub id: String,
    /// Yes or no.
    pub approve: bool,
    /// With yes: the tool runs without asking for the rest of this session.
    #[serde(default)]
    pub always: bool,
    /// With no: why, passed on to the model.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `wild.start` params.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StartWild {
    /// What the model is to achieve.
    pub goal: String,
    /// The session to run in; a new one (on `model`, or the default model) when absent.
    #[serde(default)]
    pub session: Option<String>,
    /// `PROVIDER/MODEL` for a new session.
    #[serde(default)]
    pub model: Option<String>,
    /// The new session's working directory (the client's).
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    /// Steps at most.
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// Tokens at most.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// US dollars at most.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// Hours at most.
    #[serde(default)]
    pub max_hours: Option<f64>,
    /// Minutes between steps when nothing happens (default 10).
    #[serde(default)]
    pub every_minutes: Option<f64>,
    /// Acting tools it may use without asking.
    #[serde(default)]
    pub auto: Vec<String>,
}

/// `wild.status` params (none): every loop, newest last.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WildStatus {}

/// `wild.stop` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StopWild {
    /// The loop's session; the one loop still going when absent.
    #[serde(default)]
    pub session: Option<String>,
}
