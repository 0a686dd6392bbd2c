//! Slack incoming webhooks: one POST of `{"text": …}` to a secret URL.

use reagent::config::notify::SlackConfig;

use super::{Notice, check_status, http_error};
use crate::secret::Secret;

/// A webhook, ready to post to.
pub struct Slack {
    /// The whole URL is the secret: anyone holding it can post to the channel.
    url: Secret,
}

impl Slack {
    /// Reads the webhook URL; `Err` says why it cannot be used (without the URL).
    pub fn from_config(config: &SlackConfig) -> anyhow::Result<Result<Self, String>> {
        if config.webhook_url_env.is_none() && config.webhook_url_file.is_none() {
            anyhow::bail!("[notify.slack] needs webhook_url_env or webhook_url_file");
        }
        Ok(Secret::load(
            "notify.slack",
            config.webhook_url_env.as_deref(),
            config.webhook_url_file.as_deref(),
        )
        .map(|url| Self { url }))
    }

    /// Posts one notice.
    pub async fn send(&self, http: &reqwest::Client, notice: &Notice) -> Result<(), String> {
        let text = format!("*{}*\n{}", notice.title, notice.body);
        let body = serde_json::json!({ "text": text }).to_string();
        let response = http
            .post(self.url.expose())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| http_error(err, &self.url))?;
        check_status(&response)
    }
}
