//! Model servers as clients see them: recipes (how to serve one model) and model instances
//! (a recipe being launched or serving, with its launch state and serving figures).
//!
//! A model is a run with a lifecycle on top: the daemon starts the server as an ordinary
//! run (its pane, log, GPUs and exit code work like any run's) and walks the launch state
//! machine around it. There is at most one instance per recipe, named after the recipe, so
//! two launches of the same recipe can only ever meet on the same instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod file;

/// Which server a recipe runs; it decides the argv, the default health path and how much
/// GPU memory the server takes when the recipe does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// `vllm serve`.
    Vllm,
    /// `python -m sglang.launch_server`.
    Sglang,
    /// llama.cpp's `llama-server`.
    Llamacpp,
    /// Anything else: the recipe's own `command`, with `{port}` and `{model}` filled in.
    Command,
}

impl Backend {
    /// Its name in recipes and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vllm => "vllm",
            Self::Sglang => "sglang",
            Self::Llamacpp => "llamacpp",
            Self::Command => "command",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which GPUs a recipe wants: `gpus = 2` (any two) or `gpus = [0, 1]` (exactly these).
/// `gpus = 0` serves on the CPU (llama.cpp without offload, a stand-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpuSelect {
    /// Any this many.
    Count(u32),
    /// Exactly these device indices.
    Ids(Vec<u32>),
}

impl Default for GpuSelect {
    fn default() -> Self {
        Self::Count(1)
    }
}

impl GpuSelect {
    /// How many GPUs this asks for.
    pub fn count(&self) -> usize {
        match self {
            Self::Count(n) => *n as usize,
            Self::Ids(ids) => ids.len(),
        }
    }
}

/// How to serve one model. Stored by the daemon under its `name`; `reagent recipe add`
/// reads them from `[[recipe]]` tables in TOML files (see [`file`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// What people call it; also the model instance's name.
    pub name: String,
    /// Which server runs it.
    pub backend: Backend,
    /// A local path or a hub id, passed to the server.
    pub model: String,
    /// The model name the server answers to (`/v1/models`, chat requests); the recipe's
    /// name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_name: Option<String>,
    /// Which GPUs; one by default.
    #[serde(default)]
    pub gpus: GpuSelect,
    /// Tensor-parallel degree; the number of GPUs when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_parallel: Option<u32>,
    /// Fraction of each GPU's memory the server may take (vLLM `--gpu-memory-utilization`,
    /// SGLang `--mem-fraction-static`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_fraction: Option<f64>,
    /// Longest context, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context: Option<u32>,
    /// The tool-call parser (vLLM and SGLang `--tool-call-parser`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_parser: Option<String>,
    /// The reasoning parser (vLLM and SGLang `--reasoning-parser`, llama.cpp
    /// `--reasoning-format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_parser: Option<String>,
    /// The port to serve on; a free one is picked at each launch when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Extra environment for the server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Arguments appended to the built argv, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// For `backend = "command"`: the argv, with `{port}` and `{model}` substituted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Where the server starts; `recipe add` fills in the recipe file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<std::path::PathBuf>,
    /// The path answering 200 once the server is ready; `/health` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// How long a launch waits for health before it fails; 600 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout_secs: Option<u64>,
    /// Stop the model after this long without a request through reagent. Off by default: a
    /// model is never unloaded behind the user's back unless they asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_unload_secs: Option<u64>,
    /// GPU memory the server takes on each of its GPUs, MiB; estimated from
    /// `gpu_memory_fraction` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_mib: Option<u64>,
}

/// How long a launch waits for health when the recipe does not say.
pub const DEFAULT_READY_TIMEOUT_SECS: u64 = 600;

impl Recipe {
    /// The name the server answers to.
    pub fn served_name(&self) -> &str {
        self.served_name.as_deref().unwrap_or(&self.name)
    }

    /// The health path, with the backend's default.
    pub fn health_path(&self) -> &str {
        self.health_path.as_deref().unwrap_or("/health")
    }

    /// Seconds to wait for health.
    pub fn ready_timeout_secs(&self) -> u64 {
        self.ready_timeout_secs
            .unwrap_or(DEFAULT_READY_TIMEOUT_SECS)
    }

    /// The memory fraction the server is told, or the backend's own default (vLLM 0.9,
    /// SGLang about 0.88, rounded up): `None` for backends that take what they need.
    pub fn memory_fraction(&self) -> Option<f64> {
        self.gpu_memory_fraction.or(match self.backend {
            Backend::Vllm | Backend::Sglang => Some(0.9),
            Backend::Llamacpp | Backend::Command => None,
        })
    }

    /// GPU memory it takes on each GPU of `total_mib`: `needs_mib`, else the memory fraction
    /// of the card, else nothing known (0: it fits wherever it is put).
    pub fn needs_mib(&self, total_mib: u64) -> u64 {
        if let Some(mib) = self.needs_mib {
            return mib;
        }
        // Truncation is intended: a whole MiB is precise enough to place a server.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        self.memory_fraction().map_or(0, |fraction| {
            (total_mib as f64 * fraction.clamp(0.0, 1.0)) as u64
        })
    }

    /// Checks what serde cannot: names, numbers in range, a command for `command` recipes.
    pub fn check(&self) -> Result<(), String> {
        crate::names::check("name", &self.name).map_err(|err| err.message)?;
        if self.model.trim().is_empty() && self.backend != Backend::Command {
            return Err(format!("recipe `{}`: `model` is empty", self.name));
        }
        if self.backend == Backend::Command && self.command.is_empty() {
            return Err(format!(
                "recipe `{}`: a `command` recipe needs `command = [\"prog\", \"--port\", \"{{port}}\"]`",
                self.name
            ));
        }
        if self.backend != Backend::Command && !self.command.is_empty() {
            return Err(format!(
                "recipe `{}`: `command` is only for `backend = \"command\"`; use `extra_args`",
                self.name
            ));
        }
        if let Some(fraction) = self.gpu_memory_fraction
            && !(fraction > 0.0 && fraction <= 1.0)
        {
            return Err(format!(
                "recipe `{}`: `gpu_memory_fraction` = {fraction} is not in (0, 1]",
                self.name
            ));
        }
        if let Some(path) = &self.health_path
            && !path.starts_with('/')
        {
            return Err(format!(
                "recipe `{}`: `health_path` = {path:?} must start with `/`",
                self.name
            ));
        }
        if self.tensor_parallel == Some(0) {
            return Err(format!("recipe `{}`: `tensor_parallel` is 0", self.name));
        }
        if let GpuSelect::Ids(ids) = &self.gpus {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != ids.len() {
                return Err(format!("recipe `{}`: `gpus` names a GPU twice", self.name));
            }
        }
        Ok(())
    }
}

/// Where a model instance is in its launch, or how it ended. The daemon moves it through
/// `requested → waiting_lock → evicting → launching → checking_stability → waiting_health
/// → ready`, skipping what is not needed; `failed` and `cancelled` can follow any state
/// before `ready`, `stopped` and `failed` follow `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    /// Asked for; nothing done yet.
    Requested,
    /// Another launch holds the GPUs this one needs.
    WaitingLock,
    /// Stopping least recently used models, then waiting for their memory.
    Evicting,
    /// Starting the server's run.
    Launching,
    /// Watching that the server does not exit in its first seconds.
    CheckingStability,
    /// Polling the health path.
    WaitingHealth,
    /// Serving.
    Ready,
    /// Stopped after it served (by a person, by idle unload, or to make room).
    Stopped,
    /// Did not come up, or its server died; the reason says which.
    Failed,
    /// Stopped before it was ready.
    Cancelled,
}

impl ModelState {
    /// Whether the instance is over: no server runs for it any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed | Self::Cancelled)
    }

    /// Whether a launch is in flight (neither serving nor over).
    pub fn is_launching(self) -> bool {
        !self.is_terminal() && self != Self::Ready
    }

    /// Percent of the launch done: 0 until the server starts, 25 while it starts, 50 while
    /// waiting for health, 100 when ready.
    pub fn progress(self) -> u8 {
        match self {
            Self::Requested | Self::WaitingLock | Self::Evicting => 0,
            Self::Launching | Self::CheckingStability => 25,
            Self::WaitingHealth => 50,
            Self::Ready => 100,
            Self::Stopped | Self::Failed | Self::Cancelled => 0,
        }
    }

    /// Its name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::WaitingLock => "waiting_lock",
            Self::Evicting => "evicting",
            Self::Launching => "launching",
            Self::CheckingStability => "checking_stability",
            Self::WaitingHealth => "waiting_health",
            Self::Ready => "ready",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ModelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a model server reports about its work, derived from two scrapes of its Prometheus
/// `/metrics` (rates need two). Every field is absent when the server does not report it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServingStats {
    /// When it was scraped, ms since the epoch.
    pub ts: i64,
    /// Generated tokens per second since the previous scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gen_tps: Option<f64>,
    /// Prompt tokens per second since the previous scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tps: Option<f64>,
    /// Requests being served now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<f64>,
    /// Requests waiting in the server's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<f64>,
    /// KV-cache use, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache: Option<f64>,
    /// Median time to first token over the last interval (or since start), milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p50_ms: Option<f64>,
}

/// The highest values a model reached while it served, kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServingPeaks {
    /// Highest generated tokens per second.
    #[serde(default)]
    pub gen_tps: f64,
    /// Highest prompt tokens per second.
    #[serde(default)]
    pub prompt_tps: f64,
    /// Deepest queue.
    #[serde(default)]
    pub waiting: f64,
    /// Highest KV-cache use, 0 to 1.
    #[serde(default)]
    pub kv_cache: f64,
}

impl ServingPeaks {
    /// Raises each peak to `stats` where it is higher; says whether any rose.
    pub fn raise(&mut self, stats: &ServingStats) -> bool {
        let mut rose = false;
        for (peak, value) in [
            (&mut self.gen_tps, stats.gen_tps),
            (&mut self.prompt_tps, stats.prompt_tps),
            (&mut self.waiting, stats.waiting),
            (&mut self.kv_cache, stats.kv_cache),
        ] {
            if let Some(value) = value.filter(|v| v.is_finite())
                && value > *peak
            {
                *peak = value;
                rose = true;
            }
        }
        rose
    }
}

/// One model instance: a recipe launched (or being launched), as `models.list` and `model`
/// events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The instance's name: its recipe's name.
    pub name: String,
    /// The name the server answers to.
    pub served_name: String,
    /// The recipe's backend.
    pub backend: Backend,
    /// Where the launch is, or how it ended.
    pub state: ModelState,
    /// Percent of the launch done (see [`ModelState::progress`]).
    pub progress: u8,
    /// Why it waits, failed, was cancelled or stopped; for a failure at start, with the
    /// last lines of the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The GPUs it holds (or will, once evicting is done).
    #[serde(default)]
    pub gpus: Vec<u32>,
    /// GPU memory it takes on each of its GPUs, MiB (0: unknown).
    #[serde(default)]
    pub needs_mib: u64,
    /// Where it serves, on 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The run its server is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The server's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When the launch was asked for, ms since the epoch.
    pub requested_at: i64,
    /// When it became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<i64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    /// Requests reagent passed to it.
    #[serde(default)]
    pub requests: u64,
    /// When reagent last passed it a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_at: Option<i64>,
    /// The latest serving figures, while ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingStats>,
    /// The highest serving figures it reached.
    #[serde(default)]
    pub peaks: ServingPeaks,
}

impl ModelInfo {
    /// A new instance called `name`, asked for at `now`: nothing placed or started yet, and
    /// answering to its own name until the recipe says otherwise.
    pub fn new(name: &str, backend: Backend, now: i64) -> Self {
        Self {
            name: name.to_string(),
            served_name: name.to_string(),
            backend,
            state: ModelState::Requested,
            progress: 0,
            reason: None,
            gpus: Vec::new(),
            needs_mib: 0,
            port: None,
            run: None,
            pid: None,
            requested_at: now,
            ready_at: None,
            ended_at: None,
            requests: 0,
            last_request_at: None,
            serving: None,
            peaks: ServingPeaks::default(),
        }
    }

    /// The same instance in `state`, with that state's progress: for tests and fixtures that
    /// need a model somewhere along its launch.
    pub fn in_state(self, state: ModelState) -> Self {
        Self {
            state,
            progress: state.progress(),
            ..self
        }
    }

    /// When it was last used: its last request, else when it became ready. The least
    /// recently used model is evicted first.
    pub fn last_used(&self) -> i64 {
        self.last_request_at
            .or(self.ready_at)
            .unwrap_or(self.requested_at)
    }
}
