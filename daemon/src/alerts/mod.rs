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
use reagent::protocol::{IgnoredAlerts, RpcError};
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

/// A run has ended: its open alerts stop offering to stop it, and the run-failed alert is
/// raised when it failed (and the rule is on).
pub fn run_ended(daemon: &Daemon, run: &RunInfo) {
    withdraw_stop(daemon, &run.id);
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

/// Takes `stop` out of the choices of the run's open alerts: there is nothing left to stop.
fn withdraw_stop(daemon: &Daemon, run: &str) {
    let mut state = daemon.state();
    let stale: Vec<AlertInfo> = state
        .alerts()
        .iter()
        .filter(|alert| alert.run == run && alert.status == AlertStatus::Open)
        .filter(|alert| alert.choices.contains(&Choice::Stop))
        .cloned()
        .collect();
    for mut alert in stale {
        alert.choices.retain(|choice| *choice != Choice::Stop);
        if let Err(err) = state.save_alert(alert) {
            tracing::warn!(run = %run, "cannot update an alert of an ended run: {err}");
        }
    }
}

/// Records the answer to an open alert (with the chat session a `chat` opened), broadcasts
/// it, then re-arms the alert's rule on its run.
pub fn answer(
    daemon: &Daemon,
    alert: AlertInfo,
    choice: Choice,
    session: Option<String>,
) -> Result<AlertInfo, RpcError> {
    let alert = daemon.state().save_alert(closed(alert, choice, session))?;
    rearm(daemon, &alert);
    Ok(alert)
}

/// Ignores, in one go, every open alert like the one `query` names (the same rule and
/// subject): on the runs of its run's sweep, where a sweep raises the same alert on each
/// run, or on every run when its run is in no sweep. The named alert may be answered
/// already. All are answered under one lock; their rules are re-armed after it (those
/// answered before a failed write too).
pub fn ignore_like(daemon: &Daemon, query: &str) -> Result<IgnoredAlerts, RpcError> {
    let (scope, ignored, failed) = {
        let mut state = daemon.state();
        let like = state.resolve_alert(query)?.clone();
        let sweep = (state.sweeps().iter()).find(|sweep| sweep.runs.contains(&like.run));
        let scope = sweep.map_or_else(|| "every run".into(), |s| format!("sweep {}", s.name));
        let runs = sweep.map(|sweep| sweep.runs.clone());
        let open: Vec<AlertInfo> = (state.alerts().iter())
            .filter(|a| a.status == AlertStatus::Open && a.choices.contains(&Choice::Ignore))
            .filter(|a| a.rule == like.rule && a.subject == like.subject)
            .filter(|a| runs.as_ref().is_none_or(|runs| runs.contains(&a.run)))
            .cloned()
            .collect();
        let mut ignored = Vec::with_capacity(open.len());
        let mut failed = None;
        for alert in open {
            match state.save_alert(closed(alert, Choice::Ignore, None)) {
                Ok(alert) => ignored.push(alert),
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        (scope, ignored, failed)
    };
    for alert in &ignored {
        rearm(daemon, alert);
    }
    if let Some(err) = failed {
        return Err(err);
    }
    Ok(IgnoredAlerts {
        scope,
        alerts: ignored,
    })
}

/// `alert` as answered now with `choice`.
fn closed(mut alert: AlertInfo, choice: Choice, session: Option<String>) -> AlertInfo {
    alert.status = AlertStatus::Answered;
    alert.response = Some(choice);
    alert.session = session;
    alert.answered_at = Some(now_ms());
    alert
}

/// Re-arms the rule of an answered alert on its run.
pub fn rearm(daemon: &Daemon, alert: &AlertInfo) {
    if let Ok(Some(metrics)) = daemon.metrics.get(daemon, &alert.run) {
        lock(&metrics)
            .engine
            .answered(alert.rule, alert.subject.as_deref());
    }
}

/// Raises the output-lost alert when a gap in a run's log closed: output the job printed is
/// missing from its log (a full disk, say), which nobody would otherwise notice. One open
/// alert per run is enough; answering it lets the next gap raise another.
pub fn output_lost(daemon: &Daemon, run: &RunInfo) {
    let Some(loss) = &run.lost_output else { return };
    let open = daemon.state().alerts().iter().any(|alert| {
        alert.run == run.id
            && alert.rule == AlertRule::OutputLost
            && alert.status == AlertStatus::Open
    });
    if open {
        return;
    }
    let draft = Draft {
        rule: AlertRule::OutputLost,
        subject: None,
        severity: Severity::Warning,
        message: format!("run {}: {}", run.label(), loss.describe()),
        step: None,
    };
    raise(daemon, &run.id, draft);
}
