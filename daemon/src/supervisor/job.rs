//! The job's life: a waiter thread that reaps it and records how it ended, and stop requests
//! (SIGTERM to its process group, SIGKILL after a grace period unless it ended meanwhile).

use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portable_pty::Child;
use rustix::process::Signal;

use super::hub::lock;

/// How the job ended, as the waiter saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    /// Exit code of a normal exit.
    pub exit_code: Option<i32>,
    /// Number of the signal that ended it.
    pub signal: Option<i32>,
    /// When it was reaped, in Unix milliseconds.
    pub ended_at_ms: i64,
}

#[derive(Default)]
struct State {
    ended: Option<Ended>,
    stopped: bool,
}

/// The running job: its pid (= process group) and its end, once known.
pub(crate) struct Job {
    pid: u32,
    state: Mutex<State>,
    changed: Condvar,
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Job {
    /// Starts the waiter thread for `child` (whose pid is `pid`).
    pub(crate) fn start(
        pid: u32,
        child: Box<dyn Child + Send + Sync>,
    ) -> std::io::Result<Arc<Self>> {
        let job = Arc::new(Self {
            pid,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let waiter = Arc::clone(&job);
        thread::Builder::new()
            .name("job-wait".into())
            .spawn(move || {
                let ended = reap(child);
                lock(&waiter.state).ended = Some(ended);
                waiter.changed.notify_all();
            })?;
        Ok(job)
    }

    /// Blocks until the job ended; returns how, and whether a stop request preceded that.
    pub(crate) fn wait_ended(&self) -> (Ended, bool) {
        let mut state = lock(&self.state);
        loop {
            if let Some(ended) = state.ended {
                return (ended, state.stopped);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// SIGTERM to the job's group now, SIGKILL after `grace_ms` unless it ended by then.
    /// A job that already ended is left alone (and not marked stopped).
    pub(crate) fn stop(self: &Arc<Self>, grace_ms: u64) {
        {
            let mut state = lock(&self.state);
            if state.ended.is_some() {
                return;
            }
            state.stopped = true;
            // Signalled under the lock: once the waiter recorded the end, the pid may be reused.
            self.signal_group(Signal::TERM);
        }
        let job = Arc::clone(self);
        let timer = thread::Builder::new()
            .name("job-stop".into())
            .spawn(move || {
                let grace = Duration::from_millis(grace_ms);
                let state = lock(&job.state);
                let (state, _) = job
                    .changed
                    .wait_timeout_while(state, grace, |s| s.ended.is_none())
                    .unwrap_or_else(PoisonError::into_inner);
                if state.ended.is_none() {
                    job.signal_group(Signal::KILL);
                }
            });
        if let Err(err) = timer {
            diag!("no stop timer ({err}); killing now");
            let state = lock(&self.state);
            if state.ended.is_none() {
                self.signal_group(Signal::KILL);
            }
        }
    }

    fn signal_group(&self, signal: Signal) {
        signal_group(self.pid, signal);
    }
}

/// Signals process group `pgid`, saying in the supervisor's log when it cannot.
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    if let Err(err) = crate::process::signal_group(pgid, signal) {
        diag!("{err}");
    }
}

/// Waits for the child, reading the real status through `std::process::Child` (portable-pty's
/// own status loses the signal number).
fn reap(mut child: Box<dyn Child + Send + Sync>) -> Ended {
    let (exit_code, signal) = match child.as_any_mut().downcast_mut::<std::process::Child>() {
        Some(std_child) => match std_child.wait() {
            Ok(status) => (status.code(), status.signal()),
            Err(err) => {
                diag!("waiting for the job failed: {err}");
                (None, None)
            }
        },
        None => match child.wait() {
            Ok(status) => (i32::try_from(status.exit_code()).ok(), None),
            Err(err) => {
                diag!("waiting for the job failed: {err}");
                (None, None)
            }
        },
    };
    Ended {
        exit_code,
        signal,
        ended_at_ms: now_ms(),
    }
}
