//! The side panel: chat, charts, alerts, GPUs or models on screen beside the job pane, both
//! live.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::chat::{MessageStatus, Part, PartKind, Role};
use reagent::protocol::{Attached, Blob, CreateSession, EventKind, Output};

use super::tests::draw;
use super::tests_chat::{SESSION, chat_app, message};
use crate::app::App;
use crate::app::side::Side;
use crate::app::state::{Focus, Mode, View};
use crate::app::update::{Effect, on_key};

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

/// A 200x50 cockpit: the first run open in the pane, a chat session streaming an answer.
fn wide_cockpit() -> App {
    let answer = message(
        "m1",
        Role::Assistant,
        MessageStatus::Streaming,
        vec![Part::text("The loss")],
    );
    let mut app = chat_app(vec![answer]);
    app.view = View::Runs;
    app.focus = Focus::Runs;
    app.size = (200, 50);
    let run = app.runs[0].clone();
    app.open_pane(&run);
    let attached = Attached {
        run,
        offset: 11,
        screen: Blob(b"step 1 ok\r\n".to_vec()),
    };
    assert!(app.attached(attached, &[]));
    app
}

#[test]
fn the_pane_and_the_chat_panel_update_side_by_side() {
    let mut app = wide_cockpit();
    let _ = press(&mut app, KeyCode::Char('v'));
    assert_eq!(app.side.shown, Some(Side::Chat));
    let screen = draw(&app);
    assert!(
        screen.contains("step 1 ok") && screen.contains("The loss"),
        "{screen}"
    );

    assert!(app.output(Output {
        run: "a1b2c3d4".into(),
        offset: 11,
        data: Blob(b"step 2 ok\r\n".to_vec()),
    }));
    assert!(app.chat.apply(&EventKind::Delta {
        session: SESSION.into(),
        message: "m1".into(),
        part: 0,
        kind: PartKind::Text,
        offset: "The loss".len(),
        text: " went NaN at step 2".into(),
    }));
    let screen = draw(&app);
    assert!(screen.contains("step 2 ok"), "the pane updates: {screen}");
    assert!(
        screen.contains("went NaN at step 2"),
        "the answer streams: {screen}"
    );
}

#[test]
fn tab_cycles_every_visible_panel_and_the_side_panel_takes_its_keys() {
    let mut app = wide_cockpit();
    let _ = press(&mut app, KeyCode::Char('v'));
    app.focus = Focus::Runs;
    let _ = press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Pane);
    let _ = press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Side);
    // Enter in the chat panel writes to its session, there.
    let _ = press(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Compose);
    assert_eq!(app.focus, Focus::Side);
    let _ = press(&mut app, KeyCode::Esc);
    let _ = press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Runs, "round the panels and back");
    let _ = press(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Focus::Side);
}

#[test]
fn a_new_chat_in_the_panel_is_about_the_selected_run() {
    let mut app = wide_cockpit();
    let _ = press(&mut app, KeyCode::Char('v'));
    app.focus = Focus::Side;
    let effects = press(&mut app, KeyCode::Char('n'));
    let [effect] = &effects[..] else {
        panic!("one effect: {effects:?}");
    };
    let Some(CreateSession { system, title, .. }) = effect.request() else {
        panic!("a session is created: {effects:?}");
    };
    let system = system.as_deref().unwrap_or_default();
    assert!(
        system.contains("train-gpt") && system.contains("python train.py"),
        "{system}"
    );
    assert!(system.contains("step 1 ok"), "with its screen: {system}");
    assert_eq!(title.as_deref(), Some("about train-gpt"));
}

#[test]
fn the_panel_cycles_through_every_view_and_hides_on_small_screens() {
    let mut app = wide_cockpit();
    for (shown, text) in [
        (Side::Chat, "nan hunt"),
        (Side::Charts, "no metrics"),
        (Side::Alerts, "Alerts"),
        (Side::Gpus, "GPUs"),
        (Side::Models, "No model servers"),
    ] {
        let _ = press(&mut app, KeyCode::Char('v'));
        assert_eq!(app.side.shown, Some(shown));
        let screen = draw(&app);
        assert!(screen.contains(text), "{shown:?}: {screen}");
    }
    let _ = press(&mut app, KeyCode::Char('v'));
    assert_eq!(app.side.shown, None);

    let _ = press(&mut app, KeyCode::Char('v'));
    app.size = (80, 24);
    assert!(
        crate::app::geometry::areas_of(&app).side.is_none(),
        "no room at 80x24"
    );
    assert!(
        draw(&app).contains("step 1 ok"),
        "the pane keeps the screen"
    );
}

#[test]
fn b_twice_in_the_charts_view_leaves_focus_on_the_runs() {
    let mut app = wide_cockpit();
    let _ = press(&mut app, KeyCode::Char('m'));
    let _ = press(&mut app, KeyCode::Char('b'));
    let _ = press(&mut app, KeyCode::Char('b'));
    assert_eq!(app.focus, Focus::Runs);
    let _ = press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Pane, "Tab reaches the chart");
    let _ = press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Runs, "and comes back");
}
