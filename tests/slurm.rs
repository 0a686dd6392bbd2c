//! Runs and sweeps on Slurm, end to end: against a real one-node Slurm
//! (`scripts/slurm-local.sh`), a run waits in Slurm's queue and says why, runs, streams its
//! log and metrics, raises alerts, ends with its exit code, is stopped with `scancel`, fails
//! at its time limit in Slurm's words, and outlives a `kill -9` of the daemon; a sweep is one
//! job array that never runs more than `--parallel` tasks at once. Against a stand-in of
//! Slurm's commands (`tests/standin/slurm_stub.sh`), a machine without them and a controller
//! that does not answer are clear errors.
//!
//! The tests of the real Slurm need `sinfo` to answer with a node that takes jobs. Without
//! one they print why and pass; with `REAGENT_SLURM=1` (CI, after running the script) that
//! is a failure.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, wait_until};
use serde_json::{Value, json};

/// Whether a real Slurm takes jobs here, or why not; with `REAGENT_SLURM=1`, a Slurm that
/// does not is a failure.
fn real_slurm() -> Result<(), String> {
    let out = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .stdin(Stdio::null())
        .output();
    let why = match out {
        Err(err) => format!(
            "no Slurm here (`sinfo`: {err}); `scripts/slurm-local.sh` (as root) installs and \
             starts a one-node one"
        ),
        Ok(out) if !out.status.success() => format!(
            "Slurm does not answer: sinfo says {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(out) => {
            let states = String::from_utf8_lossy(&out.stdout).to_string();
            let up = ["idle", "mixed", "allocated", "completing"];
            if states.lines().any(|state| up.contains(&state.trim())) {
                return Ok(());
            }
            format!("no Slurm node takes jobs (sinfo says {:?})", states.trim())
        }
    };
    let required = std::env::var("REAGENT_SLURM").is_ok_and(|v| v == "1");
    assert!(!required, "REAGENT_SLURM=1, yet {why}");
    Err(why)
}

/// A fresh installation that looks at Slurm's queue often, when a real Slurm answers;
/// otherwise `None`, the skip said on the terminal (past the harness's capture).
fn slurm_env(test: &str) -> Option<Env> {
    if let Err(why) = real_slurm() {
        let _ = writeln!(std::io::stderr(), "skipped tests/slurm.rs {test}: {why}");
        return None;
    }
    let env = Env::new();
    env.write_config("[slurm]\npoll_secs = 0.5\n");
    Some(env)
}

/// Cancels the Slurm jobs of an installation's runs that have not ended, however the test
/// ends: a failed test leaves no job on the cluster.
struct Cancel<'a>(&'a Env);

impl Drop for Cancel<'_> {
    fn drop(&mut self) {
        let Ok(out) = self.0.cmd(&["runs", "--json"]).output() else {
            return;
        };
        let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for run in runs.iter().filter(|run| !ended(run)) {
            if let Some(job) = run["executor"]["job"].as_str() {
                let _ = Command::new("scancel").arg(job).status();
            }
        }
    }
}

fn ended(run: &Value) -> bool {
    ["finished", "failed", "stopped", "lost"].contains(&run["status"].as_str().unwrap_or(""))
}

/// The stand-in training job.
fn train() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/slurm_train.py");
    path.to_string_lossy().into_owned()
}

/// `reagent run --on slurm FLAGS -- COMMAND` in the installation's folder; the run's id.
fn submit(env: &Env, flags: &[&str], command: &[&str]) -> String {
    let cwd = env.path().to_string_lossy().into_owned();
    let mut args = vec!["run", "--on", "slurm", "--cwd", &cwd];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(command);
    env.ok(&args).trim().to_string()
}

/// Waits up to `limit` for the run to satisfy `done`; the run as it then was.
fn wait_run(
    env: &Env,
    id: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let run = env.get(id);
        if done(&run) {
            return run;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}: {run:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reason(run: &Value) -> &str {
    run["reason"].as_str().unwrap_or_default()
}

/// The log as `reagent logs` prints it.
fn log(env: &Env, id: &str) -> String {
    env.ok(&["logs", id])
}

/// Points of the run's `loss` series.
fn loss_points(env: &Env, id: &str) -> u64 {
    let list: Value =
        serde_json::from_str(&env.ok(&["metrics", id, "--json"])).expect("metrics --json");
    list["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "loss"))
        .map_or(0, |m| m["points"].as_u64().unwrap_or(0))
}

#[test]
fn a_run_on_slurm_waits_in_its_queue_then_runs_streams_its_log_and_metrics_and_alerts() {
    let Some(env) = slurm_env("a_run_on_slurm_waits…") else {
        return;
    };
    let _cancel = Cancel(&env);
    let mut conn = env.connect();
    conn.call("hello", json!({"protocol": 1}));
    // `--begin` keeps the job pending a few seconds, so its wait is seen.
    let train = train();
    let id = submit(
        &env,
        &["--name", "train", "--sbatch-arg=--begin=now+3"],
        &[
            "python3", &train, "--steps", "8", "--every", "0.3", "--nan-at", "4",
        ],
    );
    let run = wait_run(&env, &id, "Slurm's reason", common::TIMEOUT, |run| {
        reason(run).contains("BeginTime")
    });
    assert_eq!(run["status"], "queued");
    assert_eq!(reason(&run), "waiting in Slurm's queue: BeginTime");
    let job = run["executor"]["job"]
        .as_str()
        .expect("a job id")
        .to_string();
    assert!(job.bytes().all(|b| b.is_ascii_digit()), "{job}");
    let listed = env.ok(&["runs"]);
    assert!(
        listed.contains(&format!("slurm:{job}@reagent-local"))
            && listed.contains("queued (waiting in Slurm's queue: BeginTime)"),
        "{listed}"
    );

    // `logs -f` from while it waits until it ends: every line, and the job's exit code.
    let follower = env
        .cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("reagent logs -f");
    let mut statuses: Vec<String> = Vec::new();
    while !statuses
        .last()
        .is_some_and(|s| s != "queued" && s != "running")
    {
        let event = conn.next_event();
        if event["type"] == "run" && event["run"]["id"] == id.as_str() {
            let status = event["run"]["status"].as_str().unwrap_or("").to_string();
            if statuses.last() != Some(&status) {
                statuses.push(status);
            }
        }
    }
    assert_eq!(statuses, ["queued", "running", "finished"]);
    let followed = follower.wait_with_output().expect("logs -f ends");
    assert_eq!(followed.status.code(), Some(0));
    let text = String::from_utf8_lossy(&followed.stdout);
    for line in [
        "step 1 loss 1.0",
        "step 4 loss nan",
        "step 8 loss 0.125",
        "done",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    assert!(text.contains(&format!("as run {id}")), "{text}");

    let run = env.get(&id);
    assert_eq!(
        (&run["exit_code"], &run["reason"]),
        (&json!(0), &Value::Null)
    );
    wait_until("every metric point", || loss_points(&env, &id) == 8);
    let nan = env
        .alerts(false)
        .into_iter()
        .find(|alert| alert["rule"] == "nan" && alert["run"] == id.as_str())
        .expect("the NaN alert");
    assert_eq!(nan["message"], "loss is NaN at step 4");
}

#[test]
fn a_failing_job_and_a_submission_slurm_refuses_fail_in_slurms_words() {
    let Some(env) = slurm_env("a_failing_job…") else {
        return;
    };
    let _cancel = Cancel(&env);
    // Scripts and output go to a folder of their own, as on a cluster's shared filesystem.
    let shared = env.path().join("shared");
    env.write_config(format!("[slurm]\npoll_secs = 0.5\ndir = {shared:?}\n"));
    let train = train();
    let failing = submit(
        &env,
        &[],
        &["python3", &train, "--steps", "1", "--exit", "3"],
    );
    // This node has no GPUs to give (no GRES): sbatch refuses the job, and `reagent run`
    // says so in Slurm's words.
    let cwd = env.path().to_string_lossy().into_owned();
    let out = env.run(&[
        "run", "--on", "slurm", "--gpus", "1", "--cwd", &cwd, "--", "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let said = "failed: sbatch refused the job: sbatch: error: ";
    assert!(
        err.contains(said) && err.contains("Invalid generic resource"),
        "{err}"
    );
    let refused = (env.runs().into_iter())
        .find(|run| run["command"] == json!(["true"]))
        .expect("the refused run");
    assert_eq!(refused["status"], "failed");
    assert_eq!(
        refused["executor"],
        json!({"kind": "slurm", "job": null, "cluster": null, "stop_by": null})
    );

    let waited = env.run(&["wait", &failing]);
    assert_eq!(waited.status.code(), Some(3));
    let run = env.get(&failing);
    assert_eq!(run["status"], "failed");
    assert_eq!(
        reason(&run),
        "exited with code 3 (Slurm: FAILED, NonZeroExitCode)"
    );

    // Its script, output and metrics are in the shared folder; its log reads them there.
    let folder = shared.join(&failing);
    let script = std::fs::read_to_string(folder.join("job.sh")).expect("job.sh");
    let output = format!("#SBATCH --output='{}/output.log'", folder.display());
    assert!(script.contains(&output), "{script}");
    let written = std::fs::read_to_string(folder.join("output.log")).expect("output.log");
    assert!(written.contains("step 1 loss 1.0"), "{written}");
    assert!(log(&env, &failing).contains("step 1 loss 1.0"));
    wait_until("its metric point", || loss_points(&env, &failing) == 1);
    env.ok(&["rm", &failing]);
    assert!(
        !folder.exists(),
        "removing the run removes its shared folder"
    );
}

#[test]
fn stop_cancels_a_waiting_job_at_once_and_a_running_one_after_sigterm() {
    let Some(env) = slurm_env("stop_cancels…") else {
        return;
    };
    let _cancel = Cancel(&env);
    let train = train();
    let running = submit(&env, &[], &["python3", &train, "--steps", "10000"]);
    let waiting = submit(&env, &["--sbatch-arg=--begin=now+600"], &["true"]);
    wait_run(&env, &running, "the job to run", common::TIMEOUT, |run| {
        run["status"] == "running"
    });
    wait_until("its first steps", || log(&env, &running).contains("step 2"));
    let waiting_run = wait_run(&env, &waiting, "Slurm's reason", common::TIMEOUT, |run| {
        reason(run).contains("BeginTime")
    });

    // SIGTERM reaches the program itself, which saves its checkpoint and exits.
    let stopped = env.ok(&["stop", &running, "--grace", "20"]);
    assert_eq!(
        stopped.trim(),
        format!("{running} stopped: stopped by the user")
    );
    let run = env.get(&running);
    assert_eq!(run["exit_code"], 143);
    assert!(log(&env, &running).contains("got signal 15, saving a checkpoint"));

    let stopped = env.ok(&["stop", &waiting]);
    assert_eq!(
        stopped.trim(),
        format!("{waiting} stopped: stopped before it started")
    );
    let job = waiting_run["executor"]["job"].as_str().expect("job");
    let slurm = Command::new("scontrol")
        .args(["show", "job", "-o", job])
        .output()
        .expect("scontrol");
    let slurm = String::from_utf8_lossy(&slurm.stdout);
    assert!(slurm.contains("JobState=CANCELLED"), "{slurm}");
}

#[test]
fn a_job_past_its_time_limit_fails_with_slurms_reason() {
    let Some(env) = slurm_env("a_job_past_its_time_limit…") else {
        return;
    };
    let _cancel = Cancel(&env);
    let id = submit(&env, &["--time", "0:01"], &["sleep", "300"]);
    // Slurm looks at time limits every 30 s or so: a 1-minute limit ends 60 to 95 s in.
    let run = wait_run(&env, &id, "the time limit", Duration::from_secs(180), ended);
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(
        reason(&run),
        "ran past its time limit (Slurm: TIMEOUT, TimeLimit)"
    );
}

#[test]
fn a_sweep_on_slurm_is_one_array_that_never_runs_more_than_parallel_at_once() {
    let Some(env) = slurm_env("a_sweep_on_slurm…") else {
        return;
    };
    let _cancel = Cancel(&env);
    let spans = env.path().join("spans");
    let task = format!(
        "echo start {{a}}{{b}} $(date +%s%N) >> {0}; sleep 3; echo end {{a}}{{b}} $(date +%s%N) >> {0}",
        spans.display()
    );
    let out = env.ok(&[
        "sweep",
        "--grid",
        "a=1,2",
        "--grid",
        "b=x,y",
        "--parallel",
        "2",
        "--on",
        "slurm",
        "--name",
        "grid",
        "--json",
        "--",
        "sh",
        "-c",
        &task,
    ]);
    let sweep: Value = serde_json::from_str(&out).expect("sweep --json");
    let ids: Vec<String> = (sweep["runs"].as_array().expect("runs").iter())
        .map(|id| id.as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 4);

    // The tasks beyond the limit wait in Slurm's queue, and say so.
    wait_until("a task held back by the array's limit", || {
        ids.iter()
            .any(|id| reason(&env.get(id)).contains("JobArrayTaskLimit"))
    });
    for id in &ids {
        wait_run(&env, id, "the sweep's runs", Duration::from_secs(60), ended);
    }
    let runs: Vec<Value> = ids.iter().map(|id| env.get(id)).collect();
    assert!(
        runs.iter().all(|run| run["status"] == "finished"),
        "{runs:#?}"
    );
    // One array: task i is point i.
    let array = runs[0]["executor"]["job"]
        .as_str()
        .expect("job")
        .split('_')
        .next()
        .unwrap_or("");
    for (index, run) in runs.iter().enumerate() {
        assert_eq!(run["executor"]["job"], format!("{array}_{index}"));
    }

    let text = std::fs::read_to_string(&spans).expect("spans");
    let mut edges: Vec<(u128, i32)> = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at: u128 = fields[2].parse().expect("a time");
            (at, if fields[0] == "start" { 1 } else { -1 })
        })
        .collect();
    assert_eq!(edges.len(), 8, "{text}");
    // An end before a start at the same instant: touching spans do not overlap.
    edges.sort();
    let mut running = 0;
    let mut most = 0;
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    assert_eq!(most, 2, "at most 2 at once, and 2 did run together: {text}");
}

#[test]
fn a_run_on_slurm_outlives_a_daemon_killed_with_sigkill_and_ends_right() {
    let Some(env) = slurm_env("a_run_on_slurm_outlives…") else {
        return;
    };
    let _cancel = Cancel(&env);
    let train = train();
    let id = submit(
        &env,
        &[],
        &[
            "python3", &train, "--steps", "30", "--every", "0.2", "--exit", "4",
        ],
    );
    wait_run(&env, &id, "the job to run", common::TIMEOUT, |run| {
        run["status"] == "running"
    });
    wait_until("its first steps", || log(&env, &id).contains("step 2 "));

    env.kill_daemon();
    env.start_daemon(&[]);
    let waited = env.run(&["wait", &id]);
    assert_eq!(waited.status.code(), Some(4));
    let run = env.get(&id);
    assert_eq!(run["status"], "failed");
    let text = log(&env, &id);
    for step in 1..=30 {
        let line = format!("step {step} loss");
        assert_eq!(text.matches(&line).count(), 1, "{line:?} once in {text}");
    }
    wait_until("every metric point", || loss_points(&env, &id) == 30);
}

/// A folder of stand-in Slurm commands (`tests/standin/slurm_stub.sh` linked under each
/// name), steered by files put next to them.
fn stub_slurm(env: &Env) -> PathBuf {
    let bin = env.path().join("slurm-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/slurm_stub.sh");
    for name in ["sbatch", "squeue", "scontrol", "scancel", "sacct"] {
        std::os::unix::fs::symlink(&stub, bin.join(name)).expect("link");
    }
    bin
}

/// The daemon's PATH with `first` before the rest.
fn path_with(first: &Path) -> String {
    format!(
        "{}:{}",
        first.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn without_slurms_commands_a_run_on_slurm_is_refused_saying_so() {
    let env = Env::new();
    let empty = env.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    env.start_daemon(&[("PATH", empty.to_str().expect("utf-8"))]);
    let out = env.run(&["run", "--on", "slurm", "--", "python3", "train.py"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`sbatch` is not on the daemon's PATH"),
        "{err}"
    );
    assert!(env.runs().is_empty(), "no run was recorded");
    let out = env.run(&["run", "--time", "1:00", "--", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--time is what a run asks of Slurm: add --on slurm"),
        "{err}"
    );
}

#[test]
fn a_controller_that_does_not_answer_is_said_and_never_leaves_a_run_hanging() {
    let env = Env::new();
    env.write_config("[slurm]\npoll_secs = 0.2\ntimeout_secs = 1\n");
    let bin = stub_slurm(&env);
    env.start_daemon(&[("PATH", &path_with(&bin))]);

    // sbatch that never answers: `reagent run` fails, and says why; so does the run.
    std::fs::write(bin.join("sbatch.hang"), "").expect("write");
    let out = env.run(&["run", "--on", "slurm", "--", "train"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`sbatch` did not answer within 1 s"), "{err}");
    let runs = env.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "failed");
    assert!(reason(&runs[0]).contains("`sbatch` did not answer within 1 s"));
    std::fs::remove_file(bin.join("sbatch.hang")).expect("rm");

    // squeue failing: the waiting run says Slurm cannot be reached, until it can again.
    let unreachable = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)";
    std::fs::write(bin.join("squeue.fail"), unreachable).expect("write");
    let id = env
        .ok(&["run", "--on", "slurm", "--", "train"])
        .trim()
        .to_string();
    let run = wait_run(
        &env,
        &id,
        "the unreachable controller",
        common::TIMEOUT,
        |run| reason(run).starts_with("cannot reach Slurm"),
    );
    assert_eq!(run["status"], "queued");
    assert_eq!(reason(&run), format!("cannot reach Slurm: {unreachable}"));
    assert_eq!(run["executor"]["cluster"], "stub");
    std::fs::remove_file(bin.join("squeue.fail")).expect("rm");
    wait_run(&env, &id, "Slurm's reason again", common::TIMEOUT, |run| {
        reason(run) == "waiting in Slurm's queue: Priority"
    });

    // Its pane is read-only: nothing can be typed into a batch job.
    let out = env.run(&["input", &id, "hello"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runs on Slurm") && err.contains("read-only"),
        "{err}"
    );
}
