//! What the cockpit's tests build their messages from, shared so each test module does not
//! keep its own copy.

use reagent::agent::{Approval, ApprovalState, WildInfo, WildLimits, WildState};
use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::chat::PartKind;
use reagent::model::{Backend, GpuSelect, ModelInfo, ModelState, Recipe, ServingStats};
use reagent::protocol::EventKind;
use reagent::run::RunInfo;

/// A running run `id` of `program`.
pub fn run(id: &str, program: &str) -> RunInfo {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": null, "command": [program], "cwd": "/", "env_keys": [],
        "status": "running", "exit_code": null, "signal": null, "reason": null, "pid": 1,
        "cols": 80, "rows": 24, "created_at": 0, "started_at": 0, "ended_at": null,
        "log_path": "/x"
    }))
    .expect("a run")
}

/// A NaN alert on run `aaaa`.
pub fn alert(id: &str, status: AlertStatus) -> AlertInfo {
    AlertInfo {
        id: id.into(),
        run: "aaaa".into(),
        rule: AlertRule::Nan,
        subject: None,
        severity: Severity::Critical,
        message: "loss is NaN".into(),
        step: None,
        choices: Choice::ALL.to_vec(),
        status,
        response: None,
        session: None,
        created_at: 0,
        answered_at: None,
        agent: None,
    }
}

/// Text streamed into message `m` of session `s` at `offset`.
pub fn delta(offset: usize, text: &str) -> EventKind {
    EventKind::Delta {
        session: "s".into(),
        message: "m".into(),
        part: 0,
        kind: PartKind::Text,
        offset,
        text: text.into(),
    }
}

/// A vLLM recipe serving `Qwen/NAME` on one GPU.
pub fn recipe(name: &str) -> Recipe {
    Recipe {
        name: name.into(),
        backend: Backend::Vllm,
        model: format!("Qwen/{name}"),
        served_name: None,
        gpus: GpuSelect::Count(1),
        tensor_parallel: None,
        gpu_memory_fraction: None,
        max_context: None,
        tool_parser: None,
        reasoning_parser: None,
        port: None,
        env: Default::default(),
        extra_args: Vec::new(),
        command: Vec::new(),
        cwd: None,
        health_path: None,
        ready_timeout_secs: None,
        idle_unload_secs: None,
        needs_mib: None,
    }
}

/// Model `name` in `state` on GPU 0, requested at `at` (ms); from launching on it has port
/// 8001 and its server is run `m0de1000`, and a ready one became ready at `at` + 40 s.
pub fn model(name: &str, state: ModelState, at: i64) -> ModelInfo {
    let started = state.progress() >= 25 || state == ModelState::Ready;
    ModelInfo {
        gpus: vec![0],
        needs_mib: 72_000,
        port: started.then_some(8001),
        run: started.then(|| "m0de1000".into()),
        ready_at: (state == ModelState::Ready).then_some(at + 40_000),
        ..ModelInfo::new(name, Backend::Vllm, at).in_state(state)
    }
}

/// A scrape at `ts` generating `gen_tps` tokens/s with the KV cache `kv_cache` full.
pub fn stats(ts: i64, gen_tps: f64, kv_cache: f64) -> ServingStats {
    ServingStats {
        ts,
        gen_tps: Some(gen_tps),
        prompt_tps: Some(gen_tps * 4.0),
        running: Some(3.0),
        waiting: Some(0.0),
        kv_cache: Some(kv_cache),
        ttft_p50_ms: Some(85.0),
    }
}

/// Approval `id` of call `call_id` in session `s`, asked at `created_at`: `run_start` of a
/// training command.
pub fn approval(id: &str, call_id: &str, created_at: i64, state: ApprovalState) -> Approval {
    Approval {
        id: id.into(),
        session: "s".into(),
        message: "m".into(),
        call_id: call_id.into(),
        tool: "run_start".into(),
        arguments: serde_json::json!({"command": "python train.py --lr 3e-4", "gpus": 1}),
        action: "$ python train.py --lr 3e-4\n  on 1 GPU(s)".into(),
        state,
        always: false,
        reason: None,
        created_at,
        decided_at: (state != ApprovalState::Pending).then_some(created_at + 1000),
    }
}

/// A wild-mode loop in `session` after the loss, at step 3 of 20, in `state` (ended for
/// `end`).
pub fn wild(session: &str, state: WildState, end: Option<&str>) -> WildInfo {
    WildInfo {
        session: session.into(),
        goal: "lower the loss".into(),
        state,
        limits: WildLimits {
            max_steps: Some(20),
            max_tokens: None,
            max_cost_usd: Some(2.0),
            max_hours: None,
            every_minutes: 10.0,
        },
        auto: Vec::new(),
        steps: 3,
        tokens: 41_200,
        cost_usd: 0.1234,
        errors_in_row: 0,
        waiting_for: (state == WildState::Waiting).then(|| "run a1b2c3d4 to end".into()),
        end: end.map(Into::into),
        summary: None,
        started_at: 1_000,
        last_step_at: 2_000,
        ended_at: (state == WildState::Ended).then_some(3_000),
    }
}
