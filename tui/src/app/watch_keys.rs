//! Keys of the charts and alerts views. Their own keys come first; the cockpit's moves,
//! view switches, help, palette and quit work as everywhere else.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::alert::{AlertStatus, Choice};

use super::keys::{self, Action};
use super::state::{App, Confirm, Focus, Mode};
use super::update::{Effect, act};
use super::watch::{SMOOTHING, ZOOMS};

/// Cockpit actions that make sense in these views (not opening or stopping the pane's run).
fn shared(action: Action) -> bool {
    !matches!(
        action,
        Action::Open | Action::Detach | Action::Stop | Action::FocusNext | Action::FocusPrev
    )
}

/// A key in the charts view: chart settings, marking runs, then the shared actions.
pub fn charts_key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    app.flash = None;
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return Vec::new();
    }
    let charts = &mut app.charts;
    let zooms = ZOOMS.len();
    match key.code {
        KeyCode::Char('l') => charts.log = !charts.log,
        KeyCode::Char('s') => charts.smoothing = (charts.smoothing + 1).min(SMOOTHING.len() - 1),
        KeyCode::Char('S') => charts.smoothing = charts.smoothing.saturating_sub(1),
        KeyCode::Char(']') => charts.metric = charts.metric.wrapping_add(1),
        KeyCode::Char('[') => charts.metric = charts.metric.wrapping_sub(1),
        KeyCode::Char('z') => {
            charts.zoom = (charts.zoom + 1) % zooms;
            return chart_queries(app);
        }
        KeyCode::Char('+') => {
            charts.zoom = (charts.zoom + 1).min(zooms - 1);
            return chart_queries(app);
        }
        KeyCode::Char('-') => {
            charts.zoom = charts.zoom.saturating_sub(1);
            return chart_queries(app);
        }
        KeyCode::Char(' ') => {
            if let Some(run) = app.selected_run().map(|r| r.id.clone()) {
                app.charts.toggle_mark(&run);
                return chart_queries(app);
            }
        }
        _ => {
            let Some(action) = keys::action_for(key).filter(|a| shared(*a)) else {
                return Vec::new();
            };
            let before = app.selected;
            let mut effects = act(app, action);
            if app.selected != before && app.view == super::state::View::Charts {
                effects.extend(chart_queries(app));
            }
            return effects;
        }
    }
    Vec::new()
}

/// Asks for the charted runs' series (the selected run and the marked ones), wide enough for
/// braille (two dots per column) across the screen.
pub fn chart_queries(app: &mut App) -> Vec<Effect> {
    let mut runs: Vec<String> = app
        .selected_run()
        .map(|r| r.id.clone())
        .into_iter()
        .collect();
    for id in &app.charts.marked {
        if !runs.contains(id) {
            runs.push(id.clone());
        }
    }
    app.charts.stale = false;
    app.charts.queried_at = app.now;
    let window = app.charts.window();
    let columns = usize::from(app.size.0.max(20)) * 2;
    runs.into_iter()
        .map(|run| Effect::QueryMetrics {
            run,
            window,
            columns,
        })
        .collect()
}

/// A key in the alerts view: move, answer, details, then the shared actions.
pub fn alerts_key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    app.flash = None;
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return Vec::new();
    }
    let alerts = &mut app.alerts;
    let last = alerts.alerts.len().saturating_sub(1);
    let action = keys::action_for(key);
    match (key.code, action) {
        (_, Some(Action::Down)) => alerts.selected = (alerts.selected + 1).min(last),
        (_, Some(Action::Up)) => alerts.selected = alerts.selected.saturating_sub(1),
        (_, Some(Action::Top)) => alerts.selected = 0,
        (_, Some(Action::Bottom)) => alerts.selected = last,
        (KeyCode::Enter, _) => alerts.detail = !alerts.detail,
        (KeyCode::Char('i'), _) => return answer(app, Choice::Ignore),
        (KeyCode::Char('x'), _) => return answer(app, Choice::Stop),
        (KeyCode::Char('c'), _) => return answer(app, Choice::Chat),
        (_, Some(action)) if shared(action) => return act(app, action),
        _ => {}
    }
    Vec::new()
}

/// Answers the highlighted alert; stopping a run asks first.
fn answer(app: &mut App, choice: Choice) -> Vec<Effect> {
    let Some(alert) = app.alerts.current() else {
        return Vec::new();
    };
    if alert.status != AlertStatus::Open {
        app.say("this alert is already answered", true);
        return Vec::new();
    }
    if !alert.choices.contains(&choice) {
        app.say(format!("this alert cannot be answered `{choice}`"), true);
        return Vec::new();
    }
    let id = alert.id.clone();
    if choice == Choice::Stop {
        let label = app
            .runs
            .iter()
            .find(|r| r.id == alert.run)
            .map_or(alert.run.clone(), |r| r.label().to_string());
        app.mode = Mode::Confirm(Confirm::StopForAlert(id, label));
        return Vec::new();
    }
    app.focus = Focus::Runs;
    vec![Effect::RespondAlert(id, choice)]
}
