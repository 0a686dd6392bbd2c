//! Alerts end to end: rules raise them from a run's metrics exactly once, every client hears
//! of them, and answering `stop` stops the run.

mod common;

use common::mock_llm::MockLlm;
use common::{Env, wait_until};
use serde_json::{Value, json};

fn loss_points(env: &Env, run: &str) -> u64 {
    let list: Value =
        serde_json::from_str(&env.ok(&["metrics", run, "--json"])).expect("metrics --json");
    list["metrics"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == "loss"))
        .map_or(0, |m| m["points"].as_u64().unwrap_or(0))
}

#[test]
fn a_nan_and_a_spike_raise_one_alert_each_and_stop_stops_the_run() {
    let env = Env::new();
    let mut conn = env.connect();
    conn.call("hello", json!({"protocol": 1}));
    // Python's json writes NaN bare; step 80 jumps to 5x the loss before it.
    let script = r#"for i in $(seq 1 100); do
            if [ $i -eq 50 ]; then v=NaN; elif [ $i -ge 80 ]; then v=5.0; else v=1.0; fi
            echo "{\"step\": $i, \"loss\": $v}" >> "$REAGENT_METRICS_FILE"
        done; exec sleep 600"#;
    let id = env.start(&["sh", "-c", script]);
    wait_until("all 100 points", || loss_points(&env, &id) == 100);

    // A client that said hello hears of both alerts as events.
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let event = conn.next_event();
        if event["type"] == "alert" {
            heard.push(
                event["alert"]["rule"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    assert_eq!(heard, ["nan", "spike"]);

    let open = env.alerts(false);
    assert_eq!(open.len(), 2, "each rule fired once: {open:#?}");
    let (nan, spike) = (&open[0], &open[1]);
    assert_eq!(
        (&nan["rule"], &nan["run"], &nan["step"]),
        (&json!("nan"), &json!(id), &json!(50.0))
    );
    assert_eq!(nan["severity"], "critical");
    assert_eq!(nan["message"], "loss is NaN at step 50");
    assert_eq!(
        (&spike["rule"], &spike["run"], &spike["step"]),
        (&json!("spike"), &json!(id), &json!(80.0))
    );
    assert_eq!(spike["subject"], "loss");
    assert_eq!(spike["choices"], json!(["ignore", "stop", "chat"]));

    let spike_id = spike["id"].as_str().expect("id");
    let answer = env.run(&["alert", "respond", &spike_id[..4], "stop"]);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(143));
    assert_eq!(env.status_of(&id), "stopped");

    let all = env.alerts(true);
    let answered = all
        .iter()
        .find(|a| a["id"] == spike_id)
        .expect("the spike alert");
    assert_eq!(
        (&answered["status"], &answered["response"]),
        (&json!("answered"), &json!("stop"))
    );
    assert_eq!(env.alerts(false).len(), 1, "the NaN alert is still open");
    wait_until(
        "the open alert to stop offering to stop an ended run",
        || env.alerts(false)[0]["choices"] == json!(["ignore", "chat"]),
    );
    assert_eq!(
        all.len(),
        2,
        "stopping is not a failure: no run_failed alert"
    );

    // An answered alert cannot be answered again, and a bad choice is named.
    let again = env.run(&["alert", "respond", spike_id, "ignore"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already answered"));
    let bad = env.run(&["alert", "respond", spike_id, "reboot"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ignore, stop or chat"));
}

#[test]
fn thresholds_triggers_and_failures_raise_alerts() {
    let env = Env::new();
    let cwd = env.path().join("job");
    std::fs::create_dir(&cwd).expect("mkdir");
    let cwd_arg = cwd.to_string_lossy().into_owned();
    let script = r#"echo '{"acc": 0.9}' >> "$REAGENT_METRICS_FILE"
        echo '{"acc": 0.3}' >> "$REAGENT_METRICS_FILE"
        echo 'the data loader is stuck' > .alert_trigger
        while [ -e .alert_trigger ]; do sleep 0.05; done
        exit 3"#;
    let out = env.ok(&[
        "run",
        "--cwd",
        &cwd_arg,
        "--alert",
        "acc < 0.5",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let id = out.trim().to_string();
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(3));
    wait_until("three alerts", || env.alerts(false).len() == 3);
    let open = env.alerts(false);
    let rule = |name: &str| {
        open.iter()
            .find(|a| a["rule"] == name)
            .unwrap_or_else(|| panic!("no {name} alert in {open:#?}"))
    };
    assert_eq!(rule("threshold")["subject"], "acc < 0.5");
    assert_eq!(
        rule("threshold")["step"],
        2.0,
        "the line number when there is no step"
    );
    assert_eq!(rule("trigger")["message"], "the data loader is stuck");
    assert!(!cwd.join(".alert_trigger").exists());
    let failed = rule("run_failed");
    assert_eq!(
        failed["choices"],
        json!(["ignore", "chat"]),
        "nothing left to stop"
    );
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or("")
            .contains("exited with code 3")
    );

    let bad = env.run(&["run", "--alert", "acc >> 2", "--", "true"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`alerts`: `acc >> 2`"));
}

/// An installation whose daemon has the mock provider as `mock`, chats going to `mock/ok`,
/// and then the config in `more`.
fn mock_env(mock: &MockLlm, more: &str) -> Env {
    let env = Env::new();
    let config = format!(
        "{}[chat]\ndefault_model = \"mock/ok\"\n\n{more}",
        mock.provider("prices = { input = 1.0, output = 2.0 }")
    );
    env.write_config(config);
    env.start_daemon(&[("MOCK_KEY", "sk-test")]);
    env
}

/// [`mock_env`] with its `judge` model judging every run each second.
fn judged_env(mock: &MockLlm) -> Env {
    mock_env(
        mock,
        "[alerts.judge]\nmodel = \"mock/judge\"\ninterval_secs = 1.0\n",
    )
}

#[test]
fn the_judge_raises_once_with_its_reason_and_chat_opens_a_seeded_session() {
    let mock = MockLlm::start();
    let env = judged_env(&mock);
    let script = r#"i=0; while true; do i=$((i+1))
            echo "{\"step\": $i, \"loss\": 0.5}" >> "$REAGENT_METRICS_FILE"; sleep 0.2
        done"#;
    let id = env.start(&["sh", "-c", script]);
    wait_until("the judge's alert", || {
        env.alerts(false).iter().any(|a| a["rule"] == "judge")
    });
    let alert = env
        .alerts(false)
        .into_iter()
        .find(|a| a["rule"] == "judge")
        .expect("judge alert");
    assert_eq!(alert["run"], json!(id));
    assert_eq!(
        alert["message"],
        "the judge (mock/judge) says: loss is diverging"
    );
    // It keeps looking (new lines keep coming) but raises nothing new while that one is open.
    let judge_session = || {
        let sessions: Vec<Value> =
            serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("sessions --json");
        sessions
            .into_iter()
            .find(|s| s["title"] == format!("judge of run {id}"))
    };
    let session = judge_session().expect("the judge's session");
    wait_until("a second look", || {
        let history: Vec<Value> = serde_json::from_str(&env.ok(&[
            "history",
            session["id"].as_str().unwrap_or(""),
            "--json",
        ]))
        .expect("history --json");
        history
            .iter()
            .filter(|m| m["role"] == "assistant" && m["status"] == "complete")
            .count()
            >= 2
    });
    assert_eq!(
        env.alerts(true).len(),
        1,
        "one judge alert while it is open"
    );
    // Its tokens count in usage like any chat.
    let usage: Value = serde_json::from_str(&env.ok(&["usage", "--json"])).expect("usage --json");
    assert!(
        usage
            .to_string()
            .contains(session["id"].as_str().unwrap_or("?")),
        "{usage}"
    );

    let alert_id = alert["id"].as_str().expect("id");
    let chat = env.ok(&["alert", "respond", alert_id, "chat"]);
    let chat_session = chat.trim();
    let sessions: Vec<Value> =
        serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("sessions --json");
    let opened = sessions
        .iter()
        .find(|s| s["id"] == chat_session)
        .expect("the chat session");
    let system = opened["system"].as_str().unwrap_or_default();
    assert!(system.contains("loss is diverging"), "{system}");
    assert!(system.contains("$ sh -c i=0"), "the command: {system}");
    assert!(system.contains(r#"{"step": "#), "recent metrics: {system}");
    assert_eq!(
        env.alerts(false)
            .iter()
            .filter(|a| a["rule"] == "judge")
            .count(),
        0
    );
    env.ok(&["stop", &id]);
}

#[test]
fn a_bad_threshold_in_the_config_is_refused_at_start() {
    let env = Env::new();
    let config = "[alerts]\nthresholds = [\"loss >> 5\"]\n";
    env.write_config(config);
    let out = env.run(&["runs"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[alerts] thresholds: `loss >> 5`"),
        "{stderr}"
    );
}

#[test]
fn a_chat_about_an_alert_is_given_the_lines_around_its_step_and_shows_them() {
    let mock = MockLlm::start();
    let env = mock_env(&mock, "");
    // A NaN at step 50 of 200: the newest lines are long past it.
    let script = r#"for i in $(seq 1 200); do
            if [ $i -eq 50 ]; then v=NaN; else v=1.0; fi
            echo "{\"step\": $i, \"loss\": $v}" >> "$REAGENT_METRICS_FILE"
        done; exec sleep 600"#;
    let id = env.start(&["sh", "-c", script]);
    wait_until("all 200 points", || loss_points(&env, &id) == 200);
    let nan = env
        .alerts(false)
        .into_iter()
        .find(|a| a["rule"] == "nan")
        .expect("the NaN alert");
    let chat = env.ok(&["alert", "respond", nan["id"].as_str().expect("id"), "chat"]);
    let session = chat.trim();

    // The model is given the lines around step 50, not the newest ones.
    let sessions: Vec<Value> =
        serde_json::from_str(&env.ok(&["sessions", "--json"])).expect("sessions --json");
    let opened = sessions
        .iter()
        .find(|s| s["id"] == session)
        .expect("the chat session");
    let system = opened["system"].as_str().unwrap_or_default();
    assert!(system.contains("loss is NaN at step 50"), "{system}");
    assert!(system.contains("around step 50"), "{system}");
    assert!(
        system.contains(r#""step":50.0"#) && system.contains(r#""loss":"NaN""#),
        "{system}"
    );
    assert!(!system.contains(r#""step":200.0"#), "{system}");

    // And the user sees that context: the session's history starts with it.
    let history = env.ok(&["history", session]);
    assert!(history.starts_with("── system\n"), "{history}");
    assert!(history.contains(r#""step":50.0"#), "{history}");
    env.ok(&["stop", &id]);
}

/// `(run, rule)` of every open alert, sorted.
fn open_alerts(env: &Env) -> Vec<(String, String)> {
    let mut open: Vec<(String, String)> = (env.alerts(false).iter())
        .map(|a| {
            (
                a["run"].as_str().unwrap_or_default().into(),
                a["rule"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    open.sort();
    open
}

#[test]
fn one_command_ignores_an_alert_on_every_run_of_its_sweep() {
    let env = Env::new();
    // Each run: a NaN at step 50 and a spike at step 80, as in the first test.
    let script = r#"for i in $(seq 1 100); do
            if [ $i -eq 50 ]; then v=NaN; elif [ $i -ge 80 ]; then v=5.0; else v=1.0; fi
            echo "{\"step\": $i, \"loss\": $v}" >> "$REAGENT_METRICS_FILE"
        done"#;
    let out = env.ok(&[
        "sweep", "--name", "s", "--grid", "x=1,2", "--json", "--", "sh", "-c", script,
    ]);
    let sweep: Value = serde_json::from_str(&out).expect("sweep json");
    let swept: Vec<String> = (sweep["runs"].as_array().expect("runs").iter())
        .map(|id| id.as_str().unwrap_or_default().to_string())
        .collect();
    let alone = env.start(&["sh", "-c", script]);
    wait_until("a NaN and a spike on each of the three runs", || {
        open_alerts(&env).len() == 6
    });
    let spike_on = |run: &str| {
        let alerts = env.alerts(false);
        let spike = alerts
            .iter()
            .find(|a| a["run"] == run && a["rule"] == "spike");
        spike.map(|a| a["id"].as_str().unwrap_or_default().to_string())
    };

    // The spike of one of the sweep's runs: the sweep's other spike goes with it, not the
    // spike of the run outside the sweep, nor the NaNs.
    let id = spike_on(&swept[1]).expect("the swept run's spike");
    let said = env.ok(&["alert", "ignore-like", &id]);
    assert_eq!(
        said.trim(),
        "ignored 2 alerts (spike on loss) across sweep s"
    );
    let mut left = vec![
        (alone.clone(), "nan".to_string()),
        (alone.clone(), "spike".to_string()),
        (swept[0].clone(), "nan".to_string()),
        (swept[1].clone(), "nan".to_string()),
    ];
    left.sort();
    assert_eq!(open_alerts(&env), left);
    let answered = env.alerts(true);
    let ignored: Vec<&Value> = (answered.iter())
        .filter(|a| a["rule"] == "spike" && a["run"] != alone.as_str())
        .collect();
    assert!(
        ignored
            .iter()
            .all(|a| a["status"] == "answered" && a["response"] == "ignore"),
        "{ignored:#?}"
    );

    // A run in no sweep: its likes are looked for on every run.
    let nan = env
        .alerts(false)
        .into_iter()
        .find(|a| a["run"] == alone.as_str() && a["rule"] == "nan");
    let nan_id = nan
        .and_then(|a| a["id"].as_str().map(String::from))
        .expect("the NaN alert");
    let said = env.ok(&["alert", "ignore-like", &nan_id]);
    assert_eq!(said.trim(), "ignored 3 alerts (nan) across every run");
    assert_eq!(open_alerts(&env), [(alone.clone(), "spike".to_string())]);
    // Again: nothing is open like it any more, which is said, not an error.
    let said = env.ok(&["alert", "ignore-like", &nan_id]);
    assert_eq!(said.trim(), "no open alert like it across every run");
}
