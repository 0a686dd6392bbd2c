//! Tidying runs away: `runs.remove` and `runs.clean`.
//!
//! Only ended runs go: a live one (queued, launching, running) still has a job, a supervisor
//! or a place in the queue, and is refused with its status named. A removed run leaves
//! nothing: its row, metrics progress, alerts and any queue entry are deleted with the
//! `run_removed` event that tells every client to forget it, then its folder (log, exit
//! record, spec, series files, the default metrics file; a Slurm run's folder on the shared
//! filesystem too) is deleted outside the state lock.
//! A metrics file the run was pointed at with `--metrics` is the user's and stays.

use std::sync::Arc;

use reagent::protocol::{CleanRuns, RpcError, codes};
use reagent::run::RunInfo;
use reagent::time::now_ms;

use crate::daemon::{Daemon, State};

/// `runs.remove`: every query must name an ended run, or nothing is removed.
pub fn remove(daemon: &Arc<Daemon>, queries: &[String]) -> Result<Vec<RunInfo>, RpcError> {
    if queries.is_empty() {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            "`runs` is empty: name at least one run to remove",
        ));
    }
    erase(daemon, |state| {
        let mut picked: Vec<RunInfo> = Vec::new();
        for query in queries {
            let run = state.resolve(query)?;
            if !run.status.is_terminal() {
                let message = format!(
                    "run {} is {}: only ended runs can be removed (stop it first)",
                    run.label(),
                    run.status
                );
                return Err(RpcError::new(codes::INVALID_STATE, message));
            }
            if !picked.iter().any(|seen| seen.id == run.id) {
                picked.push(run.clone());
            }
        }
        Ok(picked)
    })
}

/// `runs.clean`: removes the ended runs `clean` picks, oldest first.
pub fn clean(daemon: &Arc<Daemon>, clean: &CleanRuns) -> Result<Vec<RunInfo>, RpcError> {
    let now = now_ms();
    let old_enough = |run: &RunInfo| {
        clean.older_than_ms.is_none_or(|age| {
            // A run lost before it recorded an end is as old as its submission.
            let ended = run.ended_at.unwrap_or(run.created_at);
            now.saturating_sub(ended) >= i64::try_from(age).unwrap_or(i64::MAX)
        })
    };
    erase(daemon, |state| {
        Ok(state
            .runs()
            .iter()
            .filter(|run| clean.which.covers(run.status) && old_enough(run))
            .cloned()
            .collect())
    })
}

/// Removes the runs `pick` chooses, all under one lock so none can change in between, then
/// deletes their folders. When the database fails midway, the runs removed so far still
/// lose their folders, and the error is the answer.
fn erase(
    daemon: &Daemon,
    pick: impl FnOnce(&State) -> Result<Vec<RunInfo>, RpcError>,
) -> Result<Vec<RunInfo>, RpcError> {
    let mut state = daemon.state();
    let picked = pick(&state)?;
    let mut removed = Vec::with_capacity(picked.len());
    let mut failed = None;
    for run in picked {
        match state.remove_run(&run.id) {
            Ok(()) => removed.push(run),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    drop(state);
    for run in &removed {
        daemon.metrics.forget(&run.id);
        remove_folders(daemon, &run.id);
        tracing::info!(run = %run.id, "removed");
    }
    failed.map_or(Ok(removed), Err)
}

/// Deletes a run's folder, and its Slurm folder on the shared filesystem when it has one
/// there (`[slurm] dir`).
pub fn remove_folders(daemon: &Daemon, id: &str) {
    let own = daemon.paths.run_dir(id);
    let shared = super::slurm::folder(daemon, id);
    for dir in std::iter::once(&own).chain((shared != own).then_some(&shared)) {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(run = %id, "cannot delete {}: {err}", dir.display()),
        }
    }
}
