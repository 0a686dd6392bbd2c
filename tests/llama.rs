//! The one test with a real engine: llama.cpp's `llama-server`, launched through a
//! `llamacpp` recipe on a tiny random-weights GGUF model the test writes itself, serves
//! `local/…` chat, reports its `llamacpp:` metrics, and stops.
//!
//! The engine is built by `scripts/llama-server.sh` into a cache outside the clone (CI runs
//! it first and sets `REAGENT_LLAMA_DIR`). Without `REAGENT_LLAMA_DIR` and without the
//! default cache, the test says why and how to build it, and passes: a skip is printed,
//! never silent. With `REAGENT_LLAMA_DIR` set, a missing engine is a failure.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Env, alive, wait_until};
use serde_json::Value;

/// The llama.cpp version `scripts/llama-server.sh` builds (its cache folder's suffix).
const VERSION: &str = "11434.0.0";

/// Where the engine is: `REAGENT_LLAMA_DIR`, else the script's default cache folder; and
/// whether it was named explicitly.
fn engine_dir() -> (PathBuf, bool) {
    if let Some(dir) = std::env::var_os("REAGENT_LLAMA_DIR").filter(|dir| !dir.is_empty()) {
        return (PathBuf::from(dir), true);
    }
    let cache = std::env::var_os("REAGENT_TEST_CACHE")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/reagent-test"))
        })
        .unwrap_or_default();
    (cache.join(format!("llama-server-{VERSION}")), false)
}

/// The server binary and the venv's Python, or why they are not there.
fn engine() -> Result<(PathBuf, PathBuf), String> {
    let (dir, named) = engine_dir();
    let server = dir.join("bin/llama-server");
    let python = dir.join("venv/bin/python");
    let missing: Vec<String> = [&server, &python]
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok((server, python));
    }
    let reason = format!(
        "no llama.cpp engine: {} missing. Build it with `scripts/llama-server.sh` (python3 with \
         pip and a C++ compiler; 10 to 20 minutes on 2 cores, cached afterwards) and \
         set REAGENT_LLAMA_DIR to the folder it prints, or leave it unset for the default \
         cache",
        missing.join(" and ")
    );
    assert!(!named, "REAGENT_LLAMA_DIR is set, yet {reason}");
    Err(reason)
}

/// Says so on the terminal even under the harness's output capture (which takes only
/// `print!`/`eprint!`), so a skipped test is seen in a plain `cargo test`.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Waits until the model satisfies `done`, failing with its last listing.
fn wait_model(env: &Env, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let held = common::within_timeout(|| {
        last = env.model(name);
        done(&last)
    });
    assert!(held, "timed out waiting for {what}: {last}");
    last
}

#[test]
fn a_real_llama_server_launches_streams_chat_reports_metrics_and_stops() {
    let (server, python) = match engine() {
        Ok(found) => found,
        Err(reason) => {
            say(&format!("skipped tests/llama.rs: {reason}"));
            return;
        }
    };
    let env = Env::new();

    // The model: written by the test suite, seeded, well under a megabyte.
    let gguf = env.path().join("tiny.gguf");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin/tiny_gguf.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&gguf)
        .output()
        .expect("run tiny_gguf.py");
    assert!(
        out.status.success() && gguf.is_file(),
        "tiny_gguf.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Scrape often, so serving figures arrive within the test's patience.
    env.write_config("[models]\nscrape_secs = 0.5\n");
    // `llama-server` resolves through the daemon's PATH, as on a user's machine.
    let bin = server.parent().expect("bin folder");
    let path = match std::env::var_os("PATH") {
        Some(rest) => std::env::join_paths(
            std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&rest)),
        )
        .expect("join PATH"),
        None => bin.as_os_str().to_owned(),
    };
    env.start_daemon(&[("PATH", path.to_str().expect("utf-8 PATH"))]);
    // A random model never ends an answer itself: 16 tokens, however the request asks.
    env.add_recipes(&format!(
        "[[recipe]]\nname = \"tiny\"\nbackend = \"llamacpp\"\nmodel = \"{}\"\ngpus = 0\n\
         max_context = 256\nextra_args = [\"--n-predict\", \"16\"]\n",
        gguf.display()
    ));

    let started = Instant::now();
    let launched: Value =
        serde_json::from_str(&env.ok(&["model", "launch", "tiny", "--json"])).expect("launch json");
    let launch_took = started.elapsed();
    assert_eq!(launched["state"], "ready", "{launched}");
    assert_eq!(launched["backend"], "llamacpp", "{launched}");
    assert!(
        launched["port"].as_u64().is_some_and(|port| port > 0),
        "{launched}"
    );
    let pid = i32::try_from(launched["pid"].as_i64().expect("a pid")).expect("pid fits");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the server's executable");
    assert_eq!(
        exe.file_name().and_then(|n| n.to_str()),
        Some("llama-server"),
        "{exe:?}"
    );

    // A first scrape before the request: the token rates are differences of two.
    wait_model(&env, "tiny", "a first scrape", |m| {
        m["serving"]["ts"].is_i64()
    });

    let started = Instant::now();
    let out = env.run(&["chat", "--model", "local/tiny", "hello"]);
    let chat_took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chat failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.trim().is_empty(), "chat streamed nothing");

    // The daemon read llama.cpp's own names: the token counters (as rates, kept as peaks)
    // and requests processing and deferred.
    let served = wait_model(&env, "tiny", "token rates from llamacpp: metrics", |m| {
        m["peaks"]["gen_tps"].as_f64().is_some_and(|tps| tps > 0.0)
            && m["peaks"]["prompt_tps"]
                .as_f64()
                .is_some_and(|tps| tps > 0.0)
    });
    let serving = &served["serving"];
    assert!(serving["running"].is_number(), "{served}");
    assert!(serving["waiting"].is_number(), "{served}");
    assert!(
        served["requests"].as_u64().is_some_and(|n| n >= 1),
        "{served}"
    );
    eprintln!(
        "llama-server: ready {launch_took:?} after `model launch`, chat answered in \
         {chat_took:?}: {:?}; serving {serving}",
        text.trim()
    );

    let stopped: Value =
        serde_json::from_str(&env.ok(&["model", "stop", "tiny", "--json"])).expect("stop json");
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let run = stopped["run"].as_str().expect("its run").to_string();
    wait_until("its run to end", || {
        !["running", "queued"].contains(&env.status_of(&run).as_str())
    });
    wait_until("llama-server to exit", || !alive(pid));
}
