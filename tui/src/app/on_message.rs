//! What the daemon tells the cockpit changes the state and asks for effects, as keys do
//! ([`super::update::on_key`]): a pure function of the [`App`] and one [`Incoming`] message,
//! so every reaction (a resync re-reading the open session, a gap re-attaching the pane, an
//! answer refreshing the usage) is tested without a daemon.

use reagent::agent::ApprovalState;
use reagent::chat::{MessageStatus, Role};
use reagent::protocol::{
    EventKind, ListAlerts, ListApprovals, ListProviders, ListSessions, Notification, UsageQuery,
    WildStatus,
};

use super::link::{Incoming, Replied};
use super::state::{App, Focus, Link, Mode, View};
use super::update::{Effect, fit_typed_run, history};
use super::watch::REQUERY_MS;
use crate::sanitize;

/// Applies one message from the link; returns what it asks the daemon for.
pub fn on_message(app: &mut App, message: Incoming) -> Vec<Effect> {
    match message {
        Incoming::Synced(reply) => {
            app.synced(reply);
            // Approvals and wild loops are not in the snapshot, and the events that changed
            // them may be long gone: they are listed afresh, like sessions and alerts.
            let mut effects = vec![
                Effect::ask(ListSessions {}),
                Effect::ask(ListAlerts::default()),
                Effect::ask(ListApprovals::default()),
                Effect::ask(WildStatus {}),
            ];
            effects.extend(refresh_chat(app));
            effects.extend(reattach_pane(app));
            effects
        }
        Incoming::Note(note) => on_note(app, note),
        Incoming::Down {
            reason,
            retry_in_ms,
        } => {
            app.link = Link::Disconnected {
                reason,
                retry_in_ms,
            };
            Vec::new()
        }
        Incoming::Replied(replied) => on_reply(app, replied),
    }
}

/// A notification: an event, a run's output, a resync, a shutdown.
fn on_note(app: &mut App, note: Notification) -> Vec<Effect> {
    match note {
        Notification::Event(event) => {
            let answered = matches!(&event.kind, EventKind::Message { message }
                if message.role == Role::Assistant && message.status != MessageStatus::Streaming);
            // A model that starts or stops serving is a `local/…` model the open model
            // picker must list, or no longer list.
            let local_changed = matches!(&event.kind, EventKind::Model { model }
                if app.models.serving_changes(model));
            // A loop starting or ending adds or removes a row of the wild bar: the run typed
            // into follows the pane's new size.
            let wild = matches!(&event.kind, EventKind::Wild { .. });
            let mut effects = Vec::new();
            if !app.apply_event(event) {
                effects.extend(refresh_chat(app));
            }
            if wild {
                effects.extend(fit_typed_run(app));
            }
            if answered && app.view == View::Chat {
                effects.push(Effect::ask(UsageQuery {}));
            }
            if local_changed && matches!(app.mode, Mode::Models(_)) {
                effects.push(Effect::ask(ListProviders { check: false }));
            }
            effects.extend(requery_charts(app));
            effects
        }
        Notification::Output(output) => {
            if app.output(output) {
                return Vec::new();
            }
            reattach_pane(app).into_iter().collect()
        }
        Notification::Resync(_) => {
            let mut effects: Vec<Effect> = refresh_chat(app).into_iter().collect();
            effects.extend(reattach_pane(app));
            effects
        }
        Notification::Shutdown(_) => Vec::new(),
    }
}

/// A reply to one of this client's requests.
fn on_reply(app: &mut App, replied: Replied) -> Vec<Effect> {
    match replied {
        Replied::Attached(attached, history) => {
            if app.attached(*attached, &history) {
                return Vec::new();
            }
            return reattach_pane(app).into_iter().collect();
        }
        Replied::Started(run) => {
            app.say(
                format!("started {} ({})", run.label(), run.command_line()),
                false,
            );
            app.started(*run);
        }
        Replied::Models(models) => app.chat.models = models,
        Replied::Usage(report) => app.chat.usage = Some(report),
        Replied::Sessions(sessions) => app.chat.set_sessions(sessions),
        Replied::SessionCreated(session) => {
            let id = session.id.clone();
            app.say(
                format!("new session {} on {}", session.label(), session.model),
                false,
            );
            let _ = app.chat.apply(&EventKind::Session { session });
            app.chat.selected = app
                .chat
                .sessions
                .iter()
                .position(|s| s.id == id)
                .unwrap_or(0);
            app.chat.open(&id);
            // Write in the side panel when the session was started there.
            if app.focus != Focus::Side {
                app.focus = Focus::Pane;
            }
            app.mode = Mode::Compose;
            return vec![history(id)];
        }
        Replied::History(session, messages) => {
            if !app.chat.history(&session, messages) {
                return refresh_chat(app).into_iter().collect();
            }
        }
        Replied::Metrics(reply) => {
            app.charts.data.insert(reply.run.clone(), *reply);
        }
        Replied::Recipes(recipes) => app.models.listed(recipes),
        Replied::Gateway(requests) => app.gateway.requests = Some(requests),
        Replied::Alerts(alerts) => {
            for alert in alerts {
                app.alerts.upsert(alert);
            }
        }
        Replied::Answered(reply) => {
            let choice = reply.alert.response.map_or("answered", |c| c.as_str());
            app.say(format!("alert {}: {choice}", reply.alert.id), false);
            app.alerts.upsert(reply.alert);
            if let Some(session) = reply.session {
                // `chat` opened a session about the alert: show it, ready to write.
                app.view = View::Chat;
                app.chat.open(&session);
                app.focus = Focus::Pane;
                return vec![Effect::ask(ListSessions {}), history(session)];
            }
        }
        Replied::Approvals(approvals) => app.agent.listed(approvals),
        Replied::ApprovalAnswered(approval) => {
            let verb = match (approval.state, approval.always) {
                (ApprovalState::Approved, true) => "approved (always in this session)",
                (ApprovalState::Approved, false) => "approved",
                (ApprovalState::Denied, _) => "denied",
                (ApprovalState::Expired, _) => "expired before the answer",
                (ApprovalState::Pending, _) => "still waiting",
            };
            let tool = sanitize::line(&approval.tool).into_owned();
            app.say(format!("{tool}: {verb}"), false);
            app.agent.approval(*approval);
        }
        Replied::ApprovalFailed(id, error) => {
            if app.agent.answering.as_deref() == Some(id.as_str()) {
                app.agent.answering = None;
            }
            app.say(error, true);
        }
        Replied::WildLoops(loops) => {
            app.agent.wild_listed(loops);
            return fit_typed_run(app).into_iter().collect();
        }
        Replied::WildStarted(wild, fresh) => {
            let session = wild.session.clone();
            let goal = sanitize::line(&wild.goal).into_owned();
            let _ = app.agent.wild(*wild);
            app.say(format!("wild mode in {session}: {goal}"), false);
            let mut effects: Vec<Effect> = fit_typed_run(app).into_iter().collect();
            if fresh && app.chat.open.is_none() {
                // Started in a session of its own: it is the session to watch.
                app.chat.open(&session);
                effects.extend([Effect::ask(ListSessions {}), history(session)]);
            }
            return effects;
        }
        Replied::WildStopped(wild) => {
            if let Some((notice, failed)) = app.agent.wild(*wild) {
                app.say(notice, failed);
            }
            return fit_typed_run(app).into_iter().collect();
        }
        Replied::Done(message) => {
            if !message.is_empty() {
                app.say(message, false);
            }
        }
        Replied::Failed(error) => app.say(error, true),
    }
    Vec::new()
}

/// Asks for the open chat session's history again (after a gap or a resync), keeping the
/// place the user scrolled to and whether the system prompt was unfolded.
fn refresh_chat(app: &mut App) -> Option<Effect> {
    let open = app.chat.open.take()?;
    app.chat.open(&open.id);
    if let Some(fresh) = app.chat.open.as_mut() {
        fresh.scroll = open.scroll;
        fresh.system_unfolded = open.system_unfolded;
        fresh.tools_unfolded = open.tools_unfolded;
    }
    Some(history(open.id))
}

/// Attaches the pane afresh when its screen missed bytes (or the link resynced).
fn reattach_pane(app: &mut App) -> Option<Effect> {
    let run = app.pane.as_ref()?.run.clone();
    app.reset_pane();
    Some(Effect::Attach(run))
}

/// Re-asks for the charts when a charted run has new points, at most every [`REQUERY_MS`]
/// of `app.now` (the run loop's clock tick catches what the limit held back).
pub fn requery_charts(app: &mut App) -> Vec<Effect> {
    if super::side::charts_shown(app)
        && app.charts.stale
        && app.now - app.charts.queried_at >= REQUERY_MS
    {
        super::watch_keys::chart_queries(app)
    } else {
        Vec::new()
    }
}

#[cfg(test)]
#[path = "on_message_tests.rs"]
mod tests;
