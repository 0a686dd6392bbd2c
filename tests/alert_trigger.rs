//! A job's `.alert_trigger` (and metrics file) may be anything: a FIFO must not stall the one
//! metrics thread every run shares, a symlink must not send out the file it points to, and
//! something unusable is said once in the log, not on every wake.

mod common;

use common::{Env, wait_until};
use serde_json::Value;

fn points(env: &Env, run: &str) -> u64 {
    let list: Value =
        serde_json::from_str(&env.ok(&["metrics", run, "--json"])).expect("metrics --json");
    list["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "loss"))
        .map_or(0, |m| m["points"].as_u64().unwrap_or(0))
}

/// A fresh working folder for a run.
fn folder(env: &Env, name: &str) -> String {
    let dir = env.path().join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    dir.to_string_lossy().into_owned()
}

/// A run in `cwd` that writes `n` loss points, a few hundredths of a second apart (so the
/// metrics thread wakes many times meanwhile), then sleeps.
fn writer(env: &Env, cwd: &str, n: u32) -> String {
    let script = format!(
        r#"for i in $(seq 1 {n}); do echo "{{\"step\": $i, \"loss\": 1}}" >> "$REAGENT_METRICS_FILE"; sleep 0.03; done; exec sleep 600"#
    );
    let out = env.ok(&["run", "--cwd", cwd, "--", "sh", "-c", &script]);
    out.trim().to_string()
}

#[test]
fn a_fifo_trigger_or_metrics_file_does_not_stop_other_runs_metrics() {
    let env = Env::new();
    let fifos = folder(&env, "fifos");
    // Both FIFOs have no writer: opening either for reading without O_NONBLOCK waits for ever.
    env.ok(&[
        "run",
        "--cwd",
        &fifos,
        "--metrics",
        "m.fifo",
        "--",
        "sh",
        "-c",
        "mkfifo m.fifo .alert_trigger; exec sleep 600",
    ]);
    let trigger = std::path::Path::new(&fifos).join(".alert_trigger");
    wait_until("the FIFOs", || trigger.exists());
    let other = writer(&env, &folder(&env, "other"), 60);
    wait_until("all 60 points of the other run", || {
        points(&env, &other) == 60
    });
    wait_until("the warning about the FIFO", || {
        env.daemon_log().contains("it is a FIFO")
    });
    let log = env.daemon_log();
    assert_eq!(log.matches("it is a FIFO").count(), 1, "warned once: {log}");
    assert_eq!(
        log.matches("m.fifo: not a regular file").count(),
        1,
        "{log}"
    );
    assert!(env.alerts(true).is_empty(), "{:?}", env.alerts(true));
}

#[test]
fn a_symlinked_trigger_raises_no_alert_with_the_targets_text() {
    let env = Env::new();
    let secret = env.path().join("shadow");
    std::fs::write(&secret, "root:$6$not-for-slack:19000:0:99999:7:::\n").expect("write");
    let cwd = folder(&env, "job");
    let script = format!(
        "ln -s {} .alert_trigger; while [ ! -e go ]; do sleep 0.05; done; \
         rm .alert_trigger; echo 'a real alert' > .alert_trigger; exec sleep 600",
        secret.display()
    );
    env.ok(&["run", "--cwd", &cwd, "--", "sh", "-c", &script]);
    wait_until("the warning about the symlink", || {
        env.daemon_log().contains("it is a symbolic link")
    });
    std::fs::write(std::path::Path::new(&cwd).join("go"), "").expect("write go");
    wait_until("the job's real alert", || {
        env.alerts(true)
            .iter()
            .any(|a| a["message"] == "a real alert")
    });
    let all = env.alerts(true);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        !serde_json::to_string(&all)
            .expect("json")
            .contains("not-for-slack")
    );
    assert!(secret.exists(), "the target is untouched");
}

#[test]
fn a_directory_trigger_is_warned_about_once() {
    let env = Env::new();
    let cwd = folder(&env, "job");
    std::fs::create_dir(std::path::Path::new(&cwd).join(".alert_trigger")).expect("mkdir");
    // 40 points 0.03 s apart: over a second of wakes, four a second at least.
    let run = writer(&env, &cwd, 40);
    wait_until("all 40 points", || points(&env, &run) == 40);
    wait_until("the warning", || {
        env.daemon_log().contains("it is a directory")
    });
    let log = env.daemon_log();
    assert_eq!(log.matches("it is a directory").count(), 1, "{log}");
    assert!(!log.contains("cannot remove"), "{log}");
}
