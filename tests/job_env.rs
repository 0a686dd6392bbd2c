//! A job's environment is its client's, never the daemon's: the keys and webhook URLs the
//! daemon holds reach no job unless a run names them (`--pass-env`), whether the run is
//! started, queued, part of a sweep or a retry.

mod common;

use common::{Env, wait_until, walk};
use serde_json::{Value, json};

const DAEMON_KEY: &str = "sk-daemon-only-4f1c";
const CLIENT_KEY: &str = "sk-client-shell-77ab";
const HOOK: &str = "https://hooks.example/services/never-in-a-job";

/// An installation whose daemon holds an OpenAI key and a Slack webhook in its environment
/// (the webhook named by `[notify.slack]`), plus a variable only it has.
fn secret_env(extra_daemon_vars: &[(&str, &str)]) -> Env {
    let env = Env::new();
    env.write_config("[notify.slack]\nwebhook_url_env = \"TEST_HOOK_URL\"\n");
    let mut vars = vec![
        ("OPENAI_API_KEY", DAEMON_KEY),
        ("TEST_HOOK_URL", HOOK),
        ("DAEMON_ONLY", "daemon-var"),
    ];
    vars.extend_from_slice(extra_daemon_vars);
    env.start_daemon(&vars);
    env
}

/// `reagent ARGS` from a shell that has a key, the webhook and a variable of its own.
fn from_shell(env: &Env, args: &[&str]) -> String {
    let out = env
        .cmd(args)
        .env("OPENAI_API_KEY", CLIENT_KEY)
        .env("TEST_HOOK_URL", HOOK)
        .env("CLIENT_ONLY", "from-the-shell")
        .output()
        .expect("run reagent");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The whole log of a run once it ended.
fn output(env: &Env, id: &str) -> String {
    env.run(&["wait", id]);
    env.ok(&["logs", id])
}

#[test]
fn a_job_gets_its_clients_environment_without_the_daemons_secrets() {
    let env = secret_env(&[]);
    let plain = from_shell(&env, &["run", "--env", "MINE=1", "--", "env"]);
    let passed = from_shell(&env, &["run", "--pass-env", "OPENAI_API_KEY", "--", "env"]);

    let log = output(&env, &plain);
    assert!(log.contains("CLIENT_ONLY=from-the-shell"), "{log}");
    assert!(log.contains("MINE=1") && log.contains("PATH="), "{log}");
    assert!(
        log.contains("TERM=xterm-256color"),
        "the PTY's terminal: {log}"
    );
    for absent in [CLIENT_KEY, DAEMON_KEY, "hooks.example", "DAEMON_ONLY"] {
        assert!(!log.contains(absent), "{absent} reached the job: {log}");
    }
    assert_eq!(
        env.get(&plain)["env_keys"],
        json!(["MINE"]),
        "only its own keys"
    );

    let log = output(&env, &passed);
    assert!(
        log.contains(&format!("OPENAI_API_KEY={CLIENT_KEY}")),
        "{log}"
    );
    assert!(
        !log.contains(DAEMON_KEY) && !log.contains("hooks.example"),
        "{log}"
    );
    assert_eq!(env.get(&passed)["env_keys"], json!([]));

    // Neither the database nor the logs hold the client's environment; only the passing
    // run's output and the private spec files do.
    let passed_log = env.path().join("runs").join(&passed).join("output.log");
    for file in walk(env.path()) {
        if file.ends_with("spec.json") || file == passed_log {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(CLIENT_KEY),
            "{} holds the key",
            file.display()
        );
    }
}

#[test]
fn a_client_that_sends_no_environment_gets_a_minimal_one() {
    let env = secret_env(&[]);
    let mut conn = env.connect();
    let reply = conn.call("run.start", json!({"command": ["env"]}));
    let id = reply["result"]["id"].as_str().expect("a run").to_string();
    let log = output(&env, &id);
    assert!(log.contains("PATH=") && log.contains("HOME="), "{log}");
    for absent in [DAEMON_KEY, "hooks.example", "DAEMON_ONLY", "CLIENT_ONLY"] {
        assert!(!log.contains(absent), "{absent} reached the job: {log}");
    }
    let reply = conn.call(
        "run.start",
        json!({"command": ["env"], "client_env": [["A=B", "1"]]}),
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`client_env`: `A=B`"), "{reply}");
}

#[test]
fn queued_swept_and_retried_runs_get_the_clients_environment_too() {
    let env = secret_env(&[("REAGENT_FAKE_GPUS", "1")]);
    let probe = "echo \"probe:$CLIENT_ONLY:${OPENAI_API_KEY:-none}:${DAEMON_ONLY:-none}\"";
    let expected = "probe:from-the-shell:none:none";

    let queued = from_shell(&env, &["run", "--priority", "1", "--", "sh", "-c", probe]);
    assert!(output(&env, &queued).contains(expected));

    let sweep = from_shell(
        &env,
        &["sweep", "--grid", "x=1", "--json", "--", "sh", "-c", probe],
    );
    let sweep: Value = serde_json::from_str(&sweep).expect("sweep json");
    let run = sweep["runs"][0].as_str().expect("a sweep run").to_string();
    assert!(output(&env, &run).contains(expected));

    let oom = format!("{probe}; echo 'CUDA out of memory'; exit 1");
    let first = from_shell(
        &env,
        &[
            "run",
            "--gpus",
            "1",
            "--retry-gpu",
            "1",
            "--env",
            "MINE=2",
            "--",
            "sh",
            "-c",
            &oom,
        ],
    );
    let command = env.get(&first)["command"].clone();
    let attempts = || -> Vec<Value> {
        let runs = env.runs().into_iter();
        runs.filter(|r| r["command"] == command).collect()
    };
    wait_until("the retry to have failed too", || {
        let attempts = attempts();
        attempts.len() == 2 && attempts.iter().all(|r| r["status"] == "failed")
    });
    let retry = attempts()
        .into_iter()
        .find(|r| r["id"] != first.as_str())
        .expect("the retry");
    assert!(output(&env, &first).contains(expected));
    let retry_id = retry["id"].as_str().unwrap_or_default();
    assert!(output(&env, retry_id).contains(expected));
    let keys = retry["env_keys"].as_array().cloned().unwrap_or_default();
    assert!(keys.contains(&json!("MINE")), "{retry}");
    assert!(!keys.contains(&json!("CLIENT_ONLY")), "{retry}");
}
