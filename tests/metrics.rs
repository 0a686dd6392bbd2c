//! Metrics end to end: a job writes its metrics file, the daemon tails it into series that
//! survive a restart, follows truncation and rotation, and finds W&B in the output.

mod common;

use std::io::Write as _;
use std::path::Path;

use common::{Env, wait_until};
use serde_json::{Value, json};

fn metrics(env: &Env, run: &str) -> Value {
    serde_json::from_str(&env.ok(&["metrics", run, "--json"])).expect("metrics --json")
}

fn points(list: &Value, name: &str) -> u64 {
    list["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == name))
        .map_or(0, |m| m["points"].as_u64().unwrap_or(0))
}

fn append(path: &Path, lines: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the metrics file");
    file.write_all(lines.as_bytes()).expect("append");
}

fn lines(range: std::ops::RangeInclusive<u32>) -> String {
    range
        .map(|i| format!("{{\"step\": {i}, \"loss\": {}}}\n", 1.0 / f64::from(i)))
        .collect()
}

#[test]
fn a_million_lines_are_ingested_and_a_malformed_one_is_only_counted() {
    let env = Env::new();
    // awk writes 1M lines (a malformed one in the middle) while the job lives on.
    let script = r#"awk 'BEGIN { for (i = 1; i <= 1000000; i++) {
            if (i == 500000) print "{\"step\": oops";
            printf "{\"step\": %d, \"loss\": %.6f, \"lr\": 0.001, \"tag\": \"NaN\"}\n", i, 1 / i } }' \
        >> "$REAGENT_METRICS_FILE"; echo written; exec sleep 600"#;
    let id = env.start(&["sh", "-c", script]);
    wait_until("every line to be ingested", || {
        metrics(&env, &id)["lines"] == 1_000_001
    });
    let list = metrics(&env, &id);
    assert_eq!(list["malformed"], 1);
    assert_eq!(points(&list, "loss"), 1_000_000);
    assert_eq!(points(&list, "lr"), 1_000_000);
    assert_eq!(points(&list, "step"), 0, "step is the x axis, not a series");
    let loss = list["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "loss"))
        .expect("loss");
    assert_eq!(loss["last"]["step"], 1_000_000.0);

    // A chart of it: at most two points per column, whatever the length.
    let mut conn = env.connect();
    let reply = conn.call(
        "metrics.query",
        json!({"run": id, "names": ["loss"], "columns": 50}),
    );
    let series = &reply["result"]["series"][0];
    assert_eq!(series["total"], 1_000_000);
    let drawn = series["points"].as_array().expect("points").len();
    assert!((50..=100).contains(&drawn), "{drawn} points for 50 columns");
    let zoomed = conn.call(
        "metrics.query",
        json!({"run": id, "names": ["loss"], "columns": 10, "window": {"last_steps": 100.0}}),
    );
    let first_step = zoomed["result"]["series"][0]["points"][0][0]
        .as_f64()
        .expect("a step");
    assert!(
        first_step >= 999_900.0,
        "zoomed to the last 100 steps: {first_step}"
    );
    let bad = conn.call("metrics.query", json!({"run": id, "columns": 0}));
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`columns`")
    );
}

#[test]
fn series_survive_a_daemon_restart_and_ingest_resumes_without_duplicates() {
    let env = Env::new();
    let file = env.path().join("m.jsonl");
    let file_arg = file.to_string_lossy().into_owned();
    let out = env.ok(&["run", "--metrics", &file_arg, "--", "sleep", "600"]);
    let id = out.trim().to_string();
    append(&file, &lines(1..=1000));
    wait_until("1000 points", || {
        points(&metrics(&env, &id), "loss") == 1000
    });

    env.kill_daemon();
    append(&file, &lines(1001..=1500));
    // The next command starts a new daemon, which loads the series and reads on.
    wait_until("1500 points after the restart", || {
        points(&metrics(&env, &id), "loss") == 1500
    });
    let list = metrics(&env, &id);
    assert_eq!(list["lines"], 1500, "nothing read twice");
    assert_eq!(list["path"], file_arg);
}

#[test]
fn truncation_and_rotation_start_the_file_over() {
    let env = Env::new();
    let file = env.path().join("m.jsonl");
    let file_arg = file.to_string_lossy().into_owned();
    let id = env
        .ok(&["run", "--metrics", &file_arg, "--", "sleep", "600"])
        .trim()
        .to_string();
    append(&file, &lines(1..=10));
    wait_until("10 points", || points(&metrics(&env, &id), "loss") == 10);

    std::fs::write(&file, lines(11..=13)).expect("truncate and rewrite");
    wait_until("13 points after truncation", || {
        points(&metrics(&env, &id), "loss") == 13
    });

    std::fs::rename(&file, env.path().join("m.jsonl.1")).expect("rotate");
    append(&file, &lines(14..=18));
    wait_until("18 points after rotation", || {
        points(&metrics(&env, &id), "loss") == 18
    });
    // A partial line waits for its newline.
    append(&file, "{\"step\": 19, \"loss\": ");
    append(&file, "0.5}\n");
    wait_until("the completed line", || {
        points(&metrics(&env, &id), "loss") == 19
    });
    assert_eq!(metrics(&env, &id)["malformed"], 0);
}

#[test]
fn wandb_runs_are_found_in_the_output() {
    let env = Env::new();
    let script = "echo 'wandb: Run data is saved locally in /tmp/p/wandb/run-20240101_000000-ab12'; \
                  echo 'wandb: View run at https://wandb.ai/me/proj/runs/ab12'; exec sleep 600";
    let id = env.start(&["sh", "-c", script]);
    wait_until("the W&B run on the run", || {
        env.get(&id)["wandb"]["url"] == "https://wandb.ai/me/proj/runs/ab12"
    });
    assert_eq!(
        env.get(&id)["wandb"]["dir"],
        "/tmp/p/wandb/run-20240101_000000-ab12"
    );
    assert_eq!(
        metrics(&env, &id)["wandb"]["url"],
        "https://wandb.ai/me/proj/runs/ab12"
    );
}

#[test]
fn metrics_follow_prints_new_values_until_the_run_ends() {
    let env = Env::new();
    // The job writes once the follower is subscribed (the test then touches `go`).
    let go = env.path().join("go");
    let script = format!(
        r#"while [ ! -e '{}' ]; do sleep 0.05; done; for i in 1 2 3 4 5 6; do
            echo "{{\"step\": $i, \"loss\": 0.$i}}" >> "$REAGENT_METRICS_FILE"; sleep 0.3
        done"#,
        go.display()
    );
    let id = env.start(&["sh", "-c", &script]);
    let follower = env
        .cmd(&["metrics", &id, "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("reagent metrics -f");
    wait_until("the follower to subscribe", || {
        env.ok(&["status"]).contains("1 client(s) attached")
    });
    std::fs::write(&go, "").expect("go");
    let mut follower = Some(follower);
    let mut output = None;
    wait_until("metrics -f to end with the run", || {
        let child = follower.as_mut().expect("child");
        if matches!(child.try_wait(), Ok(Some(_))) {
            output = follower
                .take()
                .map(|c| c.wait_with_output().expect("output"));
            return true;
        }
        false
    });
    let output = output.expect("output");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("metrics.jsonl"), "the summary first: {text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("step ") && l.contains("loss=0.")),
        "updates: {text}"
    );
}

#[test]
fn the_last_lines_of_a_run_that_just_ended_count_even_without_a_newline() {
    let env = Env::new();
    let script =
        r#"printf '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}' >> "$REAGENT_METRICS_FILE""#;
    let id = env.start(&["sh", "-c", script]);
    wait_until("the run to end", || env.status_of(&id) == "finished");
    wait_until("both points", || points(&metrics(&env, &id), "loss") == 2);
    let list = metrics(&env, &id);
    assert_eq!(list["lines"], 2);
    assert_eq!(list["malformed"], 0);
}

/// The trend of `run` in the snapshot a cockpit starting now gets (null when it has none).
fn snapshot_trend(env: &Env, run: &str) -> Value {
    let mut conn = env.connect();
    let hello = conn.call("hello", json!({"protocol": 1}));
    hello["result"]["sync"]["trends"][run].clone()
}

#[test]
fn an_ended_runs_whole_run_trend_is_in_new_snapshots_and_survives_a_restart() {
    let env = Env::new();
    // `loss` falls over 400 steps; `acc` comes first, but `loss` is the main metric.
    let script = r#"for i in $(seq 1 400); do
            echo "{\"step\": $i, \"acc\": 0.5, \"loss\": $((1000 - i))}" >> "$REAGENT_METRICS_FILE"
        done"#;
    let id = env.start(&["sh", "-c", script]);
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    let last_step = |trend: &Value| {
        trend["points"]
            .as_array()?
            .last()
            .map(|p| p["step"].clone())
    };
    wait_until("the whole run in a new cockpit's trend", || {
        last_step(&snapshot_trend(&env, &id)) == Some(json!(400.0))
    });
    let trend = snapshot_trend(&env, &id);
    assert_eq!(trend["metric"], "loss");
    let values: Vec<f64> = (trend["points"].as_array().expect("points").iter())
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(values.len(), 16, "{trend}");
    assert!(values.windows(2).all(|w| w[1] < w[0]), "{trend}");
    // 16 slices of 25 steps: the first is the mean of 999 down to 975.
    assert_eq!(values[0], 987.0, "{trend}");

    // The snapshot shows the trend as saved: a new daemon has the same, series unread.
    env.kill_daemon();
    assert_eq!(snapshot_trend(&env, &id), trend);
}
