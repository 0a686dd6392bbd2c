//! The cockpit's pane never hides output, driven for real inside PTYs at 80x24 and 200x50:
//! the newest lines of a larger run show without a key, PgUp reaches a run's first line, a
//! full-screen program's exit clears the pane, and watching never resizes a run.

mod common;

use common::pty::PtyClient;
use common::{Env, wait_until};

/// Starts `script` and waits until its log holds `last`.
fn run_printing(env: &Env, script: &str, last: &str) -> String {
    let id = env.start(&["sh", "-c", script]);
    wait_until("the job to print", || env.ok(&["logs", &id]).contains(last));
    id
}

#[test]
fn an_80x24_pane_shows_the_last_line_of_a_finished_400_line_job_without_a_key() {
    let env = Env::new();
    let id = run_printing(
        &env,
        "for i in $(seq 1 400); do echo line $i; done",
        "line 400",
    );
    env.ok(&["wait", &id]);
    let tui = PtyClient::start(&env, &[], 80, 24);
    tui.wait_for("1 client");
    // The only run is selected; moving onto it previews it.
    let mut tui = tui;
    tui.send(b"k");
    tui.wait_for("line 400");
}

#[test]
fn pgup_reaches_line_1_of_a_2000_line_run() {
    let env = Env::new();
    let id = run_printing(
        &env,
        "for i in $(seq 1 2000); do echo line $i; done",
        "line 2000",
    );
    env.ok(&["wait", &id]);
    let mut tui = PtyClient::start(&env, &[], 200, 50);
    tui.wait_for("1 client");
    tui.send(b"k");
    tui.wait_for("line 2000");
    // Home scrolls the pane to the top of its history.
    tui.send(b"\t");
    tui.send(b"\x1b[H");
    tui.wait_for("line 1 ");
}

#[test]
fn a_full_screen_programs_exit_leaves_the_pane_clear() {
    let env = Env::new();
    let id = run_printing(
        &env,
        "printf '\\033[?1049h\\033[2J\\033[HFULL SCREEN APP'; read x; printf '\\033[?1049l'; \
         echo back at the prompt; read y",
        "FULL SCREEN APP",
    );
    let mut tui = PtyClient::start(&env, &[], 120, 32);
    tui.wait_for("1 client");
    tui.send(b"k");
    tui.wait_for("FULL SCREEN APP");
    env.ok(&["input", &id, "q"]);
    tui.wait_for("back at the prompt");
    tui.wait_gone("FULL SCREEN APP");
}

#[test]
fn an_80x24_viewer_does_not_shrink_a_job_another_client_types_into() {
    let env = Env::new();
    let id = run_printing(
        &env,
        "echo ready; while read l; do echo got $l; done",
        "ready",
    );
    let mut typist = PtyClient::start(&env, &[], 200, 50);
    typist.wait_for("1 client");
    typist.send(b"k");
    typist.send(b"\r");
    typist.wait_for("[typing]");
    wait_until("the typist's size", || env.get(&id)["cols"] != 200);
    let typed = env.get(&id)["cols"].clone();

    let mut viewer = PtyClient::start(&env, &[], 80, 24);
    viewer.wait_for("2 clients");
    viewer.send(b"k");
    viewer.wait_for("ready");
    typist.send(b"hello\r");
    viewer.wait_for("got hello");
    assert_eq!(env.get(&id)["cols"], typed, "watching takes no size");
}
