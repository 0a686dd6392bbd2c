//! `[notify]`: where the daemon sends word of alerts and run endings (Slack, Telegram, the
//! desktop), and which sinks hear of which kind of event. Secrets (webhook URLs, bot tokens)
//! never sit in the config: it names the environment variable or private file holding them.

use std::path::PathBuf;

use serde::Deserialize;

/// `[notify]`: sinks per kind of event; each list names sinks (`slack`, `telegram`,
/// `desktop`). Empty lists (the default) send nothing.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Sinks told of a new alert.
    pub alert: Vec<Sink>,
    /// Sinks told when a run fails.
    pub run_failed: Vec<Sink>,
    /// Sinks told when a run finishes (exit code 0).
    pub run_finished: Vec<Sink>,
    /// A Slack incoming webhook.
    pub slack: Option<SlackConfig>,
    /// A Telegram bot writing to one chat.
    pub telegram: Option<TelegramConfig>,
    /// Desktop notifications.
    pub desktop: DesktopConfig,
}

/// A place notices go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sink {
    /// `[notify.slack]`.
    Slack,
    /// `[notify.telegram]`.
    Telegram,
    /// `[notify.desktop]`.
    Desktop,
}

impl Sink {
    /// Every sink.
    pub const ALL: [Sink; 3] = [Self::Slack, Self::Telegram, Self::Desktop];

    /// The name used in the config and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Telegram => "telegram",
            Self::Desktop => "desktop",
        }
    }
}

/// `[notify.slack]`: an incoming webhook. Its URL is a secret (anyone holding it can post).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The environment variable (of the daemon) holding the webhook URL.
    #[serde(default)]
    pub webhook_url_env: Option<String>,
    /// A private (0600) file holding the webhook URL.
    #[serde(default)]
    pub webhook_url_file: Option<PathBuf>,
}

/// `[notify.telegram]`: the Bot API's `sendMessage` to one chat.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The environment variable (of the daemon) holding the bot token.
    #[serde(default)]
    pub bot_token_env: Option<String>,
    /// A private (0600) file holding the bot token.
    #[serde(default)]
    pub bot_token_file: Option<PathBuf>,
    /// The chat to write to (a number, or `@channel`).
    pub chat_id: String,
    /// The Bot API's address; another one for a proxy or a test server.
    #[serde(
        default = "telegram_base_url",
        deserialize_with = "super::checks::http_url"
    )]
    pub base_url: String,
}

fn telegram_base_url() -> String {
    "https://api.telegram.org".into()
}

/// `[notify.desktop]`: a desktop notification through `notify-send` (libnotify).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopConfig {
    /// The program called as `COMMAND TITLE BODY`, looked up on the daemon's PATH.
    pub command: String,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        Self {
            command: "notify-send".into(),
        }
    }
}
