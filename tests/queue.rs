//! The GPU queue with fake GPUs: runs wait for free GPUs, start with distinct
//! `CUDA_VISIBLE_DEVICES`, give them back when they end, and the queue survives a restart.

mod common;

use common::{Env, wait_until};
use serde_json::Value;

/// Starts the daemon with `n` fake GPUs and waits until it has sampled them.
fn with_fake_gpus(env: &Env, n: usize) {
    env.start_daemon(&[("REAGENT_FAKE_GPUS", &n.to_string())]);
    wait_until("the fake GPUs to be sampled", || {
        let report: Value = serde_json::from_str(&env.ok(&["gpus", "--json"])).expect("gpus json");
        report["gpus"].as_array().is_some_and(|g| g.len() == n)
    });
}

const ECHO_CUDA: &str = "echo cuda=[$CUDA_VISIBLE_DEVICES]; sleep 2";

fn ms(run: &Value, key: &str) -> i64 {
    run[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} missing in {run}"))
}

#[test]
fn two_runs_share_two_gpus_and_the_third_waits_for_one() {
    let env = Env::new();
    with_fake_gpus(&env, 2);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            env.ok(&["run", "--gpus", "1", "--", "sh", "-c", ECHO_CUDA])
                .trim()
                .to_string()
        })
        .collect();
    wait_until("the third run to be queued with a reason", || {
        let run = env.get(&ids[2]);
        run["status"] == "queued"
            && run["reason"]
                .as_str()
                .is_some_and(|r| r.contains("waiting for 1 GPU: 0 of 2 free"))
    });
    let queue = env.ok(&["queue"]);
    assert!(queue.contains("waiting for 1 GPU"), "{queue}");
    assert!(queue.contains("running on GPU"), "{queue}");
    for id in &ids {
        assert_eq!(env.run(&["wait", id]).status.code(), Some(0));
    }
    let runs: Vec<Value> = ids.iter().map(|id| env.get(id)).collect();
    let devices: Vec<String> = ids
        .iter()
        .map(|id| {
            let log = env.ok(&["logs", id]);
            let start = log.find("cuda=[").expect("the job printed its devices") + 6;
            log[start..start + 1].to_string()
        })
        .collect();
    assert_ne!(devices[0], devices[1], "distinct GPUs for the first two");
    assert!(["0", "1"].contains(&devices[2].as_str()));
    let first_end = ms(&runs[0], "ended_at").min(ms(&runs[1], "ended_at"));
    assert!(
        ms(&runs[0], "started_at").max(ms(&runs[1], "started_at")) < first_end,
        "the first two ran at the same time"
    );
    assert!(
        ms(&runs[2], "started_at") >= first_end,
        "the third started only after one ended"
    );
    assert!(env.ok(&["queue"]).contains("the queue is empty"));
}

#[test]
fn the_queue_and_assignments_survive_a_daemon_restart() {
    let env = Env::new();
    with_fake_gpus(&env, 1);
    let holder = env
        .ok(&["run", "--gpus", "1", "--", "sleep", "60"])
        .trim()
        .to_string();
    wait_until("the holder to run", || env.status_of(&holder) == "running");
    let waiter = env
        .ok(&[
            "run",
            "--gpu-ids",
            "0",
            "--priority",
            "3",
            "--",
            "sh",
            "-c",
            "echo cuda=[$CUDA_VISIBLE_DEVICES]",
        ])
        .trim()
        .to_string();
    wait_until("the waiter to wait", || {
        env.get(&waiter)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting for GPU 0"))
    });
    env.kill_daemon();
    with_fake_gpus(&env, 1);
    let queue: Vec<Value> =
        serde_json::from_str(&env.ok(&["queue", "--json"])).expect("queue json");
    let entry = |id: &str| {
        queue
            .iter()
            .find(|e| e["run"] == id)
            .cloned()
            .expect("in the queue")
    };
    assert_eq!(
        entry(&holder)["assigned"],
        serde_json::json!([0]),
        "assignment kept"
    );
    assert!(
        entry(&waiter)["waiting"]
            .as_str()
            .is_some_and(|w| w.contains("GPU 0"))
    );
    assert_eq!(entry(&waiter)["priority"], 3);
    assert_eq!(env.status_of(&waiter), "queued");
    env.ok(&["stop", &holder, "--grace", "1"]);
    assert_eq!(env.run(&["wait", &waiter]).status.code(), Some(0));
    assert!(env.ok(&["logs", &waiter]).contains("cuda=[0]"));
}

#[test]
fn a_run_that_dies_of_cuda_out_of_memory_is_requeued_as_a_new_run() {
    let env = Env::new();
    with_fake_gpus(&env, 1);
    let script = "echo 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB'; exit 1";
    let first = env
        .ok(&[
            "run",
            "--gpus",
            "1",
            "--retry-gpu",
            "1",
            "--name",
            "oom",
            "--",
            "sh",
            "-c",
            script,
        ])
        .trim()
        .to_string();
    wait_until("the retry to have failed too", || {
        let runs = env.runs();
        runs.len() == 2 && runs.iter().all(|r| r["status"] == "failed")
    });
    let runs = env.runs();
    let retry = runs
        .iter()
        .find(|r| r["id"] != first.as_str())
        .expect("a second attempt");
    let reason = env.get(&first)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains(&format!(
            "retried as {}",
            retry["id"].as_str().unwrap_or_default()
        )),
        "{reason}"
    );
    assert_eq!(retry["name"], "oom");
    assert_eq!(retry["command"], env.get(&first)["command"]);
    // One retry only: the second attempt's failure is final.
    assert!(env.ok(&["queue"]).contains("the queue is empty"));

    let plain = env
        .ok(&["run", "--", "sh", "-c", script])
        .trim()
        .to_string();
    assert_eq!(env.run(&["wait", &plain]).status.code(), Some(1));
    assert_eq!(
        env.runs().len(),
        4 - 1,
        "runs without --gpus are never requeued"
    );
}

#[test]
fn a_queued_run_says_why_when_the_gpus_are_gone_after_a_restart() {
    let env = Env::new();
    with_fake_gpus(&env, 1);
    env.ok(&["run", "--gpus", "1", "--", "sleep", "60"]);
    let waiter = env
        .ok(&["run", "--gpus", "1", "--", "true"])
        .trim()
        .to_string();
    wait_until("the waiter to wait", || {
        env.get(&waiter)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("0 of 1 free"))
    });
    env.kill_daemon();
    // The next daemon has no fake GPUs, and this machine has no driver.
    env.ok(&["daemon", "start"]);
    wait_until("the reason to name the missing driver", || {
        env.get(&waiter)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no GPUs: no GPU driver"))
    });
    assert_eq!(env.status_of(&waiter), "queued");
}

#[test]
fn a_queued_run_can_be_stopped_and_an_impossible_gpu_is_refused() {
    let env = Env::new();
    with_fake_gpus(&env, 1);
    let holder = env.ok(&["run", "--gpus", "1", "--", "sleep", "600"]);
    let holder = holder.trim();
    let waiting = env.ok(&["run", "--gpus", "1", "--", "true"]);
    let waiting = waiting.trim();
    wait_until("the second run to queue", || {
        env.status_of(waiting) == "queued"
    });
    env.ok(&["stop", waiting]);
    let run = env.get(waiting);
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["reason"], "stopped before it started");
    let queue = env.ok(&["queue", "--json"]);
    assert!(!queue.contains(waiting), "it left the queue: {queue}");
    env.ok(&["stop", holder]);

    let refused = env.run(&["run", "--gpu-ids", "7", "--", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no GPU 7 here") && stderr.contains("GPUs 0"),
        "{stderr}"
    );
}
