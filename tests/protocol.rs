//! The wire protocol against a real daemon: bad input, many clients, resync.

mod common;

use std::io::Write as _;

use common::{Conn, Env};
use serde_json::{Value, json};

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {response}"))
}

#[test]
fn bad_input_gets_its_error_and_the_connection_stays_usable() {
    let env = Env::new();
    let mut conn = env.connect();
    let mut other = Conn::open(&env.socket());

    conn.send_raw(b"this is not json\n");
    let garbage = conn.read();
    assert_eq!(error_code(&garbage), -32700);
    assert_eq!(garbage["id"], Value::Null);

    // A message cut off mid-way, then a newline: parse error, nothing else breaks.
    conn.send_raw(br#"{"jsonrpc":"2.0","id":5,"method":"runs.li"#);
    conn.send_raw(b"\n");
    assert_eq!(error_code(&conn.read()), -32700);

    let unknown = conn.call("runs.explode", json!({}));
    assert_eq!(error_code(&unknown), -32601);
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runs.explode")
    );

    let wrong_type = conn.call("run.resize", json!({"run": "x", "cols": "wide", "rows": 5}));
    assert_eq!(error_code(&wrong_type), -32602);
    assert!(
        wrong_type["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`cols`"),
        "{wrong_type}"
    );

    let missing = conn.call("run.stop", json!({}));
    assert_eq!(error_code(&missing), -32602);
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run"),
        "{missing}"
    );

    // Still usable, and so is everyone else's connection.
    assert!(conn.call("runs.list", json!({}))["result"].is_array());
    assert!(other.call("daemon.status", json!({}))["result"]["daemon"]["pid"].is_number());
}

#[test]
fn a_line_over_16_mib_is_refused_and_only_that_connection_closes() {
    let env = Env::new();
    let mut big = env.connect();
    let mut other = Conn::open(&env.socket());
    let mut writer = big.writer.try_clone().unwrap();
    // Write from another thread: the daemon stops reading at 16 MiB, so the write may fail.
    let sender = std::thread::spawn(move || {
        let line = vec![b'x'; 20 << 20];
        let _ = writer.write_all(&line);
        let _ = writer.write_all(b"\n");
    });
    let response = big.read();
    assert_eq!(error_code(&response), -32600);
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16 MiB")
    );
    assert!(
        big.closed(),
        "the connection is closed after an oversized line"
    );
    sender.join().unwrap();
    assert!(other.call("runs.list", json!({}))["result"].is_array());
    assert!(Conn::open(&env.socket()).call("runs.list", json!({}))["result"].is_array());
}

#[test]
fn a_protocol_mismatch_says_to_restart_the_daemon() {
    let env = Env::new();
    let mut conn = env.connect();
    let response = conn.call("hello", json!({"protocol": 999}));
    assert_eq!(error_code(&response), -32003);
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restart the daemon")
    );
}

#[test]
fn two_subscribers_see_the_same_events_in_the_same_order() {
    let env = Env::new();
    let mut a = env.connect();
    let mut b = Conn::open(&env.socket());
    let hello_a = a.call("hello", json!({"protocol": 1, "client": "a"}));
    let hello_b = b.call("hello", json!({"protocol": 1, "client": "b"}));
    assert!(
        hello_a["result"]["sync"]["runs"].is_array(),
        "a snapshot: {hello_a}"
    );
    assert_eq!(hello_b["result"]["sync"]["type"], "snapshot");
    // Each arrival is an event; once a has seen b's, both streams must match.
    let first = a.next_event();
    assert_eq!(
        (&first["type"], &first["attached"]),
        (&json!("clients"), &json!(1))
    );
    let joined = a.next_event();
    assert_eq!(
        (&joined["type"], &joined["attached"]),
        (&json!("clients"), &json!(2))
    );
    assert_eq!(b.next_event(), joined);

    let ids: Vec<String> = (0..3)
        .map(|i| env.start(&["sh", "-c", &format!("exit {i}")]))
        .collect();
    for id in &ids {
        env.run(&["wait", id]);
    }
    let collect = |conn: &mut Conn| {
        let mut events = Vec::new();
        let mut ended = 0;
        while ended < 3 {
            let event = conn.next_event();
            if event["type"] == "run" && event["run"]["ended_at"].is_number() {
                ended += 1;
            }
            events.push(event);
        }
        events
    };
    let (events_a, events_b) = (collect(&mut a), collect(&mut b));
    let seqs = |events: &[Value]| {
        events
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(&events_a), seqs(&events_b));
    assert_eq!(events_a, events_b);
    assert!(seqs(&events_a).windows(2).all(|w| w[0] < w[1]), "seq grows");
    let statuses: Vec<&str> = events_a
        .iter()
        .filter(|e| e["run"]["id"] == ids[1].as_str())
        .map(|e| e["run"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "launching", "running", "failed"]);
}

#[test]
fn a_reconnecting_client_gets_what_it_missed_or_a_snapshot() {
    let env = Env::new();
    let mut conn = env.connect();
    let hello = conn.call("hello", json!({"protocol": 1}));
    let seq = hello["result"]["sync"]["seq"].as_u64().unwrap();
    drop(conn);
    let id = env.start(&["true"]);
    env.ok(&["wait", &id]);

    let mut again = Conn::open(&env.socket());
    let resumed = again.call("hello", json!({"protocol": 1, "since": seq}));
    assert_eq!(resumed["result"]["sync"]["type"], "events");
    let events = resumed["result"]["sync"]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["run"]["id"] == id.as_str() && e["run"]["status"] == "finished")
    );
    assert!(events.iter().all(|e| e["seq"].as_u64().unwrap() > seq));

    let from_the_future = again.call("hello", json!({"protocol": 1, "since": 1_000_000}));
    assert_eq!(from_the_future["result"]["sync"]["type"], "snapshot");
}

#[test]
fn a_stalled_client_is_told_to_resync_and_slows_nobody() {
    let env = Env::new();
    env.write_config("[daemon]\nclient_queue_bytes = 65536\n");
    let mut stalled = env.connect();
    let hello = stalled.call("hello", json!({"protocol": 1}));
    assert!(hello["result"].is_object());
    let id = env.start(&["sh", "-c", "head -c 3000000 /dev/zero | base64"]);
    let attach = stalled.call("run.attach", json!({"run": id}));
    assert!(attach["result"]["screen"].is_string());
    // Stop reading while the job floods; others are served and the job finishes regardless.
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    let mut other = Conn::open(&env.socket());
    assert!(other.call("runs.list", json!({}))["result"].is_array());
    let log_size = std::fs::metadata(env.path().join("runs").join(&id).join("output.log"))
        .unwrap()
        .len();
    assert!(log_size > 4_000_000, "every byte is in the log: {log_size}");

    // Now read: somewhere in the stream is the resync notice, and the connection still works.
    let mut saw_resync = false;
    let mut skipped = Vec::new();
    let response = loop {
        let message = stalled.read();
        if message["method"] == "resync" {
            saw_resync = true;
            stalled.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"runs.list\"}\n");
        }
        if message["id"] == 99 {
            break message;
        }
        skipped.push(message);
    };
    assert!(saw_resync, "the stalled client was told to resync");
    assert!(response["result"].is_array());
    let memory_bound = skipped.iter().map(|m| m.to_string().len()).sum::<usize>();
    assert!(
        memory_bound < 1 << 20,
        "the daemon queued {memory_bound} bytes for a 64 KiB cap"
    );
}

#[test]
fn the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.socket()), 0o600);
    assert_eq!(mode(env.path()), 0o700);
}

#[test]
fn a_repeated_key_is_refused_by_name_and_runs_nothing() {
    let env = Env::new();
    let mut conn = env.connect();
    conn.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"runs.list","method":"daemon.shutdown"}"#);
    conn.send_raw(b"\n");
    let reply = conn.read();
    assert_eq!(error_code(&reply), -32600);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key `method`"),
        "{reply}"
    );
    assert_eq!(reply["id"], Value::Null);
    // The daemon did not shut down: this connection and a new one are answered.
    assert!(conn.call("daemon.status", json!({}))["result"]["daemon"]["pid"].is_number());
    assert!(Conn::open(&env.socket()).call("runs.list", json!({}))["result"].is_array());
}

#[test]
fn ids_come_back_exactly_as_sent() {
    let env = Env::new();
    let mut conn = env.connect();
    for id in [
        "18446744073709551616",
        "-9223372036854775809",
        "12345678901234567890123",
        r#""x""#,
    ] {
        conn.send_raw(
            format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"runs.list\"}}\n").as_bytes(),
        );
        let text = conn.read_text();
        assert!(
            text.starts_with(&format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\"")),
            "id {id} came back as {text}"
        );
    }
}

#[test]
fn a_batch_gets_one_error_with_a_null_id() {
    let env = Env::new();
    let mut conn = env.connect();
    conn.send_raw(
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"runs.list\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"runs.list\"}]\n",
    );
    let reply = conn.read();
    assert_eq!(error_code(&reply), -32600);
    assert_eq!(reply["id"], Value::Null);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches are not supported"),
        "{reply}"
    );
    // Nothing else came of it: the next line answers the next request.
    conn.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"runs.list\"}\n");
    assert_eq!(conn.read()["id"], 3);
}

#[test]
fn a_notification_is_never_answered_even_when_it_fails() {
    let env = Env::new();
    let mut conn = env.connect();
    for notification in [
        r#"{"jsonrpc":"2.0","method":"no.such.method"}"#,
        r#"{"jsonrpc":"2.0","method":"run.stop","params":{}}"#,
        r#"{"jsonrpc":"2.0","method":"run.stop","params":{"run":"nope"}}"#,
        r#"{"jsonrpc":"2.0","method":"runs.list"}"#,
    ] {
        conn.send_raw(format!("{notification}\n").as_bytes());
    }
    conn.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"runs.list\"}\n");
    let first = conn.read();
    assert_eq!(first["id"], 9, "the notifications were answered: {first}");
}

#[test]
fn a_client_name_cannot_forge_a_log_line() {
    let env = Env::new();
    let mut conn = env.connect();
    let forged = "evil\n2099-01-01T00:00:00.000000Z ERROR reagentd: forged";
    let hello = conn.call("hello", json!({"protocol": 1, "client": forged}));
    assert!(hello["result"].is_object());
    let logs = env.path().join("logs");
    let log = || {
        common::walk(&logs)
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .collect::<String>()
    };
    common::wait_until("the hello in the log", || log().contains("evil"));
    for line in log().lines().filter(|line| line.contains("forged")) {
        assert!(
            line.contains("hello") && line.contains(r#"evil\n2099"#),
            "a forged line: {line}"
        );
    }
    assert!(!log().lines().any(|line| line.starts_with("2099")));
}
