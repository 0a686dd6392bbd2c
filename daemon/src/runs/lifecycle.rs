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
//!
//! A run on Slurm has no supervisor: it stays `queued` while `sbatch` submits it
//! (`Submitted` records the job) and while the job waits in Slurm's queue, then:
//!
//! ```text
//! queued ──Submitted──▶ queued (job id) ──JobStarted──▶ running
//!   │                        │                            │
//!   └─LaunchFailed─▶ failed  ├─JobEnded─▶ finished | failed | stopped ◀─JobEnded─┤
//!     (sbatch refused it)    └─JobLost──▶ lost ◀──────────────────────JobLost────┘
//! ```

use reagent::run::{RunInfo, RunStatus};
use reagent::slurm::Executor;

use super::slurm::wire::SlurmState;
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
    /// Slurm accepted the run's job: it waits in Slurm's queue.
    Submitted {
        /// The job id (`12`, or `12_3` for a task of an array).
        job: String,
        /// The cluster's name, when known.
        cluster: Option<String>,
    },
    /// Slurm runs the job (there is no pid on this machine to report).
    JobStarted {
        /// When the daemon saw it (Unix ms); the first start is the one kept.
        at_ms: i64,
    },
    /// The Slurm job ended, as Slurm says.
    JobEnded(JobEnd),
    /// Slurm no longer knows the job, so how it ended cannot be told.
    JobLost {
        /// Why, in words.
        reason: String,
        /// When the daemon noticed (Unix ms).
        at_ms: i64,
    },
}

/// How a Slurm job ended: its state, Slurm's reason and its exit status.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd {
    /// The state it ended in (`COMPLETED`, `TIMEOUT`, …).
    pub state: SlurmState,
    /// Slurm's reason (`TimeLimit`, `NonZeroExitCode`), if it gave one.
    pub reason: Option<String>,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// When the daemon saw it end (Unix ms).
    pub at_ms: i64,
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
            Self::Submitted { .. } => "submitted",
            Self::JobStarted { .. } => "job started",
            Self::JobEnded(_) => "job ended",
            Self::JobLost { .. } => "job lost",
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
    // A run on Slurm, and its job id once submitted.
    let slurm = run.executor.slurm();
    let job = slurm.and_then(|slurm| slurm.job.as_ref());
    match (run.status, event) {
        // A run on Slurm never gets a supervisor here.
        (Queued, RunEvent::Launching) if slurm.is_none() => next.status = Launching,
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
        // A job in Slurm's queue ends when Slurm says it did (`JobEnded`), never before.
        (Queued, RunEvent::StoppedBeforeStart { reason, at_ms }) if job.is_none() => {
            next.status = RunStatus::Stopped;
            next.ended_at = Some(at_ms);
            next.reason = Some(reason);
        }
        (Queued, RunEvent::Submitted { job: id, cluster }) if slurm.is_some() && job.is_none() => {
            next.executor = Executor::Slurm(reagent::slurm::SlurmJob {
                job: Some(id),
                cluster,
                ..slurm.cloned().unwrap_or_default()
            });
            next.reason = Some(WAITING_IN_SLURM.into());
        }
        (Queued, RunEvent::JobStarted { at_ms }) if job.is_some() => {
            next.status = Running;
            next.reason = None;
            next.started_at.get_or_insert(at_ms);
        }
        (Running, RunEvent::JobStarted { .. }) if job.is_some() => {}
        (Queued | Running, RunEvent::JobEnded(end)) if job.is_some() => job_ended(&mut next, end),
        (Queued | Running, RunEvent::JobLost { reason, at_ms }) if job.is_some() => {
            next.status = RunStatus::Lost;
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

/// The reason of a run whose job waits in Slurm's queue, before Slurm says why.
pub const WAITING_IN_SLURM: &str = "waiting in Slurm's queue";

/// How a Slurm job's end reads as a status and a reason, Slurm's own words kept in it. A run
/// someone asked reagent to stop reads as stopped however the job took it.
fn job_ended(run: &mut RunInfo, end: JobEnd) {
    let stopped = run
        .executor
        .slurm()
        .is_some_and(|slurm| slurm.stop_by.is_some());
    let started = run.status == RunStatus::Running;
    run.exit_code = end.exit_code;
    run.signal = end.signal;
    run.ended_at = Some(end.at_ms);
    let words = match &end.reason {
        Some(reason) => format!("Slurm: {}, {reason}", end.state.words()),
        None => format!("Slurm: {}", end.state.words()),
    };
    let failed = |what: &str| (RunStatus::Failed, Some(format!("{what} ({words})")));
    (run.status, run.reason) = match (&end.state, stopped) {
        (_, true) if started => (RunStatus::Stopped, Some("stopped by the user".into())),
        (_, true) => (
            RunStatus::Stopped,
            Some(super::control::STOPPED_BEFORE_START.into()),
        ),
        (SlurmState::Completed, false) => (RunStatus::Finished, None),
        (SlurmState::Cancelled, false) => (
            RunStatus::Stopped,
            Some(format!("cancelled in Slurm, not through reagent ({words})")),
        ),
        (SlurmState::Timeout, false) => failed("ran past its time limit"),
        (SlurmState::OutOfMemory, false) => failed("ran out of memory"),
        (SlurmState::NodeFail, false) => failed("its node failed"),
        (SlurmState::Preempted, false) => failed("preempted by another job"),
        (SlurmState::BootFail, false) => failed("its node failed to boot"),
        (SlurmState::Deadline, false) => failed("reached its deadline"),
        (_, false) => match (end.exit_code, end.signal) {
            (Some(code), _) if code != 0 => failed(&format!("exited with code {code}")),
            (_, Some(signal)) => failed(&format!("killed by {}", signal_name(signal))),
            _ => (RunStatus::Failed, Some(words)),
        },
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
            executor: Executor::Local,
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

    /// A queued run on Slurm, submitted as job 12 when `job` says so.
    fn on_slurm(job: bool) -> RunInfo {
        let mut run = run(Queued);
        run.executor = Executor::Slurm(reagent::slurm::SlurmJob::default());
        if job {
            let submitted = RunEvent::Submitted {
                job: "12".into(),
                cluster: Some("c".into()),
            };
            run = advance(&run, submitted).unwrap();
        }
        run
    }

    fn job_end(
        state: SlurmState,
        reason: Option<&str>,
        exit: (Option<i32>, Option<i32>),
    ) -> RunEvent {
        RunEvent::JobEnded(JobEnd {
            state,
            reason: reason.map(str::to_string),
            exit_code: exit.0,
            signal: exit.1,
            at_ms: 9,
        })
    }

    #[test]
    fn a_slurm_run_waits_queued_with_its_job_then_runs_without_a_pid() {
        let submitted = on_slurm(true);
        assert_eq!(submitted.status, Queued);
        assert_eq!(submitted.executor.describe(), "slurm:12@c");
        assert_eq!(submitted.reason.as_deref(), Some(WAITING_IN_SLURM));
        let running = advance(&submitted, RunEvent::JobStarted { at_ms: 5 }).unwrap();
        assert_eq!(
            (
                running.status,
                running.pid,
                running.started_at,
                running.reason.clone()
            ),
            (Running, None, Some(5), None)
        );
        assert_eq!(
            advance(&running, RunEvent::JobStarted { at_ms: 6 }).unwrap(),
            running
        );
        // Never a supervisor, never a second job, and no start before a job exists.
        assert!(advance(&on_slurm(false), RunEvent::Launching).is_err());
        assert!(advance(&on_slurm(false), RunEvent::JobStarted { at_ms: 1 }).is_err());
        let again = RunEvent::Submitted {
            job: "13".into(),
            cluster: None,
        };
        assert!(advance(&submitted, again.clone()).is_err());
        assert!(
            advance(&run(Queued), again).is_err(),
            "a local run has no job"
        );
    }

    #[test]
    fn a_slurm_jobs_end_reads_as_a_status_with_slurms_words() {
        use SlurmState as S;
        let running = advance(&on_slurm(true), RunEvent::JobStarted { at_ms: 5 }).unwrap();
        let after = |event| {
            let run = advance(&running, event).unwrap();
            (run.status, run.reason.unwrap_or_default())
        };
        assert_eq!(
            after(job_end(S::Completed, None, (Some(0), None))),
            (Finished, String::new())
        );
        assert_eq!(
            after(job_end(S::Failed, Some("NonZeroExitCode"), (Some(3), None))),
            (
                Failed,
                "exited with code 3 (Slurm: FAILED, NonZeroExitCode)".into()
            )
        );
        assert_eq!(
            after(job_end(S::Timeout, Some("TimeLimit"), (None, Some(9)))),
            (
                Failed,
                "ran past its time limit (Slurm: TIMEOUT, TimeLimit)".into()
            )
        );
        assert_eq!(
            after(job_end(S::OutOfMemory, None, (None, Some(9)))),
            (Failed, "ran out of memory (Slurm: OUT_OF_MEMORY)".into())
        );
        assert_eq!(after(job_end(S::NodeFail, None, (None, None))).0, Failed);
        assert_eq!(
            after(job_end(S::Cancelled, None, (None, Some(15)))),
            (
                Stopped,
                "cancelled in Slurm, not through reagent (Slurm: CANCELLED)".into()
            )
        );
        assert_eq!(
            after(job_end(
                S::Failed,
                Some("JobLaunchFailure"),
                (Some(0), None)
            )),
            (Failed, "Slurm: FAILED, JobLaunchFailure".into())
        );
    }

    #[test]
    fn a_slurm_run_stopped_through_reagent_reads_stopped_however_it_ended() {
        let asked = |mut run: RunInfo| {
            if let Executor::Slurm(slurm) = &mut run.executor {
                slurm.stop_by = Some(20);
            }
            run
        };
        let running = advance(&on_slurm(true), RunEvent::JobStarted { at_ms: 5 }).unwrap();
        // The job took SIGTERM and exited 3: still the user's stop.
        let ended = advance(
            &asked(running),
            job_end(SlurmState::Failed, None, (Some(3), None)),
        )
        .unwrap();
        assert_eq!(
            (ended.status, ended.reason.as_deref(), ended.exit_code),
            (Stopped, Some("stopped by the user"), Some(3))
        );
        let pending = asked(on_slurm(true));
        let cancelled = job_end(SlurmState::Cancelled, None, (None, Some(15)));
        let ended = advance(&pending, cancelled).unwrap();
        assert_eq!(
            (ended.status, ended.reason.as_deref()),
            (Stopped, Some("stopped before it started"))
        );
        // A job in Slurm's queue is not marked stopped before Slurm says it ended.
        let early = RunEvent::StoppedBeforeStart {
            reason: "x".into(),
            at_ms: 1,
        };
        assert!(advance(&on_slurm(true), early.clone()).is_err());
        assert_eq!(status_after(Queued, early), Stopped);
    }

    #[test]
    fn a_slurm_job_slurm_forgot_is_lost_and_a_refused_one_failed() {
        let lost = RunEvent::JobLost {
            reason: "Slurm no longer knows job 12".into(),
            at_ms: 3,
        };
        let run = advance(&on_slurm(true), lost.clone()).unwrap();
        assert_eq!((run.status, run.ended_at), (Lost, Some(3)));
        assert!(advance(&on_slurm(false), lost).is_err());
        let refused = RunEvent::LaunchFailed {
            reason: "sbatch: error: Invalid generic resource (gres) specification".into(),
            at_ms: 2,
        };
        assert_eq!(advance(&on_slurm(false), refused).unwrap().status, Failed);
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
