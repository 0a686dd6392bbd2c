//! Chat sessions: conversations with an LLM, made of messages made of parts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A conversation with a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Short unique id (8 hex digits).
    pub id: String,
    /// The user's name for it, if any.
    pub title: Option<String>,
    /// `PROVIDER/MODEL`.
    pub model: String,
    /// The system prompt.
    pub system: Option<String>,
    /// Working directory the session is about.
    pub cwd: PathBuf,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// Whether its model gets the agent's tools, and how acting tools are let run.
    #[serde(default)]
    pub agent: crate::agent::AgentPolicy,
}

impl SessionInfo {
    /// The title if set, else the id.
    pub fn label(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person (or agent) asking.
    User,
    /// The model.
    Assistant,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for the answer before it to finish.
    Queued,
    /// The model is answering.
    Streaming,
    /// Done.
    Complete,
    /// The provider failed; what arrived before is kept.
    Error,
    /// Stopped by the user; what arrived before is kept.
    Cancelled,
    /// The daemon stopped mid-answer; what arrived before is kept.
    Interrupted,
}

impl MessageStatus {
    /// True once the message can no longer change.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Streaming)
    }
}

/// What a part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// Answer text (markdown).
    Text,
    /// The model's reasoning, shown folded.
    Thinking,
    /// A call of a tool, with its JSON arguments as text.
    ToolCall,
    /// What a tool returned.
    ToolResult,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// What it is.
    pub kind: PartKind,
    /// Its text (for a tool call, the arguments).
    pub text: String,
    /// The tool's name, for tool parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tool call's id, for tool parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// A tool result that reports a failure or a denial rather than the tool's output, which
    /// Anthropic's `is_error` carries, so the model can tell "it failed" from what it returned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: PartKind::Text,
            text: text.into(),
            name: None,
            call_id: None,
            error: false,
        }
    }

    /// What tool `name` returned for call `call_id` (or, with `error`, why it failed or was
    /// not run), stored in the answer after its call and sent back with the next request.
    pub fn tool_result(
        call_id: impl Into<String>,
        name: impl Into<String>,
        text: impl Into<String>,
        error: bool,
    ) -> Self {
        Self {
            kind: PartKind::ToolResult,
            text: text.into(),
            name: Some(name.into()),
            call_id: Some(call_id.into()),
            error,
        }
    }
}

/// Token counts and timing of one answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageUsage {
    /// Prompt tokens.
    pub input: Option<u64>,
    /// Answer tokens.
    pub output: Option<u64>,
    /// Prompt tokens served from the provider's cache.
    pub cached: Option<u64>,
    /// Cost in US dollars, from the configured prices.
    pub cost_usd: Option<f64>,
    /// Milliseconds from sending to the first token.
    pub ttft_ms: Option<i64>,
    /// Output tokens per second after the first token.
    pub tokens_per_s: Option<f64>,
    /// Rate-limit and balance headers the provider sent with the answer, as (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<(String, String)>,
    /// A copy of an answer made by forking its session: its tokens and cost were counted where
    /// it was produced, and are not counted again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copied: bool,
}

/// Token and cost totals over a set of answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageTotals {
    /// What the totals are of: a session id or a day (`YYYY-MM-DD`, UTC).
    pub key: String,
    /// Answers counted.
    pub answers: u64,
    /// Prompt tokens.
    pub input: u64,
    /// Answer tokens.
    pub output: u64,
    /// Prompt tokens served from cache.
    pub cached: u64,
    /// US dollars, where prices are known.
    pub cost_usd: f64,
}

/// Usage per session and per day.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageReport {
    /// One row per session, oldest first.
    pub sessions: Vec<UsageTotals>,
    /// One row per UTC day, oldest first.
    pub days: Vec<UsageTotals>,
}

/// A message as every client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// Unique id.
    pub id: String,
    /// The session it belongs to.
    pub session: String,
    /// Who wrote it.
    pub role: Role,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// Its content.
    pub parts: Vec<Part>,
    /// Why it failed, for `error`.
    pub error: Option<String>,
    /// For answers: tokens, cost, speed.
    pub usage: MessageUsage,
    /// When it was written (Unix ms).
    pub created_at: i64,
}

impl MessageInfo {
    /// The message's text parts joined: what a plain-text view or the next request uses.
    pub fn text(&self) -> String {
        let texts = self.parts.iter().filter(|p| p.kind == PartKind::Text);
        texts.map(|p| p.text.as_str()).collect::<Vec<_>>().join("")
    }
}

/// A provider as clients see it: never its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The config's name for it.
    pub name: String,
    /// `openai` or `anthropic`.
    pub kind: String,
    /// Where requests go.
    pub base_url: String,
    /// Models the config lists.
    pub models: Vec<String>,
    /// Whether the daemon found its key.
    pub has_key: bool,
    /// With `check`: `ok`, or why the provider did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<String>,
}

/// What a `chat_retrying` event tells the user, worded once so the CLI and the cockpit say the
/// same: `retrying in 2 s (429 from openai)`, with the attempt from the second retry on.
pub fn retry_note(attempt: u32, delay_ms: u64, status: u16, provider: &str) -> String {
    let delay = if delay_ms.is_multiple_of(1000) {
        format!("{} s", delay_ms / 1000)
    } else {
        format!("{:.1} s", delay_ms as f64 / 1000.0)
    };
    let nth = if attempt > 1 {
        format!(", attempt {attempt}")
    } else {
        String::new()
    };
    format!("retrying in {delay} ({status} from {provider}{nth})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_reads_as_the_user_expects() {
        assert_eq!(
            retry_note(1, 2000, 429, "openai"),
            "retrying in 2 s (429 from openai)"
        );
        assert_eq!(
            retry_note(3, 500, 529, "anthropic"),
            "retrying in 0.5 s (529 from anthropic, attempt 3)"
        );
    }
}
