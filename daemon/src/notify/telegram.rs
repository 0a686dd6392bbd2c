//! Telegram's Bot API: `sendMessage` to one chat. The bot token sits in the URL path, so it
//! is scrubbed from errors like any secret.

use reagent::config::notify::TelegramConfig;

use super::{Notice, check_status, http_error};
use crate::secret::Secret;

/// A bot and the chat it writes to.
pub struct Telegram {
    token: Secret,
    chat_id: String,
    base_url: String,
}

impl Telegram {
    /// Reads the bot token; `Err` says why it cannot be used (without the token).
    pub fn from_config(config: &TelegramConfig) -> anyhow::Result<Result<Self, String>> {
        if config.bot_token_env.is_none() && config.bot_token_file.is_none() {
            anyhow::bail!("[notify.telegram] needs bot_token_env or bot_token_file");
        }
        Ok(Secret::load(
            "notify.telegram",
            config.bot_token_env.as_deref(),
            config.bot_token_file.as_deref(),
        )
        .map(|token| Self {
            token,
            chat_id: config.chat_id.clone(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
        }))
    }

    /// Sends one notice as a plain-text message.
    pub async fn send(&self, http: &reqwest::Client, notice: &Notice) -> Result<(), String> {
        let url = format!("{}/bot{}/sendMessage", self.base_url, self.token.expose());
        let text = format!("{}\n\n{}", notice.title, notice.body);
        let body = serde_json::json!({ "chat_id": self.chat_id, "text": text }).to_string();
        let response = http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| http_error(err, &self.token))?;
        check_status(&response)
    }
}
