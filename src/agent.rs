//! The research agent as clients see it: the tools a session's model may call, the approvals
//! that gate the tools which act, the MCP servers that add tools, and wild mode.
//!
//! Every built-in tool is the same operation as a CLI subcommand (the daemon calls the same
//! service function), so what the agent does is visible, attributable and stoppable from any
//! client, exactly as if a person had typed it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One tool a model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Its name as the model calls it: `runs_list`, or `SERVER__tool` for an MCP server's.
    pub name: String,
    /// What it does, for the model and for `reagent tools`.
    pub description: String,
    /// The JSON schema of its arguments.
    pub schema: Value,
    /// Where it comes from: `reagent`, or the MCP server's name.
    pub source: String,
    /// Whether it changes anything (runs, files, models, alerts): such a tool asks first.
    pub acts: bool,
}

/// How a session answers its acting tools' requests to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Ask a person (the default); tools in [`AgentPolicy::auto`] run without asking.
    #[default]
    Ask,
    /// Run every acting tool without asking.
    Auto,
    /// Refuse every acting tool; read-only tools still run.
    Deny,
}

/// A session's agent settings: whether its model gets tools, and how acting tools are let run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPolicy {
    /// Whether the session's model is given tools at all.
    #[serde(default)]
    pub enabled: bool,
    /// What happens when an acting tool is called.
    #[serde(default)]
    pub mode: PolicyMode,
    /// Acting tools that run without asking in this session (named with `--auto`, or answered
    /// "always").
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub auto: BTreeSet<String>,
}

/// Where an approval request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for someone to answer.
    Pending,
    /// Approved: the tool ran.
    Approved,
    /// Denied: the model was told, and nothing happened.
    Denied,
    /// The answer it belonged to was cancelled (or the daemon stopped) before anyone answered.
    Expired,
}

/// A request to run one acting tool call, answered once by any client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Short unique id, what `reagent approve ID` takes.
    pub id: String,
    /// The session whose model made the call.
    pub session: String,
    /// The answer (message) holding the call.
    pub message: String,
    /// The provider's id of the call.
    pub call_id: String,
    /// The tool called.
    pub tool: String,
    /// Its arguments, as the model sent them.
    pub arguments: Value,
    /// The exact action, in words a person checks before saying yes: the command line, the
    /// file's unified diff, the run to stop.
    pub action: String,
    /// Where it is.
    pub state: ApprovalState,
    /// With `approve --always`: the tool now runs without asking in this session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always: bool,
    /// Why it was denied, if the person said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was asked (Unix ms).
    pub created_at: i64,
    /// When it was settled (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// A file the agent wrote, as every client hears of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The session whose agent wrote it.
    pub session: String,
    /// The file.
    pub path: PathBuf,
    /// Its size now.
    pub bytes: u64,
    /// Lines added.
    pub added: u32,
    /// Lines removed.
    pub removed: u32,
}

/// Whether an MCP server is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpState {
    /// Not started yet: servers start on first use.
    Idle,
    /// Started and initialized.
    Running,
    /// It failed to start, or crashed after its one restart.
    Failed,
}

/// An MCP server as `reagent mcp` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServerInfo {
    /// Its name in the config (`[mcp.NAME]`), the prefix of its tools.
    pub name: String,
    /// Its command line.
    pub command: Vec<String>,
    /// Whether it is up.
    pub state: McpState,
    /// Its tools, once it has started.
    pub tools: Vec<ToolInfo>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times it was restarted after a crash.
    pub restarts: u32,
}

/// Where a wild-mode loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WildState {
    /// Prompting the model, or letting it act through tools.
    Acting,
    /// Waiting for an event that matters (see [`WildInfo::waiting_for`]) or the timer.
    Waiting,
    /// Over, for [`WildInfo::end`]'s reason.
    Ended,
}

/// The hard limits of a wild-mode loop, checked before each step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WildLimits {
    /// Steps (prompts of the model with the goal) at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Tokens (prompt and answer, every answer of the loop) at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// US dollars at most, at the provider's configured prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Hours of wall time at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hours: Option<f64>,
    /// Minutes between steps when nothing happens.
    pub every_minutes: f64,
}

/// A wild-mode loop: a model pursuing a goal on its own through the agent's tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WildInfo {
    /// The session it runs in (one loop per session).
    pub session: String,
    /// What it is after.
    pub goal: String,
    /// Where it is.
    pub state: WildState,
    /// Its limits.
    pub limits: WildLimits,
    /// Acting tools it may use without asking (`--auto`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto: Vec<String>,
    /// Steps taken.
    pub steps: u32,
    /// Tokens used so far.
    pub tokens: u64,
    /// US dollars spent so far (where prices are known).
    pub cost_usd: f64,
    /// Tool errors in a row: too many end the loop.
    #[serde(default)]
    pub errors_in_row: u32,
    /// What it waits for, in words, while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Why it ended: `finished`, `stopped`, a budget, repeated tool errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The model's summary, when it said the goal is met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When it started (Unix ms).
    pub started_at: i64,
    /// When its last step started (Unix ms): what happened since is the next step's news.
    pub last_step_at: i64,
    /// When it ended (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
}

impl WildInfo {
    /// The status line the CLI and the cockpit show: goal, step, budget used, what it waits
    /// for or why it ended.
    pub fn status_line(&self) -> String {
        let steps = match self.limits.max_steps {
            Some(max) => format!("step {}/{max}", self.steps),
            None => format!("step {}", self.steps),
        };
        let tokens = match self.limits.max_tokens {
            Some(max) => format!("{}/{max} tok", self.tokens),
            None => format!("{} tok", self.tokens),
        };
        let cost = match self.limits.max_cost_usd {
            Some(max) => format!("${:.4}/${max:.2}", self.cost_usd),
            None => format!("${:.4}", self.cost_usd),
        };
        let doing = match (self.state, &self.waiting_for, &self.end) {
            (WildState::Ended, _, Some(end)) => format!("ended: {end}"),
            (WildState::Waiting, Some(what), _) => format!("waiting for {what}"),
            (WildState::Waiting, None, _) => "waiting".into(),
            _ => "acting".into(),
        };
        format!(
            "wild [{}] {} · {steps} · {tokens} · {cost} · {doing}",
            self.session, self.goal
        )
    }
}
