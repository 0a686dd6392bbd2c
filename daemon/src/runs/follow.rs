//! Following one live run: listen to its supervisor, catch the pane up with the log, forward
//! control messages, and settle the run when its job ends.
//!
//! The supervisor's `written` messages are only wake-ups; the bytes always come from the log
//! file. So following a run after a restart is the same code as following it from birth, and
//! a slow daemon never slows the job: it simply reads larger pieces.

use std::path::Path;
use std::sync::{Arc, Mutex};

use reagent::connection::{Frame, encode_line, read_frame};
use reagent::protocol::codes;
use reagent::run::{OutputLoss, RunStatus};
use reagent::time::now_ms;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use super::lifecycle::RunEvent;
use super::{lock, logfile, pane::Pane};
use crate::daemon::Daemon;
use crate::supervisor::wire::{ControlMsg, ExitRecord, SupervisorMsg, files};

/// Largest piece of log fed to a pane (and sent to clients) at once.
const CHUNK: usize = 256 * 1024;

/// Follows a run until its job has ended and the run is settled.
pub async fn follow(
    daemon: Arc<Daemon>,
    id: String,
    control: mpsc::UnboundedReceiver<ControlMsg>,
    pane: Arc<Mutex<Pane>>,
) {
    let dir = daemon.paths.run_dir(&id);
    let log = dir.join(files::LOG);
    let exited = match UnixStream::connect(dir.join(files::SOCKET)).await {
        Ok(stream) => listen(&daemon, &id, stream, control, &pane, &log).await,
        Err(err) => {
            tracing::debug!(run = %id, "no supervisor to connect to: {err}");
            None
        }
    };
    catch_up(&pane, &log).await;
    let (record, supervisor) = exited.map_or((None, None), |(record, writer)| {
        (Some(record), Some(writer))
    });
    settle(&daemon, &id, &dir, record).await;
    if let Some(mut writer) = supervisor {
        // Only now may a supervisor that could not write `exit.json` exit.
        let _ = writer.write_all(&encode_line(&ControlMsg::Settled)).await;
    }
    // The queue frees the GPUs it gave the run, and looks again.
    daemon.queue_wake.notify_one();
}

/// Listens to the supervisor until its connection ends, or until it says how the job ended:
/// then returns that record with the way back to the supervisor, to confirm once stored.
async fn listen(
    daemon: &Daemon,
    id: &str,
    stream: UnixStream,
    mut control: mpsc::UnboundedReceiver<ControlMsg>,
    pane: &Arc<Mutex<Pane>>,
    log: &Path,
) -> Option<(ExitRecord, OwnedWriteHalf)> {
    let (reader, mut writer) = stream.into_split();
    let (stop, mut stopped) = oneshot::channel::<()>();
    let forward = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                msg = control.recv() => msg,
                _ = &mut stopped => None,
            };
            let Some(msg) = msg else { break };
            if writer.write_all(&encode_line(&msg)).await.is_err() {
                break;
            }
        }
        writer
    });
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut exited = None;
    while let Ok(Frame::Line(line)) = read_frame(&mut reader, &mut buf, 1 << 20).await {
        let written = match serde_json::from_slice(line) {
            Ok(SupervisorMsg::Hello { pid, written }) => {
                mark_running(daemon, id, pid);
                written
            }
            Ok(SupervisorMsg::Written { written }) => written,
            Ok(SupervisorMsg::Lost { loss }) => {
                record_loss(daemon, id, loss);
                continue;
            }
            Ok(SupervisorMsg::Exited { written, record }) => {
                exited = Some(record);
                written
            }
            Err(err) => {
                tracing::warn!(run = %id, "unreadable supervisor message: {err}");
                continue;
            }
        };
        if written > lock(pane).offset() {
            take_output(daemon, id, pane, log).await;
        }
        if exited.is_some() {
            break;
        }
    }
    // The live entry still holds the control sender, so the forwarder must be told to stop.
    let _ = stop.send(());
    let writer = forward.await.ok();
    exited.zip(writer)
}

/// Takes what the run's log grew by: the pane (and every attached client) gets the new
/// bytes, and a W&B run they mention is recorded on the run. How output reaches a run's
/// clients whatever runs the job: a supervisor's `written` message or a Slurm job's output
/// file growing.
pub async fn take_output(daemon: &Daemon, id: &str, pane: &Arc<Mutex<Pane>>, log: &Path) {
    catch_up(pane, log).await;
    let found = lock(pane).wandb.take_new();
    if let Some(wandb) = found {
        record_wandb(daemon, id, wandb);
    }
}

/// Feeds the pane everything the log holds beyond what it has seen.
async fn catch_up(pane: &Arc<Mutex<Pane>>, log: &Path) {
    let pane = pane.clone();
    let path = log.to_path_buf();
    // File reads and terminal parsing are blocking work: keep them off the async workers.
    let done = tokio::task::spawn_blocking(move || feed_from_log(&pane, &path)).await;
    if let Ok(Err(err)) = done {
        tracing::warn!("cannot read {}: {err}", log.display());
    }
}

fn feed_from_log(pane: &Mutex<Pane>, log: &Path) -> std::io::Result<()> {
    loop {
        let offset = lock(pane).offset();
        let (data, _) = logfile::read_at(log, offset, CHUNK)?;
        if data.is_empty() {
            return Ok(());
        }
        lock(pane).feed(&data);
    }
}

/// Puts the W&B run found in the output on the run.
fn record_wandb(daemon: &Daemon, id: &str, wandb: reagent::metrics::WandbInfo) {
    if let Err(err) = daemon.state().update_run(id, |run| run.wandb = Some(wandb)) {
        tracing::warn!(run = %id, "cannot record the W&B run: {err}");
    }
}

/// Marks a launching run running once its supervisor reports the job's pid.
pub fn mark_running(daemon: &Daemon, id: &str, pid: u32) {
    let mut state = daemon.state();
    let Some(run) = state.run(id) else { return };
    if run.status == RunStatus::Running && run.pid == Some(pid) {
        return;
    }
    let result = state.advance_run(
        id,
        RunEvent::Started {
            pid,
            at_ms: now_ms(),
        },
    );
    if let Err(err) = result {
        tracing::error!(run = %id, "cannot record that the run started: {err}");
    }
}

/// Records that output is being (or was) lost; a closed gap also raises an alert.
fn record_loss(daemon: &Daemon, id: &str, loss: OutputLoss) {
    tracing::warn!(run = %id, "{}", loss.describe());
    let closed = !loss.ongoing;
    let result = daemon
        .state()
        .update_run(id, |run| run.lost_output = Some(loss));
    match result {
        Ok(run) if closed => crate::alerts::output_lost(daemon, &run),
        Ok(_) => {}
        // The database is likely on the same full disk; the gap's end reports it again.
        Err(err) => tracing::warn!(run = %id, "cannot record lost output: {err}"),
    }
}

/// How long settling waits between attempts to store a run's end.
const SETTLE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Records how the run ended, from `exit.json` or else the supervisor's `Exited` message; a
/// run with neither is lost. A failed database write (a full disk) is retried until it is
/// stored: dropping it would lose the exit code for good.
async fn settle(daemon: &Daemon, id: &str, dir: &Path, sent: Option<ExitRecord>) {
    let record = std::fs::read(dir.join(files::EXIT))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ExitRecord>(&bytes).ok())
        .or(sent);
    daemon.state().remove_live(id);
    let mut complained = false;
    let run = loop {
        let event = match record.clone() {
            Some(record) => RunEvent::Exited(record),
            None => RunEvent::SupervisorLost {
                // The job may live on under PID 1; keep its process group so it can be stopped.
                pid: (daemon.state().run(id).and_then(|run| run.pid))
                    .filter(|&pgid| super::orphan::alive(id, pgid)),
                at_ms: now_ms(),
                reason: format!(
                    "its supervisor ended without recording how the job ended (see {})",
                    dir.join(files::SUPERVISOR_LOG).display()
                ),
            },
        };
        let result = daemon.state().advance_run(id, event);
        match result {
            Ok(run) => break run,
            // Gone (removed), or already settled (by an earlier report): nothing to record.
            Err(err) if [codes::NOT_FOUND, codes::INVALID_STATE].contains(&err.code) => return,
            Err(err) => {
                if !complained {
                    tracing::error!(run = %id, "cannot record how the run ended, retrying: {err}");
                    complained = true;
                }
                tokio::time::sleep(SETTLE_RETRY).await;
            }
        }
    };
    report_end(daemon, &run);
}

/// Tells whoever wants to know that a run ended (the log, the notifier, the alerts), once
/// its end is stored and the state lock released.
pub fn report_end(daemon: &Daemon, run: &reagent::run::RunInfo) {
    tracing::info!(run = %run.id, status = %run.status, code = ?run.exit_code, "run ended");
    daemon.notify.run_ended(run);
    crate::alerts::run_ended(daemon, run);
}

/// Records a launch that failed before any supervisor ran.
pub fn settle_failed(daemon: &Daemon, id: &str, reason: &str) {
    let mut state = daemon.state();
    state.remove_live(id);
    let result = state.advance_run(
        id,
        RunEvent::LaunchFailed {
            reason: reason.to_string(),
            at_ms: now_ms(),
        },
    );
    drop(state);
    match result {
        Ok(run) => report_end(daemon, &run),
        Err(err) => tracing::error!(run = %id, "cannot record the failed launch: {err}"),
    }
    daemon.queue_wake.notify_one();
}
