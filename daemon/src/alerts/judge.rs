//! The optional LLM judge: every `interval_secs` it shows a live run's latest metric lines to
//! the model named in `[alerts.judge]`, which may answer `ALERT: <reason>`.
//!
//! It talks through the ordinary chat machinery: one session per judged run ("judge of run
//! …"), each look a user message and its answer. So its requests are retried like chat's, its
//! answers can be read like any session, and its tokens and cost count in `reagent usage`.
//! It looks only when new lines arrived since its last look, and while its alert is open it
//! keeps looking but raises nothing new.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reagent::alert::{AlertRule, Severity};
use reagent::chat::{MessageInfo, PartKind};
use reagent::protocol::{CreateSession, SendChat};

use super::rules::Draft;
use crate::handlers::chat;
use crate::metrics::lock;
use crate::state::Daemon;

/// What the judge is told to do.
const SYSTEM: &str = "You watch the metrics of a machine-learning training run. Each message \
    holds its latest metric lines, one JSON object per line. If they show a problem worth \
    stopping for (divergence, NaN or infinite values, an exploding gradient, a loss that stopped \
    improving long ago), answer with one line: `ALERT: ` and the reason, in a sentence. \
    Otherwise answer `OK`.";
/// How long one answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);
/// How often an answer's end is checked for.
const ANSWER_POLL: Duration = Duration::from_millis(200);

/// Starts judging a live run, when the config names a judge model.
pub fn start(daemon: &Arc<Daemon>, run: &str) {
    if let Some(model) = daemon.config.alerts.judge.model.clone() {
        tokio::spawn(judge(daemon.clone(), run.to_string(), model));
    }
}

async fn judge(daemon: Arc<Daemon>, run: String, model: String) {
    let config = &daemon.config.alerts.judge;
    let every = Duration::from_secs_f64(config.interval_secs.max(1.0));
    let mut session = None;
    let mut seen = 0;
    loop {
        tokio::time::sleep(every).await;
        if daemon.state().live(&run).is_none() {
            return;
        }
        let Ok(Some(metrics)) = daemon.metrics.get(&daemon, &run) else {
            return;
        };
        let (lines, recent) = {
            let metrics = lock(&metrics);
            (metrics.record.lines, metrics.recent_lines(config.lines))
        };
        if lines == seen || recent.is_empty() {
            continue;
        }
        seen = lines;
        match look(&daemon, &run, &model, &mut session, &recent).await {
            Ok(Some(reason)) => {
                if lock(&metrics).engine.claim(AlertRule::Judge, None) {
                    let draft = Draft {
                        rule: AlertRule::Judge,
                        subject: None,
                        severity: Severity::Warning,
                        message: format!("the judge ({model}) says: {reason}"),
                        step: None,
                    };
                    super::raise(&daemon, &run, draft);
                }
            }
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(run = %run, "the judge stops: {why}");
                return;
            }
        }
    }
}

/// One look: sends the lines, waits for the answer, returns the reason it gave, if any.
async fn look(
    daemon: &Arc<Daemon>,
    run: &str,
    model: &str,
    session: &mut Option<String>,
    recent: &[String],
) -> Result<Option<String>, String> {
    let id = match session {
        Some(id) => id.clone(),
        None => {
            let create = CreateSession {
                model: Some(model.to_string()),
                system: Some(SYSTEM.to_string()),
                cwd: None,
                title: Some(format!("judge of run {run}")),
            };
            let id = chat::create(daemon, create).map_err(|e| e.message)?.id;
            session.insert(id).clone()
        }
    };
    let send = SendChat {
        session: id.clone(),
        text: recent.join("\n"),
    };
    let answer = chat::send(daemon, send).map_err(|e| e.message)?;
    let started = Instant::now();
    loop {
        tokio::time::sleep(ANSWER_POLL).await;
        let ended = {
            let state = daemon.state();
            if state.streaming(&answer.id).is_some() {
                None
            } else {
                let messages = state.messages(&id).map_err(|e| format!("{e:#}"))?;
                messages.into_iter().find(|m| m.id == answer.id)
            }
        };
        if let Some(message) = ended {
            return Ok(verdict(&message));
        }
        if started.elapsed() > ANSWER_LIMIT {
            daemon.chat.cancel(&id);
            return Ok(None);
        }
    }
}

/// The reason after `ALERT:` on any line of the answer's text, if there is one.
fn verdict(message: &MessageInfo) -> Option<String> {
    let text: String = (message.parts.iter())
        .filter(|part| part.kind == PartKind::Text)
        .map(|part| part.text.as_str())
        .collect();
    text.lines().find_map(|line| {
        let line = line.trim().trim_start_matches(['*', '`']);
        let head = line.get(..6)?;
        if !head.eq_ignore_ascii_case("alert:") {
            return None;
        }
        let reason = line[6..].trim_matches(|c: char| c == '*' || c == '`' || c.is_whitespace());
        Some(if reason.is_empty() {
            "no reason given".to_string()
        } else {
            reason.to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reagent::chat::{MessageStatus, MessageUsage, Part, Role};

    fn answer(text: &str) -> MessageInfo {
        MessageInfo {
            id: "m".into(),
            session: "s".into(),
            role: Role::Assistant,
            status: MessageStatus::Complete,
            parts: vec![Part::text(text.to_string())],
            error: None,
            usage: MessageUsage::default(),
            created_at: 0,
        }
    }

    #[test]
    fn only_an_alert_line_raises_an_alert() {
        assert_eq!(verdict(&answer("OK")), None);
        assert_eq!(verdict(&answer("All fine, no alert: none")), None);
        assert_eq!(
            verdict(&answer("Looking at it…\nALERT: loss is diverging")).as_deref(),
            Some("loss is diverging")
        );
        assert_eq!(
            verdict(&answer("**Alert:** grad norm exploded**")).as_deref(),
            Some("grad norm exploded")
        );
        assert_eq!(
            verdict(&answer("ALERT:")).as_deref(),
            Some("no reason given")
        );
    }
}
