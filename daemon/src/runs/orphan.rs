//! Jobs left behind by a supervisor that died: a `lost` run whose job ignored SIGHUP goes on
//! under PID 1, and the user must still be able to stop it.
//!
//! A lost run keeps its job's process group id (`RunInfo::pid`; the job leads its own group).
//! Process ids are reused, so before the group is signalled it must still hold a process of
//! this run: one whose environment carries `REAGENT_RUN_ID=<id>`, which every job gets.

use std::time::Duration;

use reagent::run::RunInfo;
use rustix::process::Signal;

use crate::daemon::Daemon;

/// The variable every job gets with its run's id (also useful to the job itself).
pub const RUN_ID_ENV: &str = "REAGENT_RUN_ID";

/// How often a stopping orphan is checked for having ended.
const POLL: Duration = Duration::from_millis(100);

/// True when process group `pgid` still holds a process of run `id`.
pub fn alive(id: &str, pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let marker = format!("{RUN_ID_ENV}={id}");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| crate::process::stat_field(pid, 2) == Some(pgid))
        .any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|&b| b == 0)
                    .any(|var| var == marker.as_bytes())
            })
        })
}

/// Stops the orphaned job of lost run `run`: SIGTERM to its group now, SIGKILL after `grace`
/// unless the group ended by then. Returns the run with its reason saying so, or `None`
/// when the run has no living job.
pub fn stop(daemon: &std::sync::Arc<Daemon>, run: &RunInfo, grace: Duration) -> Option<RunInfo> {
    let pgid = run.pid.filter(|&pgid| alive(&run.id, pgid))?;
    tracing::info!(run = %run.id, pgid, "stopping the orphaned job of a lost run");
    signal(pgid, Signal::TERM);
    let reason =
        format!("its supervisor died; its job (process group {pgid}) ran on and was sent SIGTERM");
    let stopping = daemon
        .state()
        .update_run(&run.id, |run| run.reason = Some(reason))
        .ok()?;
    let daemon = daemon.clone();
    let id = run.id.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + grace;
        while alive(&id, pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
        let how = if alive(&id, pgid) {
            signal(pgid, Signal::KILL);
            "killed (SIGKILL after the grace period)"
        } else {
            "stopped"
        };
        let reason =
            format!("its supervisor died; its job (process group {pgid}) ran on and was {how}");
        let result = daemon.state().update_run(&id, |run| {
            run.pid = None;
            run.reason = Some(reason);
        });
        if let Err(err) = result {
            tracing::warn!(run = %id, "cannot record the orphan's stop: {err}");
        }
    });
    Some(stopping)
}

/// Signals the orphan's group, saying in the log when it cannot.
fn signal(pgid: u32, signal: Signal) {
    if let Err(err) = crate::process::signal_group(pgid, signal) {
        tracing::warn!("cannot signal the orphaned job: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_without_the_run_is_not_alive() {
        let group = rustix::process::getpgrp().as_raw_nonzero().get();
        let group = u32::try_from(group).expect("positive");
        assert!(!alive("no-such-run", group));
    }
}
