//! Keys of the charts and alerts views. Their own keys come first; the cockpit's moves,
//! view switches, help, palette and quit work as everywhere else.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::alert::{AlertStatus, Choice};
use reagent::protocol::{IgnoreAlertsLike, QueryMetrics, RespondAlert};

use super::keys::{self, Action};
use super::state::{App, Confirm, Focus, Mode, View};
use super::update::{Effect, act};
use super::watch::{SMOOTHING, ZOOMS};

/// Cockpit actions that make sense in these views (not opening or stopping the pane's run).
fn shared(action: Action) -> bool {
    !matches!(action, Action::Open | Action::Detach | Action::Stop)
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
    let selected = app
        .selected_run()
        .map(|run| run.id.clone())
        .unwrap_or_default();
    let charts = &mut app.charts;
    let zooms = ZOOMS.len();
    match key.code {
        KeyCode::Char('l') => charts.log = !charts.log,
        KeyCode::Char('s') => charts.smoothing = (charts.smoothing + 1).min(SMOOTHING.len() - 1),
        KeyCode::Char('S') => charts.smoothing = charts.smoothing.saturating_sub(1),
        KeyCode::Char(']') => charts.cycle_metric(&selected, 1),
        KeyCode::Char('[') => charts.cycle_metric(&selected, -1),
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
        KeyCode::Char('o') => charts.max = !charts.max,
        KeyCode::Char('C') => charts.clip = !charts.clip,
        KeyCode::Char('#') => charts.grid = !charts.grid,
        KeyCode::Char('.') => charts.move_cursor(&selected, true, app.size.0),
        KeyCode::Char(',') => charts.move_cursor(&selected, false, app.size.0),
        KeyCode::Esc if charts.cursor.is_some() => charts.cursor = None,
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
            if app.selected != before && app.view == View::Charts {
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
    // Two braille dots per cell; the daemon serves at most 4096 columns.
    let columns = (usize::from(app.size.0.max(20)) * 2).min(4096);
    runs.into_iter()
        .map(|run| {
            Effect::ask(QueryMetrics {
                run,
                names: Vec::new(),
                window,
                columns,
            })
        })
        .collect()
}

/// `:sweep [NAME]`: the charts view with every run of the sweep (the newest without a name)
/// overlaid, its first run selected, so the side list ranks them all by the charted metric.
pub fn overlay_sweep(app: &mut App, query: &str) -> Vec<Effect> {
    let found = if query.is_empty() {
        app.sweeps.last()
    } else {
        app.sweeps
            .iter()
            .find(|s| s.id == query || s.name == query)
            .or_else(|| {
                let mut prefixed = app.sweeps.iter().filter(|s| s.id.starts_with(query));
                prefixed.next().filter(|_| prefixed.next().is_none())
            })
    };
    let Some(sweep) = found else {
        app.say(format!("no sweep matches `{query}`"), true);
        return Vec::new();
    };
    let (name, runs) = (sweep.name.clone(), sweep.runs.clone());
    let marked: Vec<String> = runs
        .into_iter()
        .filter(|id| app.runs.iter().any(|r| &r.id == id))
        .collect();
    let Some(index) = marked
        .first()
        .and_then(|first| app.runs.iter().position(|r| &r.id == first))
    else {
        app.say(format!("sweep {name} has no runs to chart"), true);
        return Vec::new();
    };
    app.selected = index;
    app.charts.marked = marked;
    app.view = View::Charts;
    app.focus = Focus::Runs;
    let count = app.charts.marked.len();
    app.say(
        format!("sweep {name}: {count} runs overlaid, ranked (o flips)"),
        false,
    );
    chart_queries(app)
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
        (KeyCode::Char('I'), _) => return ignore_like(app),
        (KeyCode::Char('x'), _) => return answer(app, Choice::Stop),
        (KeyCode::Char('c'), _) => return answer(app, Choice::Chat),
        (_, Some(action)) if shared(action) => return act(app, action),
        _ => {}
    }
    Vec::new()
}

/// Ignores every open alert like the highlighted one (the same rule and metric) across its
/// sweep's runs, or every run when it is in no sweep: a sweep raises the same alert on each.
fn ignore_like(app: &mut App) -> Vec<Effect> {
    let Some(alert) = app.alerts.current() else {
        return Vec::new();
    };
    let id = alert.id.clone();
    app.focus = Focus::Runs;
    vec![Effect::ask(IgnoreAlertsLike { id })]
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
    vec![Effect::ask(RespondAlert { id, choice })]
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use reagent::alert::{AlertStatus, Choice};
    use reagent::config::PrefixKey;
    use reagent::metrics::QueryWindow;
    use reagent::protocol::{
        Event, EventKind, IgnoreAlertsLike, ListAlerts, QueryMetrics, RespondAlert,
    };
    use reagent::run::RunInfo;

    use crate::app::App;
    use crate::app::conversation::Plain;
    use crate::app::fixtures::alert;
    use crate::app::state::{Mode, View};
    use crate::app::update::{Effect, on_key};

    fn run(id: &str) -> RunInfo {
        crate::app::fixtures::run(id, "python")
    }

    fn app() -> App {
        let mut app = App::new("local", PrefixKey('b'), (100, 30), 0, Box::new(Plain));
        app.runs = vec![run("aaaa"), run("bbbb")];
        app
    }

    fn press(app: &mut App, c: char) -> Vec<Effect> {
        on_key(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn queried(effects: &[Effect]) -> Vec<(String, QueryWindow)> {
        effects
            .iter()
            .filter_map(|e| e.request::<QueryMetrics>())
            .map(|query| (query.run.clone(), query.window))
            .collect()
    }

    #[test]
    fn the_charts_view_queries_the_selected_and_marked_runs() {
        let mut app = app();
        let effects = press(&mut app, 'm');
        assert_eq!(app.view, View::Charts);
        assert_eq!(queried(&effects), [("aaaa".into(), QueryWindow::All)]);
        // Space marks the run for the overlay; moving on re-queries both.
        press(&mut app, ' ');
        let effects = press(&mut app, 'j');
        let runs: Vec<String> = queried(&effects).into_iter().map(|(r, _)| r).collect();
        assert_eq!(runs, ["bbbb", "aaaa"]);
        // Zoom asks for the last 1,000 steps; log and smoothing change only the drawing.
        let effects = press(&mut app, 'z');
        assert!(
            queried(&effects)
                .iter()
                .all(|(_, w)| *w == QueryWindow::LastSteps(1e3))
        );
        assert!(press(&mut app, 'l').is_empty() && app.charts.log);
        assert!(press(&mut app, 's').is_empty());
        assert_eq!(
            app.mode,
            Mode::Normal,
            "s smooths here, it does not stop the run"
        );
        assert!(app.charts.alpha() > 0.0);
        press(&mut app, 'm');
        assert_eq!(app.view, View::Runs);
    }

    #[test]
    fn new_points_of_a_charted_run_make_the_charts_stale() {
        let mut app = app();
        let event = |seq, run: &str| Event {
            seq,
            ts: 0,
            kind: EventKind::Metrics {
                run: run.into(),
                points: 1,
                last_step: 1.0,
                latest: Vec::new(),
                trend: None,
            },
        };
        app.apply_event(event(1, "bbbb"));
        assert!(!app.charts.stale, "bbbb is neither selected nor marked");
        app.apply_event(event(2, "aaaa"));
        assert!(app.charts.stale);
    }

    #[test]
    fn alerts_are_answered_from_the_keyboard_and_stopping_asks_first() {
        let mut app = app();
        for (seq, alert) in [
            alert("a1", AlertStatus::Answered),
            alert("a2", AlertStatus::Open),
        ]
        .into_iter()
        .enumerate()
        {
            let kind = EventKind::Alert { alert };
            app.apply_event(Event {
                seq: seq as u64 + 1,
                ts: 0,
                kind,
            });
        }
        assert_eq!(app.alerts.open(), 1, "the badge counts open alerts");
        assert_eq!(press(&mut app, 'a'), [Effect::ask(ListAlerts::default())]);
        assert!(press(&mut app, 'i').is_empty(), "a1 is answered already");
        assert!(app.flash.as_ref().is_some_and(|f| f.error));
        press(&mut app, 'j');
        assert!(press(&mut app, 'x').is_empty());
        assert!(matches!(app.mode, Mode::Confirm(_)));
        let effects = press(&mut app, 'y');
        assert_eq!(
            effects,
            [Effect::ask(RespondAlert {
                id: "a2".into(),
                choice: Choice::Stop
            })]
        );
        assert_eq!(
            press(&mut app, 'c'),
            [Effect::ask(RespondAlert {
                id: "a2".into(),
                choice: Choice::Chat
            })]
        );
        assert_eq!(
            app.view,
            View::Alerts,
            "c answers here, it does not switch to chat"
        );
    }

    #[test]
    fn shift_i_ignores_every_alert_like_the_highlighted_one() {
        let mut app = app();
        // A sweep's NaN alert on each run; the daemon finds the others, the key names one.
        for (seq, id) in ["a1", "a2"].into_iter().enumerate() {
            let mut like = alert(id, AlertStatus::Open);
            like.run = ["aaaa", "bbbb"][seq].into();
            app.apply_event(Event {
                seq: seq as u64 + 1,
                ts: 0,
                kind: EventKind::Alert { alert: like },
            });
        }
        press(&mut app, 'a');
        press(&mut app, 'j');
        assert_eq!(
            press(&mut app, 'I'),
            [Effect::ask(IgnoreAlertsLike { id: "a2".into() })]
        );
        assert_eq!(app.view, View::Alerts);
        assert_eq!(
            app.mode,
            Mode::Normal,
            "nothing to confirm: ignoring stops nothing"
        );
    }
}
