//! The optional LLM judge: every `interval_secs` it shows a live run's latest metric lines to
//! the model named in `[alerts.judge]`, which may answer `ALERT: <reason>`.
//!
//! It talks through the ordinary chat machinery: one session per judged run ("judge of run
//! …"), each look a user message and its answer. So its requests are retried like chat's, its
//! answers can be read like any session, and its tokens and cost count in `reagent usage`.
//! It looks only when new lines arrived since its last look, and while its alert is open it
//! keeps looking but raises nothing new.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reagent::alert::{AlertRule, Severity};
use reagent::chat::{MessageInfo, PartKind};
use reagent::protocol::{CreateSession, SendChat};

use crate::alerts::rules::Draft;
use crate::chat::sessions as chat;
use crate::daemon::Daemon;
use crate::metrics::lock;

/// What the judge is told to do.
const SYSTEM: &str = "You watch the metrics of a machine-learning training run. Each message \
    holds its latest metric lines, one JSON object per line. If they show a problem worth \
    stopping for (divergence, NaN or infinite values, an exploding gradient, a loss that stopped \
    improving long ago), answer with one line: `ALERT: ` and the reason, in a sentence. \
    Otherwise answer `OK`.";
/// How long one answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);

/// Judges every live run, each in a task of its own, when the config names a judge model.
/// It looks for runs that went live once per judging interval (a judge's first look comes
/// one interval after its start anyway), so nothing that starts runs needs to know of it.
pub async fn watch(daemon: Arc<Daemon>) {
    let Some(model) = daemon.config.alerts.judge.model.clone() else {
        return;
    };
    let every = interval(&daemon);
    let mut judged: HashSet<String> = HashSet::new();
    loop {
        let live: Vec<String> = {
            let state = daemon.state();
            (state.runs().iter())
                .filter(|run| state.live(&run.id).is_some())
                .map(|run| run.id.clone())
                .collect()
        };
        judged.retain(|run| live.contains(run));
        for run in live {
            if judged.insert(run.clone()) {
                tokio::spawn(judge(daemon.clone(), run, model.clone()));
            }
        }
        tokio::time::sleep(every).await;
    }
}

fn interval(daemon: &Daemon) -> Duration {
    Duration::from_secs_f64(daemon.config.alerts.judge.interval_secs.max(1.0))
}

async fn judge(daemon: Arc<Daemon>, run: String, model: String) {
    let config = &daemon.config.alerts.judge;
    let every = interval(&daemon);
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
                    crate::alerts::raise(&daemon, &run, draft);
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
                agent: false,
            };
            let id = chat::create(daemon, create).map_err(|e| e.message)?.id;
            session.insert(id).clone()
        }
    };
    let send = SendChat {
        session: id.clone(),
        text: recent.join("\n"),
    };
    let answer = chat::ask(daemon, send, ANSWER_LIMIT)
        .await
        .map_err(|e| e.message)?;
    Ok(answer.as_ref().and_then(verdict))
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
