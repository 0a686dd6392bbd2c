//! Writing one answer: the request to the provider, retries before the first token, the
//! stream parsed into parts, fanned out to clients and saved as it grows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reagent::chat::{MessageInfo, MessageStatus, PartKind, Role, SessionInfo};
use reagent::protocol::EventKind;
use tokio::sync::watch;

use super::providers::{Provider, Secret};
use crate::llm::{self, StreamEvent};
use crate::state::Daemon;

/// How often a streaming answer is rewritten in the store.
const SAVE_EVERY: Duration = Duration::from_millis(100);
/// A provider silent this long mid-answer is given up on.
const IDLE_LIMIT: Duration = Duration::from_secs(120);

/// How an answer ended.
enum Outcome {
    Complete,
    Failed(String),
    Cancelled,
}

/// Writes answer `id` of `session`; returns when it has ended, one way or another.
pub async fn answer(
    daemon: &Arc<Daemon>,
    session: &str,
    id: &str,
    cancelled: &mut watch::Receiver<u64>,
) {
    let mut stats = Stats::default();
    let outcome = tokio::select! {
        outcome = stream(daemon, session, id, &mut stats) => outcome,
        _ = cancelled.changed() => Outcome::Cancelled,
    };
    finish(daemon, id, outcome, &stats);
}

/// Timing and usage gathered while streaming.
#[derive(Default)]
struct Stats {
    sent: Option<Instant>,
    first_token: Option<Instant>,
    usage: llm::Usage,
    prices: Option<reagent::config::Prices>,
    limits: Vec<(String, String)>,
}

async fn stream(daemon: &Arc<Daemon>, session: &str, id: &str, stats: &mut Stats) -> Outcome {
    let (session, history) = {
        let state = daemon.state();
        let Some(session) = state.sessions().iter().find(|s| s.id == session).cloned() else {
            return Outcome::Failed("the session is gone".into());
        };
        match state.messages(&session.id) {
            Ok(history) => (session, history),
            Err(err) => return Outcome::Failed(format!("cannot read the session: {err:#}")),
        }
    };
    let (provider, model) = match daemon.chat.providers.resolve(&session.model) {
        Ok(found) => found,
        Err(err) => return Outcome::Failed(err),
    };
    let key = match &provider.key {
        Ok(key) => key.clone(),
        Err(why) => return Outcome::Failed(why.clone()),
    };
    stats.prices = provider.prices;
    mark(daemon, id, MessageStatus::Streaming);
    let max_tokens = provider.max_tokens(model, &daemon.config.chat);
    let request = request(&session, &history, id, model, max_tokens);
    let retry_for = Duration::from_secs_f64(daemon.config.chat.retry_secs.max(0.0));
    stats.sent = Some(Instant::now());
    let retrying = |retry: &Retry| announce(daemon, &session.id, id, &provider.name, retry);
    let response = match send(daemon, provider, &key, &request, retry_for, retrying).await {
        Ok(response) => response,
        Err(err) => return Outcome::Failed(key.scrub(&err)),
    };
    stats.limits = llm::headers::rate_limit_headers(
        response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
    let mut parser = provider.protocol().parser();
    let mut tool_parts = std::collections::HashMap::new();
    let mut saved = Instant::now();
    let mut response = response;
    loop {
        let chunk = match tokio::time::timeout(IDLE_LIMIT, response.chunk()).await {
            Err(_) => return Outcome::Failed("the provider went silent for 120 s".into()),
            Ok(Err(err)) => return Outcome::Failed(key.scrub(&format!("the stream broke: {err}"))),
            Ok(Ok(chunk)) => chunk,
        };
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish(),
        };
        let mut state = daemon.state();
        for event in coalesce(events) {
            match event {
                StreamEvent::Text(text) => {
                    stats.first_token.get_or_insert_with(Instant::now);
                    state.append(id, None, PartKind::Text, &text);
                }
                StreamEvent::Thinking(text) => {
                    stats.first_token.get_or_insert_with(Instant::now);
                    state.append(id, None, PartKind::Thinking, &text);
                }
                StreamEvent::ToolCallStart {
                    index,
                    id: call_id,
                    name,
                } => {
                    stats.first_token.get_or_insert_with(Instant::now);
                    if let Some(part) = state.start_tool_call(id, &call_id, &name) {
                        tool_parts.insert(index, part);
                    }
                }
                StreamEvent::ToolCallArgs { index, delta } => {
                    let part = tool_parts.get(&index).copied();
                    state.append(id, part, PartKind::ToolCall, &delta);
                }
                StreamEvent::Usage(usage) => merge(&mut stats.usage, &usage),
                StreamEvent::Done { .. } => return Outcome::Complete,
                StreamEvent::Error(error) => return Outcome::Failed(key.scrub(&error)),
            }
        }
        if chunk.is_none() {
            return Outcome::Failed("the stream ended before the model finished".into());
        }
        if saved.elapsed() >= SAVE_EVERY {
            state.persist_streaming(id);
            saved = Instant::now();
        }
    }
}

/// Joins consecutive text (and thinking) pieces parsed from one read into one piece: a fast
/// provider then costs clients one `delta` per read instead of one per token, while a slow
/// one still shows every token as it comes.
fn coalesce(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let mut joined: Vec<StreamEvent> = Vec::with_capacity(events.len());
    for event in events {
        match (joined.last_mut(), event) {
            (Some(StreamEvent::Text(text)), StreamEvent::Text(more))
            | (Some(StreamEvent::Thinking(text)), StreamEvent::Thinking(more)) => {
                text.push_str(&more)
            }
            (_, event) => joined.push(event),
        }
    }
    joined
}

/// The conversation so far (everything before this answer that has text), as the provider
/// wants it.
fn request(
    session: &SessionInfo,
    history: &[MessageInfo],
    id: &str,
    model: &str,
    max_tokens: Option<u32>,
) -> llm::ChatRequest {
    let messages = history
        .iter()
        .take_while(|message| message.id != id)
        .filter_map(|message| {
            let text = message.text();
            let role = match message.role {
                Role::User => llm::Role::User,
                Role::Assistant => llm::Role::Assistant,
            };
            (!text.is_empty()).then_some(llm::ChatMessage { role, text })
        })
        .collect();
    llm::ChatRequest {
        model: model.to_string(),
        system: session.system.clone(),
        messages,
        max_tokens,
    }
}

/// A retry [`send`] is about to wait for: what the user is told while nothing streams.
pub(super) struct Retry {
    /// Which retry this is (1 for the first).
    attempt: u32,
    /// How long before asking again.
    delay: Duration,
    /// The status that made it worth asking again.
    status: u16,
}

/// Tells every client that answer `id` waits for a retry: a `chat_retrying` event, not kept
/// for replay (the text that follows, or the answer's end, makes it moot).
fn announce(daemon: &Daemon, session: &str, id: &str, provider: &str, retry: &Retry) {
    let kind = EventKind::ChatRetrying {
        session: session.to_string(),
        message: id.to_string(),
        attempt: retry.attempt,
        delay_ms: u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX),
        status: retry.status,
        provider: provider.to_string(),
    };
    daemon.state().broadcast_ephemeral(kind);
}

/// Sends the request; 429, 529 and 5xx are retried with backoff (honouring `retry-after`)
/// for up to `retry_for`, each retry told to `retrying` before the wait; other failures
/// become a message naming the cause. Titles use it too, so their requests are made exactly
/// as an answer's.
pub(super) async fn send(
    daemon: &Daemon,
    provider: &Provider,
    key: &Secret,
    request: &llm::ChatRequest,
    retry_for: Duration,
    retrying: impl Fn(&Retry),
) -> Result<reqwest::Response, String> {
    let kind = provider.protocol();
    let url = kind.endpoint(&provider.base_url);
    let body = serde_json::to_vec(&kind.request_body(&provider.base_url, request))
        .map_err(|err| err.to_string())?;
    let started = Instant::now();
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        let builder = daemon
            .chat
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(body.clone());
        let response = provider
            .authorize(builder, key)
            .send()
            .await
            .map_err(|err| format!("cannot reach {} ({url}): {err}", provider.name))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retryable =
            status.as_u16() == 429 || status.as_u16() == 529 || status.is_server_error();
        let wait = llm::headers::retry_after(|name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or(backoff);
        let detail = error_detail(response).await;
        // Providers sometimes echo the key in their error text: scrub before it goes anywhere.
        let why = key.scrub(&format!("{} answered {status}{detail}", provider.name));
        if !retryable {
            let hint = match status.as_u16() {
                401 | 403 => " — check the provider's key",
                404 => " — check the model name and base_url",
                _ => "",
            };
            return Err(format!("{why}{hint}"));
        }
        if started.elapsed() + wait > retry_for {
            return Err(format!(
                "gave up after {:.0} s: {why}",
                started.elapsed().as_secs_f64()
            ));
        }
        tracing::info!("{why}; retrying in {:.1} s", wait.as_secs_f64());
        attempt += 1;
        retrying(&Retry {
            attempt,
            delay: wait,
            status: status.as_u16(),
        });
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// The provider's own words about a failure, from its JSON error body if it sent one.
async fn error_detail(response: reqwest::Response) -> String {
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    let message = llm::error::describe_error_body(&body)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
    if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    }
}

fn merge(total: &mut llm::Usage, new: &llm::Usage) {
    total.input = new.input.or(total.input);
    total.output = new.output.or(total.output);
    total.cached = new.cached.or(total.cached);
}

fn mark(daemon: &Daemon, id: &str, status: MessageStatus) {
    let mut state = daemon.state();
    if let Some(mut message) = state.streaming(id).cloned() {
        message.status = status;
        if let Err(err) = state.save_message(message) {
            tracing::error!("cannot record answer {id}: {err}");
        }
    }
}

/// Records how the answer ended, with its usage, cost and speed.
fn finish(daemon: &Daemon, id: &str, outcome: Outcome, stats: &Stats) {
    let mut state = daemon.state();
    let Some(mut message) = state.streaming(id).cloned() else {
        return;
    };
    let (status, error) = match outcome {
        Outcome::Complete => (MessageStatus::Complete, None),
        Outcome::Failed(why) => (MessageStatus::Error, Some(why)),
        Outcome::Cancelled => (MessageStatus::Cancelled, None),
    };
    message.status = status;
    message.error = error;
    let usage = &mut message.usage;
    usage.input = stats.usage.input;
    usage.output = stats.usage.output;
    usage.cached = stats.usage.cached;
    usage.limits.clone_from(&stats.limits);
    if let (Some(sent), Some(first)) = (stats.sent, stats.first_token) {
        usage.ttft_ms = i64::try_from(first.duration_since(sent).as_millis()).ok();
        let streaming = first.elapsed().as_secs_f64();
        if let Some(output) = stats.usage.output.filter(|_| streaming > 0.0) {
            usage.tokens_per_s = Some(output as f64 / streaming);
        }
    }
    if let Some(prices) = stats.prices {
        let (input, output) = (
            stats.usage.input.unwrap_or(0),
            stats.usage.output.unwrap_or(0),
        );
        usage.cost_usd = Some((input as f64 * prices.input + output as f64 * prices.output) / 1e6);
    }
    if let Err(err) = state.save_message(message) {
        tracing::error!("cannot record how answer {id} ended: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_one_read_are_joined_by_kind() {
        let text = |t: &str| StreamEvent::Text(t.into());
        let events = vec![
            text("a"),
            text("b"),
            StreamEvent::Thinking("t".into()),
            text("c"),
            StreamEvent::Done { stop_reason: None },
        ];
        let joined = coalesce(events);
        assert_eq!(joined.len(), 4);
        assert_eq!(joined[0], text("ab"));
        assert_eq!(joined[2], text("c"));
    }
}
