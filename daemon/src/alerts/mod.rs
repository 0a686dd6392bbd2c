//! The alerts engine: raising alerts (from the rules in [`rules`], a run's `.alert_trigger`
//! file, a failed run) and answering them.
//!
//! Raising one commits it and broadcasts an `alert` event under the state lock, like every
//! other change, so every client has it within a second of the metric that caused it; the
//! notifier then tells whoever the config routes alerts to.

pub mod judge;
pub mod rules;
pub mod trigger;

use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::run::{RunInfo, RunStatus};
use reagent::time::now_ms;

use crate::metrics::lock;
use crate::notify::{Notice, NoticeKind};
use crate::state::{Daemon, short_id};
use rules::Draft;

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
