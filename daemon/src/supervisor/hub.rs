//! The state the PTY read loop shares with the notifier, the control socket and the final
//! drain: how far `output.log` has grown, and which daemon connection is current.
//!
//! One mutex guards it, held only for bookkeeping (and, by the read loop, for one log write),
//! never across a socket write, so a stalled daemon can never stall the job's output.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reagent::run::OutputLoss;

use super::wire::SupervisorMsg;

/// Locks a mutex, tolerating poisoning: a panicked helper thread must not take the
/// supervisor down with it, and every state here stays consistent between statements.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Output progress and the current daemon connection.
#[derive(Default)]
pub(crate) struct Out {
    /// Bytes in `output.log` (flushed to the file, so readable by the daemon).
    pub written: u64,
    /// The read loop saw the PTY's end (EOF/EIO) and stopped.
    pub eof: bool,
    /// The log is final: the read loop must not append any more (a grandchild may still
    /// hold the PTY open after the job ended).
    pub sealed: bool,
    /// Threads waiting on the condvar; the read loop only pays for a wake-up when this is
    /// non-zero.
    pub waiters: u32,
    /// The connection the notifier writes to, replaced by each new connection.
    pub conn: Option<Arc<UnixStream>>,
    /// Bumped on every new connection so the notifier knows to say `Hello`.
    pub conn_gen: u64,
    /// Output the read loop could not write to the log, once any was lost.
    pub loss: Option<OutputLoss>,
    /// Bumped when a gap begins or ends, so the notifier reports each change once.
    pub loss_gen: u64,
    /// The `Exited` message: once set, the notifier delivers it to every connection (a
    /// restarted daemon included) and says nothing else.
    pub farewell: Option<SupervisorMsg>,
    /// The connection generation the farewell was last written to.
    pub farewell_sent: Option<u64>,
    /// The daemon confirmed it stored the run's end ([`super::wire::ControlMsg::Settled`]).
    pub settled: bool,
}

/// [`Out`] plus its condvar.
pub(crate) struct Hub {
    /// The job's pid, also its process group id.
    pub pid: u32,
    state: Mutex<Out>,
    changed: Condvar,
}

impl Hub {
    /// A hub for job `pid` whose log already holds `written` bytes.
    pub(crate) fn new(pid: u32, written: u64) -> Self {
        let out = Out {
            written,
            ..Out::default()
        };
        Self {
            pid,
            state: Mutex::new(out),
            changed: Condvar::new(),
        }
    }

    /// Locks the shared state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Out> {
        lock(&self.state)
    }

    /// Wakes every waiter; callers skip this when `waiters` is zero on the hot path.
    pub(crate) fn wake(&self) {
        self.changed.notify_all();
    }

    /// Waits for a change (or `timeout`), registering as a waiter so the read loop wakes us.
    pub(crate) fn wait<'a>(
        &self,
        mut guard: MutexGuard<'a, Out>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Out> {
        guard.waiters += 1;
        let mut guard = match timeout {
            Some(timeout) => {
                self.changed
                    .wait_timeout(guard, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
        };
        guard.waiters -= 1;
        guard
    }

    /// After the job ended: lets the read loop drain until the PTY's end, or until `idle`
    /// passes without new output, or `cap` passes in total (a background grandchild may keep
    /// the PTY open, even busy, forever). Then seals the log and returns its final size.
    pub(crate) fn drain_and_seal(&self, idle: Duration, cap: Duration) -> u64 {
        let start = Instant::now();
        let mut guard = self.lock();
        let mut last = guard.written;
        let mut idle_since = start;
        while !guard.eof {
            let now = Instant::now();
            let quiet = now.duration_since(idle_since);
            if quiet >= idle || now.duration_since(start) >= cap {
                break;
            }
            guard = self.wait(guard, Some(idle - quiet));
            if guard.written != last {
                last = guard.written;
                idle_since = Instant::now();
            }
        }
        guard.sealed = true;
        guard.written
    }

    /// Hands the final `Exited` message to the notifier and waits up to `timeout` for it to be
    /// written to the current connection: best effort, since the daemon may be stalled or
    /// gone. Returns at once when no daemon is connected.
    pub(crate) fn say_farewell(&self, msg: SupervisorMsg, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        guard.farewell = Some(msg);
        self.wake();
        while guard.conn.is_some() && guard.farewell_sent != Some(guard.conn_gen) {
            let now = Instant::now();
            if now >= deadline {
                diag!("gave up delivering the exit message");
                return;
            }
            guard = self.wait(guard, Some(deadline - now));
        }
    }

    /// Waits up to `timeout` for the daemon to confirm it stored the run's end.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        while !guard.settled {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self.wait(guard, Some(deadline - now));
        }
        true
    }
}
