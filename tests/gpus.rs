//! GPU sampling as users see it: the reason when there are none, fake GPUs marked fake.

mod common;

use common::{Env, wait_until};
use serde_json::Value;

#[test]
fn without_a_driver_gpus_says_why_and_gpu_runs_are_refused() {
    let env = Env::new();
    // This machine kind has no NVIDIA driver and no nvidia-smi.
    let mut said = String::new();
    wait_until("the reason to be known", || {
        said = env.ok(&["gpus"]);
        said.starts_with("GPUs unavailable:")
    });
    assert!(said.contains("NVML"), "{said}");
    let refused = env.run(&["run", "--gpus", "1", "--", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs 1 GPU but there are none"));
    let id = env.start(&["true"]);
    assert_eq!(
        env.run(&["wait", &id]).status.code(),
        Some(0),
        "everything else works"
    );
}

#[test]
fn fake_gpus_are_named_and_flagged_fake() {
    let env = Env::new();
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "2")]);
    wait_until("two fake GPUs", || {
        env.ok(&["gpus"]).contains("Fake GPU 1 [FAKE]")
    });
    let report: Value = serde_json::from_str(&env.ok(&["gpus", "--json"])).expect("json");
    assert_eq!(report["source"], "fake");
    assert_eq!(report["gpus"][0]["fake"], true);
    assert_eq!(report["gpus"][0]["mem_total_mib"], 81920);
    assert!(
        report["history"][0]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
}

#[test]
fn the_cockpit_summarises_fake_gpus_and_p_shows_the_panel() {
    let env = Env::new();
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "2")]);
    let mut tui = common::pty::PtyClient::start(&env, &[], 140, 30);
    tui.wait_for("FAKE GPU×2");
    tui.send(b"p");
    tui.wait_for("GPUs (2) · FAKE");
    tui.wait_for("Fake GPU 1 FAKE");
    tui.send(b"p");
    tui.wait_gone("GPUs (2)");
    tui.send(b"q");
    assert!(tui.wait_exit());
}

#[test]
fn the_first_answer_after_start_has_the_first_sample() {
    let env = Env::new();
    env.start_daemon(&[("REAGENT_FAKE_GPUS", "2")]);
    let report: Value = serde_json::from_str(&env.ok(&["gpus", "--json"])).expect("gpus json");
    assert_eq!(report["source"], "fake", "{report}");
    assert_eq!(report["gpus"].as_array().map(Vec::len), Some(2), "{report}");
}
