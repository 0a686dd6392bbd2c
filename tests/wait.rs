//! `reagent wait` outlives the daemon as the run does, and "could not reach the daemon" has
//! an exit code of its own, never a job's 1 (issue 10, item 15).

mod common;

use std::process::Stdio;

use common::{Env, wait_until};

/// The exit code for "could not reach the daemon" (see `tui/src/exit.rs`).
const UNREACHABLE: i32 = 125;

/// Whether the daemon has taken `run.wait` from a client: from then on, killing it is a
/// loss that client sees. (A client still connecting could simply start the next daemon.)
fn daemon_has_a_waiter(env: &Env) -> bool {
    let Ok(logs) = std::fs::read_dir(env.path().join("logs")) else {
        return false;
    };
    logs.flatten().any(|log| {
        std::fs::read_to_string(log.path()).is_ok_and(|text| text.contains("method=\"run.wait\""))
    })
}

#[test]
fn wait_survives_a_killed_daemon_and_exits_with_the_jobs_code() {
    let env = Env::new();
    // Debug logs show each request, `run.wait` included.
    env.start_daemon(&[("RUST_LOG", "debug")]);
    let id = env.start(&["sh", "-c", "read line; exit 7"]);
    let waiter = env
        .cmd(&["wait", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reagent wait");
    wait_until("the daemon to take the wait", || daemon_has_a_waiter(&env));

    let old = env.daemon_pid().expect("daemon pid");
    // Until the lock is free the dying daemon may still accept a connection and then drop it.
    env.kill_daemon();
    // The job goes on; `wait` starts a new daemon, which re-adopts it. This command may race
    // it to start one: either way one daemon runs.
    env.ok(&["input", &id, "go"]);

    let out = waiter.wait_with_output().expect("reagent wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "the job's code: {stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
    assert_ne!(env.daemon_pid(), Some(old), "a new daemon took over");
}

#[test]
fn an_unreachable_daemon_has_its_own_exit_code() {
    let env = Env::new();
    let missing = env.path().join("no-such-reagentd");
    for args in [&["wait", "x"][..], &["runs"][..]] {
        let out = env
            .cmd(args)
            .env("REAGENTD", &missing)
            .output()
            .expect("run reagent");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(UNREACHABLE), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot reach the daemon"), "{stderr}");
    }
    // A daemon that answers with an error is not unreachable.
    let out = env.run(&["wait", "no-such-run"]);
    assert_eq!(out.status.code(), Some(1));
}
