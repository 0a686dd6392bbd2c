//! Runs outlive the daemon: `kill -9` of reagentd neither kills nor pauses a job, and the
//! next daemon re-adopts it with nothing lost.

mod common;

use common::{Env, wait_until};

#[test]
fn a_run_survives_kill_9_of_the_daemon_and_finishes() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "sleep 5; echo done"]);
    wait_until("the run to be running", || env.status_of(&id) == "running");
    env.kill_daemon();

    // The next command starts a new daemon, which re-adopts the run.
    assert_eq!(env.status_of(&id), "running");
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    let run = env.get(&id);
    assert_eq!(run["status"], "finished");
    assert_eq!(run["exit_code"], 0);
    assert!(env.ok(&["logs", &id]).contains("done"));
}

#[test]
fn a_run_that_ends_while_the_daemon_is_down_settles_with_its_real_code() {
    let env = Env::new();
    let id = env.start(&[
        "sh",
        "-c",
        "read x; for i in $(seq 1 500); do echo line$i; done; exit 7",
    ]);
    wait_until("the run to be running", || env.status_of(&id) == "running");

    let log = env.path().join("runs").join(&id).join("output.log");
    let exit = env.path().join("runs").join(&id).join("exit.json");
    // A new daemon takes the input; kill it at once, so the job prints and ends unwatched.
    env.ok(&["input", &id, "go"]);
    env.kill_daemon();
    wait_until("the job to end with no daemon", || exit.exists());
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(
        printed.contains("line500"),
        "the job kept printing into its log"
    );

    assert_eq!(env.run(&["wait", &id]).status.code(), Some(7));
    let run = env.get(&id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 7);
    let logs = env.ok(&["logs", &id]);
    assert!(
        (1..=500).all(|i| logs.contains(&format!("line{i}\r\n"))),
        "nothing lost"
    );
}

#[test]
fn output_written_while_the_daemon_is_down_reaches_the_screen() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "echo before; read x; echo after-$x; read y"]);
    wait_until("the job to print", || {
        env.ok(&["logs", &id]).contains("before")
    });
    env.kill_daemon();
    env.ok(&["input", &id, "restart"]);
    wait_until("the job to print again", || {
        env.ok(&["logs", &id]).contains("after-restart")
    });
    let mut conn = env.connect();
    let attached = conn.call("run.attach", serde_json::json!({"run": id}));
    let screen = attached["result"]["screen"].as_str().unwrap();
    let screen = base64_decode(screen);
    let mut parser = vt100::Parser::new(50, 200, 0);
    parser.process(&screen);
    let contents = parser.screen().contents();
    assert!(
        contents.contains("before") && contents.contains("after-restart"),
        "{contents}"
    );
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let second = std::process::Command::new(common::bin_dir().join("reagentd"))
        .env("REAGENT_DIR", env.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    env.ok(&["daemon", "status"]);
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_runs_go_on() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "read x; echo got-$x"]);
    wait_until("the run to be running", || env.status_of(&id) == "running");
    let pid = env.daemon_pid().unwrap();
    common::signal(pid, rustix::process::Signal::TERM);
    wait_until("the daemon to exit", || !common::alive(pid));
    assert!(
        !env.socket().exists(),
        "the socket is removed on a clean exit"
    );
    let status = env.run(&["daemon", "status"]);
    assert_eq!(status.status.code(), Some(1), "not running");
    env.ok(&["input", &id, "again"]);
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    assert!(env.ok(&["logs", &id]).contains("got-again"));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[test]
fn daemon_stop_answers_before_it_goes_and_a_run_goes_on() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "read x; echo got-$x"]);
    for _ in 0..5 {
        env.ok(&["daemon", "start"]);
        let stopped = env.ok(&["daemon", "stop"]);
        assert!(stopped.contains("stopped reagentd"), "{stopped}");
        assert_eq!(env.run(&["daemon", "status"]).status.code(), Some(1));
    }
    env.ok(&["input", &id, "still-here"]);
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    assert!(env.ok(&["logs", &id]).contains("got-still-here"));
}
