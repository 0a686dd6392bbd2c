//! The pane never hides the newest output: a pane smaller than the job's terminal shows the
//! rows at the cursor, and scrolling back reaches the rows above them, then the scrollback.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::config::PrefixKey;
use reagent::protocol::{Attached, Blob, Detach, ResizeRun};
use reagent::run::RunStatus;

use super::tests::{NOW, draw, run};
use crate::app::App;
use crate::app::state::{Focus, Link};
use crate::app::update::on_key;

/// An 80x24 cockpit showing a finished 200x50 run that printed `lines` numbered lines.
fn small_cockpit_on_a_big_run(lines: usize) -> App {
    let mut app = App::new("local", PrefixKey('b'), (80, 24), NOW, super::typesetter());
    app.link = Link::Connected { clients: 1 };
    let mut big = run("a1b2c3d4", Some("count"), RunStatus::Finished, Some(0), 5);
    (big.cols, big.rows) = (200, 50);
    app.runs = vec![big.clone()];
    app.open_pane(&big);
    let screen: String = (1..=lines).map(|i| format!("line {i}\r\n")).collect();
    let attached = Attached {
        run: big,
        offset: screen.len() as u64,
        screen: Blob(screen.into_bytes()),
    };
    assert!(app.attached(attached, &[]));
    app.focus = Focus::Pane;
    app
}

fn press(app: &mut App, code: KeyCode) -> Vec<crate::app::update::Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

#[test]
fn a_pane_smaller_than_the_job_shows_its_newest_lines() {
    let app = small_cockpit_on_a_big_run(400);
    let screen = draw(&app);
    assert!(screen.contains("line 400"), "{screen}");
    assert!(screen.contains("line 390"), "{screen}");
    assert!(!screen.contains("line 356 "), "{screen}");
}

#[test]
fn scrolling_back_reaches_the_rows_above_the_view_then_the_scrollback() {
    let mut app = small_cockpit_on_a_big_run(400);
    press(&mut app, KeyCode::PageUp);
    let screen = draw(&app);
    assert!(!screen.contains("line 400"), "a page back: {screen}");
    assert!(
        screen.contains(" lines b"),
        "the title says how far back: {screen}"
    );
    for _ in 0..40 {
        press(&mut app, KeyCode::PageUp);
    }
    let screen = draw(&app);
    assert!(
        screen.contains("line 1 "),
        "the first line is reachable: {screen}"
    );
    press(&mut app, KeyCode::Char('G'));
    for _ in 0..40 {
        press(&mut app, KeyCode::PageDown);
    }
    let screen = draw(&app);
    assert!(screen.contains("line 400"), "back at the end: {screen}");
    assert!(!screen.contains(" lines b"), "{screen}");
}

#[test]
fn a_short_screen_is_drawn_from_its_top() {
    let app = small_cockpit_on_a_big_run(3);
    let screen = draw(&app);
    assert!(
        screen.contains("line 1 ") && screen.contains("line 3"),
        "{screen}"
    );
}

#[test]
fn an_ended_run_is_never_typed_into() {
    use crate::app::state::Mode;
    let mut app = small_cockpit_on_a_big_run(3);
    // The prefix twice would type the prefix into a live job; into an ended one it does not.
    let _ = on_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('b'), KeyModifiers::CONTROL),
    );
    assert_eq!(app.mode, Mode::Normal);
    // Typing mode left over from when the run was live: the next key gets out, sending nothing.
    app.mode = Mode::Input;
    let effects = press(&mut app, KeyCode::Esc);
    assert!(effects.is_empty(), "nothing is sent to an ended run");
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn lost_output_is_said_under_the_pane() {
    let mut app = small_cockpit_on_a_big_run(3);
    app.runs[0].lost_output = Some(reagent::run::OutputLoss {
        bytes: 12_288,
        gaps: 1,
        at_ms: 50_531_000,
        error: "disk full".into(),
        ongoing: false,
    });
    let screen = draw(&app);
    assert!(screen.contains("lost 12,288 bytes"), "{screen}");
}

#[test]
fn a_scrolled_back_view_stays_on_its_lines_while_output_arrives() {
    let mut app = small_cockpit_on_a_big_run(400);
    app.runs[0].status = RunStatus::Running;
    for _ in 0..3 {
        press(&mut app, KeyCode::PageUp);
    }
    let before = draw(&app);
    let back = app
        .pane
        .as_ref()
        .map(|pane| pane.scroll)
        .unwrap_or_default();
    let offset = app
        .pane
        .as_ref()
        .and_then(|pane| pane.offset)
        .unwrap_or_default();
    let more: String = (401..=410).map(|i| format!("line {i}\r\n")).collect();
    assert!(app.output(reagent::protocol::Output {
        run: "a1b2c3d4".into(),
        offset,
        data: Blob(more.into_bytes()),
    }));
    let after = draw(&app);
    // The numbered lines in view, in order.
    let rows = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter_map(|row| row.split("│line ").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };
    assert!(!rows(&before).is_empty(), "{before}");
    assert_eq!(rows(&before), rows(&after), "the view did not move");
    let now = app
        .pane
        .as_ref()
        .map(|pane| pane.scroll)
        .unwrap_or_default();
    assert_eq!(now, back + 10, "and it says how far back it now is");
}

#[test]
fn the_runs_history_before_the_screen_fills_the_scrollback() {
    let mut app = App::new("local", PrefixKey('b'), (80, 24), NOW, super::typesetter());
    app.link = Link::Connected { clients: 1 };
    let mut big = run("a1b2c3d4", Some("count"), RunStatus::Finished, Some(0), 5);
    (big.cols, big.rows) = (200, 50);
    app.runs = vec![big.clone()];
    app.open_pane(&big);
    // 2,054 lines in the log; the screen shows the last 50 of them.
    let log: String = (1..=2054).map(|i| format!("line {i}\r\n")).collect();
    let mut screen = vt100::Parser::new(50, 200, 0);
    screen.process(log.as_bytes());
    let attached = Attached {
        run: big,
        offset: log.len() as u64,
        screen: Blob(screen.screen().state_formatted()),
    };
    assert!(app.attached(attached, log.as_bytes()));
    app.focus = Focus::Pane;
    assert!(draw(&app).contains("line 2054"));
    for _ in 0..200 {
        press(&mut app, KeyCode::PageUp);
    }
    let top = draw(&app);
    assert!(top.contains("line 1 ") && top.contains("line 2 "), "{top}");
}

#[test]
fn browsing_previews_the_selected_run_without_typing_or_resizing() {
    use crate::app::state::Mode;
    use crate::app::update::Effect;
    let mut app = super::tests::app_with_runs();
    app.focus = Focus::Runs;
    let effects = press(&mut app, KeyCode::Char('j'));
    assert_eq!(effects, vec![Effect::Attach("e5f6a7b8".into())]);
    assert_eq!(
        app.pane.as_ref().map(|pane| pane.run.as_str()),
        Some("e5f6a7b8")
    );
    assert_eq!(app.mode, Mode::Normal, "watching, not typing");
    assert_eq!(app.focus, Focus::Runs, "the list keeps the keyboard");
    let effects = press(&mut app, KeyCode::Char('k'));
    assert_eq!(
        effects,
        vec![
            Effect::ask(Detach {
                run: "e5f6a7b8".into()
            }),
            Effect::Attach("a1b2c3d4".into())
        ],
        "the run shown before stops streaming here"
    );
    assert!(
        !effects
            .iter()
            .any(|effect| effect.request::<ResizeRun>().is_some()),
        "a preview never resizes the job"
    );
}

#[test]
fn the_typing_client_sizes_the_run_through_layout_changes_and_watchers_never_do() {
    use crate::app::update::{Effect, fit_typed_run};
    let mut app = super::tests::app_with_runs();
    app.focus = Focus::Runs;
    let _ = press(&mut app, KeyCode::Char('j'));
    let _ = press(&mut app, KeyCode::Char('k'));
    assert_eq!(fit_typed_run(&mut app), None, "watching never resizes");
    let effects = press(&mut app, KeyCode::Enter);
    let (cols, rows) = crate::app::geometry::pane_size(&app);
    assert!(effects.contains(&Effect::ask(ResizeRun {
        run: "a1b2c3d4".into(),
        cols,
        rows
    })));
    assert_eq!(fit_typed_run(&mut app), None, "asked once");
    // A window resize while typing: the run follows the pane.
    app.size = (140, 30);
    let (cols, rows) = crate::app::geometry::pane_size(&app);
    assert_eq!(
        fit_typed_run(&mut app),
        Some(Effect::ask(ResizeRun {
            run: "a1b2c3d4".into(),
            cols,
            rows
        }))
    );
}

#[test]
fn the_latest_client_to_type_takes_the_size_back() {
    use crate::app::update::{Effect, fit_typed_run};
    let mut app = super::tests::app_with_runs();
    app.focus = Focus::Runs;
    let _ = press(&mut app, KeyCode::Enter);
    let (cols, rows) = crate::app::geometry::pane_size(&app);
    // The daemon applied our size, then another client typed and took its own.
    let mut run = app.runs[0].clone();
    let event = |seq, run| reagent::protocol::Event {
        seq,
        ts: NOW,
        kind: reagent::protocol::EventKind::Run { run },
    };
    (run.cols, run.rows) = (cols, rows);
    app.apply_event(event(1, run.clone()));
    (run.cols, run.rows) = (80, 24);
    app.apply_event(event(2, run));
    assert_eq!(
        fit_typed_run(&mut app),
        Some(Effect::ask(ResizeRun {
            run: "a1b2c3d4".into(),
            cols,
            rows
        }))
    );
}

#[test]
fn the_help_scrolls_when_it_does_not_fit_80x24() {
    use crate::app::state::Mode;
    let mut app = small_cockpit_on_a_big_run(3);
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.mode, Mode::Help);
    let first = draw(&app);
    assert!(first.contains("j/k scroll"), "{first}");
    for _ in 0..60 {
        press(&mut app, KeyCode::Char('j'));
    }
    let last = draw(&app);
    assert_ne!(first, last, "scrolling shows other lines");
    assert!(
        last.contains("send Ctrl-b to the job"),
        "the end is reachable: {last}"
    );
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.mode, Mode::Normal);
}
