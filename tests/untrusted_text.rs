//! Text from jobs, files and providers reaches the terminal only with its control characters
//! made visible (issue 10, item 12), and names have a length limit while tables stay whole
//! for any name (item 13). Raw output stays raw where it is the point: `logs` and `--json`.

mod common;

use std::net::TcpStream;

use common::http;
use common::{Env, wait_until};
use serde_json::{Value, json};

/// Writes the clipboard, clears the screen, and starts a forged table row.
const HOSTILE: &str = "evil\x1b]52;c;aGFja2Vk\x07\x1b[2J\n9999  forged  finished";

/// What `sanitize` shows for the start of [`HOSTILE`].
const SHOWN: &str = "evil^[]52;c;aGFja2Vk^G^[[2J^J9999";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts nothing in `output` can drive a terminal: no ESC, BEL or C1 CSI.
fn assert_inert(what: &str, output: &str) {
    assert!(
        !output.contains(['\x1b', '\x07', '\u{9b}']),
        "{what} printed a control character raw: {output:?}"
    );
}

#[test]
fn hostile_run_names_and_commands_are_shown_visibly_on_one_row() {
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--name",
        HOSTILE,
        "--",
        "sh",
        "-c",
        "printf '\\033[31mred\\n'",
        "arg\nwith\x1b[2Jnewline",
    ]);
    let id = out.trim().to_string();
    let wait = env.run(&["wait", &id]);
    assert_eq!(wait.status.code(), Some(0));
    assert_inert("wait", &text(&wait.stderr));

    let runs = env.ok(&["runs"]);
    assert_inert("runs", &runs);
    assert_eq!(runs.lines().count(), 2, "a header and one row: {runs}");
    assert!(runs.contains(SHOWN), "{runs}");
    assert!(runs.contains("arg^Jwith^[[2Jnewline"), "{runs}");

    // The raw forms stay where they are the point.
    assert!(env.ok(&["logs", &id]).contains("\x1b[31mred"));
    let json = env.ok(&["runs", "--json"]);
    assert!(
        !json.contains('\x1b'),
        "JSON escapes control characters itself"
    );
    let runs: Vec<Value> = serde_json::from_str(&json).expect("runs --json");
    assert_eq!(runs[0]["name"], HOSTILE);

    let renamed = env.ok(&["rename", &id, "again\x1b[2J"]);
    assert_inert("rename", &renamed);
    assert!(renamed.contains("again^[[2J"), "{renamed}");
}

#[test]
fn errors_quoting_untrusted_text_are_printed_visibly() {
    let env = Env::new();
    let missing = env.run(&["logs", "nope\x1b]52;c;aGk=\x07"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = text(&missing.stderr);
    assert_inert("the error", &stderr);
    assert!(
        stderr.contains("no run matches `nope^[]52;c;aGk=^G`"),
        "{stderr}"
    );
}

#[test]
fn alert_texts_from_trigger_files_are_shown_visibly() {
    let env = Env::new();
    let cwd = env.path().join("job");
    std::fs::create_dir(&cwd).expect("mkdir");
    let script = "printf 'stuck\\033[2J\\n0000  fake  alert' > .alert_trigger; \
                  while [ -e .alert_trigger ]; do sleep 0.05; done";
    let cwd_arg = cwd.to_string_lossy().into_owned();
    let id = env.ok(&["run", "--cwd", &cwd_arg, "--", "sh", "-c", script]);
    assert_eq!(env.run(&["wait", id.trim()]).status.code(), Some(0));
    wait_until("the trigger's alert", || {
        let alerts: Vec<Value> =
            serde_json::from_str(&env.ok(&["alerts", "--json"])).expect("alerts --json");
        !alerts.is_empty()
    });
    let alerts = env.ok(&["alerts"]);
    assert_inert("alerts", &alerts);
    assert_eq!(alerts.lines().count(), 2, "a header and one row: {alerts}");
    assert!(alerts.contains("stuck^[[2J^J0000  fake  alert"), "{alerts}");
}

/// A provider whose answer and whose error both carry escape sequences: the model `answer`
/// streams one, any other model gets a 400 quoting one.
fn hostile_provider() -> String {
    http::serve(|stream: TcpStream| {
        let Some(seen) = http::read_request(&stream) else {
            return;
        };
        if seen.body["model"] == "answer" {
            let mut body = String::new();
            for piece in ["one\x1b]52;c;aGFja2Vk\x07", "\x1b[2J\n\ttwo"] {
                let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}}]});
                body.push_str(&format!("data: {chunk}\n\n"));
            }
            let stop = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            body.push_str(&format!("data: {stop}\n\ndata: [DONE]\n\n"));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let mut stream = &stream;
            let _ = std::io::Write::write_all(&mut stream, (head + &body).as_bytes());
        } else {
            let error = json!({"error": {"message": "denied\x1b]52;c;aGk=\x07\x1b[2J"}});
            http::respond(&stream, "400 Bad Request", &error.to_string());
        }
    })
}

#[test]
fn model_answers_and_provider_errors_keep_their_lines_but_not_their_escapes() {
    let env = Env::new();
    let config = format!(
        "[providers.evil]\nkind = \"openai\"\nbase_url = \"{}/v1\"\napi_key_env = \"EVIL_KEY\"\n",
        hostile_provider()
    );
    env.write_config(config);
    env.start_daemon(&[("EVIL_KEY", "evil-provider-key-1234")]);

    let chat = env.run(&["chat", "--model", "evil/answer", "hi"]);
    let stdout = text(&chat.stdout);
    assert_eq!(chat.status.code(), Some(0), "{}", text(&chat.stderr));
    assert_inert("chat", &stdout);
    assert_eq!(stdout, "one^[]52;c;aGFja2Vk^G^[[2J\n\ttwo\n");

    let sessions: Vec<Value> =
        serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("sessions --json");
    let session = sessions[0]["id"].as_str().expect("session id").to_string();
    let history = env.ok(&["history", &session]);
    assert_inert("history", &history);
    assert!(
        history.contains("one^[]52;c;aGFja2Vk^G^[[2J\n\ttwo"),
        "{history}"
    );

    let failed = env.run(&["chat", "--model", "evil/refuse", "hi"]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = text(&failed.stderr);
    assert_inert("the provider's error", &stderr);
    assert!(stderr.contains("denied^[]52;c;aGk=^G^[[2J"), "{stderr}");
}

#[test]
fn names_over_the_limit_are_refused_naming_the_field_and_the_limit() {
    let env = Env::new();
    let huge = "n".repeat(70_000);
    let refused = env.run(&["run", "--name", &huge, "--", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("`name`: 70000 characters, over the limit of 200"),
        "{stderr}"
    );

    let mut conn = env.connect();
    let reply = conn.call(
        "run.submit",
        json!({"spec": {"name": huge, "command": ["true"]}, "gpus": {"count": 0}}),
    );
    assert_eq!(reply["error"]["code"], -32602, "{reply}");

    let id = env.start(&["true"]);
    let rename = env.run(&["rename", &id, &huge]);
    assert_eq!(rename.status.code(), Some(1));
    assert!(text(&rename.stderr).contains("over the limit of 200"));

    let sweep = env.run(&["sweep", "--name", &huge, "--grid", "x=1", "--", "true"]);
    assert_eq!(sweep.status.code(), Some(1));
    assert!(text(&sweep.stderr).contains("`name`: 70000 characters"));
    let values = format!("x={}", "9".repeat(300));
    let sweep = env.run(&["sweep", "--grid", "y=1", "--grid", &values, "--", "true"]);
    assert_eq!(sweep.status.code(), Some(1));
    assert!(text(&sweep.stderr).contains("over the limit of 200"));
    assert_eq!(env.runs().len(), 1, "a refused sweep records no runs");
}

#[test]
fn long_names_and_commands_are_cut_in_tables_with_an_ellipsis() {
    let env = Env::new();
    let name = "n".repeat(200);
    let long_arg = "a".repeat(5_000);
    let id = env
        .ok(&["run", "--name", &name, "--", "echo", &long_arg])
        .trim()
        .to_string();
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    let runs = env.run(&["runs"]);
    assert_eq!(runs.status.code(), Some(0), "{}", text(&runs.stderr));
    let table = text(&runs.stdout);
    assert!(table.contains(&format!("{}…", "n".repeat(59))), "{table}");
    assert!(!table.contains(&name), "the name is cut");
    assert!(table.lines().all(|l| l.chars().count() < 400), "{table}");

    // Its runs are named after it and their values, which must fit the limit too.
    let sweep = "s".repeat(150);
    env.ok(&["sweep", "--name", &sweep, "--grid", "x=1", "--", "true"]);
    let sweeps = env.run(&["sweeps"]);
    assert_eq!(sweeps.status.code(), Some(0), "{}", text(&sweeps.stderr));
    assert!(text(&sweeps.stdout).contains(&format!("{}…", "s".repeat(59))));
}
