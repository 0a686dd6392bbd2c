//! The Slurm executor: runs whose job is a Slurm batch job instead of a process here.
//!
//! Slurm is the engine; reagent submits and follows. A run on Slurm is recorded like any
//! other (`queued`, its `spec.json` holding the job's command, cwd and environment) and
//! then:
//!
//! - **submitted** ([`submit()`]): a batch script is written (the command, cwd, the run's own
//!   variables, `REAGENT_METRICS_FILE`, the output file) and handed to `sbatch --parsable`,
//!   run with the job's own environment, never the daemon's (whose secrets would otherwise
//!   reach the job). A sweep's points go as one job array when they fit one, `--parallel`
//!   being the array's `%N`. A refusal fails the run with Slurm's words.
//! - **followed** ([`track`]): one task for every Slurm run, which asks `squeue` about all
//!   their jobs at once, often after a change and then every `poll_secs`, and less often
//!   while the controller does not answer. A pending job's reason (`Priority`,
//!   `Resources`) becomes the run's; a running job's output file, which is the run's log,
//!   is tailed into its pane like a local run's; an ended job's exit code comes from `sacct`
//!   where the cluster keeps accounting, else from `scontrol show job`.
//! - **stopped** ([`stop`]): `scancel --signal=TERM --full`, then `scancel` once the grace
//!   is over (a job still pending is cancelled at once). The grace's end is kept on the run,
//!   so it holds across a daemon restart.
//! - **re-adopted** ([`adopt`]) when the daemon starts: the tracker takes submitted runs up
//!   again, and runs that were never submitted are (any job a dead daemon may have handed
//!   Slurm in that instant cancelled first, by name).
//!
//! The pane of a run on Slurm is read-only: its job has no terminal to type into.

mod cmd;
mod submit;
mod track;
pub mod wire;

use std::sync::Arc;

use reagent::protocol::{RpcError, codes};
use reagent::run::{RunInfo, RunStatus};
use reagent::slurm::Executor;
use reagent::time::now_ms;
use tokio::sync::{Notify, Semaphore};

use crate::daemon::{Daemon, State};
pub use submit::{Batch, folder, past_spec, prepare, submit};

/// What the daemon keeps in memory about Slurm (in the runs table, under the state lock).
pub struct Board {
    /// Wakes the tracker: a job was submitted or a stop asked for.
    wake: Arc<Notify>,
    /// Whether the tracker task runs; it ends once no run on Slurm is left to follow.
    tracking: bool,
    /// The cluster's name and largest array, once `scontrol show config` told them.
    cluster: Option<wire::ClusterConfig>,
    /// Submissions under way at once: a script starting a thousand runs must not fork a
    /// thousand `sbatch` at the controller.
    submitting: Arc<Semaphore>,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            wake: Arc::default(),
            tracking: false,
            cluster: None,
            submitting: Arc::new(Semaphore::new(SUBMISSIONS)),
        }
    }
}

/// How many `sbatch` may run at once.
const SUBMISSIONS: usize = 4;

/// Checks that Slurm's commands are on the daemon's PATH, naming the first one missing.
pub fn check_commands() -> Result<(), String> {
    for program in ["sbatch", "squeue", "scontrol", "scancel"] {
        cmd::find(program)?;
    }
    Ok(())
}

/// Starts the tracker unless it runs, and wakes it to look now.
fn wake_tracker(daemon: &Arc<Daemon>, state: &mut State) {
    let board = &mut state.runs.slurm;
    if !board.tracking {
        board.tracking = true;
        tokio::spawn(track::run(daemon.clone()));
    }
    board.wake.notify_one();
}

/// Stops a run on Slurm whose job was submitted: its job is sent SIGTERM (`scancel
/// --signal=TERM --full`, which reaches the batch script's own program) and cancelled
/// outright once `grace_ms` is over, or at once while it still waits in Slurm's queue. The
/// run ends when Slurm says its job did, as `stopped`.
pub fn stop(
    daemon: &Arc<Daemon>,
    state: &mut State,
    run: &RunInfo,
    grace_ms: u64,
) -> Result<RunInfo, RpcError> {
    let Some(job) = run.executor.slurm().and_then(|slurm| slurm.job.clone()) else {
        let message = format!("run {} has no Slurm job to stop", run.label());
        return Err(RpcError::new(codes::INVALID_STATE, message));
    };
    let now = now_ms();
    let soft = run.status == RunStatus::Running && grace_ms > 0;
    let by = now.saturating_add(i64::try_from(grace_ms).unwrap_or(i64::MAX));
    let by = if soft { by } else { now };
    let stopping = state.update_run(&run.id, |run| {
        if let Executor::Slurm(slurm) = &mut run.executor {
            // A second stop may shorten the grace, never lengthen it.
            slurm.stop_by = Some(slurm.stop_by.map_or(by, |earlier| earlier.min(by)));
        }
    })?;
    tracing::info!(run = %run.id, %job, grace_ms, "stop requested");
    if soft {
        let daemon = daemon.clone();
        let args = ["--signal=TERM".to_string(), "--full".into(), job];
        tokio::spawn(async move {
            // When this fails, the tracker's cancel at the grace's end still comes.
            match cmd::run(&daemon.config.slurm, "scancel", &args, None).await {
                Ok(out) if out.ok => {}
                Ok(out) => tracing::warn!("scancel: {}", out.error("scancel")),
                Err(err) => tracing::warn!("{err}"),
            }
        });
    }
    // The tracker sends the outright cancel when its time comes (now, for a pending job).
    wake_tracker(daemon, state);
    Ok(stopping)
}

/// Re-adopts the runs on Slurm that had not ended when the daemon last stopped: submitted
/// ones are followed again (their panes rebuilt from their logs' tails), and those never
/// submitted are submitted now, a sweep's together.
pub fn adopt(daemon: &Arc<Daemon>, runs: Vec<RunInfo>) {
    let (submitted, unsubmitted): (Vec<RunInfo>, Vec<RunInfo>) =
        (runs.into_iter()).partition(|run| {
            run.executor
                .slurm()
                .is_some_and(|slurm| slurm.job.is_some())
        });
    // Panes from the logs' tails, read outside the lock.
    let lives: Vec<_> = (submitted.iter())
        .map(|run| (run, super::live_from_log(run).0))
        .collect();
    let mut running = Vec::new();
    let mut state = daemon.state();
    for (run, live) in lives {
        tracing::info!(run = %run.id, "re-adopting its Slurm job");
        state.set_live(&run.id, live);
        if run.status == RunStatus::Running {
            running.push(run.id.clone());
        }
    }
    if !submitted.is_empty() {
        wake_tracker(daemon, &mut state);
    }
    let batches = submit::regroup(&state, &unsubmitted);
    drop(state);
    // Outside the lock: ingest takes it.
    for id in running {
        crate::metrics::ingest::start(daemon, &id);
    }
    for batch in batches {
        submit::resubmit(daemon, batch);
    }
}
