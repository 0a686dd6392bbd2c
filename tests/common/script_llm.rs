//! A scripted model on loopback: the test decides each answer (text, or tool calls) and the
//! server streams it in the format the request asked for (OpenAI chat completions or
//! Anthropic messages), so an agent's whole loop runs against real HTTP with both wire
//! formats. A request that finds no answer queued waits for the test to push one (an answer
//! may depend on what the daemon did first, like an alert's id).

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};

use serde_json::{Value, json};

use super::TIMEOUT;
use super::http::{self, Seen};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Text, then the end of the turn.
    Text(&'static str),
    /// Tool calls (id, name, JSON arguments), streamed as the provider streams parallel calls.
    Tools(Vec<(String, String, Value)>),
}

/// Prompt and answer tokens every scripted answer reports.
pub const USAGE: (u64, u64) = (100, 20);

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    seen: Vec<Seen>,
}

/// The server; it lives as long as the test process.
pub struct ScriptLlm {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    script: Arc<(Mutex<Script>, Condvar)>,
}

impl ScriptLlm {
    /// Starts the server on a free port.
    pub fn start() -> Self {
        let script: Arc<(Mutex<Script>, Condvar)> = Arc::default();
        let shared = script.clone();
        let url = http::serve(move |stream| serve(stream, &shared));
        Self { url, script }
    }

    /// The config table of a provider `NAME` of `kind` (`openai` or `anthropic`) served here,
    /// priced so that cost budgets can be tested.
    pub fn provider(&self, name: &str, kind: &str) -> String {
        let base = match kind {
            "anthropic" => self.url.clone(),
            _ => format!("{}/v1", self.url),
        };
        format!(
            "[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base}\"\napi_key_env = \"MOCK_KEY\"\nprices = {{ input = 1.0, output = 2.0 }}\n"
        )
    }

    /// Queues the next answers.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        let (lock, ready) = &*self.script;
        lock.lock().expect("script").replies.extend(replies);
        ready.notify_all();
    }

    /// Forgets the answers queued and not asked for.
    pub fn clear(&self) {
        self.script.0.lock().expect("script").replies.clear();
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.script.0.lock().expect("script").seen.clone()
    }
}

fn serve(stream: TcpStream, script: &(Mutex<Script>, Condvar)) {
    let Some(seen) = http::read_request(&stream) else {
        return;
    };
    let anthropic = seen.line.contains("/v1/messages");
    let (lock, ready) = script;
    let mut script = lock.lock().expect("script");
    script.seen.push(seen);
    let (mut script, _) = ready
        .wait_timeout_while(script, TIMEOUT, |s| s.replies.is_empty())
        .expect("script");
    let reply = script.replies.pop_front();
    drop(script);
    let Some(reply) = reply else {
        http::respond(
            &stream,
            "500 Internal Server Error",
            r#"{"error":{"message":"the test scripted no answer"}}"#,
        );
        return;
    };
    let events = if anthropic {
        anthropic_events(&reply)
    } else {
        openai_events(&reply)
    };
    let mut stream = stream;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(head.as_bytes());
    for event in events {
        let _ = stream.write_all(event.as_bytes());
    }
}

fn openai_events(reply: &Reply) -> Vec<String> {
    let data = |value: Value| format!("data: {value}\n\n");
    let mut events = vec![data(
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    )];
    let finish = match reply {
        Reply::Text(text) => {
            events.push(data(
                json!({"choices": [{"index": 0, "delta": {"content": text}}]}),
            ));
            "stop"
        }
        Reply::Tools(calls) => {
            for (index, (id, name, args)) in calls.iter().enumerate() {
                let start = json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
                events.push(data(
                    json!({"choices": [{"index": 0, "delta": {"tool_calls": [start]}}]}),
                ));
                // The arguments in two fragments, cut mid-way, as providers cut them.
                let text = args.to_string();
                for fragment in halves(&text) {
                    let more = json!({"index": index, "function": {"arguments": fragment}});
                    events.push(data(
                        json!({"choices": [{"index": 0, "delta": {"tool_calls": [more]}}]}),
                    ));
                }
            }
            "tool_calls"
        }
    };
    events.push(data(
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
    ));
    events.push(data(
        json!({"choices": [], "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1}}),
    ));
    events.push("data: [DONE]\n\n".into());
    events
}

fn anthropic_events(reply: &Reply) -> Vec<String> {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"usage": {"input_tokens": USAGE.0, "output_tokens": 1}}}),
    )];
    let stop = match reply {
        Reply::Text(text) => {
            events.push(event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
            events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})));
            events.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            "end_turn"
        }
        Reply::Tools(calls) => {
            for (index, (id, name, args)) in calls.iter().enumerate() {
                events.push(event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
                let text = args.to_string();
                for fragment in halves(&text) {
                    events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": fragment}})));
                }
                events.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                ));
            }
            "tool_use"
        }
    };
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": USAGE.1}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

/// Text cut in two near the middle, at a character boundary.
fn halves(text: &str) -> [&str; 2] {
    let mut at = text.len() / 2;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    let (a, b) = text.split_at(at);
    [a, b]
}

/// A tool call reply of one call.
pub fn call(id: &str, name: &str, args: Value) -> Reply {
    Reply::Tools(vec![(id.into(), name.into(), args)])
}
