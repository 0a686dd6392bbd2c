//! The research agent end to end: a scripted model (the test decides each tool call) drives
//! real runs, alerts, approvals, files, MCP servers and wild mode through the daemon, in
//! both provider formats.

mod common;

use std::path::PathBuf;

use common::script_llm::{Reply, ScriptLlm, call};
use common::{Env, wait_until};
use serde_json::{Value, json};

/// The provider's key: the daemon's secret, which no tool may hand out.
const KEY: &str = "sk-agent-never-leaves-7f3a";

/// An installation whose provider `model` speaks `kind`, and a session on it with tools on.
fn agent_env(llm: &ScriptLlm, kind: &str, more: &str) -> (Env, String) {
    let env = Env::new();
    env.write_config(format!("{}{more}", llm.provider("model", kind)));
    env.start_daemon(&[("MOCK_KEY", KEY)]);
    let session = create_session(&env, true);
    (env, session)
}

fn create_session(env: &Env, agent: bool) -> String {
    let mut conn = env.connect();
    let reply = conn.call(
        "session.create",
        json!({"model": "model/m", "cwd": env.path(), "agent": agent}),
    );
    reply["result"]["id"]
        .as_str()
        .expect("session id")
        .to_string()
}

fn send(env: &Env, session: &str, text: &str) {
    let mut conn = env.connect();
    let reply = conn.call("chat.send", json!({"session": session, "text": text}));
    assert!(reply["result"]["id"].is_string(), "{reply}");
}

fn approvals(env: &Env) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["approvals", "--json"])).expect("approvals --json")
}

/// Waits for the one pending approval of `tool` and returns it.
fn pending(env: &Env, tool: &str) -> Value {
    let mut found = None;
    wait_until(&format!("an approval for {tool}"), || {
        found = approvals(env).into_iter().find(|a| a["tool"] == tool);
        found.is_some()
    });
    found.expect("approval")
}

fn history(env: &Env, session: &str) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["history", session, "--json"])).expect("history --json")
}

/// Every part of the session's messages of `kind`.
fn parts(env: &Env, session: &str, kind: &str) -> Vec<Value> {
    history(env, session)
        .iter()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["kind"] == kind)
        .collect()
}

/// Waits until the session's last answer is complete and called no tool: the turn is over.
fn turn_over(env: &Env, session: &str) {
    wait_until("the turn to end", || {
        let messages = history(env, session);
        messages.last().is_some_and(|last| {
            last["role"] == "assistant"
                && last["status"] == "complete"
                && !last["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["kind"] == "tool_call"))
        })
    });
}

/// The tool results the model was sent in its requests, as text.
fn results_sent(llm: &ScriptLlm) -> String {
    llm.requests()
        .iter()
        .map(|seen| seen.body["messages"].to_string())
        .collect()
}

fn full_loop(kind: &str) {
    let llm = ScriptLlm::start();
    let (env, session) = agent_env(&llm, kind, "");
    // Python writes NaN bare, as `json.dumps` does.
    let train = "for i in $(seq 1 400); do v=1.0; [ $i -eq 20 ] && v=NaN; \
                 echo \"{\\\"step\\\": $i, \\\"loss\\\": $v}\" >> \"$REAGENT_METRICS_FILE\"; \
                 sleep 0.1; done";
    llm.push([
        call(
            "c1",
            "run_start",
            json!({"command": train, "name": "train"}),
        ),
        Reply::Text("Started the run."),
    ]);
    send(&env, &session, "train a model");
    // A second client (the CLI) approves: the command line is what it is asked about.
    let approval = pending(&env, "run_start");
    assert!(
        approval["action"]
            .as_str()
            .expect("a string")
            .contains("seq 1 400"),
        "{approval}"
    );
    env.ok(&["approve", approval["id"].as_str().expect("a string")]);
    wait_until("the run", || {
        env.runs().iter().any(|r| r["name"] == "train")
    });
    let run = env
        .runs()
        .into_iter()
        .find(|r| r["name"] == "train")
        .expect("as set up");
    let run_id = run["id"].as_str().expect("a string").to_string();
    assert_eq!(run["agent_session"], json!(session));
    // The NaN alert goes to the session that started the run; the model answers it.
    wait_until("the NaN alert", || {
        env.alerts(false).iter().any(|a| a["rule"] == "nan")
    });
    let alert = env
        .alerts(false)
        .into_iter()
        .find(|a| a["rule"] == "nan")
        .expect("as set up");
    let alert_id = alert["id"].as_str().expect("a string").to_string();
    llm.push([
        call(
            "c2",
            "alert_answer",
            json!({"id": alert_id, "choice": "stop"}),
        ),
        Reply::Text("Stopped it: the loss went NaN."),
    ]);
    wait_until("the alert handed to the session", || {
        history(&env, &session).iter().any(|m| {
            m["role"] == "user"
                && m["parts"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&alert_id))
        })
    });
    let answer = pending(&env, "alert_answer");
    assert!(
        answer["action"]
            .as_str()
            .expect("a string")
            .contains("`stop`"),
        "{answer}"
    );
    env.ok(&["approve", answer["id"].as_str().expect("a string")]);
    wait_until("the run to be stopped", || {
        env.status_of(&run_id) == "stopped"
    });
    turn_over(&env, &session);
    // Every step is in the history with its tool parts.
    let calls: Vec<Value> = parts(&env, &session, "tool_call");
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c["name"].as_str().expect("a string"))
        .collect();
    assert_eq!(names, ["run_start", "alert_answer"]);
    let results = parts(&env, &session, "tool_result");
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "{results:?}"
    );
    assert!(
        results[1]["text"]
            .as_str()
            .expect("a string")
            .contains("\"stop\"")
    );
    // The model was sent both results, in its own format.
    let sent = results_sent(&llm);
    let marker = if kind == "anthropic" {
        "tool_result"
    } else {
        "tool_call_id"
    };
    assert!(sent.contains(marker), "{sent}");
    assert!(
        sent.contains(&run_id),
        "the run_start result reached the model"
    );
    // Both approvals were settled by the CLI and are kept.
    let all: Vec<Value> =
        serde_json::from_str(&env.ok(&["approvals", "--all", "--json"])).expect("JSON");
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|a| a["state"] == "approved"));
}

#[test]
fn an_agent_starts_a_run_hears_its_nan_alert_and_stops_it_openai() {
    full_loop("openai");
}

#[test]
fn an_agent_starts_a_run_hears_its_nan_alert_and_stops_it_anthropic() {
    full_loop("anthropic");
}

#[test]
fn a_denial_reaches_the_model_and_always_holds_for_one_session_only() {
    let llm = ScriptLlm::start();
    let (env, session) = agent_env(&llm, "openai", "");
    llm.push([
        call(
            "c1",
            "run_start",
            json!({"command": ["true"], "name": "nope"}),
        ),
        Reply::Text("ok"),
    ]);
    send(&env, &session, "start something");
    let approval = pending(&env, "run_start");
    let out = env.ok(&[
        "deny",
        approval["id"].as_str().expect("a string"),
        "--reason",
        "not now",
    ]);
    assert!(out.contains("denied"), "{out}");
    turn_over(&env, &session);
    assert!(env.runs().is_empty(), "a denied call does nothing");
    let result = &parts(&env, &session, "tool_result")[0];
    assert_eq!(result["error"], true);
    let text = result["text"].as_str().expect("a string");
    assert!(
        text.contains("denied") && text.contains("not now"),
        "{text}"
    );
    assert!(
        results_sent(&llm).contains("not now"),
        "the model read the denial"
    );
    // A second answer of the same approval is refused: it is settled.
    let again = env.run(&["approve", approval["id"].as_str().expect("a string")]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already denied"));

    // `always` lets `shell` run without asking, in this session only.
    llm.push([
        call("c2", "shell", json!({"command": "echo one"})),
        Reply::Text("one"),
    ]);
    send(&env, &session, "echo one");
    let approval = pending(&env, "shell");
    env.ok(&[
        "approve",
        approval["id"].as_str().expect("a string"),
        "--always",
    ]);
    turn_over(&env, &session);
    llm.push([
        call("c3", "shell", json!({"command": "echo two"})),
        Reply::Text("two"),
    ]);
    send(&env, &session, "echo two");
    turn_over(&env, &session);
    let shells: Vec<Value> = parts(&env, &session, "tool_result")
        .into_iter()
        .filter(|p| p["name"] == "shell")
        .collect();
    assert_eq!(shells.len(), 2);
    assert!(
        shells[1]["text"]
            .as_str()
            .expect("a string")
            .contains("exit code 0")
    );
    assert!(
        shells[1]["text"]
            .as_str()
            .expect("a string")
            .contains("two")
    );
    assert!(
        approvals(&env).is_empty(),
        "the second shell call ran without asking"
    );
    let other = create_session(&env, true);
    llm.push([
        call("c4", "shell", json!({"command": "echo three"})),
        Reply::Text("three"),
    ]);
    send(&env, &other, "echo three");
    let asked = pending(&env, "shell");
    assert_eq!(asked["session"], json!(other), "another session still asks");
    env.ok(&["deny", asked["id"].as_str().expect("a string")]);
    turn_over(&env, &other);
}

#[test]
fn a_write_outside_the_directory_is_refused_and_an_edit_shows_its_diff_first() {
    let llm = ScriptLlm::start();
    let (env, session) = agent_env(&llm, "anthropic", "");
    std::fs::write(env.path().join("train.py"), "lr = 1e-3\nepochs = 3\n").expect("as set up");
    llm.push([
        Reply::Tools(vec![
            (
                "w1".into(),
                "file_write".into(),
                json!({"path": "../escape.txt", "content": "x"}),
            ),
            (
                "e1".into(),
                "file_edit".into(),
                json!({"path": "train.py", "old": "lr = 1e-3", "new": "lr = 3e-4"}),
            ),
        ]),
        Reply::Text("edited"),
    ]);
    send(&env, &session, "lower the learning rate");
    let approval = pending(&env, "file_edit");
    let action = approval["action"].as_str().expect("a string");
    assert!(action.contains("-lr = 1e-3\n+lr = 3e-4"), "{action}");
    assert_eq!(
        std::fs::read_to_string(env.path().join("train.py")).expect("as set up"),
        "lr = 1e-3\nepochs = 3\n",
        "nothing is written before approval"
    );
    assert_eq!(approvals(&env).len(), 1, "the refused write never asked");
    env.ok(&["approve", approval["id"].as_str().expect("a string")]);
    turn_over(&env, &session);
    assert_eq!(
        std::fs::read_to_string(env.path().join("train.py")).expect("as set up"),
        "lr = 3e-4\nepochs = 3\n"
    );
    let escaped: PathBuf = env.path().parent().expect("as set up").join("escape.txt");
    assert!(!escaped.exists(), "nothing was written outside");
    let results = parts(&env, &session, "tool_result");
    assert_eq!(results[0]["error"], true);
    assert!(
        results[0]["text"]
            .as_str()
            .expect("a string")
            .contains("outside the session's directory")
    );
    assert!(
        results[1]["text"]
            .as_str()
            .expect("a string")
            .contains("+lr = 3e-4")
    );
}

/// The Python with the `mcp` package, or why there is none (then the MCP test is skipped,
/// saying so, unless `REAGENT_MCP_PYTHON` named one).
fn mcp_python() -> Option<PathBuf> {
    match std::env::var_os("REAGENT_MCP_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => {
            let python = PathBuf::from(python);
            assert!(
                python.exists(),
                "REAGENT_MCP_PYTHON {} is missing",
                python.display()
            );
            Some(python)
        }
        None => {
            eprintln!(
                "skipped: no REAGENT_MCP_PYTHON; run scripts/mcp-python.sh and export its output"
            );
            None
        }
    }
}

#[test]
fn an_mcp_servers_tool_is_listed_and_called_and_a_hung_one_times_out() {
    let Some(python) = mcp_python() else {
        return;
    };
    let server = std::fs::canonicalize("tests/standin/mcp_server.py").expect("as set up");
    let llm = ScriptLlm::start();
    let mcp = format!(
        "[mcp.t]\ncommand = \"{}\"\nargs = [\"{}\"]\ntimeout_secs = 2\n",
        python.display(),
        server.display()
    );
    let (env, session) = agent_env(&llm, "openai", &mcp);
    let tools: Vec<Value> = serde_json::from_str(&env.ok(&["tools", "--json"])).expect("JSON");
    let echo = tools
        .iter()
        .find(|t| t["name"] == "t__echo")
        .expect("t__echo listed");
    assert_eq!(echo["source"], "t");
    assert!(echo["schema"]["properties"]["text"].is_object(), "{echo}");
    assert!(tools.iter().any(|t| t["name"] == "runs_list"));
    let servers: Vec<Value> = serde_json::from_str(&env.ok(&["mcp", "--json"])).expect("JSON");
    assert_eq!(servers[0]["state"], "running");
    // Let the MCP tools run without asking, as a user who trusts the server would.
    let mut conn = env.connect();
    let set = conn.call(
        "session.agent",
        json!({"session": session, "auto": ["t__echo", "t__hang", "t__getenv"]}),
    );
    assert!(set["result"]["agent"]["auto"].is_array(), "{set}");
    llm.push([
        // One after the other: a hung server answers nothing, not even a call made beside.
        call("m1", "t__echo", json!({"text": "hello mcp"})),
        call("m2", "t__hang", json!({"seconds": 60})),
        call("m3", "t__getenv", json!({"name": "MOCK_KEY"})),
        Reply::Text("done"),
    ]);
    send(&env, &session, "use the server");
    turn_over(&env, &session);
    let results = parts(&env, &session, "tool_result");
    assert_eq!(results[0]["text"], "hello mcp");
    assert_eq!(results[1]["error"], true);
    assert!(
        results[1]["text"]
            .as_str()
            .expect("a string")
            .contains("timed out"),
        "{:?}",
        results[1]
    );
    // The server outlived its hang (it is replaced on its next use) and never saw the key.
    assert_eq!(results[2]["error"], Value::Null, "{:?}", results[2]);
    assert!(
        !results[2]["text"].as_str().expect("a string").contains(KEY),
        "{:?}",
        results[2]
    );
}

/// Starts a wild loop and waits for it to end; returns it.
fn wild_until_end(env: &Env, args: &[&str]) -> Value {
    let mut start = vec!["wild", "start", "--json", "--every", "0.002"];
    start.extend_from_slice(args);
    let started: Value = serde_json::from_str(&env.ok(&start)).expect("JSON");
    let session = started["session"].as_str().expect("a string").to_string();
    let mut ended = Value::Null;
    wait_until("the wild loop to end", || {
        let all: Vec<Value> =
            serde_json::from_str(&env.ok(&["wild", "status", "--json"])).expect("JSON");
        ended = all
            .into_iter()
            .find(|w| w["session"] == session)
            .unwrap_or_default();
        ended["state"] == "ended"
    });
    ended
}

#[test]
fn wild_mode_stops_on_each_budget_and_on_finish_with_the_reason() {
    let llm = ScriptLlm::start();
    let env = Env::new();
    env.write_config(llm.provider("model", "openai"));
    env.start_daemon(&[("MOCK_KEY", "k")]);
    let text = |n| std::iter::repeat_n(Reply::Text("working on it"), n);

    llm.push(text(2));
    let wild = wild_until_end(
        &env,
        &["--goal", "g", "--model", "model/m", "--max-steps", "2"],
    );
    assert_eq!(wild["steps"], 2);
    assert!(
        wild["end"]
            .as_str()
            .expect("a string")
            .starts_with("step budget"),
        "{wild}"
    );

    // Each answer costs 120 tokens: the second step passes 150.
    llm.push(text(2));
    let wild = wild_until_end(
        &env,
        &["--goal", "g", "--model", "model/m", "--max-tokens", "150"],
    );
    assert_eq!(
        (wild["steps"].as_u64(), wild["tokens"].as_u64()),
        (Some(2), Some(240))
    );
    assert!(
        wild["end"]
            .as_str()
            .expect("a string")
            .starts_with("token budget"),
        "{wild}"
    );

    // 100 prompt tokens at $1 and 20 answer tokens at $2 per million: $0.00014 an answer.
    llm.push(text(2));
    let wild = wild_until_end(
        &env,
        &["--goal", "g", "--model", "model/m", "--max-cost", "0.0002"],
    );
    assert_eq!(wild["steps"], 2);
    assert!(
        wild["end"]
            .as_str()
            .expect("a string")
            .starts_with("cost budget"),
        "{wild}"
    );

    // A thousandth of an hour is 3.6 s; steps come every 0.12 s meanwhile.
    llm.push(text(200));
    let wild = wild_until_end(
        &env,
        &["--goal", "g", "--model", "model/m", "--max-hours", "0.001"],
    );
    assert!(
        wild["end"]
            .as_str()
            .expect("a string")
            .starts_with("time budget"),
        "{wild}"
    );
    llm.clear();

    llm.push([
        call("f1", "finish", json!({"summary": "the loss is 0.1"})),
        Reply::Text("done"),
    ]);
    let wild = wild_until_end(
        &env,
        &["--goal", "g", "--model", "model/m", "--max-steps", "5"],
    );
    assert_eq!(wild["end"], "finished");
    assert_eq!(wild["summary"], "the loss is 0.1");
    assert_eq!(wild["steps"], 1);
    let status = env.ok(&["wild", "status"]);
    assert!(status.contains("ended: finished"), "{status}");
}

#[test]
fn a_wild_loop_survives_a_daemon_restart_and_stops_on_request() {
    let llm = ScriptLlm::start();
    let env = Env::new();
    env.write_config(llm.provider("model", "openai"));
    env.start_daemon(&[("MOCK_KEY", "k")]);
    llm.push([Reply::Text("waiting for my runs")]);
    let started: Value = serde_json::from_str(&env.ok(&[
        "wild", "start", "--json", "--goal", "g", "--model", "model/m", "--every", "60",
    ]))
    .expect("as set up");
    let session = started["session"].as_str().expect("a string").to_string();
    let status = || -> Value {
        let all: Vec<Value> =
            serde_json::from_str(&env.ok(&["wild", "status", "--json"])).expect("JSON");
        all.into_iter()
            .find(|w| w["session"] == session)
            .expect("as set up")
    };
    wait_until("the loop to wait", || status()["state"] == "waiting");
    env.kill_daemon();
    env.start_daemon(&[("MOCK_KEY", "k")]);
    let resumed = status();
    assert_eq!(resumed["state"], "waiting", "{resumed}");
    assert_eq!(resumed["steps"], 1);
    let out = env.ok(&["wild", "stop"]);
    assert!(out.contains("ended: stopped"), "{out}");
    assert_eq!(status()["end"], "stopped");
}

#[test]
fn a_turn_that_never_stops_calling_tools_ends_at_its_limit_and_the_cli_follows_it() {
    let llm = ScriptLlm::start();
    let (env, session) = agent_env(&llm, "openai", "");
    // A model that calls a read-only tool in every answer, as far as the turn lets it.
    llm.push((0..25).map(|i| call(&format!("c{i}"), "runs_list", json!({"limit": 1}))));
    let out = env.run(&["chat", "-s", &session, "look forever"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("→ runs_list"),
        "the CLI tells each call: {stderr}"
    );
    assert!(stderr.contains("limit of 25 answers"), "{stderr}");
    let answers: Vec<Value> = history(&env, &session)
        .into_iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(
        answers.len(),
        26,
        "25 answers, then the one that ends the turn"
    );
    assert_eq!(answers[25]["status"], "error");
    assert_eq!(parts(&env, &session, "tool_result").len(), 25);
    assert_eq!(
        llm.requests().len(),
        25,
        "the model is not asked a 26th time"
    );
}

#[test]
fn a_sessions_policy_set_from_the_cli_denies_or_lets_acting_tools_run_without_asking() {
    let llm = ScriptLlm::start();
    let (env, session) = agent_env(&llm, "openai", "");
    let out = env.ok(&["session", "agent", &session, "--mode", "deny"]);
    assert!(out.contains("tools on, acting tools deny"), "{out}");
    llm.push([
        call("d1", "shell", json!({"command": "touch denied"})),
        Reply::Text("ok"),
    ]);
    send(&env, &session, "touch it");
    turn_over(&env, &session);
    let denied = &parts(&env, &session, "tool_result")[0];
    assert_eq!(denied["error"], true);
    assert!(
        denied["text"].as_str().expect("text").contains("denied"),
        "{denied}"
    );
    assert!(env.runs().is_empty() && approvals(&env).is_empty());

    env.ok(&["session", "agent", &session, "--mode", "auto"]);
    llm.push([
        call("a1", "shell", json!({"command": "echo allowed"})),
        Reply::Text("ok"),
    ]);
    send(&env, &session, "echo it");
    turn_over(&env, &session);
    let ran = &parts(&env, &session, "tool_result")[1];
    assert!(
        ran["text"].as_str().expect("text").contains("allowed"),
        "{ran}"
    );
    assert!(approvals(&env).is_empty(), "auto asks nobody");
    let out = env.ok(&["session", "agent", &session, "--off"]);
    assert!(out.contains("tools off"), "{out}");
}
