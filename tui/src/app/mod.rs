//! The cockpit: `reagent` with no subcommand. One loop selects over the keyboard, the daemon
//! link and a frame timer; keys and messages change the [`App`], and a frame is drawn from it
//! at most every 16 ms, only when something changed — so a job flooding output costs parsing,
//! not redraws, and keys stay responsive.

pub mod chat;
pub mod chat_keys;
mod clipboard;
pub mod keys;
pub mod link;
pub mod palette;
pub mod side;
pub mod state;
pub mod update;
pub mod watch;
pub mod watch_keys;

use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt as _;
use reagent::chat::{MessageStatus, Role};
use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{EventKind, Notification};
use reagent::time::now_ms;
use reagent::transport::Transport;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use link::{Incoming, Replied};
pub use state::App;
use update::Effect;

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
                apply(app, message, effects);
                // Drain what is already queued so a flood costs one frame, not one per chunk.
                let until = tokio::time::Instant::now() + BATCH_TIME;
                while tokio::time::Instant::now() < until {
                    match incoming.try_recv() {
                        Ok(message) => apply(app, message, effects),
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
                requery_charts(app, effects);
                dirty = true;
            }
        }
    }
    Ok(())
}

/// Re-asks for the charts when a charted run has new points, at most 4 times a second (the
/// clock tick catches what the limit held back).
fn requery_charts(app: &mut App, effects: &mpsc::UnboundedSender<Effect>) {
    let now = now_ms();
    if side::charts_shown(app)
        && app.charts.stale
        && now - app.charts.queried_at >= watch::REQUERY_MS
    {
        app.now = now;
        send_all(effects, watch_keys::chart_queries(app));
    }
}

fn send_all(effects: &mpsc::UnboundedSender<Effect>, wanted: Vec<Effect>) {
    for effect in wanted {
        // The link only goes away with the loop.
        let _ = effects.send(effect);
    }
}

/// Asks for the open chat session's history again (after a gap or a resync), keeping the
/// place the user scrolled to and whether the system prompt was unfolded.
fn refresh_chat(app: &mut App, effects: &mpsc::UnboundedSender<Effect>) {
    if let Some(open) = &app.chat.open {
        let (id, scroll, unfolded) = (open.id.clone(), open.scroll, open.system_unfolded);
        app.chat.open = None;
        app.chat.open(&id);
        if let Some(open) = app.chat.open.as_mut() {
            open.scroll = scroll;
            open.system_unfolded = unfolded;
        }
        let _ = effects.send(Effect::History(id));
    }
}

/// Applies one message from the link; asks for a fresh attach when the pane missed bytes.
pub fn apply(app: &mut App, message: Incoming, effects: &mpsc::UnboundedSender<Effect>) {
    let reattach = match message {
        Incoming::Synced(reply) => {
            app.synced(reply);
            let _ = effects.send(Effect::Sessions);
            let _ = effects.send(Effect::ListAlerts);
            refresh_chat(app, effects);
            true
        }
        Incoming::Note(Notification::Event(event)) => {
            let answered = matches!(&event.kind, EventKind::Message { message }
                if message.role == Role::Assistant && message.status != MessageStatus::Streaming);
            if !app.apply_event(event) {
                refresh_chat(app, effects);
            }
            if answered && app.view == state::View::Chat {
                let _ = effects.send(Effect::Usage);
            }
            requery_charts(app, effects);
            false
        }
        Incoming::Note(Notification::Output(output)) => !app.output(output),
        Incoming::Note(Notification::Resync(_)) => {
            refresh_chat(app, effects);
            true
        }
        Incoming::Note(Notification::Shutdown(_)) => false,
        Incoming::Down {
            reason,
            retry_in_ms,
        } => {
            app.link = state::Link::Disconnected {
                reason,
                retry_in_ms,
            };
            false
        }
        Incoming::Replied(Replied::Attached(attached, history)) => {
            !app.attached(*attached, &history)
        }
        Incoming::Replied(Replied::Started(run)) => {
            app.say(
                format!("started {} ({})", run.label(), run.command_line()),
                false,
            );
            app.started(*run);
            false
        }
        Incoming::Replied(Replied::Models(models)) => {
            app.chat.models = models;
            false
        }
        Incoming::Replied(Replied::Usage(report)) => {
            app.chat.usage = Some(report);
            false
        }
        Incoming::Replied(Replied::Sessions(sessions)) => {
            app.chat.set_sessions(sessions);
            false
        }
        Incoming::Replied(Replied::SessionCreated(session)) => {
            let id = session.id.clone();
            app.say(
                format!("new session {} on {}", session.label(), session.model),
                false,
            );
            let _ = app
                .chat
                .apply(&reagent::protocol::EventKind::Session { session });
            app.chat.selected = app
                .chat
                .sessions
                .iter()
                .position(|s| s.id == id)
                .unwrap_or(0);
            app.chat.open(&id);
            // Write in the side panel when the session was started there.
            app.focus = if app.focus == state::Focus::Side {
                state::Focus::Side
            } else {
                state::Focus::Pane
            };
            app.mode = state::Mode::Compose;
            let _ = effects.send(Effect::History(id));
            false
        }
        Incoming::Replied(Replied::History(session, messages)) => {
            if !app.chat.history(&session, messages) {
                refresh_chat(app, effects);
            }
            false
        }
        Incoming::Replied(Replied::Metrics(reply)) => {
            app.charts.data.insert(reply.run.clone(), *reply);
            false
        }
        Incoming::Replied(Replied::Alerts(alerts)) => {
            for alert in alerts {
                app.alerts.upsert(alert);
            }
            false
        }
        Incoming::Replied(Replied::Answered(reply)) => {
            let choice = reply.alert.response.map_or("answered", |c| c.as_str());
            app.say(format!("alert {}: {choice}", reply.alert.id), false);
            app.alerts.upsert(reply.alert);
            if let Some(session) = reply.session {
                // `chat` opened a session about the alert: show it, ready to write.
                app.view = state::View::Chat;
                app.chat.open(&session);
                app.focus = state::Focus::Pane;
                let _ = effects.send(Effect::Sessions);
                let _ = effects.send(Effect::History(session));
            }
            false
        }
        Incoming::Replied(Replied::Done(message)) => {
            if !message.is_empty() {
                app.say(message, false);
            }
            false
        }
        Incoming::Replied(Replied::Failed(error)) => {
            app.say(error, true);
            false
        }
    };
    if reattach && let Some(pane) = &app.pane {
        let run = pane.run.clone();
        app.reset_pane();
        let _ = effects.send(Effect::Attach(run));
    }
}
