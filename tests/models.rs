//! Model servers end to end: recipes, launches through the state machine to ready, joining,
//! eviction by GPU memory, failures at start, cancelling in every state, a daemon killed
//! mid-launch, and chat through the `local` provider. The server is the stand-in in
//! `tests/standin/model_server.py`, on fake GPUs.

mod common;

use std::path::PathBuf;

use common::{Env, alive, wait_until};
use serde_json::{Value, json};

/// The stand-in model server.
fn standin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/standin/model_server.py")
}

/// A `command` recipe running the stand-in; `more` is added as TOML lines.
fn recipe(name: &str, args: &str, more: &str) -> String {
    format!(
        "[[recipe]]\nname = \"{name}\"\nbackend = \"command\"\nmodel = \"{name}-weights\"\n\
         command = [\"python3\", \"{}\", \"--port\", \"{{port}}\", \"--model\", \"{{model}}\"{args}]\n{more}\n",
        standin().display()
    )
}

/// An installation with fake GPUs and these recipes added.
fn setup(gpus: u32, recipes: &str) -> Env {
    let env = Env::new();
    env.write_config("[models]\nstability_secs = 2.0\nscrape_secs = 0.5\n");
    env.start_daemon(&[("REAGENT_FAKE_GPUS", &gpus.to_string())]);
    env.add_recipes(recipes);
    env
}

fn wait_state(env: &Env, name: &str, state: &str) -> Value {
    let mut last = Value::Null;
    common::within_timeout(|| {
        last = env
            .models()
            .into_iter()
            .find(|m| m["name"] == name)
            .unwrap_or_default();
        last["state"] == state
    });
    assert_eq!(last["state"], state, "model {name}: {last}");
    last
}

fn launch(env: &Env, name: &str) -> Value {
    serde_json::from_str(&env.ok(&["model", "launch", name, "--json"])).expect("launch json")
}

fn run_pid(env: &Env, model: &Value) -> i32 {
    let run = model["run"].as_str().expect("a run");
    let mut pid = None;
    // The supervisor starts the job just after the run is recorded.
    wait_until("its server's pid", || {
        pid = env.get(run)["pid"].as_i64();
        pid.is_some()
    });
    i32::try_from(pid.unwrap_or_default()).expect("pid fits")
}

/// Waits for a model's server to be gone: its run ended and its process no longer alive.
fn assert_no_server(env: &Env, model: &Value) {
    let Some(run) = model["run"].as_str() else {
        return;
    };
    wait_until("its run to end", || {
        !["running", "queued"].contains(&env.status_of(run).as_str())
    });
    if let Some(pid) = env.get(run)["pid"].as_i64() {
        let pid = i32::try_from(pid).expect("pid fits");
        wait_until("its server to exit", || !alive(pid));
    }
}

#[test]
fn recipe_show_prints_each_backends_argv_and_a_bad_key_names_file_line_and_key() {
    let env = Env::new();
    let file = env.path().join("all.toml");
    std::fs::write(
        &file,
        "[[recipe]]\nname = \"v\"\nbackend = \"vllm\"\nmodel = \"Qwen/Qwen3-8B\"\ngpus = 2\nmax_context = 8192\nport = 8001\n\n\
         [[recipe]]\nname = \"s\"\nbackend = \"sglang\"\nmodel = \"Qwen/Qwen3-8B\"\ntool_parser = \"qwen25\"\n\n\
         [[recipe]]\nname = \"l\"\nbackend = \"llamacpp\"\nmodel = \"/models/tiny.gguf\"\ngpus = 0\n\n\
         [[recipe]]\nname = \"c\"\nbackend = \"command\"\nmodel = \"m\"\ncommand = [\"serve\", \"--listen=127.0.0.1:{port}\", \"{model}\"]\n",
    )
    .expect("write recipes");
    let added = env.ok(&["recipe", "add", file.to_str().expect("utf-8")]);
    for name in ["v", "s", "l", "c"] {
        assert!(added.contains(name), "{added}");
    }
    let show = |name: &str| -> Value {
        serde_json::from_str(&env.ok(&["recipe", "show", name, "--json"])).expect("show json")
    };
    let argv = |name: &str| -> Vec<String> {
        serde_json::from_value(show(name)["argv"].clone()).expect("argv")
    };
    let v = argv("v");
    assert_eq!(&v[..3], ["vllm", "serve", "Qwen/Qwen3-8B"]);
    for flag in [
        "--port",
        "8001",
        "--tensor-parallel-size",
        "2",
        "--max-model-len",
        "8192",
    ] {
        assert!(v.iter().any(|a| a == flag), "{v:?} lacks {flag}");
    }
    let s = argv("s");
    assert!(
        s.join(" ")
            .contains("sglang.launch_server --model-path Qwen/Qwen3-8B"),
        "{s:?}"
    );
    assert!(s.join(" ").contains("--tool-call-parser qwen25"), "{s:?}");
    assert!(s.join(" ").contains("--port {port}"), "no port yet: {s:?}");
    let l = argv("l");
    assert_eq!(l[0], "llama-server");
    assert!(l.join(" ").contains("--model /models/tiny.gguf"), "{l:?}");
    assert!(l.iter().any(|a| a == "--metrics"), "{l:?}");
    assert_eq!(argv("c"), ["serve", "--listen=127.0.0.1:{port}", "m"]);
    // The plain form prints the argv too.
    assert!(
        env.ok(&["recipe", "show", "v"])
            .contains("vllm serve Qwen/Qwen3-8B")
    );
    let listed = env.ok(&["recipes"]);
    for name in ["v", "s", "l", "c"] {
        assert!(listed.contains(name), "{listed}");
    }

    let bad = env.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[recipe]]\nname = \"x\"\nbackend = \"vllm\"\nmodel = \"m\"\ngpu_mem = 3\n",
    )
    .expect("write bad");
    let out = env.run(&["recipe", "add", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains(":5") && err.contains("gpu_mem"),
        "{err}"
    );

    env.ok(&["recipe", "rm", "c"]);
    assert!(!env.ok(&["recipes"]).contains("command"));
}

#[test]
fn a_launch_reaches_ready_through_its_progress_events_and_chat_streams_from_it() {
    let env = setup(
        2,
        &recipe("tiny", ", \"--ready-after\", \"0.5\"", "needs_mib = 20000"),
    );
    let mut conn = env.connect();
    conn.call("hello", json!({"protocol": 1}));
    let launch = json!({"jsonrpc": "2.0", "id": 99, "method": "model.launch",
                        "params": {"recipe": "tiny"}});
    conn.send_raw(format!("{launch}\n").as_bytes());
    let mut notifications = Vec::new();
    let reply = conn.response(99, &mut notifications);
    assert_eq!(reply["result"]["state"], "ready", "{reply}");
    let mut progress = Vec::new();
    let mut states = Vec::new();
    let events = (notifications.iter())
        .filter(|n| n["method"] == "event")
        .map(|n| &n["params"]);
    for event in events {
        if event["type"] == "model" && event["model"]["name"] == "tiny" {
            let p = event["model"]["progress"].as_u64().expect("progress");
            if progress.last() != Some(&p) {
                progress.push(p);
            }
            states.push(
                event["model"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    assert_eq!(progress, [0, 25, 50, 100], "states: {states:?}");
    let tiny = env.model("tiny");
    assert_eq!(tiny["gpus"].as_array().map(Vec::len), Some(1), "{tiny}");
    let port = tiny["port"].as_u64().expect("a port");
    assert!(port > 0);

    // The GPU it sits on names it, and (fake GPUs showing what was placed on them) holds its
    // memory.
    let held = || -> Value {
        let gpus: Value = serde_json::from_str(&env.ok(&["gpus", "--json"])).expect("gpus json");
        (gpus["gpus"].as_array().expect("gpus").iter())
            .find(|g| g["index"] == tiny["gpus"][0])
            .cloned()
            .expect("its GPU")
    };
    wait_until("its GPU to name it", || held()["model"] == "tiny");
    assert!(held()["mem_used_mib"].as_u64().expect("memory") >= 20_000);

    // Chat through the built-in `local` provider streams the stand-in's tokens.
    let out = env.run(&["chat", "--model", "local/tiny", "hello", "there"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tok0") && text.contains("tok7"), "{text}");
    wait_until("the request to be counted", || {
        env.model("tiny")["requests"] == 1
    });
    // Serving figures arrive from its /metrics.
    wait_until("serving figures", || {
        env.model("tiny")["serving"]["ts"].is_i64()
    });

    let stopped: Value =
        serde_json::from_str(&env.ok(&["model", "stop", "tiny", "--json"])).expect("stop json");
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_no_server(&env, &stopped);
    let out = env.run(&["chat", "--model", "local/tiny", "again"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready"));
}

#[test]
fn two_launches_of_one_recipe_start_one_server() {
    let env = setup(1, &recipe("one", ", \"--ready-after\", \"1.5\"", ""));
    let first = env
        .cmd(&["model", "launch", "one", "--json"])
        .spawn()
        .expect("first launch");
    let second = env
        .cmd(&["model", "launch", "one", "--json"])
        .spawn()
        .expect("second launch");
    for child in [first, second] {
        let out = child.wait_with_output().expect("launch");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let servers: Vec<Value> = env
        .runs()
        .into_iter()
        .filter(|r| r["name"] == "model-one")
        .collect();
    assert_eq!(servers.len(), 1, "{servers:?}");
    // A third, once ready, returns the same server.
    assert_eq!(launch(&env, "one")["run"], servers[0]["id"]);
}

#[test]
fn a_model_that_does_not_fit_evicts_the_least_recently_used_never_a_training_run() {
    let big = "needs_mib = 60000";
    let recipes = [
        recipe("a", "", big),
        recipe("b", "", big),
        recipe("c", "", big),
        recipe("both", "", "needs_mib = 60000\ngpus = 2"),
    ]
    .concat();
    let env = setup(2, &recipes);
    let a = launch(&env, "a");
    let b = launch(&env, "b");
    assert_ne!(a["gpus"], b["gpus"], "one per GPU");
    // `a` was used least recently (b came up after it): `c` takes its place.
    let c = launch(&env, "c");
    assert_eq!(c["gpus"], a["gpus"]);
    let a = wait_state(&env, "a", "stopped");
    assert!(
        a["reason"].as_str().unwrap_or_default().contains("evicted"),
        "{a}"
    );
    assert_no_server(&env, &a);
    assert_eq!(env.model("b")["state"], "ready");

    // A training run takes the GPU `b` frees; `both` would need it back: refused, naming it.
    env.ok(&["model", "stop", "b"]);
    let train = env.ok(&[
        "run", "--gpus", "1", "--name", "train", "--", "sleep", "600",
    ]);
    let train = train.trim();
    wait_until("the training run to start", || {
        env.status_of(train) == "running"
    });
    let out = env.run(&["model", "launch", "both"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("training run train"), "{err}");
    assert_eq!(
        env.status_of(train),
        "running",
        "the training run was never touched"
    );
    assert_eq!(env.model("c")["state"], "ready");
}

#[test]
fn a_crash_at_start_fails_with_the_end_of_its_log() {
    let env = setup(1, &recipe("crashy", ", \"--mode\", \"crash\"", ""));
    let out = env.run(&["model", "launch", "crashy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("crashing at start"), "the log's tail: {err}");
    let crashy = env.model("crashy");
    assert_eq!(crashy["state"], "failed");
    assert_eq!(crashy["gpus"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_server_that_never_turns_healthy_times_out_and_is_stopped() {
    let env = setup(
        1,
        &recipe(
            "stuck",
            ", \"--mode\", \"never-healthy\"",
            "ready_timeout_secs = 2",
        ),
    );
    let out = env.run(&["model", "launch", "stuck"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not healthy after 2 s"), "{err}");
    assert_no_server(&env, &env.model("stuck"));
}

#[test]
fn cancel_in_every_state_leaves_no_process_behind() {
    let recipes = [
        recipe(
            "slow",
            ", \"--ready-after\", \"60\"",
            "needs_mib = 60000\ngpus = [0]",
        ),
        recipe("queued", "", "needs_mib = 60000\ngpus = [0]"),
    ]
    .concat();
    let env = setup(1, &recipes);
    let spawn = |name: &str| env.cmd(&["model", "launch", name]).spawn().expect("launch");
    let stop = |name: &str| -> Value {
        serde_json::from_str(&env.ok(&["model", "stop", name, "--json"])).expect("stop json")
    };
    // Checking stability (its first 2 s): cancelled, and the server gone when stop answers.
    let mut slow = spawn("slow");
    let checking = wait_state(&env, "slow", "checking_stability");
    let pid = run_pid(&env, &checking);
    assert_eq!(stop("slow")["state"], "cancelled");
    assert!(!alive(pid), "cancel waits for the server to be gone");
    assert_eq!(slow.wait().expect("launch").code(), Some(1));

    // Waiting for the lock: a second recipe on the same GPU waits for the launch in flight.
    let mut slow = spawn("slow");
    wait_state(&env, "slow", "checking_stability");
    let mut queued = spawn("queued");
    let waiting = wait_state(&env, "queued", "waiting_lock");
    assert!(
        waiting["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("slow"),
        "{waiting}"
    );
    let cancelled = stop("queued");
    assert_eq!(cancelled["state"], "cancelled");
    assert!(
        cancelled["run"].is_null(),
        "it never started a server: {cancelled}"
    );
    assert_eq!(queued.wait().expect("launch").code(), Some(1));

    // Waiting for health.
    let waiting = wait_state(&env, "slow", "waiting_health");
    let pid = run_pid(&env, &waiting);
    assert_eq!(stop("slow")["state"], "cancelled");
    assert!(!alive(pid));
    assert_eq!(slow.wait().expect("launch").code(), Some(1));
}

#[test]
fn a_daemon_killed_during_a_launch_leaves_the_model_ready_or_failed_never_stuck() {
    let recipes = [
        recipe("survivor", ", \"--ready-after\", \"3\"", ""),
        recipe(
            "late",
            ", \"--ready-after\", \"3\"",
            "gpus = [0]\nneeds_mib = 70000",
        ),
    ]
    .concat();
    let env = setup(1, &recipes);
    let mut launching = env
        .cmd(&["model", "launch", "survivor"])
        .spawn()
        .expect("launch");
    wait_state(&env, "survivor", "checking_stability");
    env.kill_daemon();
    let _ = launching.wait();
    // The server outlived the daemon: the new daemon sees it through to ready.
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "1")]);
    let survivor = wait_state(&env, "survivor", "ready");
    assert!(alive(run_pid(&env, &survivor)));

    // A launch caught waiting for the GPU has no server yet: it fails with the reason.
    let mut late = env
        .cmd(&["model", "launch", "late"])
        .spawn()
        .expect("launch");
    // `survivor` (ready, so evictable) is stopped for it; kill the daemon before it is
    // done or just after: either way the new daemon settles it.
    wait_until("the late launch to begin", || {
        (env.models().iter()).any(|m| m["name"] == "late" && m["state"] != "requested")
    });
    env.kill_daemon();
    let _ = late.wait();
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "1")]);
    let mut last = Value::Null;
    common::within_timeout(|| {
        last = env.model("late");
        ["ready", "failed"].contains(&last["state"].as_str().unwrap_or_default())
    });
    assert!(
        ["ready", "failed"].contains(&last["state"].as_str().unwrap_or_default()),
        "{last}"
    );
    if last["state"] == "failed" {
        assert!(
            last["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{last}"
        );
    }
}

#[test]
fn cancel_while_evicting_starts_nothing_and_the_victim_still_goes() {
    let recipes = [
        // Takes 3 s to free its memory once told to stop.
        recipe(
            "victim",
            ", \"--term-delay\", \"3\"",
            "needs_mib = 60000\ngpus = [0]",
        ),
        recipe("newcomer", "", "needs_mib = 60000\ngpus = [0]"),
    ]
    .concat();
    let env = setup(1, &recipes);
    let victim = launch(&env, "victim");
    let mut newcomer = env
        .cmd(&["model", "launch", "newcomer"])
        .spawn()
        .expect("launch");
    let evicting = wait_state(&env, "newcomer", "evicting");
    assert!(
        evicting["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("victim"),
        "{evicting}"
    );
    let cancelled: Value =
        serde_json::from_str(&env.ok(&["model", "stop", "newcomer", "--json"])).expect("stop");
    assert_eq!(cancelled["state"], "cancelled");
    assert!(
        cancelled["run"].is_null(),
        "no server was started: {cancelled}"
    );
    assert_eq!(newcomer.wait().expect("launch").code(), Some(1));
    let victim_after = wait_state(&env, "victim", "stopped");
    assert!(
        victim_after["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("evicted")
    );
    assert_no_server(&env, &victim);
}

#[test]
fn a_model_idle_past_its_recipes_limit_is_unloaded_saying_why() {
    let env = setup(
        1,
        &recipe(
            "idle",
            ", \"--ready-after\", \"0.2\"",
            "idle_unload_secs = 1",
        ),
    );
    let ready = launch(&env, "idle");
    let stopped = wait_state(&env, "idle", "stopped");
    let why = stopped["reason"].as_str().unwrap_or_default();
    assert!(why.contains("idle for 1 s"), "{stopped}");
    assert_no_server(&env, &ready);
}
