//! Params of the GPU queue and sweep methods (`run.submit`, `queue.list`, `gpus.list`,
//! `sweeps.list`, `sweep.show`, `sweep.stop`); their replies are the shapes in [`crate::gpu`]
//! and [`crate::sweep`].

use serde::{Deserialize, Serialize};

use crate::gpu::GpuRequest;
use crate::run::RunSpec;

/// `run.submit` params: a run with GPU needs, a priority and a retry budget.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRun {
    /// The run itself.
    pub spec: RunSpec,
    /// Which GPUs it needs.
    #[serde(default)]
    pub gpus: GpuRequest,
    /// Higher starts first; FIFO within a priority.
    #[serde(default)]
    pub priority: i32,
    /// Requeue up to this many times when the job dies of CUDA busy / out of memory.
    #[serde(default)]
    pub retry_gpu: u32,
}

/// `queue.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListQueue {}

/// `gpus.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListGpus {}

/// `sweeps.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListSweeps {}

/// `sweep.show` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRef {
    /// Sweep id, name or unique id prefix.
    pub sweep: String,
}

/// `sweep.stop` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSweep {
    /// Sweep id, name or unique id prefix.
    pub sweep: String,
}
