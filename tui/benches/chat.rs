//! `chat`: what the chat view costs to draw on a long session, side by side with a plain
//! baseline, checked against a target.
//!
//! Why: the chat panel promises that scrolling stays smooth on a session of 10,000
//! messages. Messages are laid out (markdown, highlighting, wrapping) once and cached, and
//! the view is anchored at a message, so a frame should cost what is on screen, not the
//! session's length. Three scenarios on a 200x50 `TestBackend`, each frame timed:
//!
//! - **baseline**: one plain 200x50 `Paragraph` per frame (as in the `cockpit` bench);
//! - **following the end** of a 10,000-message session whose answers hold a heading, a list, a
//!   table and a highlighted Python block;
//! - **scrolling back**: the same session with `PgUp` pressed before every frame, so each frame
//!   lays out a page of messages it has not seen (the cold path), restarting at the end when
//!   the top is reached.
//!
//! Target: mean < 2 ms per frame for both chat scenarios (60 fps leaves 16 ms). The first
//! frame after a jump to the top (`g`) is reported too. Run with
//! `cargo bench -p reagent-tui --bench chat [-- --quick]`.

#[path = "../../benches/support.rs"]
mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use reagent::chat::{MessageInfo, MessageStatus, MessageUsage, Part, Role};
use reagent::config::PrefixKey;
use reagent_tui::app::App;
use reagent_tui::app::state::{Focus, Link, View};
use reagent_tui::app::update::on_key;
use support::{Stats, Table};

const COLS: u16 = 200;
const ROWS: u16 = 50;
/// Messages in the session.
const MESSAGES: usize = 10_000;
/// Frames per scenario in a full run, and with `--quick`.
const FRAMES: [usize; 2] = [2000, 300];
/// Target: mean milliseconds per frame.
const MAX_FRAME_MS: f64 = 2.0;
const NOW: i64 = 1_800_000_000_000;

/// What every answer says: the markdown a model typically writes.
const ANSWER: &str = "## Why the loss went NaN\n\nMost likely, in order:\n\n\
    1. The **learning rate** is too high for this batch size\n\
    2. A `log(0)` in the loss when a class never appears\n\
    3. Mixed precision overflowing in the attention scores\n\n\
    | step | loss | grad norm |\n|---:|---:|---:|\n| 1998 | 2.31 | 1.2 |\n\
    | 1999 | 2.35 | 14.8 |\n| 2000 | NaN | inf |\n\n\
    ```python\nfor name, p in model.named_parameters():\n    if p.grad is not None:\n\
    \x20       print(name, p.grad.norm().item())\n```\n\nCheck the gradient norms first.";

fn main() -> ExitCode {
    support::exit_code("chat", bench(support::quick()))
}

fn bench(quick: bool) -> anyhow::Result<bool> {
    let frames = FRAMES[usize::from(quick)];
    println!("chat: {frames} frames per scenario, {MESSAGES} messages, {COLS}x{ROWS}");
    let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS)).context("test terminal")?;
    let row: String = "lorem ipsum "
        .chars()
        .cycle()
        .take(usize::from(COLS))
        .collect();
    let text = vec![row; usize::from(ROWS)].join("\n");
    let baseline = time(frames, || {
        terminal.draw(|frame| frame.render_widget(Paragraph::new(text.as_str()), frame.area()))?;
        Ok(())
    })?;

    let mut app = session();
    let follow = time(frames, || draw(&mut terminal, &app))?;

    press(&mut app, KeyCode::Char('g'));
    let start = Instant::now();
    draw(&mut terminal, &app)?;
    let top = start.elapsed();

    let mut app = session();
    let scroll = time(frames, || {
        press(&mut app, KeyCode::PageUp);
        if app
            .chat
            .open
            .as_ref()
            .and_then(|o| o.scroll)
            .is_some_and(|a| a.message == 0)
        {
            press(&mut app, KeyCode::Char('G'));
        }
        draw(&mut terminal, &app)
    })?;

    let mut table = Table::default();
    let base = Stats::of_ms(&baseline);
    let show = |s: &Stats| format!("mean {:.3} ms, p99 {:.3} ms (n={})", s.mean, s.p99, s.n);
    table.info("baseline: plain 200x50 Paragraph", show(&base));
    for (what, times) in [
        ("chat: 10k messages, following the end", &follow),
        ("chat: 10k messages, PgUp every frame", &scroll),
    ] {
        let stats = Stats::of_ms(times);
        table.check(
            what,
            format!("{}, {:.1}x baseline", show(&stats), stats.mean / base.mean),
            format!("mean < {MAX_FRAME_MS} ms"),
            stats.mean < MAX_FRAME_MS,
        );
    }
    let top_ms = top.as_secs_f64() * 1e3;
    table.info(
        "chat: first frame after g (jump to the top)",
        format!("{top_ms:.3} ms"),
    );
    Ok(table.print())
}

/// Times `frames` calls of `frame`.
fn time(
    frames: usize,
    mut frame: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let start = Instant::now();
        frame()?;
        times.push(start.elapsed());
    }
    Ok(times)
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) -> anyhow::Result<()> {
    terminal.draw(|frame| reagent_tui::ui::render(app, frame))?;
    Ok(())
}

fn press(app: &mut App, code: KeyCode) {
    let _ = on_key(app, KeyEvent::new(code, KeyModifiers::NONE));
}

/// The chat view on a session of [`MESSAGES`] messages, questions and markdown answers.
fn session() -> App {
    let mut app = App::new(
        "local",
        PrefixKey('b'),
        (COLS, ROWS),
        NOW,
        reagent_tui::ui::typesetter(),
    );
    app.link = Link::Connected { clients: 1 };
    app.view = View::Chat;
    app.chat.open("s");
    let messages = (0..MESSAGES)
        .map(|i| {
            let (role, text) = if i % 2 == 0 {
                (
                    Role::User,
                    format!("question {i}: why is the loss NaN at step 2000?"),
                )
            } else {
                (Role::Assistant, format!("{ANSWER} ({i})"))
            };
            MessageInfo {
                id: format!("m{i}"),
                session: "s".into(),
                role,
                status: MessageStatus::Complete,
                parts: vec![Part::text(text)],
                error: None,
                usage: MessageUsage::default(),
                created_at: NOW,
            }
        })
        .collect();
    app.chat.history("s", messages);
    app.focus = Focus::Pane;
    app
}
