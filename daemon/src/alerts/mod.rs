//! The alerts service: raising alerts (from the rules in [`rules`], a run's
//! `.alert_trigger` file, a failed run, lost output) and listing them. Answering them is
//! triage's, one layer up: it acts on runs and chat, which raising must not.
//!
//! Raising one commits it and broadcasts an `alert` event under the state lock, like every
//! other change, so every client has it within a second of the metric that caused it; the
//! notifier then tells whoever the config routes alerts to.

pub mod rules;
pub(crate) mod table;
pub(crate) mod trigger;

use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::protocol::{ListAlerts, RpcError};
use reagent::run::{RunInfo, RunStatus};
use reagent::time::now_ms;

use crate::daemon::{Daemon, short_id};
use crate::notify::{Notice, NoticeKind};
use rules::Draft;

/// Alerts, oldest first, filtered by status and run.
pub fn list(daemon: &Daemon, list: &ListAlerts) -> Result<Vec<AlertInfo>, RpcError> {
    let state = daemon.state();
    let run = match &list.run {
        Some(query) => Some(state.resolve(query)?.id.clone()),
        None => None,
    };
    Ok(state
        .alerts()
        .iter()
        .filter(|a| list.status.is_none_or(|status| a.status == status))
        .filter(|a| run.as_ref().is_none_or(|run| &a.run == run))
        .cloned()
        .collect())
}

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
        agent: None,
    };
    match state.save_alert(alert) {
        Ok(alert) => {
            drop(state);
            tracing::info!(run = %run, alert = %alert.id, rule = %alert.rule, "{}", alert.message);
            // An agent answers first; people hear of it if the agent has not in time.
            if !for_agent(daemon, &info) {
                tell_people(daemon, &alert, &info);
            }
        }
        Err(err) => tracing::error!(run = %run, "cannot record an alert: {err}"),
    }
}

/// Whether a run's alerts go to an agent first: its own agent session, or the config's
/// alerts agent.
pub fn for_agent(daemon: &Daemon, run: &RunInfo) -> bool {
    run.agent_session.is_some() || daemon.config.alerts.agent.is_some()
}

/// Sends people word of an alert (Slack, Telegram, the desktop): at once, or once an agent
/// handed it has let it sit past `[alerts] agent_grace_secs`.
pub fn tell_people(daemon: &Daemon, alert: &AlertInfo, run: &RunInfo) {
    daemon.notify.send(Notice {
        kind: NoticeKind::Alert,
        title: format!("reagent: {} alert on run {}", alert.severity, run.label()),
        body: format!("{}\n$ {}", alert.message, run.command_line()),
    });
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
