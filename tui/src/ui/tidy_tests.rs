//! Tidying from the cockpit: `D` removes the selected ended run after a y/n, `R` reruns the
//! selected run, and a `run_removed` event takes a run off every view.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::protocol::{Event, EventKind, RemoveRuns, RerunRun};

use super::tests::{NOW, app_with_runs, draw};
use crate::app::App;
use crate::app::state::{Focus, Mode};
use crate::app::update::{Effect, on_key};

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

fn removed(app: &mut App, id: &str) {
    let kind = EventKind::RunRemoved { id: id.into() };
    assert!(app.apply_event(Event {
        seq: app.seq + 1,
        ts: NOW,
        kind,
    }));
}

#[test]
fn removing_an_ended_run_asks_first() {
    let mut app = app_with_runs();
    app.selected = 1;
    assert_eq!(press(&mut app, KeyCode::Char('D')), []);
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(draw(&app).contains("Remove eval with its log, series and alerts?  y / n"));
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        [Effect::ask(RemoveRuns {
            runs: vec!["e5f6a7b8".into()]
        })]
    );
    assert_eq!(app.mode, Mode::Normal);

    app.selected = 2;
    press(&mut app, KeyCode::Char('D'));
    assert_eq!(press(&mut app, KeyCode::Char('n')), [], "n cancels");
    assert_eq!(
        app.flash.as_ref().map(|f| f.text.as_str()),
        Some("cancelled")
    );
}

#[test]
fn a_live_run_is_not_removed() {
    let mut app = app_with_runs();
    app.selected = 0;
    assert_eq!(press(&mut app, KeyCode::Char('D')), []);
    assert_eq!(
        app.mode,
        Mode::Normal,
        "no question for a run that cannot go"
    );
    let flash = app.flash.clone().expect("a message");
    assert!(flash.error);
    assert_eq!(
        flash.text,
        "train-gpt is running: stop it (s) before removing it"
    );
}

#[test]
fn rerun_starts_the_selected_run_again() {
    let mut app = app_with_runs();
    app.selected = 2;
    assert_eq!(
        press(&mut app, KeyCode::Char('R')),
        [Effect::ask(RerunRun {
            run: "c9d0e1f2".into(),
            command: None
        })]
    );
    assert_eq!(
        app.mode,
        Mode::Normal,
        "nothing to confirm: nothing is lost"
    );
}

#[test]
fn a_removed_run_leaves_the_list_and_the_pane() {
    let mut app = app_with_runs();
    // The selection stays on its run when another goes.
    app.selected = 2;
    removed(&mut app, "a1b2c3d4");
    assert_eq!(app.runs.len(), 2);
    assert_eq!(app.selected_run().map(|r| r.id.as_str()), Some("c9d0e1f2"));

    // The run in the pane goes with its pane; the selection moves to a neighbour.
    let run = app.runs[1].clone();
    app.open_pane(&run);
    app.focus = Focus::Pane;
    removed(&mut app, "c9d0e1f2");
    assert!(app.pane.is_none());
    assert_eq!(app.focus, Focus::Runs);
    assert_eq!(app.selected_run().map(|r| r.id.as_str()), Some("e5f6a7b8"));
    assert!(!draw(&app).contains("c9d0e1f2"));

    removed(&mut app, "e5f6a7b8");
    assert!(app.runs.is_empty() && app.selected_run().is_none());
}

#[test]
fn the_palette_reruns_removes_and_cleans() {
    use crate::app::palette::execute;
    use reagent::protocol::{CleanRuns, CleanScope};

    let mut app = app_with_runs();
    app.selected = 1;
    assert_eq!(
        execute(&mut app, "rerun"),
        [Effect::ask(RerunRun {
            run: "e5f6a7b8".into(),
            command: None,
        })],
        "the selected run"
    );
    assert_eq!(
        execute(&mut app, "rm eval old-run"),
        [Effect::ask(RemoveRuns {
            runs: vec!["eval".into(), "old-run".into()]
        })]
    );
    assert_eq!(execute(&mut app, "rm"), [], "nothing named");
    assert!(app.flash.as_ref().is_some_and(|f| f.error));
    assert_eq!(
        execute(&mut app, "clean failed 7d"),
        [Effect::ask(CleanRuns {
            which: CleanScope::Failed,
            older_than_ms: Some(7 * 24 * 3_600_000),
        })]
    );
    assert_eq!(
        execute(&mut app, "clean"),
        [Effect::ask(CleanRuns::default())],
        "finished runs of any age"
    );
    assert_eq!(execute(&mut app, "clean yesterday"), []);
    let flash = app.flash.clone().expect("a message");
    assert!(
        flash.error && flash.text.contains("`yesterday` is not a duration"),
        "{}",
        flash.text
    );
}
