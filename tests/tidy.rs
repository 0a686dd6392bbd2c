//! Tidying runs: `rm`, `clean`, `rerun` and the filters of `runs`, through the CLI.

mod common;

use common::{Env, wait_until};
use serde_json::Value;

/// Starts `reagent run ARGS`, waits for the run to end, and returns its id.
fn ended_run(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let id = env.ok(&all).trim().to_string();
    env.run(&["wait", &id]);
    id
}

fn ids(json: &str) -> Vec<String> {
    let runs: Vec<Value> = serde_json::from_str(json).expect("a JSON array of runs");
    runs.iter()
        .map(|run| run["id"].as_str().expect("an id").to_string())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rm_removes_the_run_its_folder_and_series_for_good() {
    let env = Env::new();
    let metrics = r#"echo '{"step":1,"loss":2.5}' >> "$REAGENT_METRICS_FILE"; echo hello"#;
    let id = ended_run(&env, &["--name", "old", "--", "sh", "-c", metrics]);
    let kept = ended_run(&env, &["--", "true"]);
    wait_until("the metrics to be stored", || {
        env.ok(&["metrics", &id, "--json"]).contains("loss")
    });
    let folder = env.path().join("runs").join(&id);
    assert!(folder.join("output.log").is_file());
    assert!(folder.join("series").is_dir());

    assert_eq!(env.ok(&["rm", "old"]), format!("removed old ({id})\n"));
    assert!(!folder.exists(), "the log and series went with the run");
    assert_eq!(ids(&env.ok(&["runs", "--json"])), [kept.as_str()]);
    let logs = env.run(&["logs", &id]);
    assert_eq!(logs.status.code(), Some(1));
    assert!(stderr(&logs).contains(&format!("no run matches `{id}`")));

    // Its rows are gone from the database: a new daemon does not bring it back.
    env.kill_daemon();
    assert_eq!(ids(&env.ok(&["runs", "--json"])), [kept]);
    assert!(env.run(&["metrics", &id]).status.code() == Some(1));
}

#[test]
fn rm_refuses_a_live_run_and_then_removes_nothing() {
    let env = Env::new();
    let done = ended_run(&env, &["--", "true"]);
    let live = env.ok(&["run", "--name", "busy", "--", "sleep", "30"]);
    let live = live.trim();
    wait_until("the run to be running", || env.status_of(live) == "running");

    let out = env.run(&["rm", &done, "busy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run busy is running: only ended runs can be removed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.runs().len(),
        2,
        "nothing removed when one run cannot go"
    );
    assert!(env.path().join("runs").join(&done).is_dir());

    env.ok(&["stop", live]);
    assert_eq!(env.ok(&["rm", &done, "busy"]).lines().count(), 2);
    assert!(env.runs().is_empty());
}

#[test]
fn clean_picks_by_status_and_age() {
    let env = Env::new();
    let finished = ended_run(&env, &["--", "true"]);
    let failed = ended_run(&env, &["--", "sh", "-c", "exit 3"]);
    let stopped = env.ok(&["run", "--", "sleep", "30"]).trim().to_string();
    wait_until("the run to be running", || {
        env.status_of(&stopped) == "running"
    });
    env.ok(&["stop", &stopped]);

    let young = env.ok(&["clean", "--failed", "--older-than", "1h"]);
    assert_eq!(
        young, "no failed runs to remove\n",
        "they ended seconds ago"
    );
    assert_eq!(env.runs().len(), 3);

    let out = env.ok(&["clean", "--failed", "--older-than", "0s", "--json"]);
    assert_eq!(
        ids(&out),
        [failed.as_str()],
        "--failed removes only failed runs"
    );
    assert!(!env.path().join("runs").join(&failed).exists());

    assert_eq!(
        ids(&env.ok(&["clean", "--json"])),
        [finished],
        "finished by default"
    );
    assert_eq!(ids(&env.ok(&["clean", "--all-ended", "--json"])), [stopped]);
    assert!(env.runs().is_empty());

    let out = env.run(&["clean", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`soon` is not a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rerun_keeps_cwd_env_metrics_and_alert_rules_and_may_replace_the_command() {
    let env = Env::new();
    let cwd = env.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let script = r#"echo "seed=$SEED in $(pwd) to $REAGENT_METRICS_FILE"; echo '{"step":1,"loss":9}' >> "$REAGENT_METRICS_FILE""#;
    let first = ended_run(
        &env,
        &[
            "--name",
            "train",
            "--cwd",
            cwd.to_str().unwrap(),
            "--env",
            "SEED=7",
            "--metrics",
            "m.jsonl",
            "--alert",
            "loss > 5",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let said = format!(
        "seed=7 in {} to {}",
        cwd.display(),
        cwd.join("m.jsonl").display()
    );
    assert!(env.ok(&["logs", &first]).contains(&said));

    let again = env.ok(&["rerun", "train"]).trim().to_string();
    assert_eq!(again.len(), 8, "prints the new run's id: {again:?}");
    assert_ne!(again, first);
    assert_eq!(env.run(&["wait", &again]).status.code(), Some(0));
    assert!(
        env.ok(&["logs", &again]).contains(&said),
        "same cwd, env, metrics file"
    );
    let run = env.get(&again);
    assert_eq!(run["name"], "train");
    assert_eq!(run["env_keys"], serde_json::json!(["SEED"]));
    wait_until("the rerun's own alert rule to fire", || {
        env.alerts(true)
            .iter()
            .any(|alert| alert["run"] == again.as_str())
    });

    let replaced = env.ok(&["rerun", &first, "--", "sh", "-c", "echo other $SEED; pwd"]);
    let replaced = replaced.trim();
    env.run(&["wait", replaced]);
    let log = env.ok(&["logs", replaced]);
    assert!(log.contains("other 7"), "{log}");
    assert!(log.contains(&cwd.display().to_string()), "{log}");

    let missing = env.run(&["rerun", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no run matches `nope`"));
}

#[test]
fn rerun_asks_the_queue_for_the_same_gpus() {
    let env = Env::new();
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "1")]);
    wait_until("the fake GPU to be sampled", || {
        env.ok(&["gpus", "--json"]).contains("\"index\"")
    });
    let echo = "echo cuda=[$CUDA_VISIBLE_DEVICES]";
    let first = ended_run(&env, &["--gpus", "1", "--", "sh", "-c", echo]);
    let holder = env.ok(&["run", "--gpus", "1", "--", "sleep", "30"]);
    let holder = holder.trim();
    wait_until("the GPU to be taken", || env.status_of(holder) == "running");

    let again = env.ok(&["rerun", &first]).trim().to_string();
    wait_until("the rerun to wait for the GPU", || {
        let run = env.get(&again);
        run["status"] == "queued" && run["reason"].as_str().is_some_and(|r| r.contains("GPU"))
    });
    env.ok(&["stop", holder]);
    assert_eq!(env.run(&["wait", &again]).status.code(), Some(0));
    assert!(env.ok(&["logs", &again]).contains("cuda=[0]"));
}

#[test]
fn runs_filter_by_status_name_and_limit() {
    let env = Env::new();
    let lr1 = ended_run(&env, &["--name", "lr-1", "--", "true"]);
    let lr2 = ended_run(&env, &["--name", "lr-2", "--", "sh", "-c", "exit 1"]);
    let lr3 = ended_run(&env, &["--name", "lr-3", "--", "true"]);
    let eval = ended_run(&env, &["--name", "eval", "--", "true"]);
    let list = |args: &[&str]| {
        let mut all = vec!["runs", "--json"];
        all.extend_from_slice(args);
        ids(&env.ok(&all))
    };
    assert_eq!(list(&["--status", "failed"]), [lr2.as_str()]);
    assert_eq!(
        list(&["--name", "lr-*"]),
        [lr1.clone(), lr2.clone(), lr3.clone()]
    );
    assert_eq!(
        list(&["--name", "lr-?", "--status", "finished"]),
        [lr1, lr3.clone()]
    );
    assert_eq!(
        list(&["--limit", "2"]),
        [lr3, eval.clone()],
        "the newest, oldest first"
    );
    assert_eq!(list(&["--name", "ev*l", "--limit", "5"]), [eval]);
    assert!(list(&["--name", "nothing*"]).is_empty());

    let table = env.ok(&["runs", "--status", "failed"]);
    assert_eq!(
        table.lines().count(),
        2,
        "a header and the one run: {table}"
    );
    assert!(table.contains("lr-2"));
    let out = env.run(&["runs", "--status", "done"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`done` is not a run status"),
        "{}",
        stderr(&out)
    );
}
