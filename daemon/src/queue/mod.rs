//! The queue: runs that wait for GPUs or for a slot in their sweep, and the GPUs handed out.
//!
//! A [`Job`] is kept (in memory and in the `queue` table) from submission until its run ends,
//! so both waiting runs and GPU assignments survive a daemon restart. Deciding who starts is
//! the pure [`plan`]; [`schedule`] applies it under the state lock and launches outside it.
//! It runs on events only — a submission, a run's end, a sweep change, a GPU sample that could
//! free a GPU — never on a timer.

mod plan;
pub mod rerun;
mod schedule;
pub mod sweeps;

use std::collections::HashMap;

use reagent::gpu::{GpuRequest, QueueEntry};
use serde::{Deserialize, Serialize};

use crate::daemon::State;
use crate::store::Store;
pub use plan::{Decision, plan};
pub use schedule::{CUDA_ENV, adopt, run, schedule, submit};

/// One run the queue looks after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The run's id.
    pub run: String,
    /// The GPUs it needs.
    pub request: GpuRequest,
    /// Higher starts first.
    pub priority: i32,
    /// Requeues left for CUDA busy / out-of-memory deaths.
    pub retries_left: u32,
    /// The sweep it belongs to.
    pub sweep: Option<String>,
    /// Whether it was handed what it needs and launched.
    pub started: bool,
    /// The GPUs it holds while started.
    pub assigned: Vec<u32>,
}

/// The file in a run's folder that keeps its [`Job`] as queued: the queue forgets a job once
/// its run ends, and `rerun` asks for the same GPUs, priority and retries.
pub const JOB_FILE: &str = "job.json";

/// What a run asked the queue for when it was queued; `None` for a run that never waited
/// in the queue (or whose file is unreadable: it is then rerun without the queue).
pub fn queued_job(run_dir: &std::path::Path) -> Option<Job> {
    let bytes = std::fs::read(run_dir.join(JOB_FILE)).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|err| tracing::warn!("{} does not parse: {err}", run_dir.display()))
        .ok()
}

/// Every job, in submission order, and the GPUs model servers hold.
#[derive(Debug, Default)]
pub struct Queue {
    jobs: Vec<Job>,
    holds: HashMap<String, Hold>,
}

/// GPUs a model server holds outside the queue's jobs: the models service places its
/// servers itself (by memory, sharing GPUs between models), and registers them here so no
/// training run is handed the same GPUs. Kept in memory: the models service registers its
/// live servers again when the daemon starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The GPUs.
    pub gpus: Vec<u32>,
    /// Memory it takes on each, MiB.
    pub mib: u64,
    /// Its server's run, once started.
    pub run: Option<String>,
}

impl Queue {
    /// The jobs the store kept.
    pub fn load(store: &Store) -> anyhow::Result<Self> {
        Ok(Self {
            jobs: store.load_jobs()?,
            holds: HashMap::new(),
        })
    }

    /// Every job, in submission order.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// A run's job.
    pub fn job(&self, run: &str) -> Option<&Job> {
        self.jobs.iter().find(|job| job.run == run)
    }

    /// Which run holds each GPU.
    pub fn assignments(&self) -> HashMap<u32, String> {
        self.jobs
            .iter()
            .flat_map(|job| job.assigned.iter().map(|&gpu| (gpu, job.run.clone())))
            .collect()
    }

    /// Registers (or replaces) the GPUs model `model` holds.
    pub fn hold(&mut self, model: &str, hold: Hold) {
        self.holds.insert(model.to_string(), hold);
    }

    /// Lets a model's GPUs go; says whether it held any.
    pub fn release(&mut self, model: &str) -> bool {
        self.holds
            .remove(model)
            .is_some_and(|hold| !hold.gpus.is_empty())
    }

    /// What each model holds, by model name.
    pub fn holds(&self) -> &HashMap<String, Hold> {
        &self.holds
    }

    /// Which model holds each GPU (the first by name when several share one).
    pub fn model_gpus(&self) -> HashMap<u32, String> {
        let mut names: Vec<&String> = self.holds.keys().collect();
        names.sort();
        let mut gpus = HashMap::new();
        for name in names.into_iter().rev() {
            for &gpu in &self.holds[name].gpus {
                gpus.insert(gpu, name.clone());
            }
        }
        gpus
    }

    /// Whether any job waits.
    pub fn has_waiting(&self) -> bool {
        self.jobs.iter().any(|job| !job.started)
    }

    /// Adds or replaces a job, store first.
    pub fn put(&mut self, store: &Store, job: Job) -> anyhow::Result<()> {
        store.save_job(&job)?;
        match self.jobs.iter_mut().find(|j| j.run == job.run) {
            Some(existing) => *existing = job,
            None => self.jobs.push(job),
        }
        Ok(())
    }

    /// Removes a run's job, store first.
    pub fn remove(&mut self, store: &Store, run: &str) -> anyhow::Result<Option<Job>> {
        store.delete_job(run)?;
        let index = self.jobs.iter().position(|job| job.run == run);
        Ok(index.map(|i| self.jobs.remove(i)))
    }
}

/// Every job: waiting ones with why, started ones with their GPUs.
pub fn entries(state: &State) -> Vec<QueueEntry> {
    state
        .queue
        .jobs()
        .iter()
        .map(|job| {
            let run = state.run(&job.run);
            QueueEntry {
                run: job.run.clone(),
                label: run.map_or_else(|| job.run.clone(), |r| r.label().to_string()),
                request: job.request.clone(),
                priority: job.priority,
                retries_left: job.retries_left,
                sweep: job.sweep.clone(),
                assigned: job.assigned.clone(),
                waiting: if job.started {
                    None
                } else {
                    Some(
                        run.and_then(|r| r.reason.clone())
                            .unwrap_or_else(|| "queued".into()),
                    )
                },
            }
        })
        .collect()
}
