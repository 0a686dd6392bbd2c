//! GPUs as clients see them: what the daemon samples, and the queue that hands GPUs to runs.
//!
//! The daemon owns both; these are the shapes that travel in `gpus.list`, `queue.list`,
//! `run.submit` and the ephemeral `gpus` event.

use serde::{Deserialize, Serialize};

// Their params live with every other method's; the old paths keep working.
pub use crate::protocol::{ListGpus, ListQueue, SubmitRun};

/// One GPU at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// The device index (what `CUDA_VISIBLE_DEVICES` names).
    pub index: u32,
    /// The product name; fake GPUs are called `Fake GPU N`.
    pub name: String,
    /// The device UUID.
    pub uuid: String,
    /// True for the fake source (`REAGENT_FAKE_GPUS`): every view marks it FAKE.
    #[serde(default)]
    pub fake: bool,
    /// Percent of time a kernel ran over the last sample period.
    pub util_pct: Option<u32>,
    /// Memory in use, MiB.
    pub mem_used_mib: u64,
    /// Memory installed, MiB.
    pub mem_total_mib: u64,
    /// Core temperature, °C.
    pub temp_c: Option<u32>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Power limit, watts.
    pub power_limit_w: Option<f64>,
    /// Fan speed, percent of maximum.
    pub fan_pct: Option<u32>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<u32>,
    /// Memory clock, MHz.
    pub mem_clock_mhz: Option<u32>,
    /// Compute processes on it.
    #[serde(default)]
    pub processes: Vec<GpuProcess>,
    /// The reagent run the queue handed this GPU to, if any.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// The model server holding it (or launching onto it), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl GpuInfo {
    /// Memory in use as a fraction of the total (0 when the total is unknown).
    pub fn mem_fraction(&self) -> f64 {
        if self.mem_total_mib == 0 {
            return 0.0;
        }
        (self.mem_used_mib as f64 / self.mem_total_mib as f64).clamp(0.0, 1.0)
    }
}

/// A compute process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    /// Its pid (on the daemon's machine).
    pub pid: u32,
    /// GPU memory it holds, MiB, when the driver says.
    pub used_mib: Option<u64>,
    /// The reagent run whose process tree holds it.
    pub run: Option<String>,
}

/// Where GPU readings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuSourceKind {
    /// The driver's NVML library.
    Nvml,
    /// `nvidia-smi`'s CSV query (NVML could not be loaded).
    NvidiaSmi,
    /// Made-up GPUs for demos and tests (`REAGENT_FAKE_GPUS=N`).
    Fake,
    /// Nothing: see the report's `unavailable`.
    None,
}

/// The GPUs now, a short history, and why there are none when there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReport {
    /// Where readings come from.
    pub source: GpuSourceKind,
    /// Why GPUs cannot be read (no driver …), said once by the daemon and shown everywhere.
    pub unavailable: Option<String>,
    /// When the last sample was taken (Unix ms; 0 before the first).
    pub ts: i64,
    /// Every GPU in the last sample.
    pub gpus: Vec<GpuInfo>,
    /// Utilisation percent per GPU, oldest first (for sparklines); in `gpus.list` only.
    #[serde(default)]
    pub history: Vec<Vec<u8>>,
}

impl GpuReport {
    /// A report with no readings yet.
    pub fn empty(source: GpuSourceKind, unavailable: Option<String>) -> Self {
        Self {
            source,
            unavailable,
            ts: 0,
            gpus: Vec::new(),
            history: Vec::new(),
        }
    }
}

/// How many GPUs a run needs, or exactly which.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GpuRequest {
    /// Any this many free GPUs.
    #[serde(default)]
    pub count: u32,
    /// Exactly these GPUs (overrides `count`).
    #[serde(default)]
    pub ids: Vec<u32>,
}

impl GpuRequest {
    /// How many GPUs it takes.
    pub fn wanted(&self) -> usize {
        if self.ids.is_empty() {
            self.count as usize
        } else {
            self.ids.len()
        }
    }

    /// `2 GPUs`, `GPUs 0,3`, `no GPU`.
    pub fn describe(&self) -> String {
        match (self.ids.as_slice(), self.count) {
            ([], 0) => "no GPU".into(),
            ([], 1) => "1 GPU".into(),
            ([], n) => format!("{n} GPUs"),
            ([id], _) => format!("GPU {id}"),
            (ids, _) => format!("GPUs {}", join_ids(ids)),
        }
    }
}

/// `0,3`: GPU indices as `CUDA_VISIBLE_DEVICES` writes them.
pub fn join_ids(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// One run the queue knows: waiting (with why) or holding GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The run's id.
    pub run: String,
    /// Its name or id.
    pub label: String,
    /// What it asked for.
    pub request: GpuRequest,
    /// Its priority.
    pub priority: i32,
    /// Retries left for CUDA busy / out-of-memory deaths.
    pub retries_left: u32,
    /// The sweep it belongs to.
    pub sweep: Option<String>,
    /// GPUs handed to it (empty while it waits).
    pub assigned: Vec<u32>,
    /// Why it waits; `None` once it holds what it asked for.
    pub waiting: Option<String>,
}
