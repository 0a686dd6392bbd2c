//! Alerts handed to an agent: a new alert on a run whose alerts go to an agent (the session
//! that started it, one named with `--agent-session`, or the config's `[alerts] agent`) goes
//! to that session as a message with the alert, the run's command, its last screen and its
//! latest metrics. The agent answers through `alert_answer`, an acting tool like any other.
//! People hear of the alert if it is still open after `[alerts] agent_grace_secs`.
//!
//! The alerts service only marks which runs wait for an agent; the handing over is here,
//! above it, woken by every change and reading only alerts it has not looked at.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use reagent::alert::{AlertInfo, AlertStatus};
use reagent::protocol::{CreateSession, RpcError, SendChat};
use reagent::run::RunInfo;

use crate::chat::sessions;
use crate::daemon::Daemon;
use reagent::agent::WildState;

/// The title of the session the config's alerts agent works in.
const ALERTS_SESSION: &str = "alerts agent";

/// Hands every new alert that waits for an agent to its session, for as long as the daemon
/// runs.
pub async fn watch(daemon: Arc<Daemon>) {
    let mut changes = daemon.state().bus.watch_changes();
    // Alerts before this index were looked at; the table only grows, except when runs are
    // removed, and then everything is looked at again (handed alerts are marked).
    let mut looked = 0;
    loop {
        let waiting: Vec<(AlertInfo, RunInfo)> = {
            let state = daemon.state();
            let alerts = state.alerts();
            if alerts.len() < looked {
                looked = 0;
            }
            let found = (alerts[looked..].iter())
                .filter(|a| a.status == AlertStatus::Open && a.agent.is_none())
                .filter_map(|a| Some((a.clone(), state.run(&a.run)?.clone())))
                .filter(|(_, run)| crate::alerts::for_agent(&daemon, run))
                .collect();
            looked = alerts.len();
            found
        };
        for (alert, run) in waiting {
            if let Err(err) = hand(&daemon, &alert, &run) {
                tracing::warn!(alert = %alert.id, "cannot hand the alert to an agent: {err}");
                crate::alerts::tell_people(&daemon, &alert, &run);
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Hands one alert to its agent's session and starts the grace period after which people
/// are told.
fn hand(daemon: &Arc<Daemon>, alert: &AlertInfo, run: &RunInfo) -> Result<(), RpcError> {
    let session = match &run.agent_session {
        Some(session) => daemon.state().resolve_session(session)?.id.clone(),
        None => alerts_session(daemon, run)?,
    };
    let wild = {
        let mut state = daemon.state();
        let mut marked = state.resolve_alert(&alert.id)?.clone();
        marked.agent = Some(session.clone());
        state.save_alert(marked)?;
        (state.wild(&session)).is_some_and(|w| w.state != WildState::Ended)
    };
    // A wild-mode loop is woken by the alert and reads it in its next step's prompt.
    if !wild {
        let text = message(daemon, alert, run);
        sessions::send(daemon, SendChat { session, text })?;
    }
    let grace = Duration::from_secs_f64(daemon.config.alerts.agent_grace_secs.max(0.0));
    let daemon = daemon.clone();
    let (alert, run) = (alert.clone(), run.clone());
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let open =
            (daemon.state().resolve_alert(&alert.id)).is_ok_and(|a| a.status == AlertStatus::Open);
        if open {
            crate::alerts::tell_people(&daemon, &alert, &run);
        }
    });
    Ok(())
}

/// The session of the config's alerts agent, created with tools on at its first alert.
fn alerts_session(daemon: &Daemon, run: &RunInfo) -> Result<String, RpcError> {
    let model = daemon.config.alerts.agent.clone();
    let found = (daemon.state().sessions().iter())
        .rev()
        .find(|s| s.title.as_deref() == Some(ALERTS_SESSION) && Some(&s.model) == model.as_ref())
        .map(|s| s.id.clone());
    if let Some(id) = found {
        return Ok(id);
    }
    let create = CreateSession {
        model,
        system: Some(
            "You are reagent's alerts agent: each message is an alert on a training run. \
             Look at the run with your tools, then answer the alert with `alert_answer`."
                .into(),
        ),
        cwd: Some(run.cwd.clone()),
        title: Some(ALERTS_SESSION.into()),
        agent: true,
    };
    Ok(sessions::create(daemon, create)?.id)
}

/// What the agent is told: the alert and its choices, the run's command, its last screen
/// and its latest metrics.
fn message(daemon: &Daemon, alert: &AlertInfo, run: &RunInfo) -> String {
    let choices: Vec<String> = alert.choices.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "ALERT {id} ({severity}) on run {label} ({run_id}, {status}): {message}\n\
         Answer it with `alert_answer` (id {id}), one of: {choices}.\n\n$ {command}\n",
        id = alert.id,
        severity = alert.severity,
        label = run.label(),
        run_id = run.id,
        status = run.status,
        message = alert.message,
        choices = choices.join(", "),
        command = run.command_line(),
    );
    let screen = crate::runs::control::screen_text(run, crate::runs::control::SCREEN_ROWS);
    let _ = write!(text, "\nIts screen:\n{screen}\n");
    if let Ok(list) = crate::metrics::list(daemon, &run.id) {
        text.push_str("\nLatest metrics:\n");
        for metric in list.metrics {
            if let Some(last) = metric.last {
                let _ = writeln!(
                    text,
                    "- {} = {} at step {}",
                    metric.name, last.value, last.step
                );
            }
        }
    }
    text
}
