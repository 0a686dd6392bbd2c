//! Snapshot tests of the whole cockpit on a `TestBackend`, one per state a user meets.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use reagent::config::PrefixKey;
use reagent::protocol::{Attached, Blob};
use reagent::run::{RunInfo, RunStatus};

use crate::app::App;
use crate::app::state::{Focus, Link, Mode};

pub(super) const NOW: i64 = 1_800_000_000_000;

pub(super) fn run(
    id: &str,
    name: Option<&str>,
    status: RunStatus,
    exit: Option<i32>,
    secs: i64,
) -> RunInfo {
    RunInfo {
        id: id.into(),
        name: name.map(Into::into),
        command: vec!["python".into(), "train.py".into()],
        cwd: "/work".into(),
        env_keys: Vec::new(),
        status,
        exit_code: exit,
        signal: None,
        reason: None,
        pid: None,
        cols: 60,
        rows: 10,
        created_at: NOW - secs * 1000,
        started_at: Some(NOW - secs * 1000),
        ended_at: status.is_terminal().then_some(NOW - 1000),
        log_path: "/x".into(),
        wandb: None,
        lost_output: None,
        agent_session: None,
        executor: Default::default(),
    }
}

pub(super) fn app_with_runs() -> App {
    let mut app = App::new("local", PrefixKey('b'), (100, 20), NOW, super::typesetter());
    app.link = Link::Connected { clients: 2 };
    app.runs = vec![
        run(
            "a1b2c3d4",
            Some("train-gpt"),
            RunStatus::Running,
            None,
            3725,
        ),
        run("e5f6a7b8", Some("eval"), RunStatus::Finished, Some(0), 95),
        run("c9d0e1f2", None, RunStatus::Failed, Some(3), 12),
    ];
    app
}

pub(super) fn draw(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|frame| super::render(app, frame)).unwrap();
    terminal.backend().to_string()
}

fn show_in_pane(app: &mut App, index: usize, screen: &[u8]) {
    let run = app.runs[index].clone();
    app.selected = index;
    app.open_pane(&run);
    let attached = Attached {
        run,
        offset: screen.len() as u64,
        screen: Blob(screen.to_vec()),
    };
    assert!(app.attached(attached, &[]));
}

#[test]
fn empty_while_connecting() {
    let app = App::new("local", PrefixKey('b'), (80, 12), NOW, super::typesetter());
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn a_few_runs() {
    insta::assert_snapshot!(draw(&app_with_runs()));
}

#[test]
fn the_selected_run_is_highlighted_and_failures_are_red() {
    use ratatui::style::{Color, Modifier};
    let mut app = app_with_runs();
    app.selected = 1;
    let mut terminal = Terminal::new(TestBackend::new(100, 20)).unwrap();
    terminal.draw(|frame| super::render(&app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    // Row 0 is the border, row 1 the header; runs start at row 2.
    assert!(
        buffer[(3, 3)].modifier.contains(Modifier::REVERSED),
        "selected row"
    );
    assert!(!buffer[(3, 2)].modifier.contains(Modifier::REVERSED));
    assert_eq!(buffer[(1, 4)].fg, Color::Red, "the failed run's badge");
}

#[test]
fn a_failed_run_open_in_the_pane() {
    let mut app = app_with_runs();
    show_in_pane(
        &mut app,
        2,
        b"epoch 1 loss 2.31\r\nepoch 2 loss nan\r\nTraceback: loss is NaN\r\n",
    );
    app.focus = Focus::Pane;
    app.say("c9d0e1f2 ended: exited with code 3", true);
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn a_run_logging_to_wandb_shows_its_dashboard() {
    let mut app = app_with_runs();
    app.runs[0].wandb = Some(reagent::metrics::WandbInfo {
        dir: Some("wandb/run-20261122-ab12".into()),
        url: Some("https://wandb.ai/me/gpt/runs/ab12".into()),
    });
    show_in_pane(&mut app, 0, b"step 10 loss 2.3\r\n");
    let screen = draw(&app);
    assert!(
        screen.contains("W&B https://wandb.ai/me/gpt/runs/ab12"),
        "{screen}"
    );
}

#[test]
fn typing_into_a_running_job() {
    let mut app = app_with_runs();
    show_in_pane(&mut app, 0, b"step 100 loss 1.93\r\n>>> ");
    app.focus = Focus::Pane;
    app.mode = Mode::Input;
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn disconnected_keeps_the_last_state() {
    let mut app = app_with_runs();
    app.link = Link::Disconnected {
        reason: "the daemon closed the connection".into(),
        retry_in_ms: 1000,
    };
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn help_lists_every_key() {
    let mut app = app_with_runs();
    app.size = (100, 36);
    app.mode = Mode::Help;
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn the_palette_suggests_commands() {
    let mut app = app_with_runs();
    app.mode = Mode::Palette("r".into());
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn output_after_attach_lands_once() {
    let mut app = app_with_runs();
    show_in_pane(&mut app, 0, b"one\r\n");
    let output = |offset, data: &[u8]| reagent::protocol::Output {
        run: "a1b2c3d4".into(),
        offset,
        data: Blob(data.to_vec()),
    };
    assert!(
        app.output(output(0, b"one\r\n")),
        "already on screen: skipped"
    );
    assert!(app.output(output(5, b"two\r\n")));
    assert!(
        !app.output(output(100, b"gap")),
        "a gap asks for a re-attach"
    );
    let screen = app.pane.as_ref().unwrap().parser.screen().contents();
    assert_eq!(screen.matches("one").count(), 1);
    assert!(screen.contains("two"));
}

#[test]
fn a_long_list_scrolls_to_keep_the_selection_in_view() {
    let mut app = app_with_runs();
    app.runs = (0..300)
        .map(|i| {
            run(
                &format!("{i:08x}"),
                Some(&format!("sweep-{i}")),
                RunStatus::Finished,
                Some(0),
                5,
            )
        })
        .collect();
    app.selected = 250;
    let screen = draw(&app);
    assert!(screen.contains("sweep-250"), "{screen}");
    assert!(!screen.contains("sweep-0 "), "the top has scrolled away");
    app.selected = 299;
    assert!(draw(&app).contains("sweep-299"));
}
