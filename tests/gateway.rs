//! The `/v1` gateway end to end: a real daemon with `[http] listen`, a mock OpenAI and
//! Anthropic upstream that records what it is sent, and a stand-in model server launched on
//! demand. Requests are raw HTTP/1.1, so what the client sees (status, headers, a chunked
//! body that ends or is cut) is exactly what the daemon sent.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::mock_llm::MockLlm;
use common::{Env, wait_until};
use serde_json::{Value, json};

/// A free loopback port for `[http] listen`.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One response as the client saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
    /// The body ended properly (its last chunk, or its whole length, arrived).
    complete: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {self:?}"))
    }
}

/// Sends one request and reads the whole response (until the server closes).
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A refused body may be refused before it is all sent: what matters is the answer.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = (raw.windows(4))
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let rest = &raw[split + 4..];
    let mut lines = head.lines();
    let status = (lines.next().expect("status line").split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = (headers.iter()).any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let (body, complete) = if chunked {
        dechunk(rest)
    } else {
        let length = (headers.iter())
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        (rest.to_vec(), length.is_none_or(|l| l == rest.len()))
    };
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        complete,
    }
}

/// A chunked body's bytes, and whether its last (empty) chunk arrived.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&rest[..end]).unwrap_or("");
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (body, false);
        };
        rest = &rest[end + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..rest.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A daemon with `[http]` on a free port and `more` in its config; returns it and the port.
fn daemon(more: &str, vars: &[(&str, &str)]) -> (Env, u16) {
    daemon_with("", more, vars)
}

/// [`daemon`] with more `[http]` keys.
fn daemon_with(http: &str, more: &str, vars: &[(&str, &str)]) -> (Env, u16) {
    let env = Env::new();
    let port = free_port();
    env.write_config(format!(
        "[models]\nstability_secs = 1.0\nscrape_secs = 0.5\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n{http}\n{more}"
    ));
    env.start_daemon(vars);
    (env, port)
}

fn create_token(env: &Env, name: &str, scope: &str) -> String {
    let out = env.ok(&["token", "create", name, "--scope", scope, "--json"]);
    let created: Value = serde_json::from_str(&out).expect("token json");
    assert_eq!(created["name"], name);
    assert_eq!(created["scopes"], json!([scope]));
    created["token"].as_str().expect("a token").to_string()
}

fn gateway_log(env: &Env) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["gateway", "log", "--json"])).expect("gateway log json")
}

const REAL_OPENAI_KEY: &str = "sk-mock-real-openai-key-0001";
const REAL_ANTHROPIC_KEY: &str = "sk-ant-real-anthropic-key-0002";

#[test]
fn providers_get_the_daemons_keys_and_their_answers_pass_through_unchanged() {
    let mock = MockLlm::start();
    let config = format!(
        "{}\n[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key_env = \"CLAUDE_KEY\"\nmodels = [\"c\"]\nprices = {{ input = 3.0, output = 15.0 }}\n",
        mock.provider("models = [\"m\"]\nprices = { input = 2.0, output = 10.0 }"),
        mock.url
    );
    let config = format!("{config}\n");
    let (env, port) = daemon_with(
        "max_body_bytes = 65536\n",
        &config,
        &[
            ("MOCK_KEY", REAL_OPENAI_KEY),
            ("CLAUDE_KEY", REAL_ANTHROPIC_KEY),
        ],
    );
    let token = create_token(&env, "notebook", "gateway");
    let metrics_only = create_token(&env, "scraper", "metrics");
    let bearer = format!("Bearer {token}");
    let openai = |body: &Value| {
        let auth = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        request(
            port,
            "POST",
            "/v1/chat/completions",
            &auth,
            &body.to_string(),
        )
    };
    let anthropic = |body: &Value| {
        let auth = [
            ("x-api-key", token.as_str()),
            ("anthropic-version", "2023-06-01"),
            ("Content-Type", "application/json"),
        ];
        request(port, "POST", "/v1/messages", &auth, &body.to_string())
    };
    let chat = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});

    // No token, a wrong one, one without the scope: refused in each family's shape.
    let body = chat("mock/m").to_string();
    let none = request(port, "POST", "/v1/chat/completions", &[], &body);
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(none.json()["error"]["code"], "invalid_api_key");
    assert_eq!(none.json()["error"]["type"], "invalid_request_error");
    let wrong = [("Authorization", "Bearer rg_0000")];
    let wrong = request(port, "POST", "/v1/chat/completions", &wrong, &body);
    assert_eq!(wrong.status, 401);
    let wrong = [
        ("x-api-key", "rg_0000"),
        ("anthropic-version", "2023-06-01"),
    ];
    let wrong = request(
        port,
        "POST",
        "/v1/messages",
        &wrong,
        &chat("claude/c").to_string(),
    );
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.json()["type"], "error");
    assert_eq!(wrong.json()["error"]["type"], "authentication_error");
    let scraper = format!("Bearer {metrics_only}");
    let scoped = request(
        port,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &scraper)],
        &body,
    );
    assert_eq!(scoped.status, 403, "{scoped:?}");
    assert!(
        mock.seen.lock().expect("seen").is_empty(),
        "nothing refused went upstream"
    );

    // Malformed JSON: 400, in the family's shape.
    let auth = [("Authorization", bearer.as_str())];
    let bad = request(port, "POST", "/v1/chat/completions", &auth, "{\"model\": ");
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
    let auth = [
        ("x-api-key", token.as_str()),
        ("anthropic-version", "2023-06-01"),
    ];
    let bad = request(port, "POST", "/v1/messages", &auth, "not json");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");

    // An unknown model: 404 naming it and what is known.
    let unknown = openai(&chat("no-such-model"));
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let message = unknown.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("no-such-model") && message.contains("mock/m"),
        "{message}"
    );

    // OpenAI: the real key arrives, the client's token never does; the stream passes through.
    let answer = openai(&chat("mock/m"));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.complete, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    assert_eq!(answer.header("x-ratelimit-remaining-requests"), Some("99"));
    assert!(answer.body.contains("\"Hello\"") && answer.body.ends_with("data: [DONE]\n\n"));
    {
        let seen = mock.seen.lock().expect("seen");
        let last = seen.last().expect("the request went upstream");
        assert_eq!(last.body["model"], "m", "the model is the provider's id");
        let auth: Vec<&str> = (last.headers.iter())
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, [format!("Bearer {REAL_OPENAI_KEY}")]);
        for (name, value) in &last.headers {
            assert!(
                !value.contains(&token),
                "the client's token went upstream in {name}"
            );
        }
    }

    // Anthropic: `x-api-key` is the daemon's, and the stream's bytes arrive as sent.
    let body = json!({"model": "claude/c", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let answer = anthropic(&body);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.complete && answer.body.contains("event: message_stop"),
        "{answer:?}"
    );
    assert!(
        answer.body.contains(": keep-alive\n\n"),
        "comments pass through too"
    );
    {
        let seen = mock.seen.lock().expect("seen");
        let last = seen.last().expect("the request went upstream");
        assert!(last.line.starts_with("POST /v1/messages"), "{}", last.line);
        assert_eq!(last.body["model"], "c");
        let key: Vec<&str> = (last.headers.iter())
            .filter(|(n, _)| n == "x-api-key")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(key, [REAL_ANTHROPIC_KEY]);
        assert!(!last.headers.iter().any(|(n, _)| n == "authorization"));
        for (name, value) in &last.headers {
            assert!(
                !value.contains(&token),
                "the client's token went upstream in {name}"
            );
        }
    }
    // The wrong family for a provider is refused, not translated.
    let crossed = openai(&chat("claude/c"));
    assert_eq!(crossed.status, 400, "{crossed:?}");

    // A 429 with its retry-after and a 529 reach the client as they were.
    let limited = openai(&chat("mock/limited"));
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(limited.header("x-request-id"), Some("req_limited"));
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    let overloaded =
        anthropic(&json!({"model": "claude/overloaded", "max_tokens": 5, "messages": []}));
    assert_eq!(overloaded.status, 529, "{overloaded:?}");
    assert_eq!(overloaded.header("request-id"), Some("req_529"));
    assert_eq!(overloaded.header("x-should-retry"), Some("true"));
    assert_eq!(
        overloaded.body,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_529"}"#
    );

    // A stream cut upstream is cut downstream: no last chunk.
    let cutoff = openai(&chat("mock/cutoff"));
    assert_eq!(cutoff.status, 200);
    assert!(cutoff.body.contains("partial "), "{cutoff:?}");
    assert!(
        !cutoff.complete,
        "the cut must reach the client: {cutoff:?}"
    );

    // The log: a row per request, usage and cost where the upstream said.
    let mut log = Vec::new();
    wait_until("the log to have every request", || {
        log = gateway_log(&env);
        log.iter().any(|r| r["model"] == "mock/cutoff")
    });
    let find = |model: &str| {
        (log.iter())
            .find(|r| r["model"] == model && r["status"] != 400)
            .unwrap_or_else(|| panic!("no row for {model}: {log:#?}"))
            .clone()
    };
    let ok = find("mock/m");
    assert_eq!(
        (ok["token"].as_str(), ok["route"].as_str()),
        (Some("notebook"), Some("provider"))
    );
    assert_eq!(
        (ok["status"].as_u64(), ok["outcome"].as_str()),
        (Some(200), Some("ok"))
    );
    assert_eq!(
        (ok["tokens_in"].as_u64(), ok["tokens_out"].as_u64()),
        (Some(12), Some(5))
    );
    let cost = ok["cost"].as_f64().expect("a cost");
    assert!(
        (cost - (12.0 * 2.0 + 5.0 * 10.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    assert!(ok["ttfb_ms"].as_f64().is_some() && ok["duration_ms"].as_f64().is_some());
    assert!(ok["body"].is_null(), "no bodies unless log_bodies");
    let claude = find("claude/c");
    assert_eq!(
        (claude["tokens_in"].as_u64(), claude["tokens_out"].as_u64()),
        (Some(9), Some(6))
    );
    let cost = claude["cost"].as_f64().expect("a cost");
    assert!(
        (cost - (9.0 * 3.0 + 6.0 * 15.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let overloaded = find("claude/overloaded");
    assert_eq!(overloaded["outcome"], "upstream_error");
    assert_eq!(overloaded["detail"], "529 overloaded_error");
    assert_eq!(find("mock/limited")["detail"], "429 rate_limit_exceeded");
    let cut = find("mock/cutoff");
    assert_eq!(cut["outcome"], "upstream_error");
    assert!(
        cut["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("cut"),
        "{cut}"
    );
    assert_eq!(find("no-such-model")["outcome"], "refused");
    assert!(
        !log.iter().any(|r| r["token"] == "scraper"),
        "refused tokens leave no row"
    );

    // Filters, and the table.
    let out = env.ok(&["gateway", "log", "--json", "--token", "nobody"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!([])
    );
    let out = env.ok(&[
        "gateway", "log", "--json", "--since", "1h", "--token", "notebook",
    ]);
    let recent: Vec<Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(recent.len(), log.len());
    let table = env.ok(&["gateway", "log"]);
    assert!(
        table.contains("TOKEN") && table.contains("notebook"),
        "{table}"
    );

    // A client that leaves mid-stream: the row says so at once, long before the upstream's
    // stream (12 s of ticks) would have ended.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let body = chat("mock/slow").to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("tick2") {
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    let mut gone = Value::Null;
    wait_until("the client_gone row", || {
        gone = (gateway_log(&env).into_iter())
            .find(|r| r["model"] == "mock/slow")
            .unwrap_or_default();
        !gone.is_null()
    });
    assert_eq!(gone["outcome"], "client_gone", "{gone}");
    assert!(
        gone["duration_ms"].as_f64().unwrap_or(1e9) < 8000.0,
        "{gone}"
    );

    // A body over `max_body_bytes`: 413, in the family's shape.
    let big = format!(
        "{{\"model\":\"mock/m\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let auth = [("Authorization", bearer.as_str())];
    let large = request(port, "POST", "/v1/chat/completions", &auth, &big);
    assert_eq!(large.status, 413, "{large:?}");
    assert_eq!(large.json()["error"]["code"], "request_too_large");

    // Tokens: listed without themselves, revoked at once.
    let tokens = env.ok(&["tokens", "--json"]);
    assert!(
        tokens.contains("notebook") && !tokens.contains(&token),
        "{tokens}"
    );
    env.ok(&["token", "revoke", "notebook"]);
    assert_eq!(openai(&chat("mock/m")).status, 401);

    // Keys never reach the log or the store.
    let db = std::fs::read_dir(env.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".db"))
        .map(|e| std::fs::read(e.path()).unwrap_or_default())
        .collect::<Vec<_>>();
    for bytes in db {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(REAL_OPENAI_KEY) && !text.contains(&token));
    }
    assert!(!env.daemon_log().contains(REAL_OPENAI_KEY));
}

/// The stand-in model server.
fn standin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/standin/model_server.py")
}

#[test]
fn a_stopped_recipe_launches_once_for_two_streams_then_answers() {
    let (env, port) = daemon("", &[("REAGENT_FAKE_GPUS", "1")]);
    let recipe = format!(
        "[[recipe]]\nname = \"sa\"\nbackend = \"command\"\nmodel = \"sa-weights\"\n\
         command = [\"python3\", \"{}\", \"--port\", \"{{port}}\", \"--model\", \"{{model}}\", \"--ready-after\", \"1.5\", \"--tokens\", \"4\"]\n",
        standin().display()
    );
    env.add_recipes(&recipe);
    let token = create_token(&env, "bench", "gateway");
    let bearer = format!("Bearer {token}");

    let listed = request(port, "GET", "/v1/models", &[("Authorization", &bearer)], "");
    assert_eq!(listed.status, 200, "{listed:?}");
    let ids: Vec<Value> = (listed.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default())
    .into_iter()
    .map(|m| m["id"].clone())
    .collect();
    assert_eq!(ids, [json!("sa")]);

    let body =
        json!({"model": "sa", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (body, bearer) = (body.clone(), bearer.clone());
            std::thread::spawn(move || {
                let auth = [("Authorization", bearer.as_str())];
                request(port, "POST", "/v1/chat/completions", &auth, &body)
            })
        })
        .collect();
    for client in clients {
        let reply = client.join().expect("client thread");
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        assert!(reply.body.starts_with(": launching sa\n\n"), "{reply:?}");
        assert!(
            reply.body.contains("tok0") && reply.body.ends_with("data: [DONE]\n\n"),
            "{reply:?}"
        );
        assert!(reply.complete, "{reply:?}");
    }
    let instances = env
        .models()
        .into_iter()
        .filter(|m| m["name"] == "sa")
        .count();
    assert_eq!(instances, 1, "two requests launched it once");

    // Ready now: a plain request goes straight to it, its model rewritten to the served name.
    let plain = json!({"model": "sa", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let answer = request(
        port,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &bearer)],
        &plain,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["object"], "chat.completion");
    let mut log = Vec::new();
    wait_until("three rows", || {
        log = gateway_log(&env);
        log.iter().filter(|r| r["model"] == "sa").count() == 3
    });
    for row in log.iter().filter(|r| r["model"] == "sa") {
        assert_eq!(
            (row["route"].as_str(), row["outcome"].as_str()),
            (Some("local"), Some("ok")),
            "{row}"
        );
        assert_eq!(row["tokens_out"].as_u64(), Some(4), "{row}");
    }
}
