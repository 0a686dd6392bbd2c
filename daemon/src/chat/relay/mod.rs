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

use reagent::chat::{MessageInfo, MessageStatus, Part, PartKind, Role, SessionInfo};
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
    let failed = |why| fail(daemon, id, why);
    let (session, history) = match conversation(daemon, session) {
        Ok(found) => found,
        Err(why) => return failed(why),
    };
    let tools = daemon.chat.tools(daemon, &session).await;
    let (provider, key, request) = match prepare(daemon, &session, &history, id, tools) {
        Ok(prepared) => prepared,
        Err(why) => return failed(why),
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

/// What answer `id` of `session` is asked with, offering `tools`: the provider and key to
/// ask, and the request; or why it cannot be asked.
fn prepare(
    daemon: &Daemon,
    session: &SessionInfo,
    history: &[MessageInfo],
    id: &str,
    tools: Vec<llm::ToolSpec>,
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
        request(session, history, id, &model, max_tokens, tools),
    ))
}

/// What a provider is told of a tool call that has no result: the answer ended (cancelled,
/// failed, or the daemon stopped) between the model's call and the tool's run.
const NOT_RUN: &str = "the tool was not run: the answer ended before it could be";

/// The conversation before answer `id`, as the provider wants it, with the tools the model may
/// call. Messages with nothing to send (an answer that failed before its first token) are
/// left out, and thinking is never sent back.
fn request(
    session: &SessionInfo,
    history: &[MessageInfo],
    id: &str,
    model: &str,
    max_tokens: Option<u32>,
    tools: Vec<llm::ToolSpec>,
) -> llm::ChatRequest {
    let mut messages: Vec<llm::ChatMessage> = Vec::new();
    for message in history.iter().take_while(|message| message.id != id) {
        match message.role {
            Role::User => {
                let text = message.text();
                if text.is_empty() {
                    continue;
                }
                // After an answer's results the user's words join that turn, after the
                // results, so the turns still alternate.
                match messages.last_mut() {
                    Some(last) if is_results(last) => last.content.push(llm::Content::Text(text)),
                    _ => messages.push(llm::ChatMessage::text(llm::Role::User, text)),
                }
            }
            Role::Assistant => messages.extend(turns(message)),
        }
    }
    if tools.is_empty() {
        for message in &mut messages {
            let content = std::mem::take(&mut message.content);
            message.content = content.into_iter().map(as_text).collect();
        }
    }
    llm::ChatRequest {
        model: model.to_string(),
        system: session.system.clone(),
        messages,
        max_tokens,
        tools,
    }
}

/// A tool call or result as text, for a request that offers no tools (a session whose tools
/// were turned off keeps its history): Anthropic refuses tool blocks in such a request.
fn as_text(content: llm::Content) -> llm::Content {
    match content {
        llm::Content::ToolCall {
            name, arguments, ..
        } => llm::Content::Text(format!("[called tool {name} with {arguments}]")),
        llm::Content::ToolResult { text, error, .. } => {
            let how = if error { "failed" } else { "returned" };
            llm::Content::Text(format!("[the tool {how}: {text}]"))
        }
        text => text,
    }
}

/// A stored answer as the turns a provider wants: the model's turn (its text, then its calls),
/// and, when it made calls, the user's turn with a result for every call, in the calls' order,
/// since both providers refuse a call left unanswered. Each call's result is the answer's
/// result part with the call's id (stored after the calls); a call without one gets
/// [`NOT_RUN`] as a failure. A result for no call of the answer is left out, since a provider
/// refuses a result for a call it never made. Nothing to say is no turn at all.
fn turns(message: &MessageInfo) -> Vec<llm::ChatMessage> {
    let text = message.text();
    let calls: Vec<&Part> = (message.parts.iter())
        .filter(|part| part.kind == PartKind::ToolCall)
        .collect();
    if text.is_empty() && calls.is_empty() {
        return Vec::new();
    }
    let mut said = Vec::with_capacity(calls.len() + 1);
    if !text.is_empty() {
        said.push(llm::Content::Text(text));
    }
    let mut results: Vec<&Part> = (message.parts.iter())
        .filter(|part| part.kind == PartKind::ToolResult)
        .collect();
    let mut answered = Vec::with_capacity(calls.len());
    for call in calls {
        let id = call.call_id.clone().unwrap_or_default();
        said.push(llm::Content::ToolCall {
            id: id.clone(),
            name: call.name.clone().unwrap_or_default(),
            arguments: call.text.clone(),
        });
        // Each result answers one call, so calls sharing an id take their results in order.
        let result = (results.iter())
            .position(|result| result.call_id == call.call_id)
            .map(|at| results.remove(at));
        answered.push(match result {
            Some(result) => llm::Content::ToolResult {
                id,
                text: result.text.clone(),
                error: result.error,
            },
            None => llm::Content::ToolResult {
                id,
                text: NOT_RUN.to_string(),
                error: true,
            },
        });
    }
    let mut turns = vec![llm::ChatMessage {
        role: llm::Role::Assistant,
        content: said,
    }];
    if !answered.is_empty() {
        turns.push(llm::ChatMessage {
            role: llm::Role::User,
            content: answered,
        });
    }
    turns
}

/// Whether a turn is the results of an answer's calls, made by [`turns`].
fn is_results(turn: &llm::ChatMessage) -> bool {
    turn.role == llm::Role::User
        && !turn.content.is_empty()
        && (turn.content.iter()).all(|content| matches!(content, llm::Content::ToolResult { .. }))
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

/// Ends answer `id` failed for `why` (before it streamed anything, or instead of streaming).
pub(super) fn fail(daemon: &Daemon, id: &str, why: String) {
    finish(&mut daemon.state(), id, Ending::failed(why));
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

#[cfg(test)]
mod request_tests {
    //! How the stored conversation becomes the request's turns, tool calls and results included.

    use reagent::chat::MessageUsage;

    use super::*;

    fn session() -> SessionInfo {
        SessionInfo {
            id: "s1".into(),
            title: None,
            model: "mock/m".into(),
            system: Some("be brief".into()),
            cwd: "/".into(),
            created_at: 0,
            agent: Default::default(),
        }
    }

    fn message(id: &str, role: Role, status: MessageStatus, parts: Vec<Part>) -> MessageInfo {
        MessageInfo {
            id: id.into(),
            session: "s1".into(),
            role,
            status,
            parts,
            error: None,
            usage: MessageUsage::default(),
            created_at: 0,
        }
    }

    fn user(id: &str, text: &str) -> MessageInfo {
        message(
            id,
            Role::User,
            MessageStatus::Complete,
            vec![Part::text(text)],
        )
    }

    fn part(kind: PartKind, text: &str) -> Part {
        Part {
            kind,
            ..Part::text(text)
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> Part {
        Part {
            kind: PartKind::ToolCall,
            text: arguments.into(),
            name: Some(name.into()),
            call_id: Some(id.into()),
            error: false,
        }
    }

    fn sent_call(id: &str, name: &str, arguments: &str) -> llm::Content {
        llm::Content::ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn sent_result(id: &str, text: &str, error: bool) -> llm::Content {
        llm::Content::ToolResult {
            id: id.into(),
            text: text.into(),
            error,
        }
    }

    fn turn(role: llm::Role, content: Vec<llm::Content>) -> llm::ChatMessage {
        llm::ChatMessage { role, content }
    }

    fn tool(name: &str) -> llm::ToolSpec {
        llm::ToolSpec {
            name: name.into(),
            description: format!("{name}, for tests"),
            schema: serde_json::json!({"type": "object"}),
        }
    }

    #[test]
    fn an_answers_calls_go_back_with_their_results_in_the_calls_order() {
        let weather = r#"{"location": "Zürich"}"#;
        let history = vec![
            user("m1", "weather and time?"),
            message(
                "m2",
                Role::Assistant,
                MessageStatus::Complete,
                vec![
                    part(PartKind::Thinking, "two calls"),
                    Part::text("Checking."),
                    call("call_a", "get_weather", weather),
                    call("call_b", "get_time", "{}"),
                    Part::tool_result("call_b", "get_time", "denied by the user", true),
                    Part::tool_result("call_a", "get_weather", "14 °C", false),
                ],
            ),
            user("m3", "and tomorrow?"),
            message("m4", Role::Assistant, MessageStatus::Streaming, vec![]),
            user("m5", "queued after the answer"),
        ];
        let tools = vec![tool("get_weather"), tool("get_time")];
        let request = request(&session(), &history, "m4", "m", Some(64), tools.clone());
        assert_eq!(
            request,
            llm::ChatRequest {
                model: "m".into(),
                system: Some("be brief".into()),
                messages: vec![
                    llm::ChatMessage::text(llm::Role::User, "weather and time?"),
                    turn(
                        llm::Role::Assistant,
                        vec![
                            llm::Content::Text("Checking.".into()),
                            sent_call("call_a", "get_weather", weather),
                            sent_call("call_b", "get_time", "{}"),
                        ]
                    ),
                    // The user's next words join the results' turn, after them.
                    turn(
                        llm::Role::User,
                        vec![
                            sent_result("call_a", "14 °C", false),
                            sent_result("call_b", "denied by the user", true),
                            llm::Content::Text("and tomorrow?".into()),
                        ]
                    ),
                ],
                max_tokens: Some(64),
                tools,
            }
        );
    }

    #[test]
    fn a_call_the_answer_ended_before_running_gets_a_failed_result() {
        let history = vec![
            user("m1", "weather?"),
            message(
                "m2",
                Role::Assistant,
                MessageStatus::Cancelled,
                vec![
                    call("call_a", "get_weather", r#"{"loc"#),
                    call("call_b", "get_weather", "{}"),
                    Part::tool_result("call_b", "get_weather", "sunny", false),
                    // A result for a call the answer never made is not sent.
                    Part::tool_result("call_z", "get_weather", "stray", false),
                ],
            ),
            message("m3", Role::Assistant, MessageStatus::Queued, vec![]),
        ];
        let offered = request(
            &session(),
            &history,
            "m3",
            "m",
            None,
            vec![tool("get_weather")],
        );
        assert_eq!(
            offered.messages[1..],
            [
                turn(
                    llm::Role::Assistant,
                    vec![
                        sent_call("call_a", "get_weather", r#"{"loc"#),
                        sent_call("call_b", "get_weather", "{}"),
                    ]
                ),
                turn(
                    llm::Role::User,
                    vec![
                        sent_result("call_a", NOT_RUN, true),
                        sent_result("call_b", "sunny", false),
                    ]
                ),
            ]
        );
        // With the session's tools off, the same history goes as text: Anthropic refuses
        // tool blocks in a request that offers no tools.
        let flat = request(&session(), &history, "m3", "m", None, Vec::new());
        assert_eq!(
            flat.messages[1..],
            [
                turn(
                    llm::Role::Assistant,
                    vec![
                        llm::Content::Text(r#"[called tool get_weather with {"loc]"#.into()),
                        llm::Content::Text("[called tool get_weather with {}]".into()),
                    ]
                ),
                turn(
                    llm::Role::User,
                    vec![
                        llm::Content::Text(format!("[the tool failed: {NOT_RUN}]")),
                        llm::Content::Text("[the tool returned: sunny]".into()),
                    ]
                ),
            ]
        );
    }

    #[test]
    fn calls_sharing_an_id_take_their_results_in_order() {
        let history = vec![message(
            "m1",
            Role::Assistant,
            MessageStatus::Complete,
            vec![
                call("", "f", "{}"),
                call("", "f", "{\"n\":2}"),
                Part::tool_result("", "f", "first", false),
                Part::tool_result("", "f", "second", false),
            ],
        )];
        let request = request(&session(), &history, "m2", "m", None, vec![tool("f")]);
        assert_eq!(
            request.messages[1],
            turn(
                llm::Role::User,
                vec![
                    sent_result("", "first", false),
                    sent_result("", "second", false)
                ]
            )
        );
    }

    #[test]
    fn messages_with_nothing_to_send_are_skipped_and_text_turns_stay_as_they_were() {
        let history = vec![
            user("m1", "a"),
            message("m2", Role::Assistant, MessageStatus::Error, vec![]),
            user("m3", "b"),
            message(
                "m4",
                Role::Assistant,
                MessageStatus::Cancelled,
                vec![part(PartKind::Thinking, "only thinking")],
            ),
            message(
                "m5",
                Role::Assistant,
                MessageStatus::Complete,
                vec![Part::text("c"), Part::text("d")],
            ),
            user("m6", ""),
        ];
        let request = request(&session(), &history, "m7", "m", None, Vec::new());
        assert_eq!(
            request.messages,
            [
                llm::ChatMessage::text(llm::Role::User, "a"),
                llm::ChatMessage::text(llm::Role::User, "b"),
                llm::ChatMessage::text(llm::Role::Assistant, "cd"),
            ]
        );
    }
}
