//! The tap: reads a copy of the answer on the side, for the request log, while the bytes
//! themselves go to the client untouched. A stream is parsed by the chat relay's own SSE
//! parsers ([`crate::llm`]), which already know where each provider puts its usage and how a
//! stream ends; a plain JSON answer is kept (up to [`JSON_CAP`]) and read once at its end.
//!
//! Most events of a stream are text deltas, which say nothing the log keeps, and parsing
//! each one's JSON was most of the gateway's cost per chunk. So the tap cuts the stream into
//! events itself and hands the parser only those that can matter: ones that mention usage,
//! an error, or the stream's end.

use serde_json::Value;

use crate::llm::{INCOMPLETE, StreamEvent, StreamParser, Usage};

use super::shape::Family;

/// The most of a JSON answer kept whole for its usage; past it only the tail is kept, where
/// both families put `usage`. Bounds the memory a large embeddings answer takes here.
pub const JSON_CAP: usize = 1 << 20;

/// What is kept of an oversized JSON answer: enough for its `usage` object.
const TAIL: usize = 64 << 10;

/// What the tap learned once the answer ended.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Token counts, when the answer carried them.
    pub usage: Usage,
    /// An error the answer carried (an error event, an error body's type), or why the stream
    /// was incomplete.
    pub error: Option<String>,
    /// A stream that ended without its terminator: cut upstream, to be cut downstream too.
    pub cut: bool,
}

/// Reads one answer on the side.
pub struct Tap {
    /// The SSE parser, for a stream; `None` for a JSON (or other) answer.
    parser: Option<Box<dyn StreamParser + Send>>,
    /// A JSON answer so far, or its tail once past [`JSON_CAP`].
    json: Vec<u8>,
    /// The answer outgrew [`JSON_CAP`]: `json` holds the tail only.
    tail_only: bool,
    /// Bytes of a stream after its last complete event.
    pending: Vec<u8>,
    usage: Usage,
    done: bool,
    error: Option<String>,
}

/// What an event must contain for the parser to see it: usage, an error, or an end.
const MARKERS: [&[u8]; 4] = [b"usage", b"error", b"[DONE]", b"message_stop"];

impl Tap {
    /// A tap for an answer of `family`, a stream when `sse`.
    pub fn new(family: Family, sse: bool) -> Self {
        Self {
            parser: sse.then(|| family.protocol().parser()),
            json: Vec::new(),
            tail_only: false,
            pending: Vec::new(),
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    /// Takes the next bytes as they pass.
    pub fn feed(&mut self, bytes: &[u8]) {
        match &mut self.parser {
            Some(parser) => {
                self.pending.extend_from_slice(bytes);
                let end = complete_events(&self.pending);
                let mut events = Vec::new();
                let mut start = 0;
                for stop in event_ends(&self.pending[..end]) {
                    let event = &self.pending[start..stop];
                    if MARKERS
                        .iter()
                        .any(|m| memchr::memmem::find(event, m).is_some())
                    {
                        events.extend(parser.feed(event));
                    }
                    start = stop;
                }
                self.pending.drain(..end);
                self.events(events);
            }
            None => {
                self.json.extend_from_slice(bytes);
                if self.json.len() > JSON_CAP || (self.tail_only && self.json.len() > 2 * TAIL) {
                    self.tail_only = true;
                    let cut = self.json.len() - TAIL;
                    self.json.drain(..cut);
                }
            }
        }
    }

    fn events(&mut self, events: Vec<StreamEvent>) {
        for event in events {
            match event {
                StreamEvent::Usage(usage) => self.usage = usage,
                StreamEvent::Done { .. } => self.done = true,
                StreamEvent::Error(error) => {
                    self.error.get_or_insert(error);
                }
                _ => {}
            }
        }
    }

    /// The answer ended (cleanly, as far as the connection knows): what it said.
    pub fn finish(mut self) -> Summary {
        if let Some(mut parser) = self.parser.take() {
            let mut events = parser.feed(&self.pending);
            events.extend(parser.finish());
            self.events(events);
            let cut = !self.done && self.error.as_deref() == Some(INCOMPLETE);
            return Summary {
                usage: self.usage,
                error: self.error,
                cut,
            };
        }
        let value = if self.tail_only {
            usage_in_tail(&self.json)
        } else {
            serde_json::from_slice::<Value>(&self.json).ok()
        };
        let Some(value) = value else {
            return Summary::default();
        };
        let usage = value.get("usage").unwrap_or(&value);
        let count = |keys: [&str; 2]| keys.iter().find_map(|k| usage.get(k)?.as_u64());
        Summary {
            usage: Usage {
                input: count(["prompt_tokens", "input_tokens"]),
                output: count(["completion_tokens", "output_tokens"]),
                cached: None,
            },
            error: error_kind(&value),
            cut: false,
        }
    }
}

/// `{"usage": …}` built from the last `"usage":` object in an answer's tail.
/// Where each complete event of `bytes` ends (just past the blank line after it).
fn event_ends(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut line_start = 0;
    memchr::memchr_iter(b'\n', bytes).filter_map(move |newline| {
        let line = &bytes[line_start..newline];
        line_start = newline + 1;
        (line.is_empty() || line == b"\r").then_some(newline + 1)
    })
}

/// How many bytes of `bytes` are complete events.
fn complete_events(bytes: &[u8]) -> usize {
    event_ends(bytes).last().unwrap_or(0)
}

fn usage_in_tail(tail: &[u8]) -> Option<Value> {
    let at = memchr::memmem::rfind(tail, b"\"usage\"")?;
    let rest = tail.get(at + 7..)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let rest = rest.get(colon + 1..)?;
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
    let usage = values.next()?.ok()?;
    Some(serde_json::json!({ "usage": usage }))
}

/// An error body's kind: OpenAI's `error.code` (else `error.type`), Anthropic's `error.type`.
pub fn error_kind(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    let pick = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
    pick("code")
        .or_else(|| pick("type"))
        .or_else(|| error.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_split_anywhere_gives_its_usage_and_a_missing_end_is_a_cut() {
        let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\u{e9}\"}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n\
                      data: [DONE]\n\n";
        for split in 0..stream.len() {
            let mut tap = Tap::new(Family::OpenAi, true);
            let (a, b) = stream.as_bytes().split_at(split);
            tap.feed(a);
            tap.feed(b);
            let summary = tap.finish();
            assert_eq!(
                (summary.usage.input, summary.usage.output),
                (Some(9), Some(3))
            );
            assert!(!summary.cut && summary.error.is_none(), "{summary:?}");
        }
        let mut tap = Tap::new(Family::OpenAi, true);
        tap.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\"}}]}\n\n");
        assert!(tap.finish().cut);
    }

    #[test]
    fn anthropic_usage_is_cumulative_and_an_error_event_is_no_cut() {
        let mut tap = Tap::new(Family::Anthropic, true);
        tap.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
        tap.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":15}}\n\n");
        tap.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        let summary = tap.finish();
        assert_eq!(
            (summary.usage.input, summary.usage.output),
            (Some(25), Some(15))
        );
        let mut tap = Tap::new(Family::Anthropic, true);
        tap.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        let summary = tap.finish();
        assert!(!summary.cut);
        assert!(
            summary
                .error
                .unwrap_or_default()
                .contains("overloaded_error")
        );
    }

    #[test]
    fn json_answers_give_usage_whole_or_from_their_tail() {
        let mut tap = Tap::new(Family::OpenAi, false);
        tap.feed(br#"{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}"#);
        assert_eq!(tap.finish().usage.input, Some(4));
        let mut tap = Tap::new(Family::OpenAi, false);
        tap.feed(b"{\"data\":[\"");
        for _ in 0..3000 {
            tap.feed(&[b'x'; 1000]);
        }
        tap.feed(br#""],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#);
        let summary = tap.finish();
        assert_eq!(
            (summary.usage.input, summary.usage.output),
            (Some(7), Some(2))
        );
        let mut tap = Tap::new(Family::Anthropic, false);
        tap.feed(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
        assert_eq!(tap.finish().error.as_deref(), Some("overloaded_error"));
    }
}
