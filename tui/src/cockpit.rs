//! The cockpit: `reagent` with no subcommand. One loop selects over the keyboard, the daemon
//! link and a frame timer; keys and messages change the [`App`], and a frame is drawn from it
//! at most every 16 ms, only when something changed — so a job flooding output costs parsing,
//! not redraws, and keys stay responsive. This is the one place `app` (the state) and `ui`
//! (the drawing) meet.

use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt as _;
use reagent::config::Config;
use reagent::paths::Paths;
use reagent::time::now_ms;
use reagent::transport::Transport;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::app::link::{self, Incoming};
use crate::app::on_message::{self, on_message};
use crate::app::update::{self, Effect};
use crate::app::{App, clipboard, side};

/// The shortest time between two frames (about 60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// The longest the loop spends applying queued messages before it looks at the keyboard
/// again: a flood is applied in bulk, but a key never waits behind more than this.
const BATCH_TIME: Duration = Duration::from_millis(8);

/// Runs the cockpit until the user quits.
pub async fn run(transport: Transport) -> anyhow::Result<ExitCode> {
    // Without a terminal (cron, `ssh host reagent` without -t, input from a file) there is
    // nothing to draw on: say so in one line instead of failing inside the terminal setup.
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!(
            "reagent: the cockpit needs a terminal (use `ssh -t` remotely); every action is \
             also a subcommand: reagent --help"
        );
        return Ok(ExitCode::from(2));
    }
    let config = Config::load(&Paths::from_env()?.config_file)?;
    let place = transport.describe().to_string();
    let (effects, mut incoming) = link::spawn(transport);
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableBracketedPaste);
    let size = terminal.size()?;
    let mut app = App::new(
        &place,
        config.tui.prefix,
        (size.width, size.height),
        now_ms(),
        crate::ui::typesetter(),
    );
    let remembered = Paths::from_env()?.state_dir.join(SIDE_FILE);
    app.side = side::SidePanel::load(&remembered);
    let result = event_loop(&mut app, &mut terminal, &effects, &mut incoming).await;
    app.side.save(&remembered);
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

/// Where the side panel's choice is remembered, in the state folder.
const SIDE_FILE: &str = "cockpit.json";

async fn event_loop(
    app: &mut App,
    terminal: &mut ratatui::DefaultTerminal,
    effects: &mpsc::UnboundedSender<Effect>,
    incoming: &mut mpsc::Receiver<Incoming>,
) -> anyhow::Result<()> {
    let mut keyboard = EventStream::new();
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut dirty = true;
    while !app.quit {
        tokio::select! {
            biased;
            event = keyboard.next() => {
                let Some(event) = event else { break };
                let mut wanted = match event? {
                    Event::Key(key) if key.kind != KeyEventKind::Release => update::on_key(app, key),
                    Event::Paste(text) => update::on_paste(app, &text),
                    Event::Resize(cols, rows) => {
                        app.size = (cols, rows);
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                wanted.extend(update::fit_typed_run(app));
                send_all(effects, wanted);
                if let Some(text) = app.chat.clipboard.take() {
                    clipboard::copy(&text);
                }
                dirty = true;
                // Show the answer to a key now rather than at the next frame slot.
                frames.reset_immediately();
            }
            message = incoming.recv() => {
                let Some(message) = message else { break };
                app.now = now_ms();
                send_all(effects, on_message(app, message));
                // Drain what is already queued so a flood costs one frame, not one per chunk.
                let until = tokio::time::Instant::now() + BATCH_TIME;
                while tokio::time::Instant::now() < until {
                    match incoming.try_recv() {
                        Ok(message) => send_all(effects, on_message(app, message)),
                        Err(_) => break,
                    }
                }
                dirty = true;
            }
            _ = frames.tick(), if dirty => {
                app.now = now_ms();
                terminal.draw(|frame| crate::ui::render(app, frame))?;
                dirty = false;
            }
            _ = clock.tick() => {
                app.now = now_ms();
                send_all(effects, on_message::requery_charts(app));
                dirty = true;
            }
        }
    }
    Ok(())
}

fn send_all(effects: &mpsc::UnboundedSender<Effect>, wanted: Vec<Effect>) {
    for effect in wanted {
        // The link only goes away with the loop.
        let _ = effects.send(effect);
    }
}
