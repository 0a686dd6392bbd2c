//! Params of the chat methods (sessions, messages, providers, usage); their replies are the
//! chat shapes in [`crate::chat`].

use serde::{Deserialize, Serialize};

/// `usage.report` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageQuery {}

/// `session.rename` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameSession {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The new title; empty clears it.
    pub title: String,
}

/// `session.model` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSessionModel {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// `PROVIDER/MODEL`.
    pub model: String,
}

/// `session.delete` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSession {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `session.fork` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkSession {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The last message to copy (id or unique prefix); the whole history when absent.
    #[serde(default)]
    pub at: Option<String>,
}

/// `sessions.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListSessions {}

/// `session.create` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateSession {
    /// `PROVIDER/MODEL`; the daemon's default model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// The system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// Working directory; the daemon's when absent.
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    /// A title.
    #[serde(default)]
    pub title: Option<String>,
    /// Give its model the agent's tools (acting ones ask first).
    #[serde(default)]
    pub agent: bool,
}

/// `session.history` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHistory {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `chat.send` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendChat {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The user's message.
    pub text: String,
}

/// `chat.cancel` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelChat {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `providers.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListProviders {
    /// Ask each provider whether it answers (its model list), within a few seconds.
    #[serde(default)]
    pub check: bool,
}
