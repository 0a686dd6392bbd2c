//! Applying the plan: submissions, starts (with `CUDA_VISIBLE_DEVICES`), ends and retries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use reagent::gpu::{SubmitRun, join_ids};
use reagent::protocol::{RpcError, codes};
use reagent::run::{RunInfo, RunSpec, RunStatus};

use super::{Decision, Job, plan};
use crate::daemon::internal;
use crate::daemon::{Daemon, State};
use crate::runs::{follow, launch, logfile};

/// The variable that tells CUDA which GPUs a job may use.
pub const CUDA_ENV: &str = "CUDA_VISIBLE_DEVICES";

/// What in a failed GPU run's log means it lost a race for the GPU, not that it is broken.
const CONTENTION: &[&str] = &[
    "cuda out of memory",
    "cuda error: out of memory",
    "all cuda-capable devices are busy or unavailable",
    "cuda-capable device(s) is/are busy or unavailable",
];

/// How much of the log's end is searched for those.
const TAIL_BYTES: usize = 64 * 1024;

/// Records a run as queued with its needs, then lets the queue decide.
pub fn submit(daemon: &Arc<Daemon>, submit: SubmitRun) -> Result<RunInfo, RpcError> {
    if submit.spec.slurm.is_some() {
        let message = "the GPU queue (GPUs, priority, retries) is this machine's; a run on \
                       Slurm waits in Slurm's queue: start it with `run.start` and ask Slurm \
                       for GPUs in its `slurm` spec";
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    check_request(&daemon.state(), &submit)?;
    let run = crate::runs::create(
        daemon,
        submit.spec,
        &format!("queued for {}", submit.gpus.describe()),
    )?;
    let job = Job {
        run: run.id.clone(),
        request: submit.gpus,
        priority: submit.priority,
        retries_left: submit.retry_gpu,
        sweep: None,
        started: false,
        assigned: Vec::new(),
    };
    enqueue(daemon, job)?;
    schedule(daemon);
    Ok(daemon.state().run(&run.id).cloned().unwrap_or(run))
}

/// Adds a job for a run already recorded as queued, and keeps a copy in the run's folder
/// ([`super::JOB_FILE`]) for `rerun`.
pub fn enqueue(daemon: &Daemon, job: Job) -> Result<(), RpcError> {
    let path = daemon.paths.run_dir(&job.run).join(super::JOB_FILE);
    let written = serde_json::to_vec(&job)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&path, bytes));
    if let Err(err) = written {
        // Only a rerun needs it, and that then starts without the queue.
        tracing::warn!(run = %job.run, "cannot write {}: {err}", path.display());
    }
    let mut state = daemon.state();
    let (queue, store) = state.queue_mut();
    queue.put(store, job).map_err(internal)
}

fn check_request(state: &State, submit: &SubmitRun) -> Result<(), RpcError> {
    let request = &submit.gpus;
    let invalid = |message: String| Err(RpcError::new(codes::INVALID_PARAMS, message));
    let mut ids = request.ids.clone();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != request.ids.len() {
        return invalid(format!(
            "`gpus.ids`: {} names a GPU twice",
            join_ids(&request.ids)
        ));
    }
    if request.wanted() == 0 {
        return Ok(());
    }
    let report = &state.gpus.report;
    if let Some(reason) = &report.unavailable {
        return invalid(format!(
            "this run needs {} but there are none: {reason}",
            request.describe()
        ));
    }
    let missing: Vec<u32> = (request.ids.iter().copied())
        .filter(|id| !report.gpus.iter().any(|gpu| gpu.index == *id))
        .collect();
    if report.ts > 0 && !missing.is_empty() {
        let have: Vec<u32> = report.gpus.iter().map(|gpu| gpu.index).collect();
        let have = match have.is_empty() {
            true => "no GPUs".to_string(),
            false => format!("GPUs {}", join_ids(&have)),
        };
        return invalid(format!(
            "`gpus.ids`: no GPU {} here (this machine has {have})",
            join_ids(&missing)
        ));
    }
    if report.ts > 0 && request.ids.is_empty() && request.wanted() > report.gpus.len() {
        return invalid(format!(
            "this run needs {} but the machine has {}",
            request.describe(),
            report.gpus.len()
        ));
    }
    Ok(())
}

/// Starts every job the plan lets start, and records why the others wait.
pub fn schedule(daemon: &Arc<Daemon>) {
    let starts = {
        let mut state = daemon.state();
        let decisions = decide(&state, daemon.config.gpus.free_below_mib);
        let mut starts = Vec::new();
        for decision in decisions {
            match decision {
                Decision::Start { run, gpus } => {
                    if let Err(err) = mark_started(&mut state, &run, &gpus) {
                        tracing::error!(run = %run, "cannot record the GPU assignment: {err}");
                        continue;
                    }
                    starts.push((run, gpus));
                }
                Decision::Wait { run, reason } => {
                    let stale = state
                        .run(&run)
                        .is_some_and(|r| r.reason.as_ref() != Some(&reason));
                    if stale && let Err(err) = state.update_run(&run, |r| r.reason = Some(reason)) {
                        tracing::warn!(run = %run, "cannot record why it waits: {err}");
                    }
                }
            }
        }
        starts
    };
    for (run, gpus) in starts {
        tracing::info!(run = %run, gpus = %join_ids(&gpus), "starting a queued run");
        let launched = set_gpus(daemon, &run, &gpus).and_then(|()| launch::launch(daemon, &run));
        if let Err(err) = launched {
            // Settling wakes the queue, which then frees the GPUs it handed out.
            follow::settle_failed(daemon, &run, &err.message);
        }
    }
}

fn decide(state: &State, free_below_mib: Option<u64>) -> Vec<Decision> {
    let jobs = state.queue.jobs();
    let labels: HashMap<String, String> = jobs
        .iter()
        .filter_map(|job| Some((job.run.clone(), state.run(&job.run)?.label().to_string())))
        .collect();
    let limits = state
        .sweeps()
        .iter()
        .map(|s| (s.id.clone(), (s.name.clone(), s.parallel)))
        .collect();
    let gpus = &state.gpus.report.gpus;
    let held: HashSet<u32> = state.queue.model_gpus().into_keys().collect();
    let mut decisions = plan(jobs, gpus, free_below_mib, &limits, &labels, &held);
    // Say why no GPUs were seen when the daemon knows (no driver …).
    if let Some(why) = &state.gpus.report.unavailable {
        for decision in &mut decisions {
            if let Decision::Wait { reason, .. } = decision {
                *reason = reason.replace("no GPUs seen yet", &format!("no GPUs: {why}"));
            }
        }
    }
    decisions
}

fn mark_started(state: &mut State, run: &str, gpus: &[u32]) -> Result<(), RpcError> {
    let (queue, store) = state.queue_mut();
    let Some(mut job) = queue.job(run).cloned() else {
        return Ok(());
    };
    (job.started, job.assigned) = (true, gpus.to_vec());
    queue.put(store, job).map_err(internal)?;
    state.update_run(run, |r| {
        r.reason = None;
        if !gpus.is_empty() && !r.env_keys.iter().any(|k| k == CUDA_ENV) {
            r.env_keys.push(CUDA_ENV.into());
        }
    })?;
    Ok(())
}

/// Puts `CUDA_VISIBLE_DEVICES` in the run's spec file, which its supervisor reads.
fn set_gpus(daemon: &Daemon, run: &str, gpus: &[u32]) -> Result<(), RpcError> {
    if gpus.is_empty() {
        return Ok(());
    }
    let dir = daemon.paths.run_dir(run);
    let mut spec = launch::read_spec(&dir)?;
    spec.env.retain(|(key, _)| key != CUDA_ENV);
    spec.env.push((CUDA_ENV.into(), join_ids(gpus)));
    launch::write_spec(&dir, &spec).map_err(internal)
}

/// The queue's task: each time it is woken ([`Daemon::queue_wake`]: a run ended or was
/// stopped before it started, GPUs appeared), it settles the jobs whose runs have ended and
/// looks again. Runs wake it rather than call it, so the runs service does not depend on the
/// queue (see `docs/architecture.md`), and a wake while it works is kept, never lost.
pub async fn run(daemon: Arc<Daemon>) {
    loop {
        daemon.queue_wake.notified().await;
        let ended: Vec<String> = {
            let state = daemon.state();
            (state.queue.jobs().iter())
                .filter(|job| {
                    state
                        .run(&job.run)
                        .is_none_or(|run| run.status.is_terminal())
                })
                .map(|job| job.run.clone())
                .collect()
        };
        for id in ended {
            ended_job(&daemon, &id);
        }
        schedule(&daemon);
    }
}

/// After a run ended: frees its GPUs, and requeues it as a new run when it died of GPU
/// contention and has retries left.
fn ended_job(daemon: &Arc<Daemon>, id: &str) {
    let (job, run) = {
        let mut state = daemon.state();
        let run = state.run(id).cloned();
        let (queue, store) = state.queue_mut();
        match queue.remove(store, id) {
            Ok(Some(job)) => (job, run),
            Ok(None) => return,
            Err(err) => {
                tracing::error!(run = %id, "cannot free the run's GPUs: {err:#}");
                return;
            }
        }
    };
    if let Some(run) = run
        && job.retries_left > 0
        && run.status == RunStatus::Failed
        && died_of_contention(&run)
        && let Err(err) = retry(daemon, &run, &job)
    {
        tracing::warn!(run = %id, "cannot requeue the run: {err}");
    }
}

fn died_of_contention(run: &RunInfo) -> bool {
    let size = std::fs::metadata(&run.log_path).map_or(0, |m| m.len());
    let start = size.saturating_sub(TAIL_BYTES as u64);
    let Ok((tail, _)) = logfile::read_at(&run.log_path, start, TAIL_BYTES) else {
        return false;
    };
    let tail = String::from_utf8_lossy(&tail).to_lowercase();
    CONTENTION.iter().any(|pattern| tail.contains(pattern))
}

/// Requeues a run that lost a GPU race as a new run (a new id, the same command and name),
/// so each attempt keeps its own log and exit status.
fn retry(daemon: &Arc<Daemon>, run: &RunInfo, job: &Job) -> Result<(), RpcError> {
    // The new run gets its own GPUs and its own metrics file.
    let again = RunSpec {
        metrics: None,
        alerts: Vec::new(),
        ..super::rerun::past_spec(daemon, run, Some(job))?
    };
    let left = job.retries_left - 1;
    let reason = format!("queued again after GPU contention ({left} retries left)");
    let new = crate::runs::create(daemon, again, &reason)?;
    enqueue(
        daemon,
        Job {
            run: new.id.clone(),
            retries_left: left,
            started: false,
            assigned: Vec::new(),
            ..job.clone()
        },
    )?;
    tracing::info!(run = %run.id, retry = %new.id, left, "CUDA busy or out of memory: requeued as a new run");
    let mut state = daemon.state();
    let note = format!(
        "{}; CUDA busy or out of memory, retried as {}",
        run.reason.as_deref().unwrap_or("failed"),
        new.id
    );
    state.update_run(&run.id, |r| r.reason = Some(note))?;
    if let Some(sweep) = &job.sweep
        && let Ok(info) = state.resolve_sweep(sweep)
    {
        let mut info = info.clone();
        info.runs.push(new.id.clone());
        state.save_sweep(info)?;
    }
    Ok(())
}

/// After a restart: a job marked started whose run never launched waits again (the daemon
/// died between the two), and the queue decides afresh.
pub fn adopt(daemon: &Arc<Daemon>) {
    {
        let mut state = daemon.state();
        let unlaunched: Vec<Job> = state
            .queue
            .jobs()
            .iter()
            .filter(|job| job.started)
            .filter(|job| {
                state
                    .run(&job.run)
                    .is_some_and(|r| r.status == RunStatus::Queued)
            })
            .cloned()
            .collect();
        let (queue, store) = state.queue_mut();
        for mut job in unlaunched {
            (job.started, job.assigned) = (false, Vec::new());
            if let Err(err) = queue.put(store, job) {
                tracing::error!("cannot requeue an unlaunched run: {err:#}");
            }
        }
    }
    schedule(daemon);
}
