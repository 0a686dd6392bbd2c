//! The runs service: starting runs (and starting them again), talking to their supervisors,
//! settling how they ended, and removing them once they are no longer wanted.
//!
//! A run has an executor, chosen in [`start`] from its spec: here (the default), where its
//! job belongs to its supervisor process, never to the daemon; or a Slurm cluster
//! ([`slurm`]), where it is a batch job. Either way the daemon keeps a [`Pane`](pane::Pane)
//! per live run, fed from the run's log: by a [`follow`] task that listens to the
//! supervisor's socket, or by the Slurm tracker as the job's output file grows. When the
//! daemon starts, it re-adopts every run that had not ended ([`adopt_all`]).

pub mod control;
pub mod env;
pub mod follow;
pub mod launch;
pub mod lifecycle;
pub mod logfile;
pub mod orphan;
pub mod pane;
pub mod program;
pub mod slurm;
pub mod table;
pub mod tidy;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use reagent::protocol::{RpcError, codes};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use reagent::slurm::{Executor, SlurmJob};
use reagent::time::now_ms;
use tokio::sync::mpsc;

use crate::daemon::{Daemon, internal};
use crate::supervisor::wire::{ControlMsg, LaunchSpec, files};
use pane::Pane;
use table::LiveRun;

/// How many bytes at the end of a log rebuild a screen (after a restart, or for an ended run).
const SCREEN_TAIL: u64 = 256 * 1024;

/// Validates a spec, records the run as queued, and launches it: here, or (with
/// `spec.slurm`) by submitting it to Slurm, where it then waits in Slurm's queue.
pub fn start(daemon: &Arc<Daemon>, spec: RunSpec) -> Result<RunInfo, RpcError> {
    if spec.slurm.is_some() {
        let run = record(daemon, spec, Some(SUBMITTING.into()))?;
        slurm::submit(daemon, slurm::Batch::One(run.id.clone()));
        return Ok(run);
    }
    let run = record(daemon, spec, None)?;
    launch::launch(daemon, &run.id)
}

/// The reason of a run on Slurm until `sbatch` answers.
pub const SUBMITTING: &str = "submitting to Slurm";

/// Validates a spec and records the run as queued (with `reason` saying for what), without
/// launching it: the queue launches it when its turn comes, or (on Slurm) the caller
/// submits it.
pub fn create(daemon: &Arc<Daemon>, spec: RunSpec, reason: &str) -> Result<RunInfo, RpcError> {
    record(daemon, spec, Some(reason.to_string()))
}

fn record(
    daemon: &Arc<Daemon>,
    spec: RunSpec,
    reason: Option<String>,
) -> Result<RunInfo, RpcError> {
    if let Some(name) = &spec.name {
        reagent::names::check("name", name)?;
    }
    let rules = crate::alerts::rules::Rules::new(&daemon.config.alerts, &spec.alerts);
    if let Err(why) = rules {
        return Err(invalid(format!("`alerts`: {why}")));
    }
    let slurm = spec.slurm.clone();
    let mut launch = validate(daemon, spec.clone())?;
    let mut state = daemon.state();
    if let Some(name) = &spec.name {
        let taken = state
            .runs()
            .iter()
            .any(|r| !r.status.is_terminal() && r.name.as_ref() == Some(name));
        if taken {
            return Err(invalid(format!(
                "`name`: a live run is already called `{name}`"
            )));
        }
    }
    let id = new_id(&state)?;
    let run = RunInfo {
        id: id.clone(),
        name: spec.name.filter(|n| !n.is_empty()),
        command: launch.command.clone(),
        cwd: launch.cwd.clone(),
        // The run's own variables only: the rest is the client's, and no business of others.
        env_keys: spec.env.iter().map(|(key, _)| key.clone()).collect(),
        status: RunStatus::Queued,
        exit_code: None,
        signal: None,
        reason,
        pid: None,
        cols: launch.cols,
        rows: launch.rows,
        created_at: now_ms(),
        started_at: None,
        ended_at: None,
        log_path: daemon.paths.run_dir(&id).join(files::LOG),
        wandb: None,
        lost_output: None,
        agent_session: spec.agent_session.clone(),
        executor: match slurm {
            Some(_) => Executor::Slurm(SlurmJob::default()),
            None => Executor::Local,
        },
    };
    // A job on Slurm writes its metrics where the cluster's nodes see them.
    let asked = match (&slurm, spec.metrics) {
        (Some(_), None) => Some(slurm::folder(daemon, &id).join(crate::metrics::DEFAULT_FILE)),
        (_, asked) => asked,
    };
    let metrics = crate::metrics::file_for(daemon, &id, &launch.cwd, asked);
    launch.env.push((
        crate::metrics::ENV.into(),
        metrics.to_string_lossy().into_owned(),
    ));
    launch.env.push((orphan::RUN_ID_ENV.into(), id.clone()));
    // The spec goes to disk before the run is recorded, so a restart can always launch it.
    let run_dir = daemon.paths.run_dir(&id);
    let recorded = launch::write_spec(&run_dir, &launch)
        .map_err(internal)
        .and_then(|()| match &slurm {
            Some(slurm) => slurm::prepare(daemon, &id, slurm, &launch, &run.env_keys),
            None => Ok(()),
        })
        .and_then(|()| {
            state
                .store()
                .create_ingest(&id, &metrics, &spec.alerts)
                .map_err(internal)
        })
        .and_then(|()| state.save_run(run));
    if recorded.is_err() {
        // A run that was never recorded leaves no folder behind (a full disk, say).
        tidy::remove_folders(daemon, &id);
    }
    recorded
}

fn validate(daemon: &Daemon, spec: RunSpec) -> Result<LaunchSpec, RpcError> {
    if spec
        .command
        .first()
        .is_none_or(|program| program.is_empty())
    {
        return Err(invalid(
            "`command` is empty: give a program to run, e.g. `reagent run -- python train.py`",
        ));
    }
    let job_env = env::for_run(&daemon.config, &spec).map_err(invalid)?;
    let cwd = match spec.cwd {
        Some(cwd) => cwd,
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    if !cwd.is_dir() {
        return Err(invalid(format!(
            "`cwd`: {} is not a directory",
            cwd.display()
        )));
    }
    match &spec.slurm {
        // The program runs on the cluster's nodes, which this machine cannot look into.
        Some(_) => {
            slurm::check_commands().map_err(|why| invalid(format!("`slurm`: {why}")))?;
        }
        None => program::check(&spec.command[0], &cwd, &job_env)
            .map_err(|why| invalid(format!("`command`: {why}")))?,
    }
    let (cols, rows) = spec
        .size
        .unwrap_or((daemon.config.runs.cols, daemon.config.runs.rows));
    let (cols, rows) =
        pane::fit_size(cols, rows).map_err(|why| invalid(format!("`size`: {why}")))?;
    Ok(LaunchSpec {
        command: spec.command,
        cwd,
        env: job_env,
        complete_env: true,
        cols,
        rows,
        umask: launch::job_umask(),
    })
}

fn new_id(state: &crate::daemon::State) -> Result<String, RpcError> {
    for _ in 0..16 {
        let id = crate::daemon::short_id();
        if state.id_is_free(&id).map_err(internal)? {
            return Ok(id);
        }
    }
    Err(RpcError::new(
        codes::INTERNAL_ERROR,
        "cannot find a free run id",
    ))
}

/// Registers a live run: its pane and the channel to its supervisor, before the supervisor
/// exists, so that attach, input and stop work from the first moment.
fn make_live(run: &RunInfo) -> (LiveRun, mpsc::UnboundedReceiver<ControlMsg>) {
    let (control, rx) = mpsc::unbounded_channel();
    let pane = Arc::new(Mutex::new(Pane::new(&run.id, run.cols, run.rows)));
    (LiveRun { control, pane }, rx)
}

/// A live run whose pane starts from the end of its log: a run taken up again after a
/// restart, or a Slurm job just submitted (whose log may already hold a requeued job's
/// output). A Slurm run drops the channel: it has no supervisor to talk to.
pub(crate) fn live_from_log(run: &RunInfo) -> (LiveRun, mpsc::UnboundedReceiver<ControlMsg>) {
    let (control, rx) = mpsc::unbounded_channel();
    let pane = Arc::new(Mutex::new(pane_from_log(run)));
    (LiveRun { control, pane }, rx)
}

/// A pane of `run`'s screen as the end of its log draws it.
fn pane_from_log(run: &RunInfo) -> Pane {
    let size = std::fs::metadata(&run.log_path).map_or(0, |m| m.len());
    let start = size.saturating_sub(SCREEN_TAIL);
    let mut pane = Pane::new(&run.id, run.cols, run.rows);
    if let Ok((tail, _)) = logfile::read_at(&run.log_path, start, SCREEN_TAIL as usize) {
        pane.restore(start + tail.len() as u64, &tail);
    }
    pane
}

/// Re-adopts every run that had not ended when the daemon last stopped: live supervisors are
/// reconnected (their output caught up from the log), runs that ended meanwhile are settled
/// with their real exit status, queued runs are launched, and runs on Slurm are followed (or
/// submitted) again.
pub fn adopt_all(daemon: &Arc<Daemon>) {
    let (on_slurm, pending): (Vec<RunInfo>, Vec<RunInfo>) = daemon
        .state()
        .runs()
        .iter()
        .filter(|r| !r.status.is_terminal())
        .cloned()
        .partition(|r| r.executor.slurm().is_some());
    slurm::adopt(daemon, on_slurm);
    for run in pending {
        if run.status == RunStatus::Queued {
            if daemon.state().queue.job(&run.id).is_some() {
                continue; // the queue launches it when its turn comes
            }
            if let Err(err) = launch::launch(daemon, &run.id) {
                tracing::warn!(run = %run.id, "cannot launch queued run: {err}");
            }
            continue;
        }
        tracing::info!(run = %run.id, "re-adopting");
        let (live, control) = live_from_log(&run);
        daemon.state().set_live(&run.id, live.clone());
        crate::metrics::ingest::start(daemon, &run.id);
        tokio::spawn(follow::follow(
            daemon.clone(),
            run.id.clone(),
            control,
            live.pane,
        ));
    }
}

/// The screen of an ended run, rebuilt from the end of its log.
pub fn final_screen(run: &RunInfo) -> (Vec<u8>, u64) {
    let mut pane = pane_from_log(run);
    (pane.screen(), pane.offset())
}

/// Locks a pane; a poisoned lock only means a panic elsewhere, and the screen is still usable.
pub fn lock(pane: &Mutex<Pane>) -> std::sync::MutexGuard<'_, Pane> {
    pane.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn invalid(message: impl Into<String>) -> RpcError {
    RpcError::new(codes::INVALID_PARAMS, message)
}
