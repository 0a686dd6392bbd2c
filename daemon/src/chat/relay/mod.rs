//! Writing one answer: the thin async driver around [`machine::Relay`], which decides
//! everything (retries, `retry-after`, the idle limit, cancel, parts, saving, cost).
//!
//! The driver makes the HTTP request, feeds the machine what the connection, the clock and
//! the user do, and performs what it says: appends and tool calls go into the daemon's state
//! (fanned out to clients and saved as the answer grows), a retry is announced to every
//! client, and the answer's end is recorded with its usage, cost and speed. Titles relay their
//! requests through the same driver, so they are made (and retried) exactly as answers are.

pub(crate) mod machine;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reagent::chat::{MessageInfo, MessageStatus, Role, SessionInfo};
use reagent::protocol::EventKind;
use tokio::sync::watch;

use super::providers::{Provider, Secret};
use crate::daemon::{Daemon, State};
use crate::llm;
use machine::{Ending, Input, Outcome, Output, Relay, Retry, Setup};

/// Writes answer `id` of `session`; returns when it has ended, one way or another.
pub async fn answer(
    daemon: &Arc<Daemon>,
    session: &str,
    id: &str,
    cancelled: &mut watch::Receiver<u64>,
) {
    let fail = |why| finish(&mut daemon.state(), id, Ending::failed(why));
    let (session, history) = match conversation(daemon, session) {
        Ok(found) => found,
        Err(why) => return fail(why),
    };
    let (provider, key, request) = match prepare(daemon, &session, &history, id) {
        Ok(prepared) => prepared,
        Err(why) => return fail(why),
    };
    update(&mut daemon.state(), id, |message| {
        message.status = MessageStatus::Streaming;
    });
    // A closed channel means the daemon is going away: that ends the answer too.
    let cancel = async {
        let _ = cancelled.changed().await;
    };
    // The answer's part of each tool call, by the provider's index of the call.
    let mut tool_parts = HashMap::new();
    let perform = |outputs: Vec<Output>| {
        // One lock for everything one read brought.
        let mut state = daemon.state();
        for output in outputs {
            match output {
                Output::Append { kind, call, text } => {
                    let part = call.and_then(|index| tool_parts.get(&index).copied());
                    state.append(id, part, kind, &text);
                }
                Output::StartToolCall {
                    index,
                    id: call,
                    name,
                } => {
                    if let Some(part) = state.start_tool_call(id, &call, &name) {
                        tool_parts.insert(index, part);
                    }
                }
                Output::Persist => state.persist_streaming(id),
                Output::Retry(retry) => {
                    let kind = retrying(&session.id, id, &provider.name, &retry);
                    state.bus.broadcast_ephemeral(kind);
                }
                Output::Finish(ending) => finish(&mut state, id, ending),
                // `stream` makes the request itself.
                Output::Send => {}
            }
        }
        ControlFlow::Continue(())
    };
    stream(daemon, &provider, &key, &request, cancel, perform).await;
}

/// Session `id` and its messages, read under one lock; or why they cannot be.
fn conversation(daemon: &Daemon, id: &str) -> Result<(SessionInfo, Vec<MessageInfo>), String> {
    let state = daemon.state();
    let Some(session) = state.sessions().iter().find(|s| s.id == id).cloned() else {
        return Err("the session is gone".into());
    };
    let history =
        (state.messages(&session.id)).map_err(|err| format!("cannot read the session: {err:#}"))?;
    Ok((session, history))
}

/// What answer `id` of `session` is asked with: the provider and key to ask, and the
/// request; or why it cannot be asked.
fn prepare(
    daemon: &Daemon,
    session: &SessionInfo,
    history: &[MessageInfo],
    id: &str,
) -> Result<(Provider, Secret, llm::ChatRequest), String> {
    let (provider, model) = daemon.chat.resolve(daemon, &session.model)?;
    if provider.name == super::providers::LOCAL
        && let Some(name) = session.model.split_once('/').map(|(_, name)| name)
    {
        crate::models::note_request(daemon, name);
    }
    let key = provider.key.clone()?;
    let max_tokens = provider.max_tokens(&model, &daemon.config.chat);
    Ok((
        provider,
        key,
        request(session, history, id, &model, max_tokens),
    ))
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

/// The event telling every client that answer `id` waits for a retry: `chat_retrying`, not
/// kept for replay (the text that follows, or the answer's end, makes it moot).
fn retrying(session: &str, id: &str, provider: &str, retry: &Retry) -> EventKind {
    EventKind::ChatRetrying {
        session: session.to_string(),
        message: id.to_string(),
        attempt: retry.attempt,
        delay_ms: u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX),
        status: retry.status,
        provider: provider.to_string(),
    }
}

/// Relays `request` to `provider` through a fresh [`Relay`] until it ends, `cancel` resolves
/// (the answer then ends cancelled), or `perform` breaks. The driver makes every
/// [`Output::Send`] itself, logs every retry, and scrubs the key from every error; each other
/// output goes to `perform`, one batch per input, in order.
pub(super) async fn stream(
    daemon: &Daemon,
    provider: &Provider,
    key: &Secret,
    request: &llm::ChatRequest,
    cancel: impl Future<Output = ()>,
    mut perform: impl FnMut(Vec<Output>) -> ControlFlow<()>,
) {
    let kind = provider.protocol();
    let url = kind.endpoint(&provider.base_url);
    // A JSON value's text, which (unlike `to_vec`) cannot fail: its keys are strings.
    let body = kind
        .request_body(&provider.base_url, request)
        .to_string()
        .into_bytes();
    let setup = Setup {
        provider: provider.name.clone(),
        url: url.clone(),
        kind,
        prices: provider.prices,
        retry_for: Duration::from_secs_f64(daemon.config.chat.retry_secs.max(0.0)),
    };
    let (mut relay, mut outputs) = Relay::start(setup, Instant::now());
    let mut cancel = pin!(cancel);
    let mut link = Link::Idle;
    loop {
        let mut send = false;
        outputs.retain_mut(|output| match output {
            Output::Send => {
                send = true;
                false
            }
            Output::Retry(retry) => {
                // Providers sometimes echo the key in their error text.
                retry.why = key.scrub(&retry.why);
                let wait = retry.delay.as_secs_f64();
                tracing::info!("{}; retrying in {wait:.1} s", retry.why);
                true
            }
            Output::Finish(Ending {
                outcome: Outcome::Failed(why),
                ..
            }) => {
                *why = key.scrub(why);
                true
            }
            _ => true,
        });
        if (!outputs.is_empty() && perform(outputs).is_break()) || relay.ended() {
            return;
        }
        if send {
            let builder = (daemon.chat.http.post(&url))
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .body(body.clone());
            link = Link::Sending(Box::pin(provider.authorize(builder, key).send()));
        }
        let deadline = relay.deadline();
        // Cancel first, then bytes, then time: bytes that came by the deadline are not idle.
        let heard = tokio::select! {
            biased;
            () = &mut cancel => Heard::Cancel,
            heard = link.next() => heard,
            () = until(deadline) => Heard::Tick,
        };
        let now = Instant::now();
        outputs = match heard {
            Heard::Cancel => relay.handle(now, Input::Cancel),
            Heard::Tick => relay.handle(now, Input::Tick),
            Heard::Answered(Ok(response)) => {
                let headers: Vec<(&str, &str)> = (response.headers().iter())
                    .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
                    .collect();
                let status = response.status();
                let wall = SystemTime::now();
                let outputs = relay.handle(
                    now,
                    Input::Response {
                        status,
                        headers: &headers,
                        wall,
                    },
                );
                drop(headers);
                link = Link::Reading(response);
                outputs
            }
            Heard::Answered(Err(err)) => {
                link = Link::Idle;
                relay.handle(now, Input::Unreachable(err.to_string()))
            }
            Heard::Read(Ok(Some(bytes))) => relay.handle(now, Input::Chunk(bytes.as_ref())),
            Heard::Read(Ok(None)) => {
                link = Link::Idle;
                relay.handle(now, Input::End)
            }
            Heard::Read(Err(err)) => {
                link = Link::Idle;
                relay.handle(now, Input::Broken(err.to_string()))
            }
        };
    }
}

/// The driver's end of the request: nothing out, a request awaiting its response, or a
/// response whose body is being read.
enum Link {
    Idle,
    Sending(Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>),
    Reading(reqwest::Response),
}

/// What woke the driver; `B` is a chunk of the body.
enum Heard<B> {
    Cancel,
    Tick,
    Answered(reqwest::Result<reqwest::Response>),
    Read(reqwest::Result<Option<B>>),
}

impl Link {
    /// Waits for the next thing the connection does; never resolves while idle. Dropping the
    /// wait loses nothing: a response, or a chunk, not yet complete is still to come.
    async fn next(&mut self) -> Heard<impl AsRef<[u8]> + use<>> {
        match self {
            Link::Idle => std::future::pending().await,
            Link::Sending(pending) => Heard::Answered(pending.await),
            Link::Reading(response) => Heard::Read(response.chunk().await),
        }
    }
}

/// Resolves at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Changes streaming answer `id` with `change` and saves it; an answer no longer streaming
/// (deleted meanwhile) is left alone.
fn update(state: &mut State, id: &str, change: impl FnOnce(&mut MessageInfo)) {
    let Some(mut message) = state.streaming(id).cloned() else {
        return;
    };
    change(&mut message);
    if let Err(err) = state.save_message(message) {
        tracing::error!("cannot record answer {id}: {err}");
    }
}

/// Records how the answer ended, with its usage, cost and speed (each only when known).
fn finish(state: &mut State, id: &str, ending: Ending) {
    update(state, id, |message| {
        (message.status, message.error) = match ending.outcome {
            Outcome::Complete => (MessageStatus::Complete, None),
            Outcome::Failed(why) => (MessageStatus::Error, Some(why)),
            Outcome::Cancelled => (MessageStatus::Cancelled, None),
        };
        let usage = &mut message.usage;
        usage.input = ending.usage.input;
        usage.output = ending.usage.output;
        usage.cached = ending.usage.cached;
        usage.limits = ending.limits;
        if let Some(ttft) = ending.ttft {
            usage.ttft_ms = i64::try_from(ttft.as_millis()).ok();
        }
        if let Some(speed) = ending.tokens_per_s {
            usage.tokens_per_s = Some(speed);
        }
        if let Some(cost) = ending.cost_usd {
            usage.cost_usd = Some(cost);
        }
    });
}
