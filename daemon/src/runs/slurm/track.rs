//! Following every run on Slurm with one task.
//!
//! Each look at the queue is one `squeue` call for all the jobs followed, never one per job:
//! a quarter second after a submission, a stop or a change, then twice as long after each
//! look that found nothing new, up to `poll_secs`; while the controller does not answer,
//! `poll_secs` doubled per failed look, up to two minutes, each run saying why it is not
//! followed. What a look finds goes through [`step`], a pure function: a pending job's reason
//! becomes the run's, a job that runs makes its run running, and a job that ended (or that
//! Slurm no longer lists) is asked about once more, of `sacct` where the cluster keeps
//! accounting, else of `scontrol show job`, for its exit code, then settled through the
//! lifecycle. Between looks, a running job's output file is checked for growth every
//! quarter second and what it grew by goes to its pane, as a supervisor's `written` message
//! would; and a stop whose grace is over becomes an outright `scancel`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reagent::protocol::codes;
use reagent::run::RunStatus;
use reagent::time::now_ms;

use super::cmd;
use super::wire::{self, JobRecord, QueueLine, SlurmState};
use crate::daemon::Daemon;
use crate::runs::lifecycle::{JobEnd, RunEvent, WAITING_IN_SLURM};
use crate::runs::{follow, lock, pane::Pane};

/// The first look after a change.
const QUICK: Duration = Duration::from_millis(250);
/// The longest wait between looks while the controller does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// How often a running job's output file is checked for growth.
const TAIL_EVERY: Duration = Duration::from_millis(250);
/// How long before an outright cancel that did not take is sent again.
const CANCEL_AGAIN: Duration = Duration::from_secs(30);

/// The wait before the next look at the queue, after `quiet` looks in a row that found
/// nothing new and `errors` in a row that got no answer.
pub fn next_look(poll: Duration, quiet: u32, errors: u32) -> Duration {
    if errors > 0 {
        let backoff = poll.saturating_mul(2u32.saturating_pow(errors.min(16)));
        return backoff.min(MAX_BACKOFF.max(poll));
    }
    QUICK
        .saturating_mul(2u32.saturating_pow(quiet.min(16)))
        .min(poll)
}

/// What a look at the queue means for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing new.
    Keep,
    /// Its reason changes to this (a pending job's, or none once it runs).
    Reason(Option<String>),
    /// Its job started.
    Started,
    /// Its job ended: ask how.
    Ended,
    /// Slurm did not list its job: ask whether Slurm still knows it.
    Missing,
}

/// What `seen` (the queue's line for the run's job, if any) means for a run in `status`
/// whose reason is `reason`.
pub fn step(status: RunStatus, reason: Option<&str>, seen: Option<&QueueLine>) -> Step {
    let Some(line) = seen else {
        return Step::Missing;
    };
    if line.state.is_terminal() {
        return Step::Ended;
    }
    let wanted = match &line.state {
        SlurmState::Pending => Some(match &line.reason {
            Some(why) => format!("{WAITING_IN_SLURM}: {why}"),
            None => WAITING_IN_SLURM.to_string(),
        }),
        SlurmState::Running | SlurmState::Completing if status == RunStatus::Queued => {
            return Step::Started;
        }
        SlurmState::Running | SlurmState::Completing => None,
        other => Some(match &line.reason {
            Some(why) => format!("Slurm: {}, {why}", other.words()),
            None => format!("Slurm: {}", other.words()),
        }),
    };
    match reason == wanted.as_deref() {
        true => Step::Keep,
        false => Step::Reason(wanted),
    }
}

/// One followed run, as read under the state lock.
struct Followed {
    id: String,
    job: String,
    status: RunStatus,
    reason: Option<String>,
    stop_by: Option<i64>,
    pane: Option<Arc<Mutex<Pane>>>,
    log: PathBuf,
}

/// The tracker's own memory, across looks.
struct Tracker {
    daemon: Arc<Daemon>,
    /// Looks in a row that found nothing new.
    quiet: u32,
    /// Looks in a row the controller did not answer.
    errors: u32,
    /// When to look next.
    next_look: Instant,
    /// When an outright cancel was last sent, by run.
    cancels: HashMap<String, Instant>,
    /// Whether `sacct` works here; unknown until asked.
    accounting: Option<bool>,
}

/// The tracker task: follows every run on Slurm until none is left (it is started again by
/// the next submission or re-adoption).
pub async fn run(daemon: Arc<Daemon>) {
    let wake = daemon.state().runs.slurm.wake.clone();
    let mut tracker = Tracker {
        daemon,
        quiet: 0,
        errors: 0,
        next_look: Instant::now(),
        cancels: HashMap::new(),
        accounting: None,
    };
    tracing::info!("following runs on Slurm");
    while let Some(followed) = tracker.followed() {
        if Instant::now() >= tracker.next_look {
            tracker.look(&followed).await;
        }
        let next_cancel = tracker.cancel_due(&followed);
        tracker.tail(&followed).await;
        let mut until = tracker.next_look;
        if followed.iter().any(|run| run.status == RunStatus::Running) {
            until = until.min(Instant::now() + TAIL_EVERY);
        }
        if let Some(cancel) = next_cancel {
            until = until.min(cancel);
        }
        tokio::select! {
            () = wake.notified() => {
                tracker.quiet = 0;
                tracker.next_look = Instant::now();
            }
            () = tokio::time::sleep_until(until.into()) => {}
        }
    }
    tracing::info!("no run on Slurm left to follow");
}

impl Tracker {
    /// The runs on Slurm with a job that has not ended; `None` (the tracker then stops,
    /// which the lock makes safe against a submission at the same moment) when there are
    /// none.
    fn followed(&mut self) -> Option<Vec<Followed>> {
        let mut state = self.daemon.state();
        let followed: Vec<Followed> = (state.runs().iter())
            .filter(|run| !run.status.is_terminal())
            .filter_map(|run| {
                let slurm = run.executor.slurm()?;
                Some(Followed {
                    id: run.id.clone(),
                    job: slurm.job.clone()?,
                    status: run.status,
                    reason: run.reason.clone(),
                    stop_by: slurm.stop_by,
                    pane: state.live(&run.id).map(|live| live.pane.clone()),
                    log: run.log_path.clone(),
                })
            })
            .collect();
        if followed.is_empty() {
            state.runs.slurm.tracking = false;
            return None;
        }
        self.cancels
            .retain(|id, _| followed.iter().any(|run| run.id == *id));
        Some(followed)
    }

    /// One look at the queue for every followed job, and what follows from it.
    async fn look(&mut self, followed: &[Followed]) {
        let config = &self.daemon.config.slurm;
        let poll = Duration::from_secs_f64(config.poll_secs);
        let arrays: HashSet<&str> = followed
            .iter()
            .map(|run| wire::array_id(&run.job))
            .collect();
        let arrays: Vec<String> = arrays.into_iter().map(str::to_string).collect();
        let lines = match squeue(&self.daemon, &arrays).await {
            Ok(lines) => lines,
            Err(why) => {
                self.errors += 1;
                let wait = next_look(poll, 0, self.errors);
                tracing::warn!("Slurm does not answer, looking again in {wait:?}: {why}");
                let reason = format!("cannot reach Slurm: {why}");
                for run in followed {
                    self.set_reason(run, Some(reason.clone()));
                }
                self.next_look = Instant::now() + wait;
                return;
            }
        };
        self.errors = 0;
        let mut seen: HashMap<String, QueueLine> = HashMap::new();
        for line in lines {
            for id in wire::line_ids(&line.id) {
                seen.insert(id, line.clone());
            }
        }
        let mut changed = false;
        let mut ended = Vec::new();
        for run in followed {
            let line = seen.get(&run.job);
            match step(run.status, run.reason.as_deref(), line) {
                Step::Keep => continue,
                Step::Reason(reason) => self.set_reason(run, reason),
                Step::Started => self.started(run),
                Step::Ended | Step::Missing => ended.push((run, line.cloned())),
            }
            changed = true;
        }
        if !ended.is_empty() {
            self.settle(ended).await;
        }
        self.quiet = if changed { 0 } else { self.quiet + 1 };
        self.next_look = Instant::now() + next_look(poll, self.quiet, 0);
    }

    /// Changes a run's reason (not its status), when it differs.
    fn set_reason(&self, run: &Followed, reason: Option<String>) {
        if run.reason == reason {
            return;
        }
        let result = self
            .daemon
            .state()
            .update_run(&run.id, |info| info.reason = reason);
        if let Err(err) = result {
            tracing::warn!(run = %run.id, "cannot record its Slurm reason: {err}");
        }
    }

    /// Marks a run running, and starts reading its metrics file.
    fn started(&self, run: &Followed) {
        let at_ms = now_ms();
        let result = self
            .daemon
            .state()
            .advance_run(&run.id, RunEvent::JobStarted { at_ms });
        match result {
            Ok(_) => {
                tracing::info!(run = %run.id, job = %run.job, "Slurm job started");
                crate::metrics::ingest::start(&self.daemon, &run.id);
            }
            Err(err) => tracing::warn!(run = %run.id, "cannot record that it started: {err}"),
        }
    }

    /// Settles runs whose job ended or went missing, with how each ended.
    async fn settle(&mut self, ended: Vec<(&Followed, Option<QueueLine>)>) {
        let jobs: Vec<String> = ended.iter().map(|(run, _)| run.job.clone()).collect();
        let records = self.how_ended(&jobs).await;
        let at_ms = now_ms();
        for (run, line) in ended {
            let record = records.get(&run.job);
            let end = match (record, line) {
                (Some(record), line) if record.state.is_terminal() => Ok(JobEnd {
                    state: record.state.clone(),
                    reason: (record.reason.clone()).or_else(|| line.and_then(|l| l.reason)),
                    exit_code: record.exit_code,
                    signal: record.signal,
                    at_ms,
                }),
                (_, Some(line)) if line.state.is_terminal() => Ok(JobEnd {
                    state: line.state,
                    reason: line.reason,
                    exit_code: None,
                    signal: None,
                    at_ms,
                }),
                // Slurm still has it going: the next look sees it.
                (Some(_), _) => continue,
                (None, _) => Err(format!(
                    "Slurm no longer knows job {}: it ended too long ago for `scontrol` \
                     (MinJobAge), and the cluster keeps no accounting for `sacct`, so how it \
                     ended is unknown",
                    run.job
                )),
            };
            finish(&self.daemon, run, end).await;
        }
    }

    /// How the `jobs` ended: from `sacct` where the cluster keeps accounting (it remembers
    /// jobs for good), else from `scontrol show job` (which forgets them after MinJobAge).
    async fn how_ended(&mut self, jobs: &[String]) -> HashMap<String, JobRecord> {
        let config = &self.daemon.config.slurm;
        let mut found: HashMap<String, JobRecord> = HashMap::new();
        if self.accounting != Some(false) {
            match cmd::run(config, "sacct", &wire::sacct_args(jobs), None).await {
                Ok(out) if out.ok => {
                    self.accounting = Some(true);
                    let records = wire::parse_sacct(&out.stdout);
                    found.extend(
                        records
                            .into_iter()
                            .map(|record| (record.id.clone(), record)),
                    );
                }
                Ok(out) if out.stderr.contains("accounting storage is disabled") => {
                    tracing::info!("no Slurm accounting here: exit codes come from scontrol");
                    self.accounting = Some(false);
                }
                Ok(out) => tracing::warn!("sacct: {}", out.error("sacct")),
                Err(err) => {
                    tracing::info!("no sacct: {err}");
                    self.accounting = Some(false);
                }
            }
        }
        let unknown: Vec<&String> = (jobs.iter())
            .filter(|job| {
                !found
                    .get(*job)
                    .is_some_and(|record| record.state.is_terminal())
            })
            .collect();
        // One job by its id; several at once by listing every job Slurm knows, in one call.
        let mut args = vec!["show".to_string(), "job".into(), "-o".into()];
        match unknown.as_slice() {
            [] => return found,
            [job] => args.push((*job).clone()),
            _ => {}
        }
        match cmd::run(config, "scontrol", &args, None).await {
            Ok(out) => {
                let records = out.stdout.lines().filter_map(wire::parse_scontrol_job);
                for record in records {
                    for id in wire::line_ids(&record.id) {
                        if unknown.contains(&&id) {
                            found.insert(id, record.clone());
                        }
                    }
                }
            }
            Err(err) => tracing::warn!("{err}"),
        }
        found
    }

    /// Sends an outright cancel for every stop whose grace is over (again, if an earlier one
    /// did not take); returns when the next grace ends.
    fn cancel_due(&mut self, followed: &[Followed]) -> Option<Instant> {
        let now_ms = now_ms();
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next = None::<Instant>;
        for run in followed {
            let Some(by) = run.stop_by else { continue };
            if by > now_ms {
                let wait = Duration::from_millis(u64::try_from(by - now_ms).unwrap_or(0));
                next = Some(next.map_or(now + wait, |n| n.min(now + wait)));
                continue;
            }
            let recent = (self.cancels.get(&run.id)).is_some_and(|at| now - *at < CANCEL_AGAIN);
            if !recent {
                self.cancels.insert(run.id.clone(), now);
                due.push(run.job.clone());
            }
        }
        if !due.is_empty() {
            tracing::info!(jobs = ?due, "cancelling on Slurm");
            cancel(&self.daemon, due);
            // Look soon: the jobs should end now.
            self.quiet = 0;
            self.next_look = self.next_look.min(now + QUICK);
        }
        next
    }

    /// Feeds each running job's pane what its output file grew by.
    async fn tail(&self, followed: &[Followed]) {
        for run in followed
            .iter()
            .filter(|run| run.status == RunStatus::Running)
        {
            let Some(pane) = &run.pane else { continue };
            let size = std::fs::metadata(&run.log).map_or(0, |meta| meta.len());
            if size > lock(pane).offset() {
                follow::take_output(&self.daemon, &run.id, pane, &run.log).await;
            }
        }
    }
}

/// The queue's lines for the jobs of `arrays` (array or plain job ids), in one call.
async fn squeue(daemon: &Daemon, arrays: &[String]) -> Result<Vec<QueueLine>, String> {
    let args = wire::squeue_args(arrays);
    let out = cmd::run(&daemon.config.slurm, "squeue", &args, None).await?;
    if out.ok {
        return Ok(wire::parse_squeue(&out.stdout));
    }
    // squeue asked about jobs it forgot fails; that means none of them is listed.
    if out.stderr.contains("Invalid job id specified") {
        return Ok(Vec::new());
    }
    Err(out.error("squeue"))
}

/// Settles a run whose job ended (or was lost): its last output first, so whoever follows
/// its log sees all of it before hearing it ended.
async fn finish(daemon: &Arc<Daemon>, run: &Followed, end: Result<JobEnd, String>) {
    if let Some(pane) = &run.pane {
        follow::take_output(daemon, &run.id, pane, &run.log).await;
    }
    let event = match end {
        Ok(end) => RunEvent::JobEnded(end),
        Err(reason) => RunEvent::JobLost {
            reason,
            at_ms: now_ms(),
        },
    };
    let result = {
        let mut state = daemon.state();
        let result = state.advance_run(&run.id, event);
        let settled = result
            .as_ref()
            .err()
            .is_none_or(|err| [codes::NOT_FOUND, codes::INVALID_STATE].contains(&err.code));
        if settled {
            state.remove_live(&run.id);
        }
        result
    };
    match result {
        Ok(ended) => {
            follow::report_end(daemon, &ended);
            if run.status == RunStatus::Queued {
                // It ran between two looks: its metrics were never read.
                crate::metrics::ingest::start(daemon, &run.id);
            }
            daemon.queue_wake.notify_one();
        }
        Err(err) if [codes::NOT_FOUND, codes::INVALID_STATE].contains(&err.code) => {}
        // A full disk, say: the job stays ended in Slurm, and the next look tries again.
        Err(err) => tracing::error!(run = %run.id, "cannot record how it ended: {err}"),
    }
}

/// Cancels `jobs` outright (`scancel`), in the background.
pub fn cancel(daemon: &Arc<Daemon>, jobs: Vec<String>) {
    let daemon = daemon.clone();
    tokio::spawn(async move {
        match cmd::run(&daemon.config.slurm, "scancel", &jobs, None).await {
            Ok(out) if !out.ok => tracing::warn!("scancel: {}", out.error("scancel")),
            Err(err) => tracing::warn!("{err}"),
            Ok(_) => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(state: SlurmState, reason: Option<&str>) -> QueueLine {
        QueueLine {
            id: "12".into(),
            state,
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn looks_come_quickly_after_a_change_then_slow_to_the_interval() {
        let poll = Duration::from_secs(5);
        let waits: Vec<u128> = (0..7).map(|q| next_look(poll, q, 0).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        // A short interval is never exceeded.
        assert_eq!(next_look(Duration::from_millis(100), 0, 0).as_millis(), 100);
    }

    #[test]
    fn a_controller_that_does_not_answer_is_asked_less_and_less_often() {
        let poll = Duration::from_secs(5);
        let waits: Vec<u64> = (1..7).map(|e| next_look(poll, 0, e).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 120, 120]);
        assert_eq!(next_look(poll, 0, u32::MAX).as_secs(), 120);
        // An interval above the cap is kept as it is.
        assert_eq!(next_look(Duration::from_secs(300), 0, 3).as_secs(), 300);
    }

    #[test]
    fn a_pending_jobs_reason_becomes_the_runs() {
        use RunStatus::*;
        let pending = line(SlurmState::Pending, Some("Priority"));
        let priority = "waiting in Slurm's queue: Priority";
        assert_eq!(
            step(Queued, Some(WAITING_IN_SLURM), Some(&pending)),
            Step::Reason(Some(priority.into()))
        );
        assert_eq!(step(Queued, Some(priority), Some(&pending)), Step::Keep);
        let no_reason = line(SlurmState::Pending, None);
        assert_eq!(
            step(Queued, Some(WAITING_IN_SLURM), Some(&no_reason)),
            Step::Keep
        );
        let held = line(SlurmState::Suspended, None);
        assert_eq!(
            step(Running, None, Some(&held)),
            Step::Reason(Some("Slurm: SUSPENDED".into()))
        );
    }

    #[test]
    fn a_job_that_runs_starts_the_run_and_clears_an_old_reason() {
        use RunStatus::*;
        let running = line(SlurmState::Running, None);
        assert_eq!(
            step(Queued, Some(WAITING_IN_SLURM), Some(&running)),
            Step::Started
        );
        assert_eq!(step(Running, None, Some(&running)), Step::Keep);
        assert_eq!(
            step(Running, Some("cannot reach Slurm: timeout"), Some(&running)),
            Step::Reason(None)
        );
        // Still finishing: running yet.
        let completing = line(SlurmState::Completing, None);
        assert_eq!(step(Running, None, Some(&completing)), Step::Keep);
    }

    #[test]
    fn an_ended_or_unlisted_job_is_asked_about() {
        use RunStatus::*;
        let timeout = line(SlurmState::Timeout, Some("TimeLimit"));
        assert_eq!(step(Running, None, Some(&timeout)), Step::Ended);
        assert_eq!(step(Queued, None, Some(&timeout)), Step::Ended);
        assert_eq!(step(Running, None, None), Step::Missing);
    }
}
