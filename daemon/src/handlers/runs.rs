//! `run.*` requests: stop, input, resize, rename, log, attach, detach, wait.

use base64::Engine as _;
use reagent::protocol::{
    Ack, Attach, Attached, Blob, Detach, LogChunk, ReadLog, RenameRun, RequestId, ResizeRun,
    RpcError, SendInput, StopRun, WaitRun, codes,
};
use std::time::Duration;

use reagent::run::{RunInfo, RunStatus};

use super::{Conn, Reply};
use crate::runs::{final_screen, lock, logfile, orphan, pane};
use crate::state::{LiveRun, State};
use crate::supervisor::wire::ControlMsg;

/// Converts a serialization failure into a reply (it cannot happen for our types).
pub fn internal_json(err: serde_json::Error) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, err.to_string())
}

fn not_running(run: &RunInfo) -> RpcError {
    RpcError::new(
        codes::INVALID_STATE,
        format!("run {} is not running (it is {})", run.label(), run.status),
    )
}

/// The run and its live handle, or why it has none.
fn live_run(state: &State, query: &str) -> Result<(RunInfo, LiveRun), RpcError> {
    let run = state.resolve(query)?.clone();
    match state.live(&run.id) {
        Some(live) if !run.status.is_terminal() => Ok((run, live.clone())),
        _ => Err(not_running(&run)),
    }
}

fn send(live: &LiveRun, run: &RunInfo, msg: ControlMsg) -> Result<(), RpcError> {
    live.control.send(msg).map_err(|_| not_running(run))
}

/// Stop: SIGTERM to the job's process group now, SIGKILL after the grace period (the
/// supervisor keeps that timer, so it holds even if the daemon dies meanwhile).
pub fn stop(conn: &Conn, stop: StopRun) -> Result<RunInfo, RpcError> {
    let grace = stop
        .grace_secs
        .unwrap_or(conn.daemon.config.runs.stop_grace_secs);
    if !(0.0..=86_400.0).contains(&grace) {
        let message = format!("`grace_secs`: {grace} is outside 0 to 86400");
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    // Truncation is intended: the grace period is whole milliseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let grace_ms = (grace * 1000.0) as u64;
    let mut state = conn.daemon.state();
    let run = state.resolve(&stop.run)?.clone();
    if run.status == RunStatus::Queued {
        // Waiting for its turn: it never starts.
        let cancelled =
            crate::queue::cancel(&mut state, &run.id, "stopped before it started".into())?;
        drop(state);
        crate::queue::schedule(&conn.daemon);
        return Ok(cancelled);
    }
    let Some(live) = state.live(&run.id).filter(|_| !run.status.is_terminal()) else {
        drop(state);
        // A lost run's job may have outlived its supervisor.
        let orphan = (run.status == RunStatus::Lost)
            .then(|| orphan::stop(&conn.daemon, &run, Duration::from_millis(grace_ms)))
            .flatten();
        return orphan.ok_or_else(|| not_running(&run));
    };
    tracing::info!(run = %run.id, grace, "stop requested");
    send(live, &run, ControlMsg::Stop { grace_ms })?;
    Ok(run)
}

/// Types bytes into the job's terminal.
pub fn input(conn: &Conn, input: SendInput) -> Result<Ack, RpcError> {
    let state = conn.daemon.state();
    let (run, live) = live_run(&state, &input.run)?;
    let data = base64::engine::general_purpose::STANDARD.encode(&input.data.0);
    send(&live, &run, ControlMsg::Input { data })?;
    Ok(Ack {})
}

/// Resizes the job's terminal and the daemon's screen model together.
pub fn resize(conn: &Conn, resize: ResizeRun) -> Result<Ack, RpcError> {
    let mut state = conn.daemon.state();
    resize_locked(&mut state, &resize.run, resize.cols, resize.rows)?;
    Ok(Ack {})
}

/// Resizes a live run, to at most the largest screen the daemon models.
fn resize_locked(state: &mut State, query: &str, cols: u16, rows: u16) -> Result<(), RpcError> {
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
pub fn rename(conn: &Conn, rename: RenameRun) -> Result<RunInfo, RpcError> {
    let mut state = conn.daemon.state();
    let run = state.resolve(&rename.run)?.clone();
    let name = rename.name.trim().to_string();
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
pub fn read_log(conn: &Conn, read: ReadLog) -> Result<LogChunk, RpcError> {
    let path = conn.daemon.state().resolve(&read.run)?.log_path.clone();
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

/// Attaches the connection to a run's output. The reply is queued under the pane's lock, so
/// it reaches the client before any `output` that follows the screen it carries.
pub fn attach(conn: &Conn, id: Option<RequestId>, attach: Attach) -> Reply {
    let mut state = conn.daemon.state();
    let run = match state.resolve(&attach.run) {
        Ok(run) => run.clone(),
        Err(err) => return Reply::Now(Err(err)),
    };
    let live = state.live(&run.id).cloned();
    let Some(live) = live.filter(|_| !run.status.is_terminal()) else {
        drop(state);
        let (screen, offset) = final_screen(&run);
        let attached = Attached {
            run,
            offset,
            screen: Blob(screen),
        };
        return Reply::Now(serde_json::to_value(attached).map_err(internal_json));
    };
    if let Some((cols, rows)) = attach.size
        && let Err(err) = resize_locked(&mut state, &run.id, cols, rows)
    {
        return Reply::Now(Err(err));
    }
    let run = state.run(&run.id).cloned().unwrap_or(run);
    drop(state);
    let mut pane = lock(&live.pane);
    let (screen, offset) = pane.attach(conn.id, conn.outbox.clone());
    let attached = Attached {
        run: run.clone(),
        offset,
        screen: Blob(screen),
    };
    conn.respond(id, serde_json::to_value(attached).map_err(internal_json));
    drop(pane);
    conn.attached
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(run.id);
    Reply::Sent
}

/// Stops sending a run's output to this connection.
pub fn detach(conn: &Conn, detach: Detach) -> Result<Ack, RpcError> {
    let state = conn.daemon.state();
    let run = state.resolve(&detach.run)?;
    if let Some(live) = state.live(&run.id) {
        lock(&live.pane).detach(conn.id);
    }
    conn.attached
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&run.id);
    Ok(Ack {})
}

/// Replies once the run has ended (at once if it has).
pub fn wait(conn: &Conn, id: Option<RequestId>, wait: WaitRun) -> Reply {
    let run_id = match conn.daemon.state().resolve(&wait.run) {
        Ok(run) => run.id.clone(),
        Err(err) => return Reply::Now(Err(err)),
    };
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id);
    tokio::spawn(async move {
        loop {
            let (run, mut changes) = {
                let state = daemon.state();
                (state.run(&run_id).cloned(), state.watch_changes())
            };
            match run {
                Some(run) if run.status.is_terminal() => {
                    return reply.respond(Ok(run));
                }
                Some(_) => {}
                None => {
                    let gone = RpcError::new(codes::NOT_FOUND, "the run is gone");
                    return reply.respond::<RunInfo>(Err(gone));
                }
            }
            if reply.is_closed() || changes.changed().await.is_err() {
                return;
            }
        }
    });
    Reply::Sent
}
