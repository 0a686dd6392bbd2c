//! `reagent attach` driven for real inside a PTY.

mod common;

use common::pty::PtyClient;
use common::{Env, wait_until};

#[test]
fn attach_shows_the_screen_forwards_keys_and_detaches_with_the_prefix() {
    let env = Env::new();
    let id = env.start(&[
        "sh",
        "-c",
        "echo ready; while read line; do echo \"you said: $line\"; done",
    ]);
    wait_until("the job to print", || {
        env.ok(&["logs", &id]).contains("ready")
    });

    let mut client = PtyClient::start(&env, &["attach", &id], 80, 24);
    client.wait_for("ready");
    client.send(b"hello there\r");
    client.wait_for("you said: hello there");
    // The run's terminal follows the attached client's size.
    wait_until("the run to take the client's size", || {
        env.get(&id)["cols"] == 80
    });

    client.send(b"\x02d");
    assert!(client.wait_exit(), "detaching is a clean exit");
    client.wait_for("[detached from");
    wait_until("the run to get its size back", || {
        env.get(&id)["cols"] == 200
    });
    assert_eq!(
        env.status_of(&id),
        "running",
        "detaching never stops the job"
    );
    assert!(env.ok(&["logs", &id]).contains("you said: hello there"));
}

#[test]
fn attach_ends_when_the_run_ends() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "read x; echo bye; exit 4"]);
    let mut client = PtyClient::start(&env, &["attach", &id], 80, 24);
    wait_until("the client to attach", || env.get(&id)["cols"] == 80);
    client.send(b"go\r");
    assert_eq!(client.wait_exit_code(), Some(4), "attach exits like wait");
    client.wait_for("ended: exited with code 4");
}

#[test]
fn attaching_to_an_ended_run_points_to_its_log() {
    let env = Env::new();
    let id = env.start(&["true"]);
    env.ok(&["wait", &id]);
    let out = env.run(&["attach", &id]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not running") && stderr.contains("reagent logs"),
        "{stderr}"
    );
}

#[test]
fn a_smaller_watcher_sees_the_newest_lines_and_takes_no_size() {
    let env = Env::new();
    let id = env.start(&[
        "sh",
        "-c",
        "for i in $(seq 1 400); do echo line $i; done; read x; echo line after; read y",
    ]);
    wait_until("the job to print", || {
        env.ok(&["logs", &id]).contains("line 400")
    });
    let mut client = PtyClient::start(&env, &["attach", "--watch", &id], 80, 24);
    client.wait_for("line 400");
    // Typing does nothing but the prefix; another client feeds the job.
    client.send(b"ignored\r");
    env.ok(&["input", &id, "go"]);
    client.wait_for("line after");
    assert!(
        !env.ok(&["logs", &id]).contains("ignored"),
        "a watcher types nothing"
    );
    assert_eq!(env.get(&id)["cols"], 200, "a watcher never resizes the run");
    client.send(b"\x02d");
    assert!(client.wait_exit());
}
