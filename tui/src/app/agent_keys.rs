//! Keys and palette commands of the research agent: answering the approval box, turning a
//! session's tools on and off, starting and stopping wild mode.
//!
//! **Who gets `y`, `n` and `a`.** While an approval is pending its box is on screen, and in
//! the cockpit's normal mode (whatever the view or the focused panel) `y` approves it, `n`
//! denies it, `a` approves it and lets the tool run without asking for the rest of the
//! session, and `J`/`K` scroll a long action. The box shadows those keys' usual meanings
//! (new run, alerts, copy) until it is answered, as a confirmation would. While text is being
//! typed (a chat message, the palette, a search, keys going to a job) the box never takes a
//! key: a message that starts with "y" must not approve a command. There, Alt-y, Alt-n and
//! Alt-a answer from the chat input, and Esc (or the prefix key, for a job) gets back to
//! the box's keys; `:approve [always]` and `:deny [REASON]` work from the palette.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::protocol::{AnswerApproval, SetSessionAgent, StartWild, StopWild};

use super::geometry::approval_box;
use super::state::App;
use super::update::Effect;

/// The approval box's key in normal mode, if it takes this one: `None` leaves the key to the
/// view.
pub fn box_key(app: &mut App, key: &KeyEvent) -> Option<Vec<Effect>> {
    app.agent.pending()?;
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    if !matches!(key.code, KeyCode::Char('y' | 'n' | 'a' | 'J' | 'K')) {
        return None;
    }
    app.flash = None;
    Some(match key.code {
        KeyCode::Char('y') => answer(app, true, false, None),
        KeyCode::Char('n') => answer(app, false, false, None),
        KeyCode::Char('a') => answer(app, true, true, None),
        KeyCode::Char('J') => {
            let most = approval_box(app).map_or(0, |b| b.max_scroll());
            app.agent.scroll = (app.agent.scroll + 1).min(most);
            Vec::new()
        }
        KeyCode::Char('K') => {
            app.agent.scroll = app.agent.scroll.saturating_sub(1);
            Vec::new()
        }
        _ => return None,
    })
}

/// Alt-y, Alt-n, Alt-a while writing a chat message: the box's answers without leaving the
/// input. `None` when the key is not one of them or nothing waits.
pub fn compose_key(app: &mut App, key: &KeyEvent) -> Option<Vec<Effect>> {
    app.agent.pending()?;
    if !key.modifiers.contains(KeyModifiers::ALT) || key.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    match key.code {
        KeyCode::Char('y') => Some(answer(app, true, false, None)),
        KeyCode::Char('n') => Some(answer(app, false, false, None)),
        KeyCode::Char('a') => Some(answer(app, true, true, None)),
        _ => None,
    }
}

/// Answers the approval the box shows. The box stays until the settled approval comes back,
/// so the answer of whichever client was first is the one everybody sees; meanwhile a second
/// answer is not sent.
pub fn answer(app: &mut App, approve: bool, always: bool, reason: Option<String>) -> Vec<Effect> {
    let Some(approval) = app.agent.pending() else {
        app.say("no approval is waiting", true);
        return Vec::new();
    };
    let id = approval.id.clone();
    if app.agent.answering.as_deref() == Some(id.as_str()) {
        app.say("already answered; waiting for the daemon", false);
        return Vec::new();
    }
    app.agent.answering = Some(id.clone());
    vec![Effect::ask(AnswerApproval {
        id,
        approve,
        always: approve && always,
        reason: reason.filter(|_| !approve),
    })]
}

/// The session agent commands act on: the open one.
fn open_session(app: &mut App, command: &str) -> Option<String> {
    let id = app.chat.open.as_ref().map(|open| open.id.clone());
    if id.is_none() {
        app.say(format!("`{command}` needs an open chat session"), true);
    }
    id
}

/// Turns the open session's tools on or off (`None`: the other way round from now).
pub fn set_agent(app: &mut App, enabled: Option<bool>) -> Vec<Effect> {
    let Some(session) = open_session(app, "agent") else {
        return Vec::new();
    };
    let now = (app.chat.sessions.iter())
        .find(|s| s.id == session)
        .is_some_and(|s| s.agent.enabled);
    vec![Effect::ask(SetSessionAgent {
        session,
        enabled: Some(enabled.unwrap_or(!now)),
        ..SetSessionAgent::default()
    })]
}

/// `:agent on|off`.
pub fn agent_command(app: &mut App, rest: &str) -> Vec<Effect> {
    match rest {
        "on" => set_agent(app, Some(true)),
        "off" => set_agent(app, Some(false)),
        "" => set_agent(app, None),
        other => {
            app.say(format!("`agent` takes on or off, not `{other}`"), true);
            Vec::new()
        }
    }
}

/// `:wild GOAL…` starts a loop in the open session (or a session of its own when none is
/// open); `:wild stop [SESSION]` stops the open session's loop, or the one going.
pub fn wild_command(app: &mut App, rest: &str) -> Vec<Effect> {
    let (word, after) = rest
        .split_once(' ')
        .map_or((rest, ""), |(w, r)| (w, r.trim()));
    if word == "stop" {
        let open = app.chat.open.as_ref().map(|open| open.id.as_str());
        let session = match after {
            "" => open
                .filter(|id| app.agent.live_in(id).is_some())
                .map(String::from),
            named => Some(named.to_string()),
        };
        return vec![Effect::ask(StopWild { session })];
    }
    if rest.is_empty() {
        app.say(
            "`wild` needs a goal, e.g. `wild get val loss under 2.1`; `wild stop` stops it",
            true,
        );
        return Vec::new();
    }
    let session = app.chat.open.as_ref().map(|open| open.id.clone());
    vec![Effect::ask(StartWild {
        goal: rest.to_string(),
        session,
        ..StartWild::default()
    })]
}

/// `:approve [always]`.
pub fn approve_command(app: &mut App, rest: &str) -> Vec<Effect> {
    match rest {
        "" => answer(app, true, false, None),
        "always" => answer(app, true, true, None),
        other => {
            app.say(
                format!("`approve` takes `always` or nothing, not `{other}`"),
                true,
            );
            Vec::new()
        }
    }
}

/// `:deny [REASON]`: the reason goes to the model.
pub fn deny_command(app: &mut App, rest: &str) -> Vec<Effect> {
    let reason = (!rest.is_empty()).then(|| rest.to_string());
    answer(app, false, false, reason)
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
