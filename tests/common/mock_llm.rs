//! A stand-in LLM provider on loopback: real HTTP, scripted streams. The model name picks the
//! script, so one server serves every case; every request is recorded for inspection.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::http::{self, Seen};

/// The server; it lives as long as the test process.
pub struct MockLlm {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every request so far.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockLlm {
    /// The config table of an OpenAI-style provider `mock` served here, its key read from
    /// `MOCK_KEY`; `more` adds keys to the table.
    pub fn provider(&self, more: &str) -> String {
        format!(
            "[providers.mock]\nkind = \"openai\"\nbase_url = \"{}/v1\"\napi_key_env = \"MOCK_KEY\"\n{more}\n",
            self.url
        )
    }

    /// Starts the server on a free port.
    pub fn start() -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let url = http::serve(move |stream| serve(stream, &log));
        Self { url, seen }
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let Some(seen) = http::read_request(&stream) else {
        return;
    };
    let model = seen.body["model"].as_str().unwrap_or_default().to_string();
    let anthropic = seen.line.contains("/v1/messages");
    let get = seen.line.starts_with("GET");
    let attempt = {
        let mut log = log.lock().expect("log");
        log.push(seen);
        log.iter()
            .filter(|s| s.body["model"] == model.as_str())
            .count()
    };
    if get {
        http::respond(&stream, "200 OK", r#"{"data":[{"id":"ok"}]}"#);
        return;
    }
    let _ = respond(stream, &model, anthropic, attempt);
}

fn respond(
    mut stream: TcpStream,
    model: &str,
    anthropic: bool,
    attempt: usize,
) -> std::io::Result<()> {
    let key = "sk-planted-never-leak-9f3b";
    match (model, attempt) {
        ("unauthorized", _) => {
            let body = format!(
                r#"{{"error":{{"message":"Incorrect API key provided: {key}","type":"invalid_request_error"}}}}"#
            );
            http::respond(&stream, "401 Unauthorized", &body);
            return Ok(());
        }
        // `limited` is always rate-limited, with the headers a client acts on.
        ("limited", _) => {
            let body = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
            let head = format!(
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nretry-after: 7\r\nx-ratelimit-remaining-requests: 0\r\nx-request-id: req_limited\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            return stream.write_all(format!("{head}{body}").as_bytes());
        }
        // `overloaded` is always overloaded, as Anthropic says it (a 529, not a 5xx it knows).
        ("overloaded", _) => {
            let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_529"}"#;
            let head = format!(
                "HTTP/1.1 529 Overloaded\r\nContent-Type: application/json\r\nrequest-id: req_529\r\nx-should-retry: true\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            return stream.write_all(format!("{head}{body}").as_bytes());
        }
        // `busy` asks for a wait long enough to be seen while it lasts.
        ("flaky", 1) | ("busy", 1) => {
            let after = if model == "busy" { 1 } else { 0 };
            let head = format!(
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: {after}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return stream.write_all(head.as_bytes());
        }
        _ => {}
    }
    stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-ratelimit-remaining-requests: 99\r\nConnection: close\r\n\r\n",
    )?;
    let pieces: Vec<String> = if anthropic {
        anthropic_stream(&["Hello", ", wor", "ld! é"])
    } else {
        match model {
            "slow" => {
                let mut pieces = vec![openai_role()];
                for i in 0..600 {
                    pieces.push(openai_delta(&format!("tick{i} ")));
                }
                pieces.push("data: [DONE]\n\n".into());
                pieces
            }
            "long" => {
                let mut pieces = vec![openai_role()];
                let answer = long_answer();
                // Cut where the text is ASCII, so every piece is whole characters.
                pieces.extend(
                    answer
                        .as_bytes()
                        .chunks(LONG_PIECE)
                        .map(|piece| openai_delta(std::str::from_utf8(piece).expect("ASCII"))),
                );
                pieces.push("data: [DONE]\n\n".into());
                pieces
            }
            "cutoff" => vec![
                openai_role(),
                openai_delta("partial "),
                openai_delta("answer"),
            ],
            _ => {
                let mut pieces = vec![openai_role()];
                // The alerts judge's model sees trouble in every run.
                let texts = match model {
                    "judge" => ["Looking.", "\nALERT: loss ", "is diverging"],
                    _ => ["Hello", ", wor", "ld! é"],
                };
                pieces.extend(texts.map(openai_delta));
                pieces.push(
                    r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
                        .to_string()
                        + "\n\n",
                );
                pieces.push(r#"data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":2}}}"#.to_string() + "\n\n");
                pieces.push("data: [DONE]\n\n".into());
                pieces
            }
        }
    };
    for piece in pieces {
        // Split each event in two writes, mid-way, as a real network may.
        let bytes = piece.as_bytes();
        let (a, b) = bytes.split_at(bytes.len() / 2);
        stream.write_all(a)?;
        stream.flush()?;
        stream.write_all(b)?;
        stream.flush()?;
        if model == "slow" {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Bytes of the `long` answer in each delta.
const LONG_PIECE: usize = 1000;

/// What the `long` model answers: 2 MB of numbered lines, in 1000-byte deltas, far more than
/// a client that stops reading can have buffered between the daemon and itself.
pub fn long_answer() -> String {
    (0..20_000)
        .map(|i| format!("{i:07} {}\n", "x".repeat(91)))
        .collect()
}

fn openai_role() -> String {
    r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#.to_string()
        + "\n\n"
}

fn openai_delta(text: &str) -> String {
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]});
    format!("data: {chunk}\n\n")
}

fn anthropic_stream(texts: &[&str]) -> Vec<String> {
    let event = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            serde_json::json!({"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ": keep-alive\n\n".to_string(),
    ];
    for text in texts {
        events.push(event("content_block_delta", serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})));
    }
    events.push(event(
        "content_block_stop",
        serde_json::json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event("message_delta", serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}})));
    events.push(event(
        "message_stop",
        serde_json::json!({"type": "message_stop"}),
    ));
    events
}
