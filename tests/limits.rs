//! What one client can make the daemon hold, and how many clients it serves: bounded, with the
//! daemon up and answering everyone else. Loads are scaled down from the ones that used to
//! take the daemon past 2 GB, but each still took it far past the bounds checked here.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Conn, Env, memory_kib, wait_until};
use serde_json::{Value, json};

const MIB: u64 = 1024;

fn daemon_pid(env: &Env) -> i32 {
    env.daemon_pid().expect("daemon pid")
}

/// CPU time the process has used, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    // After the command's name, in parentheses: utime and stime are the 12th and 13th fields.
    let after_name = stat.rsplit(')').next().expect("a stat line");
    after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|ticks| ticks.parse::<u64>().expect("clock ticks"))
        .sum()
}

/// Waits until the daemon has done all it will do with what it was sent: it stops using the
/// CPU. (Before the fixes, that took until every unread reply was built.)
fn wait_idle(pid: i32) {
    wait_until("the daemon to go idle", || {
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_millis(300));
        cpu_ticks(pid) - before <= 2
    });
}

/// How long a fresh connection waits for `daemon.status`, and what it got.
fn status_latency(env: &Env) -> (Duration, Value) {
    let start = Instant::now();
    let mut conn = Conn::open(&env.socket());
    conn.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n");
    let reply = conn.read();
    (start.elapsed(), reply)
}

fn request(id: usize, method: &str, params: &Value) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    )
}

#[test]
fn a_client_that_never_reads_its_replies_holds_a_bounded_amount() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "head -c 4194304 /dev/zero | tr '\\0' x"]);
    env.ok(&["wait", &id]);
    let pid = daemon_pid(&env);
    let read_log = json!({"run": id, "max_bytes": 4 << 20});
    // Once, so the baseline includes what answering one such request costs.
    assert!(Conn::open(&env.socket()).call("run.log", read_log.clone())["result"].is_object());
    wait_idle(pid);
    let baseline = memory_kib(pid, "VmRSS");
    let pipelined: String = (0..32).map(|i| request(i, "run.log", &read_log)).collect();
    let wave = || {
        // 32 requests for 4 MiB each (5.6 MiB of base64), and not one reply read.
        let mut stalled = Conn::open(&env.socket());
        stalled.send_raw(pipelined.as_bytes());
        wait_idle(pid);
        let (took, status) = status_latency(&env);
        assert!(status["result"]["daemon"]["pid"].is_number(), "{status}");
        assert!(
            took < Duration::from_secs(2),
            "another client waited {took:?}"
        );
        let grew = memory_kib(pid, "VmHWM").saturating_sub(baseline);
        assert!(grew < 64 * MIB, "the daemon grew by {} MiB", grew / MIB);
        // Reading resumes the requests, in order.
        for i in 0..3 {
            let reply = stalled.read();
            assert_eq!(reply["id"], i);
            assert!(reply["result"]["data"].as_str().unwrap().len() > 5_000_000);
        }
        drop(stalled);
        wait_idle(pid);
        memory_kib(pid, "VmRSS")
    };
    let first = wave();
    let second = wave();
    // What the first client held was given back for the second one to use.
    assert!(
        second < first + 16 * MIB,
        "the daemon kept growing: {} MiB, then {} MiB",
        first / MIB,
        second / MIB
    );
}

#[test]
fn clients_past_max_clients_are_told_and_the_refusals_logged_once() {
    let env = Env::new();
    env.write_config("[daemon]\nmax_clients = 4\n");
    env.ok(&["daemon", "start"]);
    // Served one by one: a client started meanwhile may hold a place for a moment.
    let mut served = Vec::new();
    while served.len() < 4 {
        let mut conn = Conn::open(&env.socket());
        conn.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n");
        if conn.read()["result"].is_object() {
            served.push(conn);
        }
    }
    for _ in 0..20 {
        let mut refused = Conn::open(&env.socket());
        let reply = refused.read();
        assert_eq!(reply["error"]["code"], -32005, "{reply}");
        assert_eq!(reply["id"], Value::Null);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_clients"),
            "{reply}"
        );
        assert!(refused.closed());
    }
    drop(served.pop());
    wait_until("a place to come free", || {
        let (_, reply) = status_latency(&env);
        reply["result"].is_object()
    });
    let logs = env.path().join("logs");
    let log = || {
        common::walk(&logs)
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .collect::<String>()
    };
    wait_until("the end of the refusals in the log", || {
        log().contains("accepting clients again")
    });
    let warnings = log().matches("refusing new ones").count();
    assert_eq!(warnings, 1, "one warning for a run of refusals:\n{}", log());
}

#[test]
fn three_thousand_silent_subscribers_cost_little_and_block_nobody() {
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let pid = daemon_pid(&env);
    wait_idle(pid);
    let baseline = memory_kib(pid, "VmRSS");
    let hello = request(1, "hello", &json!({"protocol": 1}));
    let crowd: Vec<UnixStream> = (0..3000)
        .map(|_| {
            let mut stream = UnixStream::connect(env.socket()).expect("connect");
            // A refused one may already be closed; that is the point.
            let _ = stream.write_all(hello.as_bytes());
            stream
        })
        .collect();
    // Another client is answered at once: refused while the daemon is full, clearly.
    let (took, reply) = status_latency(&env);
    assert!(
        took < Duration::from_secs(2),
        "another client waited {took:?}"
    );
    assert_eq!(reply["error"]["code"], -32005, "{reply}");
    wait_idle(pid);
    let grew = memory_kib(pid, "VmHWM").saturating_sub(baseline);
    assert!(grew < 64 * MIB, "the daemon grew by {} MiB", grew / MIB);
    drop(crowd);
    wait_until("the crowd to be gone", || {
        status_latency(&env).1["result"]["clients"] == 0
    });
    let (took, _) = status_latency(&env);
    assert!(took < Duration::from_secs(2), "a client waited {took:?}");
}

#[test]
fn a_crowd_saying_hello_to_a_large_state_slows_nobody() {
    let env = Env::new();
    // A large state to snapshot: each run carries a 40 KB argument.
    let big = "x".repeat(40_000);
    for _ in 0..10 {
        let id = env.start(&["sh", "-c", "true", &big]);
        env.ok(&["wait", &id]);
    }
    let hello = request(1, "hello", &json!({"protocol": 1}));
    let mut crowd = Vec::new();
    for _ in 0..150 {
        let mut stream = UnixStream::connect(env.socket()).expect("connect");
        stream.write_all(hello.as_bytes()).unwrap();
        crowd.push(stream);
    }
    // 150 snapshots of 400 KB to build, and another client is answered meanwhile.
    let (took, reply) = status_latency(&env);
    assert!(reply["result"].is_object(), "{reply}");
    assert!(
        took < Duration::from_secs(1),
        "another client waited {took:?}"
    );
    // And every hello is answered with its snapshot.
    for stream in crowd {
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        assert!(
            line.contains("\"snapshot\""),
            "{}",
            &line[..line.len().min(200)]
        );
    }
}

#[test]
fn a_huge_attach_gets_the_largest_screen_modelled() {
    let env = Env::new();
    let id = env.start(&["sleep", "60"]);
    let pid = daemon_pid(&env);
    let mut conn = env.connect();
    wait_idle(pid);
    let baseline = memory_kib(pid, "VmRSS");
    let attached = conn.call("run.attach", json!({"run": id, "size": [1000, 1000]}));
    let run = &attached["result"]["run"];
    assert_eq!(
        (&run["cols"], &run["rows"]),
        (&json!(500), &json!(200)),
        "{attached}"
    );
    let resized = conn.call("run.resize", json!({"run": id, "cols": 1000, "rows": 1000}));
    assert!(resized["result"].is_object(), "{resized}");
    let run = env.get(&id);
    assert_eq!((&run["cols"], &run["rows"]), (&json!(500), &json!(200)));
    let grew = memory_kib(pid, "VmHWM").saturating_sub(baseline);
    assert!(grew < 32 * MIB, "one attach cost {} MiB", grew / MIB);
    let tiny = conn.call("run.resize", json!({"run": id, "cols": 1, "rows": 1}));
    assert_eq!(tiny["error"]["code"], -32602, "{tiny}");
}
