//! Launching a run: its folder, its spec file and its supervisor process.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use reagent::protocol::RpcError;
use reagent::run::RunInfo;
use rustix::fs::Mode;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::lifecycle::RunEvent;
use super::{follow, make_live};
use crate::daemon::Daemon;
use crate::daemon::internal;
use crate::supervisor::wire::{LaunchSpec, files};

/// The file mask jobs start with: the user's, as it was when the daemon started, before the
/// daemon made everything it creates private (the umask is process-wide, hence a static).
static JOB_UMASK: OnceLock<u32> = OnceLock::new();

/// Makes every file and folder the daemon (and its supervisors) creates private to the user
/// (0600 and 0700: the database, logs, `output.log` and `exit.json` hold what jobs print),
/// and remembers the user's own mask for the jobs.
pub fn make_files_private() {
    let user = rustix::process::umask(Mode::from_raw_mode(0o077));
    let _ = JOB_UMASK.set(user.bits());
}

/// The file mask a job should start with, once [`make_files_private`] ran.
pub fn job_umask() -> Option<u32> {
    JOB_UMASK.get().copied()
}

/// Creates the run's folder and writes its spec (0600: the env may hold secrets).
pub fn write_spec(run_dir: &Path, spec: &LaunchSpec) -> anyhow::Result<()> {
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let path = run_dir.join(files::SPEC);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(&serde_json::to_vec(spec)?)?;
    Ok(())
}

/// Reads a run's spec back: how its job was started, for a retry or a rerun.
pub fn read_spec(run_dir: &Path) -> Result<LaunchSpec, RpcError> {
    let path = run_dir.join(files::SPEC);
    let bytes = std::fs::read(&path)
        .map_err(|err| internal(format!("cannot read {}: {err}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|err| internal(format!("{} does not parse: {err}", path.display())))
}

/// Starts the run's supervisor and marks the run launching; a task then waits for the
/// supervisor's verdict and follows the run.
pub fn launch(daemon: &Arc<Daemon>, id: &str) -> Result<RunInfo, RpcError> {
    let run_dir = daemon.paths.run_dir(id);
    let run = {
        let mut state = daemon.state();
        // A queued run can be ended (its sweep stopped) between the queue's decision and here.
        if let Some(ended) = state.run(id).filter(|run| run.status.is_terminal()) {
            return Ok(ended.clone());
        }
        let run = state.advance_run(id, RunEvent::Launching)?;
        let (live, control) = make_live(&run);
        state.set_live(id, live.clone());
        (run, live.pane, control)
    };
    let (info, pane, control) = run;
    crate::metrics::ingest::start(daemon, id);
    let child = spawn_supervisor(&run_dir).map_err(internal);
    let daemon = daemon.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        match child {
            Ok(mut child) => {
                if let Some(stdout) = child.stdout.take() {
                    await_ready(&daemon, &id, stdout).await;
                }
                follow::follow(daemon, id, control, pane).await;
                // Reap it; by now the supervisor has exited or is about to.
                let _ = child.wait().await;
            }
            Err(err) => follow::settle_failed(&daemon, &id, &err.message),
        }
    });
    Ok(info)
}

fn spawn_supervisor(run_dir: &Path) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("cannot find the reagentd executable")?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(run_dir.join(files::SUPERVISOR_LOG))
        .context("cannot open the supervisor log")?;
    tokio::process::Command::new(exe)
        .arg("supervise")
        .arg(run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("cannot start the run's supervisor")
}

/// Reads the supervisor's one `Ready` line; marks the run running when the job started.
/// A launch failure is settled by [`follow::follow`] from the exit record.
async fn await_ready(daemon: &Daemon, id: &str, stdout: tokio::process::ChildStdout) {
    let mut line = String::new();
    if BufReader::new(stdout).read_line(&mut line).await.is_err() {
        return;
    }
    match serde_json::from_str(&line) {
        Ok(crate::supervisor::wire::Ready::Started { pid }) => {
            follow::mark_running(daemon, id, pid)
        }
        Ok(crate::supervisor::wire::Ready::Failed { error }) => {
            tracing::info!(run = %id, "launch failed: {error}");
        }
        Err(_) => tracing::warn!(run = %id, "supervisor said {line:?} instead of a ready line"),
    }
}
