//! Reading alerts and answering them: the one `respond` that the protocol, the cockpit and
//! (through them) every client use. `stop` stops the run through the runs service, `chat`
//! opens a session through the chat service.

use std::sync::Arc;

use reagent::alert::{AlertInfo, AlertStatus, Choice};
use reagent::protocol::{AlertResponse, CreateSession, RpcError, codes};
use reagent::run::RunInfo;

use crate::daemon::Daemon;

/// Recent metric lines a chat about an alert is shown.
const METRIC_LINES: usize = 20;

/// Answers an open alert: `stop` stops its run, `chat` opens a session about it, and every
/// answer closes it and re-arms its rule.
pub fn respond(daemon: &Arc<Daemon>, id: &str, choice: Choice) -> Result<AlertResponse, RpcError> {
    let (alert, run) = {
        let state = daemon.state();
        let alert = state.resolve_alert(id)?.clone();
        let run = state.run(&alert.run).cloned();
        (alert, run)
    };
    if alert.status != AlertStatus::Open {
        let message = format!("alert {} was already answered", alert.id);
        return Err(RpcError::new(codes::INVALID_STATE, message));
    }
    if !alert.choices.contains(&choice) {
        let offered: Vec<&str> = alert.choices.iter().map(|c| c.as_str()).collect();
        let message = format!(
            "`choice`: alert {} takes {}, not {}",
            alert.id,
            offered.join(", "),
            choice
        );
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    let Some(run) = run else {
        return Err(RpcError::new(
            codes::NOT_FOUND,
            format!("no run `{}`", alert.run),
        ));
    };
    let session = match choice {
        Choice::Ignore => None,
        Choice::Stop => {
            let why = format!("stopped from alert {} before it started", alert.id);
            crate::runs::control::stop(daemon, &run.id, None, &why)?;
            None
        }
        Choice::Chat => Some(open_chat(daemon, &alert, &run)?),
    };
    let alert = super::answer(daemon, alert, choice, session.clone())?;
    Ok(AlertResponse { alert, session })
}

/// A chat session whose system prompt holds the alert, the run's command, what its terminal
/// shows last and its recent metrics.
fn open_chat(daemon: &Daemon, alert: &AlertInfo, run: &RunInfo) -> Result<String, RpcError> {
    // The metrics around the alert's step when it has one: the newest lines may be long past.
    let (which, metrics) = match daemon.metrics.get(daemon, &run.id) {
        Ok(Some(metrics)) => {
            let metrics = crate::metrics::lock(&metrics);
            match alert.step {
                Some(step) => (
                    format!("Its metrics around step {step}"),
                    metrics.lines_around(step, METRIC_LINES / 2),
                ),
                None => (
                    "Its latest metrics".to_string(),
                    metrics.recent_lines(METRIC_LINES),
                ),
            }
        }
        _ => ("Its latest metrics".to_string(), Vec::new()),
    };
    let system = format!(
        "You help a person who watches a machine-learning run. An alert was raised on it.\n\n\
         Alert ({severity}, rule {rule}): {message}\n\
         Run {label}, {status}, in {cwd}\n$ {command}\n\n\
         Its terminal shows last:\n```\n{log}\n```\n\n\
         {which} (JSON lines):\n```\n{metrics}\n```",
        severity = alert.severity,
        rule = alert.rule,
        message = alert.message,
        label = run.label(),
        status = run.status,
        cwd = run.cwd.display(),
        command = run.command_line(),
        log = crate::runs::control::screen_text(run, crate::runs::control::SCREEN_ROWS),
        metrics = metrics.join("\n"),
    );
    let create = CreateSession {
        model: None,
        system: Some(system),
        cwd: Some(run.cwd.clone()),
        title: Some(format!("alert {} on {}", alert.id, run.label())),
        agent: false,
    };
    Ok(crate::chat::sessions::create(daemon, create)?.id)
}
