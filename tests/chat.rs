//! Chat through the daemon against a stand-in provider on loopback: streaming, storage,
//! errors, retries, interruption, and a key that never leaves the daemon.

mod common;

use std::process::Stdio;

use common::mock_llm::{MockLlm, long_answer};
use common::{Conn, Env, wait_until, walk, within_timeout};
use serde_json::{Value, json};

const KEY: &str = "sk-planted-never-leak-9f3b";

/// An installation whose daemon knows the mock as `mock` (OpenAI-style) and `claude`
/// (Anthropic-style), with the key in the daemon's environment only.
fn chat_env(mock: &MockLlm) -> Env {
    chat_env_with(mock, "")
}

/// [`chat_env`] with more config after the providers.
fn chat_env_with(mock: &MockLlm, more: &str) -> Env {
    let env = Env::new();
    let mut config = mock.provider("models = [\"ok\"]\nprices = { input = 1.0, output = 2.0 }\n");
    config.push_str(&format!(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key_env = \"MOCK_KEY\"\n",
        mock.url
    ));
    config.push_str(more);
    env.write_config(config);
    // The daemon is started by the first command and inherits this variable; clients never
    // need it.
    env.start_daemon(&[("MOCK_KEY", KEY)]);
    env
}

fn chat(env: &Env, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["chat"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn history(env: &Env, session: &str) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["history", session, "--json"])).expect("history json")
}

fn only_session(env: &Env) -> String {
    let sessions: Vec<Value> =
        serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("json");
    sessions.last().expect("a session")["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn an_answer_streams_to_stdout_and_is_stored_with_its_usage() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let (code, out, err) = chat(
        &env,
        &["--model", "mock/ok", "--system", "be brief", "say", "hello"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Hello, world! é\n");

    let session = only_session(&env);
    let messages = history(&env, &session);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["parts"][0]["text"], "say hello");
    let answer = &messages[1];
    assert_eq!(answer["status"], "complete");
    assert_eq!(answer["parts"][0]["text"], "Hello, world! é");
    assert_eq!(answer["usage"]["input"], 12);
    assert_eq!(answer["usage"]["output"], 5);
    assert_eq!(answer["usage"]["cached"], 2);
    assert!((answer["usage"]["cost_usd"].as_f64().unwrap() - 22e-6).abs() < 1e-12);
    assert_eq!(
        answer["usage"]["limits"],
        json!([["x-ratelimit-remaining-requests", "99"]])
    );
    let usage: Value = serde_json::from_str(&env.ok(&["usage", "--json"])).unwrap();
    assert_eq!(usage["sessions"][0]["key"], session.as_str());
    assert_eq!(
        (
            usage["days"][0]["input"].clone(),
            usage["days"][0]["output"].clone()
        ),
        (json!(12), json!(5))
    );
    let providers = env.ok(&["providers", "--check"]);
    // NAME KIND KEY URL CHECK MODELS, under a header; the built-in `local` last, which
    // answers once a model server is ready.
    let (configured, local) = providers
        .lines()
        .skip(1)
        .partition::<Vec<_>, _>(|line| !line.starts_with("local "));
    assert!(
        configured
            .iter()
            .all(|line| line.split_whitespace().nth(4) == Some("ok")),
        "{providers}"
    );
    assert!(local[0].contains("no model server is ready"), "{providers}");

    let seen = mock.seen.lock().unwrap().clone();
    let request = seen
        .iter()
        .rev()
        .find(|s| s.line.starts_with("POST"))
        .unwrap();
    assert!(request.line.starts_with("POST /v1/chat/completions"));
    assert!(
        request
            .headers
            .contains(&("authorization".into(), format!("Bearer {KEY}")))
    );
    assert_eq!(request.body["stream"], true);
    assert_eq!(
        request.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );

    // A follow-up in the same session sends the whole conversation.
    let (code, _, err) = chat(&env, &["-s", &session, "and again"]);
    assert_eq!(code, 0, "{err}");
    let seen = mock.seen.lock().unwrap().clone();
    let texts: Vec<&str> = seen.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        texts,
        ["be brief", "say hello", "Hello, world! é", "and again"]
    );
}

#[test]
fn a_chat_that_falls_behind_resyncs_and_still_prints_the_whole_answer() {
    let mock = MockLlm::start();
    let env = chat_env_with(&mock, "\n[daemon]\nclient_queue_bytes = 65536\n");
    let mut child = env
        .cmd(&["chat", "--model", "mock/long", "go", "on"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("reagent chat");
    // Nobody reads its stdout yet: once the pipe is full the client stops reading the
    // daemon, and the answer's deltas overflow its 64 KiB queue.
    let dropped = within_timeout(|| env.daemon_log().contains("must resync"));
    let stdout = child.stdout.take().expect("stdout");
    let reading = std::thread::spawn(move || std::io::read_to_string(stdout));
    let ended = dropped && within_timeout(|| matches!(child.try_wait(), Ok(Some(_))));
    if !ended {
        let _ = child.kill();
    }
    assert!(dropped, "the daemon never dropped the chat's queue");
    assert!(ended, "reagent chat never ended after its resync");
    let err = std::io::read_to_string(child.stderr.take().expect("stderr")).expect("stderr");
    assert_eq!(child.wait().expect("wait").code(), Some(0), "{err}");
    let text = reading.join().expect("reader").expect("UTF-8");
    let answer = long_answer();
    assert!(
        text == answer,
        "the answer printed whole, once, in order ({} bytes of {})",
        text.len(),
        answer.len()
    );
}

#[test]
fn anthropic_streams_too() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let (code, out, err) = chat(&env, &["--model", "claude/claude-test", "hi"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Hello, world! é\n");
    let request = mock.seen.lock().unwrap().last().unwrap().clone();
    assert!(request.line.starts_with("POST /v1/messages"));
    assert!(request.headers.contains(&("x-api-key".into(), KEY.into())));
    let answer = &history(&env, &only_session(&env))[1];
    assert_eq!(
        (
            answer["usage"]["input"].clone(),
            answer["usage"]["output"].clone()
        ),
        (json!(9), json!(6))
    );
}

#[test]
fn failures_are_clear_retried_when_worth_it_and_keep_partial_answers() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);

    let (code, _, err) = chat(&env, &["--model", "mock/unauthorized", "hi"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("401") && err.contains("check the provider's key"),
        "{err}"
    );
    assert!(!err.contains(KEY), "the key leaked into an error: {err}");

    let (code, out, err) = chat(&env, &["--model", "mock/flaky", "hi"]);
    assert_eq!(code, 0, "a 429 before the first token is retried: {err}");
    assert_eq!(out, "Hello, world! é\n");

    let (code, out, err) = chat(&env, &["--model", "mock/cutoff", "hi"]);
    assert_eq!(code, 1);
    assert_eq!(out, "partial answer\n");
    assert!(err.contains("ended before the model finished"), "{err}");
    let answer = &history(&env, &only_session(&env))[1];
    assert_eq!(answer["status"], "error");
    assert_eq!(answer["parts"][0]["text"], "partial answer");

    let (code, _, err) = chat(&env, &["--model", "nowhere/x", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("no provider `nowhere`"), "{err}");
}

#[test]
fn a_daemon_killed_mid_answer_keeps_the_partial_answer_marked_interrupted() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut chat = env
        .cmd(&["chat", "--model", "mock/slow", "count"])
        .spawn()
        .expect("chat");
    wait_until("part of the answer to be stored", || {
        let sessions: Vec<Value> =
            serde_json::from_str(&env.ok(&["sessions", "--json"])).unwrap_or_default();
        sessions.last().is_some_and(|s| {
            let messages = history(&env, s["id"].as_str().unwrap_or_default());
            messages.get(1).is_some_and(|m| {
                m["parts"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("tick20 ")
            })
        })
    });
    env.kill_daemon();
    assert!(
        !chat.wait().expect("wait").success(),
        "the client reports the lost daemon"
    );
    let _ = env.cmd(&["daemon", "start"]).env("MOCK_KEY", KEY).output();
    let answer = &history(&env, &only_session(&env))[1];
    assert_eq!(answer["status"], "interrupted");
    // Streaming answers are rewritten every 100 ms: at most that much can be lost.
    let text = answer["parts"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("tick0 tick1 ") && text.contains("tick10 "),
        "{text}"
    );
    assert!(
        !text.contains("tick599"),
        "the answer was cut off, not finished: {text}"
    );
}

#[test]
fn the_key_never_leaves_the_daemon() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut watcher = Conn::open(&env.socket());
    watcher.call("hello", json!({"protocol": 1}));
    chat(&env, &["--model", "mock/ok", "hi"]);
    chat(&env, &["--model", "mock/unauthorized", "hi"]);
    let providers = env.ok(&["providers", "--json"]);
    assert!(providers.contains("\"has_key\": true") && !providers.contains(KEY));

    // Everything the watcher was told, the database, every log and run file.
    let mut told = Vec::new();
    watcher.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"sessions.list\"}\n");
    let reply = watcher.response(77, &mut told);
    assert!(
        told.iter().any(|m| m["params"]["type"] == "delta"),
        "the watcher saw the stream"
    );
    let seen: String = told.iter().chain([&reply]).map(Value::to_string).collect();
    for file in walk(env.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }
    assert!(!seen.contains(KEY));
}

#[test]
fn sessions_can_be_renamed_forked_and_deleted() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    assert_eq!(chat(&env, &["--model", "mock/ok", "first"]).0, 0);
    let session = only_session(&env);
    assert_eq!(chat(&env, &["-s", &session, "second"]).0, 0);
    env.ok(&["session", "rename", &session, "experiments"]);
    assert_eq!(history(&env, "experiments").len(), 4, "found by title");

    // Switch the session to the Anthropic provider: the next answer comes from there.
    let moved = env.ok(&["session", "model", "experiments", "claude/claude-test"]);
    assert!(moved.contains("now talks to claude/claude-test"), "{moved}");
    let unknown = env.run(&["session", "model", "experiments", "nope/x"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("`model`"));
    assert_eq!(chat(&env, &["-s", "experiments", "third"]).0, 0);
    assert_eq!(history(&env, &session).len(), 6);
    env.ok(&["session", "model", "experiments", "mock/ok"]);

    // Fork after the first answer: the copy has two messages, the original keeps four.
    let first_answer = history(&env, &session)[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fork = env
        .ok(&["session", "fork", &session, "--at", &first_answer])
        .trim()
        .to_string();
    assert_ne!(fork, session);
    let copied = history(&env, &fork);
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[1]["parts"][0]["text"], "Hello, world! é");
    // The copied answer was paid for once: the day's usage counts the three answers made.
    let usage: Value = serde_json::from_str(&env.ok(&["usage", "--json"])).unwrap();
    assert_eq!(usage["days"][0]["answers"], 3, "{usage}");
    assert_eq!(chat(&env, &["-s", &fork, "a new branch"]).0, 0);
    assert_eq!(history(&env, &fork).len(), 4);
    assert_eq!(
        history(&env, &session).len(),
        6,
        "the original is untouched"
    );

    env.ok(&["session", "delete", &fork]);
    let gone = env.run(&["history", &fork]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no session matches"));
    assert_eq!(history(&env, &session).len(), 6);
}

#[test]
fn messages_queue_behind_a_streaming_answer_and_cancel_keeps_the_partial_text() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut conn = env.connect();
    let session = conn.call("session.create", json!({"model": "mock/slow"}))["result"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = conn.call("chat.send", json!({"session": session, "text": "count"}));
    let second = conn.call("chat.send", json!({"session": session, "text": "again"}));
    assert_eq!(first["result"]["status"], "queued");
    let (first, second) = (
        first["result"]["id"].clone(),
        second["result"]["id"].clone(),
    );
    let status = |env: &Env, id: &Value| {
        history(env, &session)
            .into_iter()
            .find(|m| &m["id"] == id)
            .map(|m| m["status"].clone())
    };
    wait_until("the first answer to stream", || {
        history(&env, &session)
            .iter()
            .any(|m| m["id"] == first && m["parts"][0]["text"].is_string())
    });
    assert_eq!(
        status(&env, &second),
        Some(json!("queued")),
        "the second waits its turn"
    );

    env.ok(&["session", "cancel", &session]);
    wait_until("the first answer to be cancelled", || {
        status(&env, &first) == Some(json!("cancelled"))
    });
    let kept = history(&env, &session)
        .into_iter()
        .find(|m| m["id"] == first)
        .unwrap();
    assert!(
        kept["parts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("tick0 "),
        "partial text kept"
    );
    wait_until("the queued answer to start", || {
        status(&env, &second) == Some(json!("streaming"))
    });
    env.ok(&["session", "cancel", &session]);
    wait_until("the second answer to stop", || {
        status(&env, &second) == Some(json!("cancelled"))
    });
}

#[test]
fn a_client_that_attaches_mid_answer_sees_everything_once() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut sender = env.connect();
    let session = sender.call("session.create", json!({"model": "mock/slow"}))["result"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer =
        sender.call("chat.send", json!({"session": session, "text": "count"}))["result"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    wait_until("the answer to be under way", || {
        history(&env, &session)[1]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("tick5 ")
    });
    // Join now: subscribe, read the history, then apply only the deltas that follow it.
    let mut late = Conn::open(&env.socket());
    late.call("hello", json!({"protocol": 1}));
    late.send_raw(format!("{}\n", json!({"jsonrpc": "2.0", "id": 5, "method": "session.history", "params": {"session": session}})).as_bytes());
    let mut before = Vec::new();
    let reply = late.response(5, &mut before);
    let mut text = reply["result"][1]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let final_text = loop {
        let event = late.next_event();
        if event["type"] == "delta" && event["message"] == answer.as_str() {
            text.push_str(event["text"].as_str().unwrap());
        }
        if event["type"] == "message"
            && event["message"]["id"] == answer.as_str()
            && event["message"]["status"] == "complete"
        {
            break event["message"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_string();
        }
    };
    assert_eq!(text, final_text, "nothing doubled or missing");
    assert!(final_text.ends_with("tick599 "));
}

#[test]
fn the_cockpit_starts_a_session_and_shows_the_answer_as_it_streams() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut tui = common::pty::PtyClient::start(&env, &[], 120, 32);
    tui.wait_for("1 client");
    tui.send(b"c");
    tui.wait_for("Sessions (0)");
    tui.send(b":chat mock/ok\r");
    tui.wait_for("new session");
    tui.send(b"say hello\r");
    tui.wait_for("Hello, world! \u{e9}");
    tui.wait_for("first token");
    tui.send(b"\x1b");
    tui.wait_gone("Enter sends");
    // The usage panel totals what the answer cost; any key closes it.
    tui.send(b"u");
    tui.wait_for("Per day (UTC)");
    tui.send(b"x");
    tui.wait_gone("Per day (UTC)");
    // The model picker lists the configured models and switches the session.
    tui.send(b"M");
    tui.wait_for("● mock/ok");
    tui.send(b"\r");
    tui.wait_for("now talks to mock/ok");
    tui.send(b"q");
    assert!(tui.wait_exit());
    let messages = history(&env, &only_session(&env));
    assert_eq!(messages[0]["parts"][0]["text"], "say hello");
    assert_eq!(messages[1]["status"], "complete");
}

#[test]
fn providers_check_sends_the_configured_headers_a_chat_would() {
    let mock = MockLlm::start();
    let env = Env::new();
    let config = mock.provider("headers = { X-Org = \"acme\" }");
    env.write_config(config);
    env.start_daemon(&[("MOCK_KEY", KEY)]);
    let providers = env.ok(&["providers", "--check"]);
    assert!(providers.contains(" ok "), "{providers}");
    let seen = mock.seen.lock().unwrap().clone();
    let check = seen
        .iter()
        .find(|s| s.line.starts_with("GET /v1/models"))
        .expect("the check's request");
    assert!(
        check.headers.contains(&("x-org".into(), "acme".into())),
        "{:?}",
        check.headers
    );
    assert!(
        check
            .headers
            .contains(&("authorization".into(), format!("Bearer {KEY}")))
    );
}

/// The session `id`'s title, as `reagent sessions` has it.
fn title_of(env: &Env, id: &str) -> Value {
    let sessions: Vec<Value> =
        serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("sessions json");
    sessions
        .into_iter()
        .find(|s| s["id"] == id)
        .map(|s| s["title"].clone())
        .unwrap_or_else(|| panic!("no session {id}"))
}

/// The JSON bodies of the chat requests the mock was sent, oldest first.
fn posted(mock: &MockLlm) -> Vec<Value> {
    let seen = mock.seen.lock().expect("seen").clone();
    seen.into_iter()
        .filter(|s| s.line.starts_with("POST"))
        .map(|s| s.body)
        .collect()
}

#[test]
fn an_empty_model_is_refused_before_any_session_or_request() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    for model in ["mock/", "mock/  "] {
        let (code, out, err) = chat(&env, &["--model", model, "hi"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            err.contains("`model`") && err.contains("names no model"),
            "{err}"
        );
    }
    assert_eq!(env.ok(&["sessions", "--json"]).trim(), "[]");
    assert!(posted(&mock).is_empty(), "nothing was sent with no model");

    let mut conn = env.connect();
    let refused = conn.call("session.create", json!({"model": "mock/"}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`model`")
    );
    let session = conn.call("session.create", json!({"model": " mock/ok "}));
    assert_eq!(session["result"]["model"], "mock/ok", "trimmed");
    let id = session["result"]["id"].as_str().unwrap().to_string();
    let refused = conn.call("session.model", json!({"session": id, "model": "claude/"}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`model`")
    );
    let cli = env.run(&["session", "model", &id, "mock/"]);
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("names no model"));
}

#[test]
fn a_new_sessions_id_goes_to_stderr_so_it_can_be_continued() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let (code, out, err) = chat(&env, &["--model", "mock/ok", "hello"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Hello, world! é\n", "stdout is the answer alone");
    let session = only_session(&env);
    assert_eq!(
        err.trim(),
        format!("session {session} (continue with -s {session})")
    );
    let (code, out, err) = chat(&env, &["-s", &session, "again"]);
    assert_eq!((code, out.as_str()), (0, "Hello, world! é\n"), "{err}");
    assert!(!err.contains("session"), "no new session: {err}");
    assert_eq!(history(&env, &session).len(), 4);
}

#[test]
fn a_session_is_titled_from_its_first_line_unless_it_has_a_title() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let long = "please explain why the validation loss of my transformer diverges after warmup";
    let (code, _, err) = chat(
        &env,
        &["--model", "mock/ok", &format!("\n  {long}\nat step 2000")],
    );
    assert_eq!(code, 0, "{err}");
    let session = only_session(&env);
    assert_eq!(
        title_of(&env, &session),
        "please explain why the validation loss of my transformer…"
    );
    // Later messages leave it be, and so does a session given a title when created.
    assert_eq!(chat(&env, &["-s", &session, "something else"]).0, 0);
    assert_eq!(
        title_of(&env, &session),
        "please explain why the validation loss of my transformer…"
    );
    let mut conn = env.connect();
    let named = conn.call(
        "session.create",
        json!({"model": "mock/ok", "title": "mine"}),
    );
    let named = named["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(chat(&env, &["-s", &named, "short question"]).0, 0);
    assert_eq!(title_of(&env, &named), "mine");
    // A session the user untitled is not retitled by its next message.
    env.ok(&["session", "rename", &session, ""]);
    assert_eq!(chat(&env, &["-s", &session, "yet another"]).0, 0);
    assert_eq!(title_of(&env, &session), Value::Null);
    assert_eq!(posted(&mock).len(), 4, "first-line titles ask no model");
}

#[test]
fn titles_come_from_a_model_when_configured_and_from_the_first_line_when_it_fails() {
    let mock = MockLlm::start();
    let env = Env::new();
    let config = format!("[chat]\ntitles = \"model\"\n\n{}", mock.provider(""));
    env.write_config(config);
    env.start_daemon(&[("MOCK_KEY", KEY)]);

    // The session's own model is asked, in the background.
    let (code, _, err) = chat(&env, &["--model", "mock/ok", "why is my loss NaN?"]);
    assert_eq!(code, 0, "{err}");
    let session = only_session(&env);
    wait_until("the model's title", || {
        title_of(&env, &session) == "Hello, world! é"
    });
    let asked = posted(&mock)
        .into_iter()
        .find(|body| {
            body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("title")
        })
        .expect("a title request");
    assert_eq!(asked["messages"][1]["content"], "why is my loss NaN?");

    // A model that cannot answer leaves the first line, and the key out of every log.
    let (code, _, _) = chat(
        &env,
        &["--model", "mock/unauthorized", "is it the LR?\nmore"],
    );
    assert_eq!(code, 1);
    let failed = only_session(&env);
    wait_until("the first line as title", || {
        title_of(&env, &failed) == "is it the LR?"
    });
    for file in walk(env.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }

    // `off` leaves sessions untitled.
    let quiet = Env::new();
    let config = format!(
        "[chat]\ntitles = \"off\"\n\n\
         [providers.mock]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\n",
        url = mock.url
    );
    quiet.write_config(config);
    assert_eq!(chat(&quiet, &["--model", "mock/ok", "hello there"]).0, 0);
    assert_eq!(title_of(&quiet, &only_session(&quiet)), Value::Null);
}

#[test]
fn answers_are_capped_only_where_the_user_set_a_cap_in_the_field_expected() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    // No cap set: the OpenAI-style request carries none, Anthropic's a per-model default.
    assert_eq!(chat(&env, &["--model", "mock/ok", "hi"]).0, 0);
    assert_eq!(
        chat(&env, &["--model", "claude/claude-sonnet-4-5", "hi"]).0,
        0
    );
    assert_eq!(chat(&env, &["--model", "claude/claude-test", "hi"]).0, 0);
    let bodies = posted(&mock);
    assert!(
        bodies[0].get("max_tokens").is_none() && bodies[0].get("max_completion_tokens").is_none(),
        "{}",
        bodies[0]
    );
    assert_eq!(bodies[1]["max_tokens"], 32000);
    assert_eq!(bodies[2]["max_tokens"], 8192);

    // Caps set per provider and per model are sent, the model's over the provider's.
    let capped = Env::new();
    let config = format!(
        "[providers.mock]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\nmax_tokens = 1000\n\
         model_max_tokens = {{ \"big\" = 5000 }}\n\n\
         [providers.claude]\nkind = \"anthropic\"\nbase_url = \"{url}\"\nmax_tokens = 300\n",
        url = mock.url
    );
    capped.write_config(config);
    assert_eq!(chat(&capped, &["--model", "mock/ok", "hi"]).0, 0);
    assert_eq!(chat(&capped, &["--model", "mock/big", "hi"]).0, 0);
    assert_eq!(
        chat(&capped, &["--model", "claude/claude-sonnet-4-5", "hi"]).0,
        0
    );
    let bodies = posted(&mock);
    let caps: Vec<&Value> = bodies[3..].iter().map(|b| &b["max_tokens"]).collect();
    assert_eq!(caps, [&json!(1000), &json!(5000), &json!(300)]);
}

#[test]
fn a_retry_is_shown_while_it_waits_and_the_answer_then_completes() {
    let mock = MockLlm::start();
    let env = chat_env(&mock);
    let mut watcher = env.connect();
    watcher.call("hello", json!({"protocol": 1}));
    // `busy` answers 429 with `retry-after: 1` once, then streams.
    let (code, out, err) = chat(&env, &["--model", "mock/busy", "hi"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Hello, world! é\n", "stdout is the answer alone");
    assert!(
        err.lines()
            .any(|line| line == "reagent: retrying in 1 s (429 from mock)"),
        "{err}"
    );
    // Every client heard of the retry before the first text, with nothing secret in it.
    let retry = loop {
        let event = watcher.next_event();
        assert_ne!(event["type"], "delta", "the retry comes before any text");
        if event["type"] == "chat_retrying" {
            break event;
        }
    };
    assert_eq!(
        (&retry["attempt"], &retry["delay_ms"], &retry["status"]),
        (&json!(1), &json!(1000), &json!(429))
    );
    assert_eq!(retry["provider"], "mock");
    assert!(!retry.to_string().contains(KEY), "{retry}");
}
