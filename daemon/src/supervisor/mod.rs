//! The per-run supervisor process (`reagentd supervise <RUN_DIR>`): owns one job's PTY and
//! child, outliving the daemon that started it.
//!
//! Threads: the PTY read loop (`output`), the job waiter and stop timers (`job`), the notifier
//! (`notify`, the only writer to the daemon), the accept thread and one reader per connection
//! plus the PTY writer (`control`). The main thread sets everything up, then waits for the job
//! to end and finishes the run: drain, `exit.json`, `Exited`, socket removal, in that order.
//!
//! Diagnostics go to stderr (`supervisor.log`) through [`diag!`], never `eprintln!`: the log
//! sits on the same disk as the job's output, and `eprintln!` panics when that disk is full,
//! which would kill the thread that drains the PTY and freeze the job.

/// Writes one diagnostic line to stderr, ignoring failure (see the module comment).
macro_rules! diag {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "reagentd supervise: {}", format_args!($($arg)*));
    }};
}

mod control;
mod hub;
mod job;
mod launch;
mod notify;
mod output;
pub mod wire;

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use portable_pty::{PtySize, native_pty_system};

use control::Control;
use hub::Hub;
use job::Job;
use wire::{ExitRecord, LaunchSpec, Ready, SupervisorMsg, files};

/// After the job ended, how long the PTY may stay silent before the log is considered complete
/// (a background grandchild may hold it open forever).
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Upper bound of the final drain, for a grandchild that keeps printing.
const DRAIN_CAP: Duration = Duration::from_secs(5);
/// How long the final `Exited` message may take to reach a slow daemon.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a supervisor that could not write `exit.json` tries again.
const EXIT_RETRY: Duration = Duration::from_secs(1);

/// Supervises the run in `run_dir` until its job ended and the outcome is recorded.
///
/// Returns `Ok` also when the job could not be started: that outcome is recorded in
/// `exit.json` and the `Ready` line, which is what the daemon acts on. An `Err` means the run
/// folder itself is unusable.
pub fn main(run_dir: &Path) -> anyhow::Result<()> {
    // Our own session: a daemon killed with its process group must not take the job along.
    if let Err(err) = rustix::process::setsid() {
        diag!("setsid failed ({err}); continuing");
    }
    let spec = match launch::read_spec(run_dir) {
        Ok(spec) => spec,
        Err(err) => return launch::fail_launch(run_dir, &launch::job_name(None), &err),
    };
    let (hub, ctl) = match start(run_dir, &spec) {
        Ok(started) => started,
        Err(err) => return launch::fail_launch(run_dir, &launch::job_name(Some(&spec)), &err),
    };
    launch::print_ready(&Ready::Started { pid: hub.pid });
    finish(run_dir, &hub, &ctl)
}

/// Binds the socket, spawns the job on a fresh PTY and starts every thread.
fn start(run_dir: &Path, spec: &LaunchSpec) -> anyhow::Result<(Arc<Hub>, Arc<Control>)> {
    let cmd = launch::command(spec)?;
    launch::check_exec_limits(&cmd)?;
    let listener = launch::bind_socket(&run_dir.join(files::SOCKET))?;
    let log_path = run_dir.join(files::LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let written = log.metadata()?.len();
    let pair = native_pty_system().openpty(PtySize {
        rows: spec.rows,
        cols: spec.cols,
        pixel_width: 0,
        pixel_height: 0,
    })?;
    let child = pair.slave.spawn_command(cmd)?;
    // Only the job may hold the slave side, so its end reads as EOF here.
    drop(pair.slave);
    let pid = child.process_id().context("the job has no pid")?;
    let threads = (|| {
        let job = Job::start(pid, child)?;
        let hub = Arc::new(Hub::new(pid, written));
        output::spawn_reader(Arc::clone(&hub), pair.master.try_clone_reader()?, log)?;
        let input = control::spawn_input_writer(pair.master.take_writer()?)?;
        notify::spawn_notifier(Arc::clone(&hub))?;
        let ctl = Arc::new(Control {
            hub: Arc::clone(&hub),
            job,
            master: Mutex::new(pair.master),
            input,
        });
        control::spawn_acceptor(listener, Arc::clone(&ctl))?;
        anyhow::Ok((hub, ctl))
    })();
    threads.inspect_err(|_| kill_job(pid))
}

/// Kills a job whose supervision could not be set up: it must not run unobserved.
fn kill_job(pid: u32) {
    job::signal_group(pid, rustix::process::Signal::KILL);
}

/// Waits for the job's end, then completes the run: the log, `exit.json`, `Exited`, and the
/// socket's removal, in that order (the daemon reads `exit.json` on the socket's EOF).
///
/// When `exit.json` cannot be written (a full disk), the supervisor is the only holder of how
/// the job ended, so it does not exit: it keeps offering `Exited` to the daemon (a restarted
/// one included) and retrying the file, until the daemon confirms it stored the record or the
/// file is written.
fn finish(run_dir: &Path, hub: &Hub, ctl: &Control) -> anyhow::Result<()> {
    let (ended, stopped) = ctl.job.wait_ended();
    let written = hub.drain_and_seal(DRAIN_IDLE, DRAIN_CAP);
    let record = ExitRecord {
        exit_code: ended.exit_code,
        signal: ended.signal,
        stopped,
        error: None,
        ended_at_ms: ended.ended_at_ms,
        lost: hub.lock().loss.clone(),
    };
    let farewell = SupervisorMsg::Exited {
        written,
        record: record.clone(),
    };
    let mut complained = false;
    loop {
        match launch::write_exit(run_dir, &record) {
            Ok(()) => break,
            // The run's folder was deleted (the state folder removed): nobody can ever ask
            // for the record, so holding it would only leave this process behind forever.
            Err(_) if !run_dir.is_dir() => {
                diag!("the run folder is gone; exiting with nothing to record into");
                return Ok(());
            }
            Err(err) if !complained => {
                diag!("{err:#}; holding the exit record until the daemon has it");
                complained = true;
            }
            Err(_) => {}
        }
        hub.say_farewell(farewell.clone(), FAREWELL_TIMEOUT);
        if hub.wait_settled(EXIT_RETRY) {
            launch::remove_socket(&run_dir.join(files::SOCKET));
            return Ok(());
        }
    }
    hub.say_farewell(farewell, FAREWELL_TIMEOUT);
    launch::remove_socket(&run_dir.join(files::SOCKET));
    Ok(())
}
