//! What the cockpit's tests build their messages from, shared so each test module does not
//! keep its own copy.

use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::chat::PartKind;
use reagent::model::{Backend, GpuSelect, ModelInfo, ModelState, Recipe, ServingStats};
use reagent::protocol::EventKind;

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
