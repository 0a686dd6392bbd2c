//! `reagent proxy`, the bridge under `--remote`: the end of its input is a half-close, and a
//! proxy whose reader went away exits.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use serde_json::{Value, json};

/// `reagent proxy` with both ends piped.
fn spawn_proxy(env: &Env) -> std::process::Child {
    env.cmd(&["proxy"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the proxy")
}

/// Pipes `input` into a proxy, closes its stdin, and returns every line it printed.
fn through_proxy(env: &Env, input: &str) -> Vec<Value> {
    let mut child = spawn_proxy(env);
    let mut stdin = child.stdin.take().expect("the proxy's stdin");
    stdin
        .write_all(input.as_bytes())
        .expect("write to the proxy");
    drop(stdin);
    let out = child.wait_with_output().expect("the proxy's output");
    assert!(out.status.success(), "proxy failed: {}", out.status);
    String::from_utf8(out.stdout)
        .expect("UTF-8 from the proxy")
        .lines()
        .map(|line| serde_json::from_str(line).expect("the proxy prints JSON lines"))
        .collect()
}

fn request(id: u64, method: &str, params: Value) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    )
}

#[test]
fn every_request_piped_before_the_end_of_input_is_answered() {
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let input = [
        request(1, "no.such.method", json!({})),
        request(2, "runs.list", json!({})),
        request(3, "daemon.status", json!({})),
        request(4, "run.stop", json!({"run": "nope"})),
        request(5, "sessions.list", json!({})),
    ]
    .concat();
    for round in 0..100 {
        let replies = through_proxy(&env, &input);
        let ids: Vec<&Value> = replies.iter().map(|reply| &reply["id"]).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5], "round {round}: {replies:?}");
    }
}

#[test]
fn a_reply_worked_out_later_still_comes_after_the_end_of_input() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "sleep 1"]);
    let replies = through_proxy(&env, &request(1, "run.wait", json!({"run": id})));
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["result"]["status"], "finished");
}

#[test]
fn a_proxy_whose_reader_went_away_exits_within_a_second() {
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let mut child = spawn_proxy(&env);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(request(1, "hello", json!({"protocol": 1, "client": "proxy test"})).as_bytes())
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"sync\""), "subscribed: {line}");
    // The remote client goes: stdout closes, stdin stays open, and no event is on its way.
    drop(stdout);
    let closed = Instant::now();
    common::wait_until("the proxy to exit", || child.try_wait().unwrap().is_some());
    let took = closed.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the proxy took {took:?} to exit"
    );
    drop(stdin);
}
