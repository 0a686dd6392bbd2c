//! Triage: answering alerts and judging runs, the layer that acts on what the alerts
//! service raised. A person's answer (`stop` stops the run through the runs service, `chat`
//! opens a session through the chat service, `ignore` closes it) and the LLM judge that
//! watches live runs' metrics live here, above runs, metrics, chat and alerts, so none of
//! those needs to know about answering (see `docs/architecture.md`).

pub mod judge;
pub mod respond;

use reagent::alert::{AlertInfo, AlertStatus, Choice};
use reagent::protocol::{IgnoredAlerts, RpcError};
use reagent::time::now_ms;

use crate::daemon::Daemon;
use crate::metrics::lock;

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
