//! Keys change the state and ask for effects; the run loop performs the effects.

use crossterm::event::{KeyCode, KeyEvent};
use reagent::alert::Choice;
use reagent::protocol::{
    CreateSession, Detach, ListAlerts, RemoveRuns, RerunRun, ResizeRun, RespondAlert, SendInput,
    SessionHistory, StopModel, StopRun, UsageQuery,
};

use super::chat_keys;
use super::geometry;
use super::keys::{self, Action};
use super::request::{ErasedRequest, Request};
use super::state::{App, Confirm, Focus, Mode, View};

/// What a key or a message asks the run loop to do besides changing the state.
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Send the daemon a request; its reply comes back as a [`Replied`](super::link::Replied).
    Request(Box<dyn ErasedRequest>),
    /// Attach the pane to a run's output: the attach and the log before it, as one reply.
    Attach(String),
}

impl Effect {
    /// The effect that sends `request`.
    pub fn ask(request: impl Request) -> Self {
        Self::Request(Box::new(request))
    }

    /// The request this effect sends, if it is one of type `R`.
    pub fn request<R: Request>(&self) -> Option<&R> {
        match self {
            Self::Request(request) => request.as_any().downcast_ref(),
            Self::Attach(_) => None,
        }
    }
}

/// Handles one key in the current mode.
pub fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    // A pending approval's box takes its keys first in normal mode, whatever the view
    // (`agent_keys` says why never while typing).
    if app.mode == Mode::Normal
        && let Some(effects) = super::agent_keys::box_key(app, &key)
    {
        return effects;
    }
    match app.mode.clone() {
        Mode::Input => input_key(app, &key),
        Mode::Palette(text) => palette_key(app, text, &key),
        Mode::Help => {
            // The help may not fit: j/k and the page keys scroll it, any other key closes it.
            match key.code {
                KeyCode::Char('j') | KeyCode::Down => app.help_scroll += 1,
                KeyCode::Char('k') | KeyCode::Up => {
                    app.help_scroll = app.help_scroll.saturating_sub(1)
                }
                KeyCode::PageDown | KeyCode::Char(' ') => app.help_scroll += 10,
                KeyCode::PageUp => app.help_scroll = app.help_scroll.saturating_sub(10),
                _ => app.mode = Mode::Normal,
            }
            Vec::new()
        }
        Mode::Usage => {
            app.mode = Mode::Normal;
            Vec::new()
        }
        Mode::Confirm(confirm) => {
            app.mode = Mode::Normal;
            match (key.code, confirm) {
                (KeyCode::Char('y' | 'Y'), Confirm::Stop(id, label)) => {
                    app.say(format!("stopping {label}"), false);
                    vec![stop(id)]
                }
                (KeyCode::Char('y' | 'Y'), Confirm::Remove(id, label)) => {
                    app.say(format!("removing {label}"), false);
                    vec![Effect::ask(RemoveRuns { runs: vec![id] })]
                }
                (KeyCode::Char('y' | 'Y'), Confirm::StopForAlert(id, label)) => {
                    app.say(format!("stopping {label}"), false);
                    vec![Effect::ask(RespondAlert {
                        id,
                        choice: Choice::Stop,
                    })]
                }
                (KeyCode::Char('y' | 'Y'), Confirm::StopModel(name, launching)) => {
                    let verb = if launching {
                        "cancelling the launch of"
                    } else {
                        "stopping"
                    };
                    app.say(format!("{verb} {name}"), false);
                    vec![Effect::ask(StopModel { name })]
                }
                _ => {
                    app.say("cancelled", false);
                    Vec::new()
                }
            }
        }
        Mode::Compose => chat_keys::compose(app, &key),
        Mode::Search(query) => chat_keys::search(app, query, &key),
        Mode::Models(picker) => chat_keys::models(app, picker, &key),
        Mode::Launch(selected) => super::models_keys::picker(app, selected, &key),
        Mode::Normal if app.view == View::Chat => chat_keys::normal(app, &key),
        Mode::Normal if app.view == View::Charts => super::watch_keys::charts_key(app, &key),
        Mode::Normal if app.view == View::Alerts => super::watch_keys::alerts_key(app, &key),
        Mode::Normal if app.view == View::Models => super::models_keys::models_key(app, &key),
        Mode::Normal if app.view == View::Gateway => super::gateway::key(app, &key),
        Mode::Normal if app.focus == Focus::Side => super::side::key(app, &key),
        Mode::Normal => normal_key(app, &key),
    }
}

/// Pasted text goes to the job in input mode, or into the palette.
pub fn on_paste(app: &mut App, text: &str) -> Vec<Effect> {
    match &mut app.mode {
        Mode::Palette(typed) => {
            typed.push_str(&text.replace(['\r', '\n'], " "));
            Vec::new()
        }
        Mode::Input => {
            let Some(pane) = &app.pane else {
                return Vec::new();
            };
            let mut bytes = Vec::new();
            let bracketed = pane.parser.screen().bracketed_paste();
            if bracketed {
                bytes.extend_from_slice(b"\x1b[200~");
            }
            bytes.extend_from_slice(text.as_bytes());
            if bracketed {
                bytes.extend_from_slice(b"\x1b[201~");
            }
            vec![input(pane.run.clone(), bytes)]
        }
        _ => Vec::new(),
    }
}

fn input_key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    if keys::is_prefix(key, app.prefix.0) {
        app.mode = Mode::Normal;
        app.say(
            "cockpit keys: Enter types into the job again, d leaves the pane, ? help",
            false,
        );
        return Vec::new();
    }
    let Some(pane) = &app.pane else {
        app.mode = Mode::Normal;
        return Vec::new();
    };
    // An ended run is never typed into: whatever the key, it leaves typing.
    if let Some(run) = app.pane_run().filter(|run| run.status.is_terminal()) {
        let text = format!(
            "{} has ended ({}); not typing into it",
            run.label(),
            run.status
        );
        app.mode = Mode::Normal;
        app.say(text, false);
        return Vec::new();
    }
    let app_cursor = pane.parser.screen().application_cursor();
    match keys::key_bytes(key, app_cursor) {
        Some(bytes) => vec![input(pane.run.clone(), bytes)],
        None => Vec::new(),
    }
}

fn normal_key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    // The prefix twice sends the prefix itself to the job, as in tmux.
    if app.focus == Focus::Pane
        && keys::is_prefix(key, app.prefix.0)
        && let Some(pane) = &app.pane
        && app.pane_run().is_some_and(|run| !run.status.is_terminal())
    {
        let run = pane.run.clone();
        app.mode = Mode::Input;
        return vec![input(run, vec![app.prefix.byte()])];
    }
    app.flash = None;
    match keys::action_for(key) {
        Some(action) => act(app, action),
        None => Vec::new(),
    }
}

/// What a cockpit action does, in any view.
pub fn act(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Quit => app.quit = true,
        Action::Help => {
            app.mode = Mode::Help;
            app.help_scroll = 0;
        }
        Action::Palette => app.mode = Mode::Palette(String::new()),
        Action::NewRun => app.mode = Mode::Palette("run ".into()),
        Action::Rename => {
            if let Some(run) = app.selected_run() {
                app.mode =
                    Mode::Palette(format!("rename {}", run.name.clone().unwrap_or_default()));
            }
        }
        Action::FocusNext => app.focus = cycle_focus(app, 1),
        Action::FocusPrev => app.focus = cycle_focus(app, -1),
        Action::CycleSide => {
            app.side.cycle();
            if app.side.shown.is_none() && app.focus == Focus::Side {
                app.focus = Focus::Pane;
            }
            if app.side.shown.is_some() && geometry::areas_of(app).side.is_none() {
                app.say(
                    "the side panel needs a wider window; c, m and a show the views full size",
                    false,
                );
            }
            if app.side.shown == Some(super::side::Side::Charts) {
                return super::watch_keys::chart_queries(app);
            }
        }
        Action::SideWider => {
            let most = app
                .size
                .0
                .saturating_sub(super::side::PANE_KEEPS + app.runs_width);
            app.side.width = (app.side.width + 4).min(most.max(super::side::MIN_WIDTH));
        }
        Action::SideNarrower => {
            app.side.width = app.side.width.saturating_sub(4).max(super::side::MIN_WIDTH);
        }
        Action::Down | Action::Up | Action::Top | Action::Bottom if app.focus == Focus::Runs => {
            let last = app.runs.len().saturating_sub(1);
            app.selected = match action {
                Action::Down => (app.selected + 1).min(last),
                Action::Up => app.selected.saturating_sub(1),
                Action::Top => 0,
                _ => last,
            };
            // Browsing previews: the selected run shows in the pane, watched only (no typing,
            // and its terminal keeps its size) until Enter takes it.
            if let Some(run) = app
                .selected_run()
                .cloned()
                .filter(|_| app.view == View::Runs)
            {
                let mut effects = show(app, &run);
                // A side chart follows the selected run.
                if super::side::charts_shown(app) {
                    effects.extend(super::watch_keys::chart_queries(app));
                }
                return effects;
            }
        }
        Action::Down => scroll(app, -1),
        Action::Up => scroll(app, 1),
        Action::PageDown => scroll(app, -page(app)),
        Action::PageUp => scroll(app, page(app)),
        Action::Top => scroll(app, isize::MAX / 2),
        Action::Bottom => scroll(app, isize::MIN / 2),
        Action::Open => return open(app),
        Action::Detach => {
            if app.focus == Focus::Pane && app.show_runs {
                app.focus = Focus::Runs;
            }
        }
        Action::Stop => {
            if let Some(run) = app.selected_run().filter(|run| !run.status.is_terminal()) {
                app.mode = Mode::Confirm(Confirm::Stop(run.id.clone(), run.label().to_string()));
            }
        }
        Action::Remove => {
            if let Some(run) = app.selected_run() {
                let label = run.label().to_string();
                if run.status.is_terminal() {
                    app.mode = Mode::Confirm(Confirm::Remove(run.id.clone(), label));
                } else {
                    let text = format!("{label} is {}: stop it (s) before removing it", run.status);
                    app.say(text, true);
                }
            }
        }
        Action::Rerun => {
            if let Some(run) = app.selected_run() {
                let text = format!("starting {} again", run.label());
                let id = run.id.clone();
                app.say(text, false);
                return vec![Effect::ask(RerunRun {
                    run: id,
                    command: None,
                })];
            }
        }
        Action::ToggleChat => {
            switch_view(app, View::Chat);
            if app.view == View::Chat {
                return vec![Effect::ask(UsageQuery {})];
            }
        }
        Action::ToggleCharts => {
            switch_view(app, View::Charts);
            if app.view == View::Charts {
                return super::watch_keys::chart_queries(app);
            }
        }
        Action::ToggleAlerts => {
            switch_view(app, View::Alerts);
            if app.view == View::Alerts {
                return vec![Effect::ask(ListAlerts::default())];
            }
        }
        Action::ToggleModels => switch_view(app, View::Models),
        Action::ToggleGateway => {
            switch_view(app, View::Gateway);
            if app.view == View::Gateway {
                return super::gateway::refresh(app);
            }
        }
        Action::InView => {}
        Action::ToggleRuns => {
            app.show_runs = !app.show_runs || app.pane.is_none();
            // Focus never stays on a hidden panel, and comes back to the list it left.
            app.focus = if app.show_runs {
                Focus::Runs
            } else {
                Focus::Pane
            };
        }
        Action::Wider => app.runs_width = (app.runs_width + 4).min(app.size.0.saturating_sub(20)),
        Action::Narrower => app.runs_width = app.runs_width.saturating_sub(4).max(24),
        Action::ToggleGpus => app.show_gpus = !app.show_gpus,
    }
    Vec::new()
}

/// The panel `step` places after (or before) the focused one, among those on screen: the
/// runs list (or a view's list), the pane (or a view's main panel), the side panel.
fn cycle_focus(app: &App, step: isize) -> Focus {
    let areas = geometry::areas_of(app);
    let mut shown = Vec::new();
    if areas.runs.is_some() {
        shown.push(Focus::Runs);
    }
    // The alerts, models and gateway views are one panel; the others have a main panel
    // beside their list.
    let one_list = matches!(app.view, View::Alerts | View::Models | View::Gateway);
    if !one_list && (app.view != View::Runs || app.pane.is_some()) {
        shown.push(Focus::Pane);
    }
    if areas.side.is_some() {
        shown.push(Focus::Side);
    }
    let Some(at) = shown.iter().position(|f| *f == app.focus) else {
        return shown.first().copied().unwrap_or(Focus::Runs);
    };
    let len = shown.len() as isize;
    shown[(at as isize + step).rem_euclid(len) as usize]
}

/// Shows `view`, or the runs when it is already shown.
fn switch_view(app: &mut App, view: View) {
    app.view = if app.view == view { View::Runs } else { view };
    app.focus = Focus::Runs;
}

fn page(app: &App) -> isize {
    isize::try_from(geometry::pane_size(app).1)
        .unwrap_or(10)
        .max(1)
}

/// Scrolls the pane's own view by `lines` (positive: back in time): through the rows above
/// the anchored view when the pane is shorter than the job's screen, then the scrollback.
fn scroll(app: &mut App, lines: isize) {
    let height = geometry::pane_size(app).1;
    if let Some(pane) = app.pane.as_mut() {
        let screen = pane.parser.screen_mut();
        // vt100 caps the offset at the scrollback it holds: this reads how much that is.
        screen.set_scrollback(usize::MAX);
        let held = screen.scrollback();
        let above = usize::from(geometry::anchor_top(screen, height));
        pane.scroll = pane.scroll.saturating_add_signed(lines).min(held + above);
        screen.set_scrollback(pane.scroll);
    }
}

/// Shows `run` in the pane unless it is there already: attaches to it, and detaches from the
/// run shown before so its output stops flowing to this client.
pub fn show(app: &mut App, run: &reagent::run::RunInfo) -> Vec<Effect> {
    let shown = app.pane.as_ref().map(|pane| pane.run.clone());
    if shown.as_deref() == Some(run.id.as_str()) {
        return Vec::new();
    }
    app.open_pane(run);
    let mut effects: Vec<Effect> = shown
        .into_iter()
        .map(|run| Effect::ask(Detach { run }))
        .collect();
    effects.push(Effect::Attach(run.id.clone()));
    effects
}

/// Enter: show the selected run (or the pane's) and type into it if it runs.
fn open(app: &mut App) -> Vec<Effect> {
    let run = match app.focus {
        Focus::Runs => app.selected_run().cloned(),
        Focus::Pane | Focus::Side => app.pane_run().cloned(),
    };
    let Some(run) = run else { return Vec::new() };
    let mut effects = show(app, &run);
    app.focus = Focus::Pane;
    if run.status.is_terminal() {
        app.say(
            format!(
                "{} has ended ({}); its last screen is shown",
                run.label(),
                run.status
            ),
            false,
        );
        return effects;
    }
    app.mode = Mode::Input;
    let prefix = app.prefix.0;
    app.say(
        format!("typing into {}: Ctrl-{prefix} leaves", run.label()),
        false,
    );
    effects.extend(fit_typed_run(app));
    effects
}

/// The size policy (tmux's `window-size latest`): a run takes the size of the client that
/// most recently typed into it, and keeps following that client's pane through every layout
/// change (`b`, `<`, `>`, a window resize) while it types. Clients that only watch never
/// resize a run; they show it anchored at its cursor. Called after every key and resize.
pub fn fit_typed_run(app: &mut App) -> Option<Effect> {
    if app.mode != Mode::Input || app.focus != Focus::Pane || app.view != View::Runs {
        return None;
    }
    let (cols, rows) = geometry::pane_size(app);
    let run = app.pane_run().filter(|run| !run.status.is_terminal())?;
    let (id, size) = (run.id.clone(), (run.cols, run.rows));
    let pane = app.pane.as_mut()?;
    let wanted = (cols, rows);
    if cols < 2 || rows < 2 || pane.asked == Some(wanted) || size == wanted {
        return None;
    }
    pane.asked = Some(wanted);
    Some(Effect::ask(ResizeRun {
        run: id,
        cols,
        rows,
    }))
}

/// Stopping a run, with the daemon's default grace period.
pub fn stop(run: String) -> Effect {
    Effect::ask(StopRun {
        run,
        grace_secs: None,
    })
}

/// Typing `bytes` into a run.
pub fn input(run: String, bytes: Vec<u8>) -> Effect {
    Effect::ask(SendInput {
        run,
        data: reagent::protocol::Base64Text::encode(&bytes),
    })
}

/// Starting a chat session on `model` (the daemon's default when `None`), with a system
/// prompt and a title when given.
pub fn new_session(model: Option<String>, system: Option<String>, title: Option<String>) -> Effect {
    Effect::ask(CreateSession {
        model,
        system,
        cwd: None,
        title,
        agent: false,
    })
}

/// Reading a session's messages.
pub fn history(session: String) -> Effect {
    Effect::ask(SessionHistory { session })
}

fn palette_key(app: &mut App, mut text: String, key: &KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => app.mode = Mode::Normal,
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            return super::palette::execute(app, &text);
        }
        KeyCode::Backspace => {
            text.pop();
            app.mode = Mode::Palette(text);
        }
        KeyCode::Char(c)
            if !key
                .modifiers
                .contains(crossterm::event::KeyModifiers::CONTROL) =>
        {
            text.push(c);
            app.mode = Mode::Palette(text);
        }
        _ => {}
    }
    Vec::new()
}
