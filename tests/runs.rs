//! Runs through the CLI, as a user or a script drives them.

mod common;

use common::{Env, wait_until};

#[test]
fn a_failing_run_reports_its_exit_code_everywhere() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "echo hello; exit 3"]);
    assert_eq!(id.len(), 8, "prints the new run's id: {id:?}");

    let wait = env.run(&["wait", &id]);
    assert_eq!(
        wait.status.code(),
        Some(3),
        "wait exits with the run's code"
    );
    assert!(env.ok(&["logs", &id]).contains("hello"));

    let run = env.get(&id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["reason"], "exited with code 3");
    assert!(env.ok(&["runs"]).contains("failed"));
}

#[test]
fn runs_are_found_by_name_and_unique_prefix() {
    let env = Env::new();
    let out = env.ok(&[
        "run",
        "--name",
        "train",
        "--env",
        "GREETING=hi there",
        "--",
        "sh",
        "-c",
        "echo $GREETING",
    ]);
    let id = out.trim();
    assert_eq!(env.run(&["wait", "train"]).status.code(), Some(0));
    assert!(env.ok(&["logs", "train"]).contains("hi there"));
    assert!(env.ok(&["logs", &id[..3]]).contains("hi there"));
    let run = env.get(id);
    assert_eq!(run["status"], "finished");
    assert_eq!(run["name"], "train");
    assert_eq!(
        run["env_keys"],
        serde_json::json!(["GREETING"]),
        "env values stay in the daemon"
    );
    assert!(!env.ok(&["runs", "--json"]).contains("hi there"));

    let missing = env.run(&["logs", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(
        stderr.matches("no run matches `nope`").count(),
        1,
        "said once: {stderr}"
    );
}

#[test]
fn cwd_and_tail_and_input() {
    let env = Env::new();
    let cwd = env.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let out = env.ok(&[
        "run",
        "--cwd",
        cwd.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "pwd; seq 1 100",
    ]);
    let id = out.trim();
    env.ok(&["wait", id]);
    let log = env.ok(&["logs", id]);
    assert!(log.contains(cwd.to_str().unwrap()), "{log}");
    let tail = env.ok(&["logs", id, "--tail", "3"]);
    assert_eq!(
        tail.lines().map(str::trim).collect::<Vec<_>>(),
        ["98", "99", "100"]
    );

    let reader = env.start(&["sh", "-c", "read line; echo got:$line"]);
    env.ok(&["input", &reader, "forty two"]);
    assert_eq!(env.run(&["wait", &reader]).status.code(), Some(0));
    assert!(env.ok(&["logs", &reader]).contains("got:forty two"));
    let late = env.run(&["input", &reader, "again"]);
    assert!(String::from_utf8_lossy(&late.stderr).contains("is not running"));
}

#[test]
fn stop_escalates_to_sigkill_after_the_grace() {
    let env = Env::new();
    let stubborn = env.start(&[
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 1; done",
    ]);
    wait_until("the job to start", || {
        env.ok(&["logs", &stubborn]).contains("ready")
    });
    env.ok(&["stop", &stubborn, "--grace", "0.5"]);
    let run = env.get(&stubborn);
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["signal"], 9);

    let polite = env.start(&["sleep", "100"]);
    wait_until("the run to be running", || {
        env.status_of(&polite) == "running"
    });
    env.ok(&["stop", &polite]);
    let run = env.get(&polite);
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["signal"], 15);
    assert_eq!(env.run(&["wait", &polite]).status.code(), Some(128 + 15));
}

#[test]
fn logs_follow_streams_until_the_run_ends() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "echo first; read x; echo second; echo last"]);
    let follow = env
        .cmd(&["logs", "-f", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the job to print", || {
        env.ok(&["logs", &id]).contains("first")
    });
    env.ok(&["input", &id, "go"]);
    let output = follow.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("first").count(), 1, "nothing twice: {text}");
    assert!(
        text.contains("second") && text.ends_with("last\r\n"),
        "{text:?}"
    );
}

#[test]
fn a_hundred_runs_all_finish() {
    let env = Env::new();
    let ids: Vec<String> = (0..100).map(|_| env.start(&["true"])).collect();
    wait_until("all runs to finish", || {
        env.runs()
            .iter()
            .filter(|r| r["status"] == "finished")
            .count()
            == 100
    });
    assert!(ids.iter().all(|id| env.status_of(id) == "finished"));
}

#[test]
fn bad_requests_get_clear_errors() {
    let env = Env::new();
    let empty_cwd = env.run(&["run", "--cwd", "/nonexistent/dir", "--", "true"]);
    assert_eq!(empty_cwd.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&empty_cwd.stderr).contains("/nonexistent/dir is not a directory")
    );
    let bad_env = env.run(&["run", "--env", "NOVALUE", "--", "true"]);
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("NOVALUE"));
}

#[test]
fn logs_plain_shows_what_a_terminal_showed_and_follow_exits_with_the_runs_code() {
    let env = Env::new();
    let id = env.start(&[
        "sh",
        "-c",
        r"printf 'start\n'; for p in 10 50 100; do printf '\r\033[32m%s%%\033[0m' $p; done; printf '\ndone\n'; exit 3",
    ]);
    let follow = env.run(&["logs", "-f", &id]);
    assert_eq!(follow.status.code(), Some(3), "logs -f exits like wait");
    let plain = env.ok(&["logs", "--plain", &id]);
    assert_eq!(plain, "start\n100%\ndone\n");
    assert_eq!(env.ok(&["logs", "--plain", "--tail", "1", &id]), "done\n");
    let raw = env.ok(&["logs", &id]);
    assert!(
        raw.contains("\r\x1b[32m10%"),
        "without --plain the log is raw"
    );
}

#[test]
fn a_command_that_cannot_start_is_an_error_of_run() {
    let env = Env::new();
    let out = env.run(&["run", "--", "does-not-exist"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`does-not-exist` is not found"), "{stderr}");
    assert!(out.stdout.is_empty(), "no run id is printed");
    assert!(env.runs().is_empty(), "and no run is recorded");
}
