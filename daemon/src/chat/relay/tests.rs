//! The relay machine's policy, clause by clause, with time as an input and no network: each
//! test plays the driver, feeding what a provider would do and checking what the machine says.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use reagent::chat::PartKind;
use reagent::config::Prices;
use reqwest::StatusCode;

use super::machine::{Ending, IDLE_LIMIT, Input, Outcome, Output, Relay, Retry, Setup, coalesce};
use crate::llm::testing::{every_split, text};
use crate::llm::{INCOMPLETE, ProviderKind, StreamEvent};

const OPENAI_TEXT: &[u8] = include_bytes!("../../llm/testdata/openai_text.sse");
const OPENAI_TOOLS: &[u8] = include_bytes!("../../llm/testdata/openai_tools.sse");
const OPENAI_ERROR: &[u8] = include_bytes!("../../llm/testdata/openai_error.sse");
const ANTHROPIC_TOOL: &[u8] = include_bytes!("../../llm/testdata/anthropic_tool.sse");
const ANTHROPIC_ERROR: &[u8] = include_bytes!("../../llm/testdata/anthropic_error.sse");
/// One OpenAI text delta, `tok `.
const DELTA: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"}}]}\n\n";
const RATE_LIMITED: &[u8] = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

/// A relay to provider `mock` whose first request went out at the returned instant, with a
/// minute of retries allowed and no prices.
fn start(kind: ProviderKind) -> (Relay, Instant) {
    start_with(kind, Duration::from_secs(60), None)
}

fn start_with(kind: ProviderKind, retry_for: Duration, prices: Option<Prices>) -> (Relay, Instant) {
    let setup = Setup {
        provider: "mock".into(),
        url: "http://mock/v1/chat/completions".into(),
        kind,
        prices,
        retry_for,
    };
    let t0 = Instant::now();
    let (relay, outputs) = Relay::start(setup, t0);
    assert_eq!(
        outputs,
        [Output::Send],
        "the first request goes out at once"
    );
    (relay, t0)
}

/// `secs` seconds after `t0`.
fn at(t0: Instant, secs: f64) -> Instant {
    t0 + Duration::from_secs_f64(secs)
}

/// The response's head, read at `now` (the wall clock at the epoch).
fn respond(relay: &mut Relay, now: Instant, status: u16, headers: &[(&str, &str)]) {
    let status = StatusCode::from_u16(status).unwrap();
    let wall = UNIX_EPOCH;
    let outputs = relay.handle(
        now,
        Input::Response {
            status,
            headers,
            wall,
        },
    );
    assert_eq!(outputs, [], "a head alone does nothing");
}

/// A refusal as it comes, all at `now`: its head, its body, its end.
fn refuse(
    relay: &mut Relay,
    now: Instant,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<Output> {
    respond(relay, now, status, headers);
    assert_eq!(relay.handle(now, Input::Chunk(body)), []);
    relay.handle(now, Input::End)
}

/// The retry that `outputs` announce, alone.
fn retry(outputs: Vec<Output>) -> Retry {
    match <[Output; 1]>::try_from(outputs) {
        Ok([Output::Retry(retry)]) => retry,
        Ok([other]) => panic!("expected a retry, got {other:?}"),
        Err(outputs) => panic!("expected a retry alone, got {outputs:?}"),
    }
}

/// The ending `outputs` close with.
fn ending(mut outputs: Vec<Output>) -> Ending {
    match outputs.pop() {
        Some(Output::Finish(ending)) => ending,
        other => panic!("expected the end, got {other:?}"),
    }
}

/// Why the answer `outputs` end failed.
fn failure(outputs: Vec<Output>) -> String {
    match ending(outputs).outcome {
        Outcome::Failed(why) => why,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A successful response at `now` whose whole body is `body`, in the given pieces.
fn stream(relay: &mut Relay, now: Instant, pieces: &[&[u8]]) -> Vec<Output> {
    respond(relay, now, 200, &[]);
    let mut outputs: Vec<Output> = (pieces.iter())
        .flat_map(|piece| relay.handle(now, Input::Chunk(piece)))
        .collect();
    if !relay.ended() {
        outputs.extend(relay.handle(now, Input::End));
    }
    outputs
}

/// The index just before the `data:` line holding `needle`, to cut a stream there.
fn before(stream: &[u8], needle: &str) -> usize {
    let at = (stream.windows(needle.len()))
        .position(|window| window == needle.as_bytes())
        .unwrap();
    (stream[..at].windows(5))
        .rposition(|w| w == b"data:")
        .unwrap()
}

#[test]
fn retry_after_in_seconds_is_waited_then_the_request_is_sent_again() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let refused = refuse(
        &mut relay,
        at(t0, 0.1),
        429,
        &[("retry-after", "3")],
        RATE_LIMITED,
    );
    assert_eq!(
        retry(refused),
        Retry {
            attempt: 1,
            delay: Duration::from_secs(3),
            status: 429,
            why: "mock answered 429 Too Many Requests: requests / rate_limit_exceeded: Rate \
                  limit reached"
                .into(),
        }
    );
    assert_eq!(relay.deadline(), Some(at(t0, 3.1)));
    assert_eq!(relay.handle(at(t0, 3.0), Input::Tick), [], "not yet");
    assert_eq!(relay.handle(at(t0, 3.1), Input::Tick), [Output::Send]);
    assert_eq!(
        relay.deadline(),
        None,
        "nothing is due while the request is out"
    );
}

#[test]
fn retry_after_as_an_http_date_or_in_milliseconds() {
    let (mut relay, t0) = start(ProviderKind::Anthropic);
    let status = StatusCode::from_u16(529).unwrap();
    let headers = [("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")];
    let wall = UNIX_EPOCH + Duration::from_secs(784_111_770); // 08:49:30 that day
    assert_eq!(
        relay.handle(
            t0,
            Input::Response {
                status,
                headers: &headers,
                wall
            }
        ),
        []
    );
    let delay = retry(relay.handle(t0, Input::End)).delay;
    assert_eq!(delay, Duration::from_secs(7), "from the wall clock given");

    relay.handle(at(t0, 7.0), Input::Tick);
    let ms = [("retry-after", "2"), ("retry-after-ms", "250")];
    let delay = retry(refuse(&mut relay, at(t0, 7.0), 503, &ms, b"")).delay;
    assert_eq!(
        delay,
        Duration::from_millis(250),
        "the more precise header wins"
    );
}

#[test]
fn without_retry_after_the_backoff_doubles_to_8_s_until_retry_for_is_spent() {
    let (mut relay, t0) = start_with(ProviderKind::OpenAi, Duration::from_secs(30), None);
    let mut now = 0.0;
    let mut delays = Vec::new();
    for attempt in 1..=6 {
        let retry = retry(refuse(&mut relay, at(t0, now), 503, &[], b""));
        assert_eq!(retry.attempt, attempt);
        delays.push(retry.delay.as_secs_f64());
        now += retry.delay.as_secs_f64();
        assert_eq!(relay.handle(at(t0, now), Input::Tick), [Output::Send]);
    }
    assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]);
    // 23.5 s in, another 8 s would end past the 30 s allowed.
    let refused = refuse(&mut relay, at(t0, now), 503, &[], b"");
    assert_eq!(
        failure(refused),
        "gave up after 24 s: mock answered 503 Service Unavailable"
    );
    assert!(relay.ended());
}

#[test]
fn only_refusals_that_asking_again_can_fix_are_retried() {
    for status in [429, 500, 502, 503, 529] {
        let (mut relay, t0) = start(ProviderKind::OpenAi);
        assert_eq!(
            retry(refuse(&mut relay, t0, status, &[], b"")).status,
            status
        );
    }
    let bad_key = br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    for (status, body, why) in [
        (400, &b""[..], "mock answered 400 Bad Request"),
        (
            401,
            bad_key,
            "mock answered 401 Unauthorized: invalid_request_error / invalid_api_key: \
             Incorrect API key — check the provider's key",
        ),
        (
            403,
            b"",
            "mock answered 403 Forbidden — check the provider's key",
        ),
        (
            404,
            b"<html>no such model</html>",
            "mock answered 404 Not Found: <html>no such model</html> — check the model name \
             and base_url",
        ),
    ] {
        let (mut relay, t0) = start(ProviderKind::OpenAi);
        assert_eq!(failure(refuse(&mut relay, t0, status, &[], body)), why);
        assert_eq!(
            relay.handle(at(t0, 60.0), Input::Tick),
            [],
            "and nothing after"
        );
    }
}

#[test]
fn a_refusal_whose_body_breaks_is_still_retried() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    respond(&mut relay, t0, 529, &[]);
    let outputs = relay.handle(t0, Input::Broken("connection reset".into()));
    assert_eq!(
        retry(outputs).why,
        "mock answered 529 <unknown status code>"
    );
}

#[test]
fn a_response_silent_for_the_idle_limit_is_given_up_keeping_its_text() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    respond(&mut relay, at(t0, 0.1), 200, &[]);
    assert_eq!(relay.deadline(), Some(at(t0, 0.1) + IDLE_LIMIT));
    let appended = relay.handle(at(t0, 1.0), Input::Chunk(DELTA));
    assert!(matches!(&appended[0], Output::Append { text, .. } if text == "tok "));
    assert_eq!(
        relay.deadline(),
        Some(at(t0, 1.0) + IDLE_LIMIT),
        "bytes reset it"
    );
    assert_eq!(relay.handle(at(t0, 120.9), Input::Tick), []);
    let silent = relay.handle(at(t0, 121.0), Input::Tick);
    assert_eq!(failure(silent), "the provider went silent for 120 s");
    assert_eq!(relay.handle(at(t0, 122.0), Input::Chunk(DELTA)), [], "over");

    // A refusal's body is read under the same limit.
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    respond(&mut relay, t0, 503, &[]);
    let silent = relay.handle(at(t0, 120.0), Input::Tick);
    assert_eq!(failure(silent), "the provider went silent for 120 s");
}

#[test]
fn cancel_during_a_retry_wait_ends_the_answer_and_nothing_is_sent() {
    let (mut relay, t0) = start(ProviderKind::Anthropic);
    let overloaded =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let waiting = retry(refuse(&mut relay, t0, 529, &[], overloaded));
    assert_eq!(waiting.delay, Duration::from_millis(500));
    assert!(waiting.why.ends_with(": overloaded_error: Overloaded"));
    let cancelled = ending(relay.handle(at(t0, 0.2), Input::Cancel));
    assert_eq!(cancelled.outcome, Outcome::Cancelled);
    assert_eq!(cancelled.ttft, None);
    assert!(relay.ended());
    assert_eq!(relay.deadline(), None);
    assert_eq!(
        relay.handle(at(t0, 1.0), Input::Tick),
        [],
        "no retry after a cancel"
    );
}

#[test]
fn cancel_mid_stream_keeps_what_was_used() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let usage_at = before(OPENAI_TEXT, "\"usage\":{");
    let done_at = before(OPENAI_TEXT, "[DONE]");
    respond(&mut relay, t0, 200, &[]);
    let usage = relay.handle(t0, Input::Chunk(&OPENAI_TEXT[usage_at..done_at]));
    assert_eq!(usage, []);
    let cancelled = ending(relay.handle(at(t0, 1.0), Input::Cancel));
    assert_eq!(cancelled.outcome, Outcome::Cancelled);
    assert_eq!(cancelled.usage.output, Some(3));
}

/// Every tool call's (id, name, arguments) by the provider's index, as `outputs` build them.
fn tool_calls(outputs: &[Output]) -> BTreeMap<usize, (String, String, String)> {
    let mut calls = BTreeMap::new();
    for output in outputs {
        match output {
            Output::StartToolCall { index, id, name } => {
                let call = (id.clone(), name.clone(), String::new());
                assert!(calls.insert(*index, call).is_none(), "call {index} twice");
            }
            Output::Append {
                kind: PartKind::ToolCall,
                call: Some(index),
                text,
            } => calls.get_mut(index).expect("arguments before the call").2 += text,
            Output::Append { kind, call, .. } => panic!("{kind:?} appended to {call:?}"),
            _ => {}
        }
    }
    calls
}

#[test]
fn tool_calls_are_assembled_from_fragments_by_index_however_the_stream_is_cut() {
    let call = |id: &str, name: &str, args: &str| (id.into(), name.into(), args.into());
    let openai = BTreeMap::from([
        (
            0,
            call("call_a", "get_weather", r#"{"location": "Zürich"}"#),
        ),
        (1, call("call_b", "get_time", "{}")),
    ]);
    let anthropic = BTreeMap::from([(
        1,
        call(
            "toolu_01",
            "get_weather",
            r#"{"location": "San Francisco, CA"}"#,
        ),
    )]);
    for (kind, bytes, expected) in [
        (ProviderKind::OpenAi, OPENAI_TOOLS, openai),
        (ProviderKind::Anthropic, ANTHROPIC_TOOL, anthropic),
    ] {
        for pieces in every_split(bytes) {
            let (mut relay, t0) = start(kind);
            let outputs = stream(&mut relay, t0, &pieces);
            assert_eq!(tool_calls(&outputs), expected, "{kind:?} cut {pieces:?}");
            assert_eq!(ending(outputs).outcome, Outcome::Complete);
        }
    }
}

#[test]
fn usage_cost_and_speed_are_computed_at_the_end() {
    let prices = Prices {
        input: 2.0,
        output: 10.0,
    };
    let (mut relay, t0) = start_with(ProviderKind::OpenAi, Duration::from_secs(60), Some(prices));
    // Rate limited once: time to first token counts from the first request.
    retry(refuse(
        &mut relay,
        at(t0, 0.1),
        429,
        &[("retry-after", "1")],
        b"",
    ));
    assert_eq!(relay.handle(at(t0, 1.1), Input::Tick), [Output::Send]);
    let headers = [
        ("x-ratelimit-remaining-requests", "59"),
        ("content-type", "text/event-stream"),
    ];
    respond(&mut relay, at(t0, 1.45), 200, &headers);
    let (head, rest) = OPENAI_TEXT.split_at(before(OPENAI_TEXT, "\"lo "));
    let first = relay.handle(at(t0, 1.5), Input::Chunk(head));
    assert_eq!(
        first,
        [Output::Append {
            kind: PartKind::Text,
            call: None,
            text: "Hel".into()
        }]
    );
    let outputs = relay.handle(at(t0, 2.5), Input::Chunk(rest));
    let end = ending(outputs);
    assert_eq!(end.outcome, Outcome::Complete);
    assert_eq!(
        (end.usage.input, end.usage.output, end.usage.cached),
        (Some(9), Some(3), Some(0))
    );
    assert_eq!(end.ttft, Some(Duration::from_millis(1500)));
    assert!(
        (end.tokens_per_s.unwrap() - 3.0).abs() < 1e-9,
        "3 tokens in 1 s"
    );
    assert!((end.cost_usd.unwrap() - 48e-6).abs() < 1e-15);
    assert_eq!(
        end.limits,
        [("x-ratelimit-remaining-requests".into(), "59".into())],
        "the headers worth showing"
    );

    // Without prices there is no cost; with no output, no speed.
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let end = ending(stream(&mut relay, t0, &[b"data: [DONE]\n\n"]));
    assert_eq!(
        (end.cost_usd, end.tokens_per_s, end.ttft),
        (None, None, None)
    );
}

#[test]
fn a_provider_error_mid_stream_keeps_the_text_so_far_and_is_not_retried() {
    for (kind, bytes, why) in [
        (
            ProviderKind::OpenAi,
            OPENAI_ERROR,
            "server_error: The server had an error while processing your request. Sorry \
             about that!",
        ),
        (
            ProviderKind::Anthropic,
            ANTHROPIC_ERROR,
            "overloaded_error: Overloaded",
        ),
    ] {
        let (mut relay, t0) = start(kind);
        let mut outputs = stream(&mut relay, t0, &[bytes]);
        assert_eq!(failure(outputs.split_off(1)), why);
        assert_eq!(
            outputs,
            [Output::Append {
                kind: PartKind::Text,
                call: None,
                text: " jumps".into()
            }]
        );
        assert_eq!(relay.handle(at(t0, 10.0), Input::Tick), []);
    }
}

#[test]
fn a_stream_cut_short_or_broken_or_never_reached_fails_saying_so() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let cut = &OPENAI_TEXT[..before(OPENAI_TEXT, "[DONE]")];
    let outputs = stream(&mut relay, t0, &[cut]);
    assert_eq!(failure(outputs), INCOMPLETE);

    let (mut relay, t0) = start(ProviderKind::OpenAi);
    respond(&mut relay, t0, 200, &[]);
    relay.handle(t0, Input::Chunk(DELTA));
    let broken = relay.handle(t0, Input::Broken("connection reset".into()));
    assert_eq!(failure(broken), "the stream broke: connection reset");

    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let unreachable = relay.handle(t0, Input::Unreachable("connection refused".into()));
    assert_eq!(
        failure(unreachable),
        "cannot reach mock (http://mock/v1/chat/completions): connection refused"
    );
}

#[test]
fn a_streaming_answer_is_persisted_at_most_every_100_ms() {
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    respond(&mut relay, t0, 200, &[]);
    let persisted: Vec<bool> = [0.05, 0.1, 0.15, 0.199, 0.2]
        .into_iter()
        .map(|secs| {
            let outputs = relay.handle(at(t0, secs), Input::Chunk(DELTA));
            outputs.last() == Some(&Output::Persist)
        })
        .collect();
    assert_eq!(persisted, [false, true, false, false, true]);
}

#[test]
fn pieces_of_one_read_are_joined_by_kind() {
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

    // So one read of many deltas is one append.
    let (mut relay, t0) = start(ProviderKind::OpenAi);
    let outputs = stream(&mut relay, t0, &[&DELTA.repeat(3)]);
    assert!(matches!(&outputs[0], Output::Append { text, .. } if text == "tok tok tok "));
}
