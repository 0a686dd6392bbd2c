//! Notifications end to end: a real daemon posts to mock Slack and Telegram servers (real HTTP
//! on loopback) and runs a desktop notifier, retries a failing endpoint, and leaks no secret.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::mock_hook::MockHook;
use common::{Conn, Env, wait_until, walk};
use serde_json::{Value, json};

const TOKEN: &str = "123456:bot-token-never-leak-5c1e";
const HOOK_PATH: &str = "/services/T0/B0/webhook-secret-never-leak-8d2f";

/// An installation whose daemon routes failed runs to `slack` (and `extra` sinks), with the
/// webhook URL in a private file outside the state folder and the bot token in the daemon's
/// environment only.
fn notify_env(slack: &MockHook, telegram: &MockHook, extra: &str) -> (Env, tempfile::TempDir) {
    let env = Env::new();
    let secrets = tempfile::tempdir().expect("tempdir");
    let hook_file = secrets.path().join("slack-webhook");
    std::fs::write(&hook_file, format!("{}{HOOK_PATH}\n", slack.url)).expect("write hook");
    std::fs::set_permissions(&hook_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let config = format!(
        "[notify]\nrun_failed = [\"slack\"{extra}]\n\n\
         [notify.slack]\nwebhook_url_file = \"{hook}\"\n\n\
         [notify.telegram]\nbot_token_env = \"TEST_TG_TOKEN\"\nchat_id = \"4242\"\nbase_url = \"{tg}\"\n\n\
         [notify.desktop]\ncommand = \"{desktop}\"\n",
        hook = hook_file.display(),
        tg = telegram.url,
        desktop = env.path().join("notify-send").display(),
    );
    env.write_config(config);
    // A desktop notifier that records its arguments.
    let script = env.path().join("notify-send");
    let record = env.path().join("desktop.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> {}\n",
            record.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    env.start_daemon(&[("TEST_TG_TOKEN", TOKEN)]);
    (env, secrets)
}

/// Every log line the daemon wrote so far.
fn daemon_log(env: &Env) -> String {
    walk(&env.path().join("logs"))
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap_or_default())
        .collect()
}

#[test]
fn a_failed_run_reaches_slack_telegram_and_the_desktop() {
    let slack = MockHook::start("200 OK");
    let telegram = MockHook::start("200 OK");
    let (env, _secrets) = notify_env(&slack, &telegram, ", \"telegram\", \"desktop\"");
    let id = env.ok(&["run", "--name", "doomed", "--", "sh", "-c", "exit 3"]);
    let id = id.trim();

    wait_until("slack to hear of the failure", || {
        !slack.requests().is_empty()
    });
    let post = &slack.requests()[0];
    assert_eq!(post.line, format!("POST {HOOK_PATH} HTTP/1.1"));
    let text = post.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("run doomed failed"), "{text}");
    assert!(text.contains("exited with code 3"), "{text}");

    wait_until("telegram to hear of it", || !telegram.requests().is_empty());
    let message = &telegram.requests()[0];
    assert_eq!(
        message.line,
        format!("POST /bot{TOKEN}/sendMessage HTTP/1.1")
    );
    assert_eq!(message.body["chat_id"], "4242");
    assert!(
        message.body["text"]
            .as_str()
            .unwrap_or_default()
            .contains("doomed failed")
    );

    let record = env.path().join("desktop.txt");
    // The notifier may have created the file and not yet written it: wait for its line.
    wait_until("the desktop notifier to run", || {
        std::fs::read_to_string(&record).is_ok_and(|text| text.contains('|'))
    });
    let shown = std::fs::read_to_string(&record).expect("desktop record");
    assert!(shown.starts_with("reagent: run doomed failed|"), "{shown}");

    // Finished runs are not routed anywhere in this config: nothing more arrives.
    let ok = env.start(&["true"]);
    env.ok(&["wait", &ok]);
    assert_eq!(env.status_of(id), "failed");
    assert_eq!(slack.requests().len(), 1);
}

#[test]
fn a_failing_endpoint_is_retried_then_only_logged_and_no_secret_leaks() {
    let slack = MockHook::start("500 Internal Server Error");
    let telegram = MockHook::start("500 Internal Server Error");
    let (env, _secrets) = notify_env(&slack, &telegram, ", \"telegram\"");
    let mut watcher = Conn::open(&env.socket());
    watcher.call("hello", json!({"protocol": 1}));
    env.ok(&["run", "--", "sh", "-c", "exit 1"]);

    // One attempt and three retries (after 1, 2 and 4 s), then a log line and silence.
    wait_until("slack to be tried four times", || {
        slack.requests().len() >= 4
    });
    wait_until("telegram to be tried four times", || {
        telegram.requests().len() >= 4
    });
    wait_until("the give-up to be logged", || {
        daemon_log(&env).matches("dropping").count() >= 2
    });
    assert_eq!(slack.requests().len(), 4);
    assert_eq!(telegram.requests().len(), 4);

    // The daemon keeps serving.
    let ok = env.start(&["true"]);
    env.ok(&["wait", &ok]);

    // Neither secret is in anything the watcher was told, nor in any file of the state folder.
    let mut told = Vec::new();
    watcher.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"runs.list\"}\n");
    let reply = watcher.response(77, &mut told);
    let seen: String = told.iter().chain([&reply]).map(Value::to_string).collect();
    for secret in [TOKEN, HOOK_PATH] {
        assert!(!seen.contains(secret), "a client was told {secret}");
        for file in walk(env.path()) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in {}",
                file.display()
            );
        }
    }
    assert!(daemon_log(&env).contains("answered 500"));
}
