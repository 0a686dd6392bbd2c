//! A run's life as a pure state machine. Every status change after a run is recorded (as
//! `queued`) goes through [`advance`], which also refuses the impossible ones: a run that
//! has ended never runs again, a queued run is not "lost". The drivers (launch, follow,
//! the queue) only report what happened; the statuses and reasons a user reads are decided
//! here, in one place, and tested transition by transition.
//!
//! ```text
//! queued ──Launching──▶ launching ──Started──▶ running
//!   │                      │  │                  │
//!   │ StoppedBeforeStart   │  └──LaunchFailed    ├──Exited──▶ finished | failed | stopped
//!   ▼                      │                     └──SupervisorLost──▶ lost
//! stopped        LaunchFailed (queued too) ──▶ failed
//! ```

use reagent::run::{RunInfo, RunStatus};

use crate::supervisor::wire::ExitRecord;

/// What happened to a run, as its drivers report it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// Its supervisor is being started.
    Launching,
    /// The supervisor reported the job's pid (again, after a daemon restart).
    Started {
        /// The job's pid, which is also its process group.
        pid: u32,
        /// When (Unix ms); the first start is the one kept.
        at_ms: i64,
    },
    /// The job ended, and its supervisor recorded how.
    Exited(ExitRecord),
    /// The supervisor went away without recording how the job ended.
    SupervisorLost {
        /// The job's process group if it lives on (so it can still be stopped).
        pid: Option<u32>,
        /// When the daemon noticed (Unix ms).
        at_ms: i64,
        /// Where to look for why, in words.
        reason: String,
    },
    /// No job ever ran: the command could not start, or the supervisor did not.
    LaunchFailed {
        /// Why, in words.
        reason: String,
        /// When (Unix ms).
        at_ms: i64,
    },
    /// Stopped while still waiting for its turn.
    StoppedBeforeStart {
        /// Who or what stopped it, in words.
        reason: String,
        /// When (Unix ms).
        at_ms: i64,
    },
}

impl RunEvent {
    /// The event's name in refusals.
    fn name(&self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Started { .. } => "started",
            Self::Exited(_) => "exited",
            Self::SupervisorLost { .. } => "supervisor lost",
            Self::LaunchFailed { .. } => "launch failed",
            Self::StoppedBeforeStart { .. } => "stopped before start",
        }
    }
}

/// A transition the run's life does not allow. It is a bug in a driver, or a late report
/// (an exit after the run was already settled), and is refused rather than applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impossible {
    /// The run's id.
    pub run: String,
    /// Its status when the event came.
    pub from: RunStatus,
    /// The refused event's name.
    pub event: &'static str,
}

impl std::fmt::Display for Impossible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { run, from, event } = self;
        write!(f, "run {run} is {from}: `{event}` cannot happen to it")
    }
}

/// The run after `event`, or why the event cannot happen to it. The run itself is left as
/// it was, so a refused or uncommitted change leaves nothing behind.
pub fn advance(run: &RunInfo, event: RunEvent) -> Result<RunInfo, Impossible> {
    use RunStatus::{Launching, Queued, Running};
    let mut next = run.clone();
    match (run.status, event) {
        (Queued, RunEvent::Launching) => next.status = Launching,
        // A restarted daemon hears the same pid again: nothing changes.
        (Running, RunEvent::Started { pid, .. }) if run.pid == Some(pid) => {}
        (Launching, RunEvent::Started { pid, at_ms }) => {
            next.status = Running;
            next.pid = Some(pid);
            next.started_at.get_or_insert(at_ms);
        }
        (Launching | Running, RunEvent::Exited(record)) => exited(&mut next, record),
        (Launching | Running, RunEvent::SupervisorLost { pid, at_ms, reason }) => {
            next.status = RunStatus::Lost;
            next.pid = pid;
            next.ended_at = Some(at_ms);
            next.reason = Some(reason);
        }
        (Queued | Launching, RunEvent::LaunchFailed { reason, at_ms }) => {
            next.status = RunStatus::Failed;
            next.pid = None;
            next.ended_at = Some(at_ms);
            next.reason = Some(reason);
        }
        (Queued, RunEvent::StoppedBeforeStart { reason, at_ms }) => {
            next.status = RunStatus::Stopped;
            next.ended_at = Some(at_ms);
            next.reason = Some(reason);
        }
        (from, event) => {
            return Err(Impossible {
                run: run.id.clone(),
                from,
                event: event.name(),
            });
        }
    }
    Ok(next)
}

/// How an exit record reads as a status and a reason.
fn exited(run: &mut RunInfo, record: ExitRecord) {
    run.pid = None;
    run.exit_code = record.exit_code;
    run.signal = record.signal;
    run.ended_at = Some(record.ended_at_ms);
    if record.lost.is_some() {
        run.lost_output = record.lost;
    }
    (run.status, run.reason) = match (record.error, record.stopped, record.exit_code) {
        (Some(error), _, _) => (RunStatus::Failed, Some(error)),
        (None, true, _) => (RunStatus::Stopped, Some("stopped by the user".into())),
        (None, false, Some(0)) => (RunStatus::Finished, None),
        (None, false, Some(code)) => (RunStatus::Failed, Some(format!("exited with code {code}"))),
        (None, false, None) => {
            let signal = record.signal.map_or("a signal".into(), signal_name);
            (RunStatus::Failed, Some(format!("killed by {signal}")))
        }
    };
}

/// `SIGKILL (9)` for 9, and so on.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    };
    format!("{name} ({signal})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    fn run(status: RunStatus) -> RunInfo {
        RunInfo {
            id: "ab12cd34".into(),
            name: None,
            command: vec!["train".into()],
            cwd: "/".into(),
            env_keys: Vec::new(),
            status,
            exit_code: None,
            signal: None,
            reason: None,
            pid: matches!(status, Running).then_some(42),
            cols: 80,
            rows: 24,
            created_at: 1,
            started_at: matches!(status, Running).then_some(2),
            ended_at: None,
            log_path: Default::default(),
            wandb: None,
            lost_output: None,
            agent_session: None,
        }
    }

    fn exit(code: Option<i32>, signal: Option<i32>, stopped: bool) -> RunEvent {
        RunEvent::Exited(ExitRecord {
            exit_code: code,
            signal,
            stopped,
            error: None,
            ended_at_ms: 9,
            lost: None,
        })
    }

    fn status_after(from: RunStatus, event: RunEvent) -> RunStatus {
        advance(&run(from), event).expect("allowed").status
    }

    #[test]
    fn a_queued_run_launches_then_runs_with_its_pid() {
        let launching = advance(&run(Queued), RunEvent::Launching).unwrap();
        assert_eq!(launching.status, Launching);
        let started = RunEvent::Started { pid: 7, at_ms: 5 };
        let running = advance(&launching, started).unwrap();
        assert_eq!(
            (running.status, running.pid, running.started_at),
            (Running, Some(7), Some(5))
        );
    }

    #[test]
    fn hearing_the_same_pid_again_changes_nothing() {
        let running = run(Running);
        let again = RunEvent::Started { pid: 42, at_ms: 99 };
        assert_eq!(advance(&running, again).unwrap(), running);
    }

    #[test]
    fn an_exit_reads_as_finished_failed_stopped_or_killed() {
        assert_eq!(status_after(Running, exit(Some(0), None, false)), Finished);
        let failed = advance(&run(Running), exit(Some(3), None, false)).unwrap();
        assert_eq!(
            (failed.status, failed.reason.as_deref()),
            (Failed, Some("exited with code 3"))
        );
        assert_eq!(failed.pid, None);
        assert_eq!(status_after(Running, exit(None, Some(15), true)), Stopped);
        let killed = advance(&run(Running), exit(None, Some(9), false)).unwrap();
        assert_eq!(killed.reason.as_deref(), Some("killed by SIGKILL (9)"));
        // A job that died before its pid was reported still ends.
        assert_eq!(
            status_after(Launching, exit(Some(0), None, false)),
            Finished
        );
    }

    #[test]
    fn a_launch_error_in_the_record_is_the_reason() {
        let record = ExitRecord {
            exit_code: None,
            signal: None,
            stopped: false,
            error: Some("no such program `trian`".into()),
            ended_at_ms: 3,
            lost: None,
        };
        let failed = advance(&run(Launching), RunEvent::Exited(record)).unwrap();
        assert_eq!(failed.status, Failed);
        assert_eq!(failed.reason.as_deref(), Some("no such program `trian`"));
    }

    #[test]
    fn a_lost_supervisor_keeps_the_group_of_a_job_that_lives_on() {
        let lost = RunEvent::SupervisorLost {
            pid: Some(42),
            at_ms: 8,
            reason: "its supervisor ended".into(),
        };
        let run = advance(&run(Running), lost).unwrap();
        assert_eq!(
            (run.status, run.pid, run.ended_at),
            (Lost, Some(42), Some(8))
        );
    }

    #[test]
    fn queued_runs_fail_to_launch_or_are_stopped_before_they_start() {
        let failed = RunEvent::LaunchFailed {
            reason: "disk full".into(),
            at_ms: 4,
        };
        assert_eq!(status_after(Queued, failed.clone()), Failed);
        assert_eq!(status_after(Launching, failed), Failed);
        let stop = RunEvent::StoppedBeforeStart {
            reason: "stopped by the user before it started".into(),
            at_ms: 4,
        };
        let stopped = advance(&run(Queued), stop).unwrap();
        assert_eq!((stopped.status, stopped.ended_at), (Stopped, Some(4)));
    }

    #[test]
    fn an_ended_run_never_changes_again() {
        for from in [Finished, Failed, Stopped, Lost] {
            for event in [
                RunEvent::Launching,
                RunEvent::Started { pid: 1, at_ms: 1 },
                exit(Some(0), None, false),
                RunEvent::LaunchFailed {
                    reason: "x".into(),
                    at_ms: 1,
                },
            ] {
                let refused = advance(&run(from), event).unwrap_err();
                assert_eq!(refused.from, from);
            }
        }
    }

    #[test]
    fn impossible_transitions_are_refused_naming_the_run_and_the_event() {
        let refused = advance(&run(Running), RunEvent::Launching).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "run ab12cd34 is running: `launching` cannot happen to it"
        );
        // A queued run has no supervisor to lose, and a running one is not stopped as queued.
        let lost = RunEvent::SupervisorLost {
            pid: None,
            at_ms: 1,
            reason: String::new(),
        };
        assert!(advance(&run(Queued), lost).is_err());
        let stop = RunEvent::StoppedBeforeStart {
            reason: String::new(),
            at_ms: 1,
        };
        assert!(advance(&run(Running), stop).is_err());
        // A second, different pid for a running run is a confusion, not a restart.
        assert!(advance(&run(Running), RunEvent::Started { pid: 43, at_ms: 1 }).is_err());
    }
}
