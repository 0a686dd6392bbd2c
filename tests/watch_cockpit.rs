//! The cockpit's charts and alerts views, driven in a PTY against a real daemon: a job writes
//! metrics and an `.alert_trigger` file, and a person sees the chart, the alert badge and the
//! alert, and answers it from the keyboard.

mod common;

use common::pty::PtyClient;
use common::{Env, wait_until};

#[test]
fn a_triggered_alert_shows_in_a_running_cockpit_and_is_answered_there() {
    let env = Env::new();
    let work = tempfile::tempdir().expect("tempdir");
    let mut tui = PtyClient::start(&env, &[], 120, 32);
    tui.wait_for("No runs yet");
    tui.wait_for("1 client");

    // The job writes a few steps of metrics, waits to be told to go on, then raises an alert.
    let script = "for i in 1 2 3 4 5; do echo \"{\\\"step\\\": $i, \\\"loss\\\": $((10 - i))}\" \
                  >> \"$REAGENT_METRICS_FILE\"; done; read go; \
                  echo 'disk almost full' > .alert_trigger; sleep 60";
    let cwd = work.path().display().to_string();
    let id = env.ok(&[
        "run", "--name", "watched", "--cwd", &cwd, "--", "sh", "-c", script,
    ]);
    let id = id.trim();
    tui.wait_for("watched");

    // The charts view shows the run's loss.
    tui.send(b"m");
    tui.wait_for("loss (1/1)");
    wait_until("the sparkline of the loss", || {
        tui.contents().contains("TREND")
    });

    // The alert appears in the status bar of whatever view is shown.
    env.ok(&["input", id, "go"]);
    tui.wait_for("⚠ 1 alert");
    tui.send(b"a");
    tui.wait_for("disk almost full");
    tui.wait_for("trigger");
    tui.send(b"i");
    tui.wait_for(": ignore");
    wait_until("the badge to go", || !tui.contents().contains("⚠ 1 alert"));
    let alerts = env.ok(&["alerts", "--json", "--all"]);
    assert!(alerts.contains("\"response\": \"ignore\""), "{alerts}");

    tui.send(b"q");
    assert!(tui.wait_exit(), "q quits cleanly");
}
