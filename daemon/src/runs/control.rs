//! Talking to runs: stop, type into, resize, rename, read the log of, and wait for a run.
//! Each is the one function for it; the protocol handlers, the alerts and sweeps call these.

use std::sync::Arc;
use std::time::Duration;

use reagent::protocol::{Base64Text, Blob, LogChunk, ReadLog, RpcError, codes};
use reagent::run::{RunInfo, RunStatus};
use reagent::time::now_ms;

use super::lifecycle::RunEvent;
use super::table::LiveRun;
use super::{lock, logfile, orphan, pane, slurm};
use crate::daemon::{Daemon, State};
use crate::supervisor::wire::ControlMsg;

/// Said when a run has no job to talk to.
fn not_running(run: &RunInfo) -> RpcError {
    RpcError::new(
        codes::INVALID_STATE,
        format!("run {} is not running (it is {})", run.label(), run.status),
    )
}

/// The run and its live handle for its terminal, or why it has none. A run on Slurm has
/// none: a batch job's output is a file, its pane read-only.
fn live_run(state: &State, query: &str) -> Result<(RunInfo, LiveRun), RpcError> {
    let run = state.resolve(query)?.clone();
    if run.executor.slurm().is_some() {
        let message = format!(
            "run {} runs on Slurm ({}): a batch job has no terminal, so its pane is \
             read-only; follow it with `reagent logs -f` or `reagent attach --watch`",
            run.label(),
            run.executor.describe()
        );
        return Err(RpcError::new(codes::INVALID_STATE, message));
    }
    match state.live(&run.id) {
        Some(live) if !run.status.is_terminal() => Ok((run, live.clone())),
        _ => Err(not_running(&run)),
    }
}

fn send(live: &LiveRun, run: &RunInfo, msg: ControlMsg) -> Result<(), RpcError> {
    live.control.send(msg).map_err(|_| not_running(run))
}

/// Stop: SIGTERM to the job's process group now, SIGKILL after the grace period (the
/// supervisor keeps that timer, so it holds even if the daemon dies meanwhile); for a run on
/// Slurm, `scancel` likewise ([`slurm::stop`]).
/// A queued run is cancelled instead (it never starts; `why` is its reason, e.g. "stopped
/// before it started"), and a lost run whose job outlived its supervisor has its process
/// group signalled directly.
pub fn stop(
    daemon: &Arc<Daemon>,
    query: &str,
    grace_secs: Option<f64>,
    why: &str,
) -> Result<RunInfo, RpcError> {
    let grace = grace_secs.unwrap_or(daemon.config.runs.stop_grace_secs);
    if !(0.0..=86_400.0).contains(&grace) {
        let message = format!("`grace_secs`: {grace} is outside 0 to 86400");
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    // Truncation is intended: the grace period is whole milliseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let grace_ms = (grace * 1000.0) as u64;
    let mut state = daemon.state();
    let run = state.resolve(query)?.clone();
    let submitted = run
        .executor
        .slurm()
        .is_some_and(|slurm| slurm.job.is_some());
    if submitted && !run.status.is_terminal() {
        return slurm::stop(daemon, &mut state, &run, grace_ms);
    }
    // A run on Slurm not submitted yet stops here; its submission then cancels its job.
    if run.status == RunStatus::Queued {
        // Waiting for its turn: it never starts, and the queue lets its place go.
        let stop = RunEvent::StoppedBeforeStart {
            reason: why.to_string(),
            at_ms: now_ms(),
        };
        let stopped = state.advance_run(&run.id, stop)?;
        drop(state);
        daemon.queue_wake.notify_one();
        return Ok(stopped);
    }
    let Some(live) = state.live(&run.id).filter(|_| !run.status.is_terminal()) else {
        drop(state);
        // A lost run's job may have outlived its supervisor.
        let orphan = (run.status == RunStatus::Lost)
            .then(|| orphan::stop(daemon, &run, Duration::from_millis(grace_ms)))
            .flatten();
        return orphan.ok_or_else(|| not_running(&run));
    };
    tracing::info!(run = %run.id, grace, "stop requested");
    send(live, &run, ControlMsg::Stop { grace_ms })?;
    Ok(run)
}

/// Why a queued run stopped by a person ended.
pub const STOPPED_BEFORE_START: &str = "stopped before it started";

/// Types bytes into the job's terminal.
/// The text goes to the supervisor as it came: keystrokes are not decoded and encoded
/// again on the way.
pub fn input(daemon: &Daemon, query: &str, data: Base64Text) -> Result<(), RpcError> {
    let state = daemon.state();
    let (run, live) = live_run(&state, query)?;
    let data = data.as_str().to_owned();
    send(&live, &run, ControlMsg::Input { data })
}

/// Resizes the job's terminal and the daemon's screen model together.
pub fn resize(daemon: &Daemon, query: &str, cols: u16, rows: u16) -> Result<(), RpcError> {
    resize_locked(&mut daemon.state(), query, cols, rows)
}

/// [`resize`] under a lock the caller holds (an attach resizes and subscribes at once).
pub fn resize_locked(state: &mut State, query: &str, cols: u16, rows: u16) -> Result<(), RpcError> {
    let (cols, rows) = pane::fit_size(cols, rows)
        .map_err(|why| RpcError::new(codes::INVALID_PARAMS, format!("size {why}")))?;
    let (run, live) = live_run(state, query)?;
    if (run.cols, run.rows) == (cols, rows) {
        return Ok(());
    }
    lock(&live.pane).resize(cols, rows);
    send(&live, &run, ControlMsg::Resize { cols, rows })?;
    state.update_run(&run.id, |run| (run.cols, run.rows) = (cols, rows))?;
    Ok(())
}

/// Names (or, with an empty name, unnames) a run.
pub fn rename(daemon: &Daemon, query: &str, name: &str) -> Result<RunInfo, RpcError> {
    let mut state = daemon.state();
    let run = state.resolve(query)?.clone();
    let name = name.trim().to_string();
    reagent::names::check("name", &name)?;
    let taken = state.runs().iter().any(|other| {
        other.id != run.id && !other.status.is_terminal() && other.name.as_ref() == Some(&name)
    });
    if taken {
        let message = format!("`name`: a live run is already called `{name}`");
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    state.update_run(&run.id, |run| run.name = (!name.is_empty()).then_some(name))
}

/// A slice of the log: from an offset, or the last N lines.
pub fn read_log(daemon: &Daemon, read: &ReadLog) -> Result<LogChunk, RpcError> {
    let path = daemon.state().resolve(&read.run)?.log_path.clone();
    let io = |err: std::io::Error| {
        RpcError::new(
            codes::INTERNAL_ERROR,
            format!("cannot read {}: {err}", path.display()),
        )
    };
    let offset = match read.tail_lines {
        Some(lines) => logfile::tail_offset(&path, lines).map_err(io)?,
        None => read.offset.unwrap_or(0),
    };
    let max = read
        .max_bytes
        .unwrap_or(logfile::MAX_CHUNK)
        .min(logfile::MAX_CHUNK);
    let (data, size) = logfile::read_at(&path, offset, max).map_err(io)?;
    Ok(LogChunk {
        offset,
        data: Blob(data),
        size,
    })
}

/// Log bytes a run's screen is rebuilt from (as the terminal would show them).
const SCREEN_LOG_TAIL: u64 = 16 * 1024;
/// Rows of a run's screen as text.
pub const SCREEN_ROWS: u16 = 40;

/// The last `rows` lines of a run's output as plain text, as its terminal would show them
/// (progress bars redrawn in place, colours dropped), rebuilt from its log's tail: what a
/// chat about an alert and the agent's `run_screen` and `run_log` are shown, for a live run
/// or an ended one.
pub fn screen_text(run: &RunInfo, rows: u16) -> String {
    let size = std::fs::metadata(&run.log_path).map_or(0, |m| m.len());
    // Enough bytes for the rows asked, at a generous line length.
    let want = SCREEN_LOG_TAIL.max(u64::from(rows) * 512);
    let start = size.saturating_sub(want);
    let Ok((tail, _)) = logfile::read_at(&run.log_path, start, want as usize) else {
        return String::new();
    };
    let mut parser = vt100::Parser::new(rows.max(1), run.cols.max(20), 0);
    parser.process(&tail);
    parser.screen().contents().trim_end().to_string()
}

/// The run once it has ended (at once if it has); `None` when the caller went away first.
pub async fn ended(
    daemon: &Daemon,
    query: &str,
    gone: impl Fn() -> bool,
) -> Option<Result<RunInfo, RpcError>> {
    let run_id = match daemon.state().resolve(query) {
        Ok(run) => run.id.clone(),
        Err(err) => return Some(Err(err)),
    };
    loop {
        let (run, mut changes) = {
            let state = daemon.state();
            (state.run(&run_id).cloned(), state.bus.watch_changes())
        };
        match run {
            Some(run) if run.status.is_terminal() => return Some(Ok(run)),
            Some(_) => {}
            None => return Some(Err(RpcError::new(codes::NOT_FOUND, "the run is gone"))),
        }
        if gone() || changes.changed().await.is_err() {
            return None;
        }
    }
}
