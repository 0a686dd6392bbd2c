//! Wild mode: a model pursuing a goal on its own. Each step prompts it with the goal, the
//! state of its runs and open alerts, and what happened since its last step; it acts through
//! the tools (approvals still apply, except for the tools named `--auto`), and once its turn
//! is over the loop waits for something that matters (a run it started ends, an alert on
//! one, a model becomes ready) or the timer, and goes again.
//!
//! It ends when the model calls `finish`, on any budget (checked before each step, and after
//! one so a spent budget does not wait for the timer), on `wild stop`, or on repeated tool
//! errors, with the reason recorded. Its state is in the store, so a daemon restart resumes
//! it waiting.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use reagent::agent::{PolicyMode, WildInfo, WildLimits, WildState};
use reagent::chat::{MessageInfo, PartKind, Role};
use reagent::model::ModelState;
use reagent::protocol::{CreateSession, RpcError, SendChat, StartWild, StopWild, codes};
use reagent::run::RunInfo;
use reagent::time::now_ms;

use crate::chat::sessions;
use crate::daemon::{Daemon, State};

/// Minutes between steps when nothing happens, unless `--every` says.
const DEFAULT_EVERY_MINUTES: f64 = 10.0;
/// Steps in a row whose every tool call failed that end the loop.
const MAX_ERRORS_IN_ROW: u32 = 3;
/// Runs of the loop a prompt lists (the newest).
const PROMPT_RUNS: usize = 20;

/// What the model of a wild-mode loop is told it is.
const SYSTEM: &str = "You are reagent's research agent in wild mode: you pursue a goal on \
    your own through tools that start, watch and stop training runs, sweeps and model \
    servers, and read and edit files. Each step you are told the goal, your runs, their open \
    alerts and what happened since your last step. Act, then end your turn: you are prompted \
    again when one of your runs ends, an alert is raised on one, a model becomes ready, or \
    the timer fires. When the goal is met, call `finish` with a summary.";

/// Starts a loop toward a goal, in a session given or a new one (with tools on); one loop
/// per session at a time.
pub fn start(daemon: &Arc<Daemon>, params: StartWild) -> Result<WildInfo, RpcError> {
    if params.goal.trim().is_empty() {
        return Err(RpcError::new(codes::INVALID_PARAMS, "`goal` is empty"));
    }
    let limits = limits(&params)?;
    let session = match &params.session {
        Some(query) => daemon.state().resolve_session(query)?.clone(),
        None => {
            let create = CreateSession {
                model: params.model.clone(),
                system: Some(SYSTEM.into()),
                cwd: params.cwd.clone(),
                title: Some(format!("wild: {}", params.goal.trim())),
                agent: true,
            };
            sessions::create(daemon, create)?
        }
    };
    let wild = {
        let mut state = daemon.state();
        if let Some(going) = state
            .wild(&session.id)
            .filter(|w| w.state != WildState::Ended)
        {
            return Err(RpcError::new(
                codes::INVALID_STATE,
                format!(
                    "session {} already runs a wild-mode loop ({}): `reagent wild stop` first",
                    session.label(),
                    going.goal
                ),
            ));
        }
        let mut session = session;
        session.agent.enabled = true;
        session.agent.auto.extend(params.auto.iter().cloned());
        if session.agent.mode == PolicyMode::Deny {
            session.agent.mode = PolicyMode::Ask;
        }
        let session = state.save_session(session)?;
        let now = now_ms();
        state.save_wild(WildInfo {
            session: session.id,
            goal: params.goal.trim().to_string(),
            state: WildState::Acting,
            limits,
            auto: params.auto,
            steps: 0,
            tokens: 0,
            cost_usd: 0.0,
            errors_in_row: 0,
            waiting_for: None,
            end: None,
            summary: None,
            started_at: now,
            last_step_at: now,
            ended_at: None,
        })?
    };
    tokio::spawn(drive(daemon.clone(), wild.session.clone()));
    Ok(wild)
}

/// The limits asked for, each checked.
fn limits(params: &StartWild) -> Result<WildLimits, RpcError> {
    let positive = |key: &str, value: Option<f64>| match value {
        Some(v) if !(v > 0.0 && v.is_finite()) => Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("`{key}`: {v} is not a positive number"),
        )),
        _ => Ok(value),
    };
    Ok(WildLimits {
        max_steps: params.max_steps,
        max_tokens: params.max_tokens,
        max_cost_usd: positive("max_cost_usd", params.max_cost_usd)?,
        max_hours: positive("max_hours", params.max_hours)?,
        every_minutes: positive("every_minutes", params.every_minutes)?
            .unwrap_or(DEFAULT_EVERY_MINUTES),
    })
}

/// Every loop, oldest first.
pub fn status(daemon: &Daemon) -> Vec<WildInfo> {
    daemon.state().wilds().to_vec()
}

/// Stops a loop (the one still going, when no session is named); its answer streaming now
/// is cancelled.
pub fn stop(daemon: &Daemon, stop: &StopWild) -> Result<WildInfo, RpcError> {
    let session = {
        let state = daemon.state();
        match &stop.session {
            Some(query) => state.resolve_session(query)?.id.clone(),
            None => {
                let going: Vec<&WildInfo> = (state.wilds().iter())
                    .filter(|w| w.state != WildState::Ended)
                    .collect();
                match going[..] {
                    [one] => one.session.clone(),
                    [] => {
                        return Err(RpcError::new(
                            codes::NOT_FOUND,
                            "no wild-mode loop is going",
                        ));
                    }
                    _ => {
                        return Err(RpcError::new(
                            codes::AMBIGUOUS,
                            "several wild-mode loops are going: name one with --session",
                        ));
                    }
                }
            }
        }
    };
    let ended = end(daemon, &session, "stopped", None)?;
    daemon.chat.cancel(&session);
    Ok(ended)
}

/// Records that a loop's goal is met (the `finish` tool).
pub fn finish(daemon: &Daemon, session: &str, summary: String) -> Result<WildInfo, RpcError> {
    end(daemon, session, "finished", Some(summary))
}

/// Ends a loop for `reason`; one that already ended keeps its first reason.
fn end(
    daemon: &Daemon,
    session: &str,
    reason: &str,
    summary: Option<String>,
) -> Result<WildInfo, RpcError> {
    let mut state = daemon.state();
    let Some(mut wild) = state.wild(session).cloned() else {
        return Err(RpcError::new(
            codes::NOT_FOUND,
            format!("session {session} runs no wild-mode loop"),
        ));
    };
    if wild.state == WildState::Ended {
        return Ok(wild);
    }
    wild.state = WildState::Ended;
    wild.end = Some(reason.to_string());
    wild.summary = summary;
    wild.waiting_for = None;
    wild.ended_at = Some(now_ms());
    state.save_wild(wild)
}

/// Resumes every loop that had not ended when the daemon stopped: it waits again.
pub fn resume_all(daemon: &Arc<Daemon>) {
    let going: Vec<String> = (daemon.state().wilds().iter())
        .filter(|w| w.state != WildState::Ended)
        .map(|w| w.session.clone())
        .collect();
    for session in going {
        tokio::spawn(drive(daemon.clone(), session));
    }
}

/// Changes a loop that is still going; `None` once it has ended (or is gone).
fn update(daemon: &Daemon, session: &str, change: impl FnOnce(&mut WildInfo)) -> Option<WildInfo> {
    let mut state = daemon.state();
    let mut wild = state.wild(session)?.clone();
    if wild.state == WildState::Ended {
        return None;
    }
    change(&mut wild);
    match state.save_wild(wild) {
        Ok(wild) => Some(wild),
        Err(err) => {
            tracing::error!("cannot record wild-mode loop {session}: {err}");
            None
        }
    }
}

/// The loop of one session, until it ends.
async fn drive(daemon: Arc<Daemon>, session: String) {
    // A loop resumed after a restart waits first: its last step may have just happened.
    let resumed = daemon
        .state()
        .wild(&session)
        .is_some_and(|w| w.state == WildState::Waiting);
    if resumed && !wait(&daemon, &session).await {
        return;
    }
    loop {
        if !step(&daemon, &session).await || !wait(&daemon, &session).await {
            return;
        }
    }
}

/// Which budget is spent, if any.
fn spent(wild: &WildInfo, now: i64) -> Option<String> {
    let limits = &wild.limits;
    if let Some(max) = limits.max_steps.filter(|&max| wild.steps >= max) {
        return Some(format!("step budget spent ({max} steps)"));
    }
    if let Some(max) = limits.max_tokens.filter(|&max| wild.tokens >= max) {
        return Some(format!(
            "token budget spent ({} of {max} tokens)",
            wild.tokens
        ));
    }
    if let Some(max) = limits.max_cost_usd.filter(|&max| wild.cost_usd >= max) {
        return Some(format!(
            "cost budget spent (${:.4} of ${max:.2})",
            wild.cost_usd
        ));
    }
    let hours = (now - wild.started_at) as f64 / 3_600_000.0;
    if let Some(max) = limits.max_hours.filter(|&max| hours >= max) {
        return Some(format!("time budget spent ({hours:.2} of {max} hours)"));
    }
    None
}

/// One step: budgets checked, the model prompted, its turn waited for, what it used and how
/// its tools fared recorded. False once the loop has ended.
async fn step(daemon: &Arc<Daemon>, session: &str) -> bool {
    let Some(wild) = daemon.state().wild(session).cloned() else {
        return false;
    };
    if wild.state == WildState::Ended {
        return false;
    }
    if let Some(why) = spent(&wild, now_ms()) {
        let _ = end(daemon, session, &why, None);
        return false;
    }
    let prompt = {
        let state = daemon.state();
        prompt(&state, &wild)
    };
    let started = now_ms();
    let Some(wild) = update(daemon, session, |wild| {
        wild.state = WildState::Acting;
        wild.waiting_for = None;
        wild.steps += 1;
        wild.last_step_at = started;
    }) else {
        return false;
    };
    let send = SendChat {
        session: session.to_string(),
        text: prompt,
    };
    if let Err(err) = sessions::send(daemon, send) {
        let _ = end(
            daemon,
            session,
            &format!("cannot prompt the model: {}", err.message),
            None,
        );
        return false;
    }
    daemon.chat.idle(session).await;
    let messages = daemon.state().messages(session).unwrap_or_default();
    let (tokens, cost) = used(&messages, wild.started_at);
    let failing = all_tools_failed(&messages, started);
    let failed_answer = (messages.iter().rev())
        .find(|m| m.role == Role::Assistant && m.created_at >= started)
        .and_then(|m| m.error.clone());
    let Some(wild) = update(daemon, session, |wild| {
        wild.tokens = tokens;
        wild.cost_usd = cost;
        wild.errors_in_row = if failing { wild.errors_in_row + 1 } else { 0 };
    }) else {
        return false;
    };
    let why = if let Some(error) = failed_answer {
        Some(format!("the model failed: {error}"))
    } else if wild.errors_in_row >= MAX_ERRORS_IN_ROW {
        Some(format!(
            "repeated tool errors ({} steps in a row)",
            wild.errors_in_row
        ))
    } else {
        spent(&wild, now_ms())
    };
    match why {
        Some(why) => {
            let _ = end(daemon, session, &why, None);
            false
        }
        None => true,
    }
}

/// Tokens and dollars the session's answers used since the loop started (copies made by a
/// fork were paid for where they were made).
fn used(messages: &[MessageInfo], since: i64) -> (u64, f64) {
    (messages.iter())
        .filter(|m| m.role == Role::Assistant && m.created_at >= since && !m.usage.copied)
        .fold((0, 0.0), |(tokens, cost), m| {
            let usage = &m.usage;
            (
                tokens + usage.input.unwrap_or(0) + usage.output.unwrap_or(0),
                cost + usage.cost_usd.unwrap_or(0.0),
            )
        })
}

/// Whether the step's answers called tools and every call failed.
fn all_tools_failed(messages: &[MessageInfo], since: i64) -> bool {
    let results: Vec<bool> = (messages.iter())
        .filter(|m| m.created_at >= since)
        .flat_map(|m| m.parts.iter())
        .filter(|p| p.kind == PartKind::ToolResult)
        .map(|p| p.error)
        .collect();
    !results.is_empty() && results.iter().all(|&error| error)
}

/// What the loop waits for, and a fingerprint of it: the count of its runs that ended,
/// of alerts on its runs, and of ready models. A change in any wakes it.
fn watched(state: &State, session: &str) -> (usize, usize, usize) {
    let mine: Vec<&RunInfo> = (state.runs().iter())
        .filter(|r| r.agent_session.as_deref() == Some(session))
        .collect();
    let ended = mine.iter().filter(|r| r.status.is_terminal()).count();
    let alerts = (state.alerts().iter())
        .filter(|a| mine.iter().any(|r| r.id == a.run))
        .count();
    let ready = (state.models.all().iter())
        .filter(|m| m.state == ModelState::Ready)
        .count();
    (ended, alerts, ready)
}

/// Waits for something that matters or the timer. False once the loop has ended.
async fn wait(daemon: &Arc<Daemon>, session: &str) -> bool {
    let (every, mut changes, seen) = {
        let state = daemon.state();
        let Some(wild) = state.wild(session) else {
            return false;
        };
        let every = Duration::from_secs_f64(wild.limits.every_minutes * 60.0);
        (every, state.bus.watch_changes(), watched(&state, session))
    };
    let waiting_for = format!(
        "a run of its to end, an alert, a model to become ready, or {} min",
        format_minutes(every)
    );
    if update(daemon, session, |wild| {
        wild.state = WildState::Waiting;
        wild.waiting_for = Some(waiting_for);
    })
    .is_none()
    {
        return false;
    }
    let timer = tokio::time::sleep(every);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            () = &mut timer => return still_going(daemon, session),
            changed = changes.changed() => {
                if changed.is_err() {
                    return false;
                }
                let state = daemon.state();
                match state.wild(session) {
                    Some(wild) if wild.state != WildState::Ended => {}
                    _ => return false,
                }
                if watched(&state, session) != seen {
                    return true;
                }
            }
        }
    }
}

fn still_going(daemon: &Daemon, session: &str) -> bool {
    (daemon.state().wild(session)).is_some_and(|w| w.state != WildState::Ended)
}

/// `10`, `0.5`: minutes as a person writes them.
fn format_minutes(every: Duration) -> String {
    let minutes = every.as_secs_f64() / 60.0;
    if minutes.fract() == 0.0 {
        format!("{minutes:.0}")
    } else {
        format!("{minutes:.2}")
    }
}

/// The step's prompt: the goal, the budget, the loop's runs and their open alerts, what
/// happened since the last step, and what to do.
fn prompt(state: &State, wild: &WildInfo) -> String {
    let mut text = format!("Goal: {}\n\n{}\n", wild.goal, wild.status_line());
    let mine: Vec<&RunInfo> = (state.runs().iter())
        .filter(|r| r.agent_session.as_deref() == Some(wild.session.as_str()))
        .collect();
    let _ = writeln!(text, "\nYour runs ({}):", mine.len());
    if mine.is_empty() {
        text.push_str("- none yet\n");
    }
    for run in mine.iter().rev().take(PROMPT_RUNS).rev() {
        let exit = run
            .exit_code
            .map(|c| format!(" exit {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "- {} {} {}{exit}: $ {}",
            run.id,
            run.name.as_deref().unwrap_or("-"),
            run.status,
            run.command_line()
        );
    }
    text.push_str("\nOpen alerts on your runs:\n");
    let open: Vec<_> = (state.alerts().iter())
        .filter(|a| a.status == reagent::alert::AlertStatus::Open)
        .filter(|a| mine.iter().any(|r| r.id == a.run))
        .collect();
    if open.is_empty() {
        text.push_str("- none\n");
    }
    for alert in open {
        let choices: Vec<String> = alert.choices.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            text,
            "- alert {} on run {}: {} (answer with alert_answer: {})",
            alert.id,
            alert.run,
            alert.message,
            choices.join(", ")
        );
    }
    if wild.steps > 0 {
        text.push_str("\nSince your last step:\n");
        let since = wild.last_step_at;
        let mut news = 0;
        for run in &mine {
            if run.ended_at.is_some_and(|at| at >= since) {
                let _ = writeln!(text, "- run {} ended {}", run.label(), run.status);
                news += 1;
            }
        }
        for alert in state.alerts() {
            if alert.created_at >= since && mine.iter().any(|r| r.id == alert.run) {
                let _ = writeln!(text, "- alert {} raised: {}", alert.id, alert.message);
                news += 1;
            }
        }
        for model in state.models.all() {
            if model.state == ModelState::Ready && model.ready_at.is_some_and(|at| at >= since) {
                let _ = writeln!(text, "- model {} became ready", model.name);
                news += 1;
            }
        }
        if news == 0 {
            text.push_str("- nothing (the timer fired)\n");
        }
    }
    text.push_str(
        "\nAct toward the goal with your tools, then end your turn. Call `finish` with a \
         summary once the goal is met.",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(limits: WildLimits) -> WildInfo {
        WildInfo {
            session: "s".into(),
            goal: "g".into(),
            state: WildState::Acting,
            limits,
            auto: Vec::new(),
            steps: 2,
            tokens: 500,
            cost_usd: 0.02,
            errors_in_row: 0,
            waiting_for: None,
            end: None,
            summary: None,
            started_at: 0,
            last_step_at: 0,
            ended_at: None,
        }
    }

    #[test]
    fn each_budget_ends_the_loop_naming_itself() {
        let none = WildLimits::default();
        assert_eq!(spent(&wild(none.clone()), 1000), None);
        let steps = WildLimits {
            max_steps: Some(2),
            ..none.clone()
        };
        assert!(spent(&wild(steps), 0).unwrap().starts_with("step budget"));
        let tokens = WildLimits {
            max_tokens: Some(400),
            ..none.clone()
        };
        assert!(spent(&wild(tokens), 0).unwrap().starts_with("token budget"));
        let cost = WildLimits {
            max_cost_usd: Some(0.01),
            ..none.clone()
        };
        assert!(spent(&wild(cost), 0).unwrap().starts_with("cost budget"));
        let hours = WildLimits {
            max_hours: Some(1.0),
            ..none
        };
        assert_eq!(spent(&wild(hours.clone()), 3_599_999), None);
        assert!(
            spent(&wild(hours), 3_600_000)
                .unwrap()
                .starts_with("time budget")
        );
    }

    #[test]
    fn limits_must_be_positive() {
        let params = StartWild {
            goal: "g".into(),
            max_hours: Some(0.0),
            ..StartWild::default()
        };
        assert!(limits(&params).unwrap_err().message.contains("`max_hours`"));
        let every = StartWild {
            goal: "g".into(),
            ..StartWild::default()
        };
        assert_eq!(limits(&every).unwrap().every_minutes, DEFAULT_EVERY_MINUTES);
    }
}
