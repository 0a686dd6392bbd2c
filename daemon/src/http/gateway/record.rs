//! The request log's writer: a [`Record`] travels with each `/v1` request (into its answer's
//! body stream, when it has one) and writes the request's row once, when the request ends.
//! Its `Drop` writes the row too, so a client that goes away (which drops the handler or the
//! body mid-stream, and with it the upstream request) is logged as such, not lost.

use std::sync::Arc;
use std::time::Instant;

use reagent::config::Prices;
use reagent::gateway::{GatewayOutcome, GatewayRequest, GatewayRoute};

use crate::daemon::Daemon;
use crate::llm::Usage;

/// The most of each body kept with `[http] log_bodies`: a log row is not an archive.
const BODY_CAP: usize = 64 << 10;

/// One request's row, being filled in.
pub struct Record {
    daemon: Arc<Daemon>,
    row: GatewayRequest,
    started: Instant,
    /// Prices of the provider it went to: the cost is known when these and usage are.
    pub prices: Option<Prices>,
    /// Its answer's body has started towards the client: leaving now is `client_gone`,
    /// before now `cancelled`.
    pub answering: bool,
    /// The request body, redacted, when bodies are logged.
    request_body: Option<String>,
    /// The start of the answer body, when bodies are logged.
    answer_body: Option<Vec<u8>>,
    written: bool,
}

impl Record {
    /// A row for a request that arrived at `started` with the token named `token`.
    pub fn new(daemon: Arc<Daemon>, token: String, started: Instant) -> Self {
        let log_bodies = daemon.config.http.log_bodies;
        Self {
            daemon,
            row: GatewayRequest {
                id: 0,
                ts: reagent::time::now_ms(),
                token,
                route: GatewayRoute::None,
                model: String::new(),
                status: 0,
                ttfb_ms: None,
                duration_ms: 0.0,
                tokens_in: None,
                tokens_out: None,
                cost: None,
                outcome: GatewayOutcome::Ok,
                detail: None,
                body: None,
            },
            started,
            prices: None,
            answering: false,
            request_body: None,
            answer_body: log_bodies.then(Vec::new),
            written: false,
        }
    }

    /// The model the request names.
    pub fn model(&mut self, model: &str) {
        model.clone_into(&mut self.row.model);
    }

    /// Where it goes.
    pub fn route(&mut self, route: GatewayRoute) {
        self.row.route = route;
    }

    /// The status the client gets.
    pub fn status(&mut self, status: u16) {
        self.row.status = status;
    }

    /// Keeps the request body (redacted), when bodies are logged.
    pub fn request_body(&mut self, body: &[u8]) {
        if self.answer_body.is_some() {
            self.request_body = Some(redact(&self.daemon, body));
        }
    }

    /// The first byte of the answer arrived now (later calls change nothing); keeps the
    /// start of the answer when bodies are logged.
    pub fn answer_bytes(&mut self, bytes: &[u8]) {
        if self.row.ttfb_ms.is_none() {
            self.row.ttfb_ms = Some(ms(self.started.elapsed()));
        }
        if let Some(kept) = &mut self.answer_body {
            let room = BODY_CAP.saturating_sub(kept.len());
            kept.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        }
    }

    /// The answer's token counts.
    pub fn usage(&mut self, usage: Usage) {
        self.row.tokens_in = usage.input;
        self.row.tokens_out = usage.output;
    }

    /// Ends the request: writes its row (once; later calls do nothing).
    pub fn finish(&mut self, outcome: GatewayOutcome, detail: Option<String>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let row = &mut self.row;
        row.outcome = outcome;
        row.detail = detail;
        row.duration_ms = ms(self.started.elapsed());
        if row.tokens_in.is_some() || row.tokens_out.is_some() {
            row.cost = self.prices.map(|p| {
                let (input, output) = (row.tokens_in.unwrap_or(0), row.tokens_out.unwrap_or(0));
                (input as f64 * p.input + output as f64 * p.output) / 1e6
            });
        }
        if let Some(answer) = &self.answer_body {
            let body = serde_json::json!({
                "request": self.request_body,
                "answer": redact(&self.daemon, answer),
            });
            row.body = Some(body.to_string());
        }
        let written = self.daemon.state().store().insert_gateway_request(row);
        if let Err(err) = written {
            tracing::warn!("the gateway's request log lost a row: {err:#}");
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let outcome = if self.answering {
            GatewayOutcome::ClientGone
        } else {
            GatewayOutcome::Cancelled
        };
        self.finish(outcome, None);
    }
}

fn ms(elapsed: std::time::Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// Object keys whose string values are credentials, whatever they hold.
const SECRET_KEYS: [&str; 6] = [
    "key",
    "token",
    "secret",
    "password",
    "authorization",
    "cookie",
];

/// Prefixes of keys and tokens as services issue them.
const SECRET_PREFIXES: [&str; 10] = [
    "sk-", "sk_", "rg_", "pk_", "hf_", "ghp_", "gho_", "xoxb-", "AKIA", "AIza",
];

/// `body` as text fit for the log: cut to [`BODY_CAP`], every provider key the daemon holds
/// replaced, string values of credential-named JSON keys replaced, and every word that looks
/// like a key or token (a known prefix, or a long run mixing letters and digits) replaced.
pub fn redact(daemon: &Daemon, body: &[u8]) -> String {
    let body = body.get(..BODY_CAP.min(body.len())).unwrap_or_default();
    let mut text = String::from_utf8_lossy(body).into_owned();
    for provider in daemon.chat.providers.all() {
        if let Ok(key) = &provider.key {
            text = key.scrub(&text);
        }
    }
    if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) {
        redact_value(&mut value);
        text = value.to_string();
    }
    redact_words(&text)
}

fn redact_value(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                let named = SECRET_KEYS.iter().any(|s| key.contains(s)) && !key.contains("tokens");
                if named && value.is_string() {
                    *value = Value::String("[redacted]".into());
                } else {
                    redact_value(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// Replaces every word that looks like a key or token.
fn redact_words(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let end = from.find(|c: char| !is_word(c)).unwrap_or(from.len());
        let (word, after) = from.split_at(end);
        if looks_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn looks_secret(word: &str) -> bool {
    let prefixed = word.len() >= 16 && SECRET_PREFIXES.iter().any(|p| word.starts_with(p));
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    let digits = word.bytes().filter(u8::is_ascii_digit).count();
    prefixed || (word.len() >= 32 && letters >= 8 && digits >= 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tokens_are_redacted_and_words_kept() {
        let text = "use sk-ant-api03-abcdefghijklmnop or rg_0123456789abcdef0123 please";
        assert_eq!(redact_words(text), "use [redacted] or [redacted] please");
        let mut value = serde_json::json!({"api_key": "hunter2", "max_tokens": 5,
            "messages": [{"content": "Bearer abcdefghij0123456789abcdefghij0123456789"}]});
        redact_value(&mut value);
        assert_eq!(value["api_key"], "[redacted]");
        assert_eq!(value["max_tokens"], 5);
        let content = redact_words(&value.to_string());
        assert!(!content.contains("abcdefghij0123"), "{content}");
        assert!(content.contains("Bearer"), "{content}");
    }
}
