//! The alerts engine: raising alerts (from the rules in [`rules`], a run's `.alert_trigger`
//! file, a failed run) and answering them.
//!
//! Raising one commits it and broadcasts an `alert` event under the state lock, like every
//! other change, so every client has it within a second of the metric that caused it; the
//! notifier then tells whoever the config routes alerts to.

pub mod judge;
pub mod rules;

use std::path::Path;

use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::run::{RunInfo, RunStatus};
use reagent::time::now_ms;

use crate::metrics::lock;
use crate::notify::{Notice, NoticeKind};
use crate::state::{Daemon, short_id};
use rules::Draft;

/// The file a job writes in its working directory to raise an alert with the file's text.
pub const TRIGGER_FILE: &str = ".alert_trigger";
/// The most of a trigger file's text an alert carries.
const TRIGGER_BYTES: u64 = 4096;
/// How long an empty trigger file is given to get its text.
const TRIGGER_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Raises an alert on a run: records it, broadcasts it and sends a notice.
pub fn raise(daemon: &Daemon, run: &str, draft: Draft) {
    let mut state = daemon.state();
    let Some(info) = state.run(run).cloned() else {
        return;
    };
    let choices = if info.status.is_terminal() {
        vec![Choice::Ignore, Choice::Chat]
    } else {
        Choice::ALL.to_vec()
    };
    let alert = AlertInfo {
        id: short_id(),
        run: run.to_string(),
        rule: draft.rule,
        subject: draft.subject,
        severity: draft.severity,
        message: draft.message,
        step: draft.step,
        choices,
        status: AlertStatus::Open,
        response: None,
        session: None,
        created_at: now_ms(),
        answered_at: None,
    };
    match state.save_alert(alert) {
        Ok(alert) => {
            drop(state);
            tracing::info!(run = %run, alert = %alert.id, rule = %alert.rule, "{}", alert.message);
            daemon.notify.send(Notice {
                kind: NoticeKind::Alert,
                title: format!("reagent: {} alert on run {}", alert.severity, info.label()),
                body: format!("{}\n$ {}", alert.message, info.command_line()),
            });
        }
        Err(err) => tracing::error!(run = %run, "cannot record an alert: {err}"),
    }
}

/// Raises an alert with the text of the run's `.alert_trigger` file, then removes the file.
pub fn check_trigger(daemon: &Daemon, run: &str, path: &Path) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    let mut text = String::new();
    let read =
        std::io::Read::read_to_string(&mut std::io::Read::take(file, TRIGGER_BYTES), &mut text);
    // An empty file may be one the job is still writing: give it a moment.
    let fresh = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|at| at.elapsed().unwrap_or_default() < TRIGGER_SETTLE);
    if text.trim().is_empty() && fresh {
        return;
    }
    if let Err(err) = std::fs::remove_file(path) {
        // Leaving it would raise the same alert every quarter second.
        tracing::warn!(run = %run, "cannot remove {}: {err}; not raising it", path.display());
        return;
    }
    let text = match read {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "the job raised an alert (its trigger file was empty)".to_string(),
    };
    let draft = Draft {
        rule: AlertRule::Trigger,
        subject: None,
        severity: Severity::Warning,
        message: text,
        step: None,
    };
    raise(daemon, run, draft);
}

/// Raises the run-failed alert when a run has just failed (and the rule is on).
pub fn run_ended(daemon: &Daemon, run: &RunInfo) {
    if run.status != RunStatus::Failed || !daemon.config.alerts.run_failed {
        return;
    }
    let why = run.reason.as_deref().unwrap_or("it failed");
    let draft = Draft {
        rule: AlertRule::RunFailed,
        subject: None,
        severity: Severity::Critical,
        message: format!("run {} failed: {why}", run.label()),
        step: None,
    };
    raise(daemon, &run.id, draft);
}

/// Re-arms the rule of an answered alert on its run.
pub fn rearm(daemon: &Daemon, alert: &AlertInfo) {
    if let Ok(Some(metrics)) = daemon.metrics.get(daemon, &alert.run) {
        lock(&metrics)
            .engine
            .answered(alert.rule, alert.subject.as_deref());
    }
}
