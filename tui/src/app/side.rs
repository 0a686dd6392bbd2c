//! The side panel: chat, charts, alerts, the GPUs or the model servers beside the job pane,
//! so a run's output and what is said or measured about it are on screen together (`v`
//! cycles it, `{` `}` size it). The full-screen views (`c`, `m`, `a`, `L`) stay for small
//! terminals.
//!
//! A panel is the same view as its full-screen form, drawn in less room: while it has the
//! keyboard, its keys are that view's keys. The choice is remembered between sessions in
//! `cockpit.json` in the state folder.

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent};
use serde::{Deserialize, Serialize};

use super::keys;
use super::state::{App, Focus, View};
use super::update::{Effect, act, new_session};

/// Narrowest screen that has room for the runs list, a usable pane and a side panel.
pub const MIN_SCREEN: u16 = 120;
/// Narrowest side panel.
pub const MIN_WIDTH: u16 = 30;
/// Columns the pane keeps whatever the side panel's width.
pub const PANE_KEEPS: u16 = 40;

/// What the side panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The open chat session.
    Chat,
    /// The selected run's metrics.
    Charts,
    /// Alerts and their answers.
    Alerts,
    /// The GPUs.
    Gpus,
    /// The model servers.
    Models,
}

/// The side panel's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SidePanel {
    /// What it shows; `None` hides it.
    pub shown: Option<Side>,
    /// Its width in columns.
    pub width: u16,
}

impl Default for SidePanel {
    fn default() -> Self {
        Self {
            shown: None,
            width: 64,
        }
    }
}

impl SidePanel {
    /// The next panel in the cycle: chat, charts, alerts, GPUs, models, none.
    pub fn cycle(&mut self) {
        self.shown = match self.shown {
            None => Some(Side::Chat),
            Some(Side::Chat) => Some(Side::Charts),
            Some(Side::Charts) => Some(Side::Alerts),
            Some(Side::Alerts) => Some(Side::Gpus),
            Some(Side::Gpus) => Some(Side::Models),
            Some(Side::Models) => None,
        };
    }

    /// Reads the remembered panel; anything unreadable means the default.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Remembers the panel for the next cockpit; failing to is no reason to bother anyone.
    pub fn save(&self, path: &Path) {
        if let Ok(json) = serde_json::to_vec(self) {
            let _ = std::fs::write(path, json);
        }
    }
}

/// Whether a chart is on screen (the charts view, or the side panel showing charts), so its
/// points must be kept fresh.
pub fn charts_shown(app: &App) -> bool {
    app.view == View::Charts
        || (app.view == View::Runs
            && app.side.shown == Some(Side::Charts)
            && app.size.0 >= MIN_SCREEN)
}

/// A key while the side panel has the keyboard: cockpit-wide keys act as anywhere, the
/// rest are the panel's view's own keys, as if that view filled the screen.
pub fn key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    if let Some(action) = keys::action_for(key).filter(|action| action.is_global()) {
        return act(app, action);
    }
    match app.side.shown {
        Some(Side::Chat) if key.code == KeyCode::Char('n') => chat_about_selected_run(app),
        Some(Side::Chat) => as_view(app, View::Chat, Focus::Pane, |app| {
            super::chat_keys::normal(app, key)
        }),
        Some(Side::Charts) => as_view(app, View::Charts, Focus::Pane, |app| {
            super::watch_keys::charts_key(app, key)
        }),
        Some(Side::Alerts) => as_view(app, View::Alerts, Focus::Runs, |app| {
            super::watch_keys::alerts_key(app, key)
        }),
        Some(Side::Models) => as_view(app, View::Models, Focus::Runs, |app| {
            super::models_keys::models_key(app, key)
        }),
        Some(Side::Gpus) | None => Vec::new(),
    }
}

/// Runs `handle` as if `view` filled the screen with `focus` on its main panel, then puts
/// the cockpit back: the runs view with the side panel focused, unless the key moved focus.
fn as_view(
    app: &mut App,
    view: View,
    focus: Focus,
    handle: impl FnOnce(&mut App) -> Vec<Effect>,
) -> Vec<Effect> {
    app.view = view;
    app.focus = focus;
    let effects = handle(app);
    if app.view == view {
        app.view = View::Runs;
    }
    if app.focus == focus {
        app.focus = Focus::Side;
    }
    effects
}

/// A new chat session about the selected run: its system prompt holds the run's command,
/// status and, when the pane shows it, its screen.
fn chat_about_selected_run(app: &mut App) -> Vec<Effect> {
    let Some(run) = app.selected_run() else {
        return vec![new_session(None, None, None)];
    };
    let mut system = format!(
        "You help a person who watches a machine-learning run.\n\n\
         Run {label}, {status}, in {cwd}\n$ {command}",
        label = run.label(),
        status = run.status,
        cwd = run.cwd.display(),
        command = run.command_line(),
    );
    let screen = app
        .pane
        .as_ref()
        .filter(|pane| pane.run == run.id)
        .map(|pane| pane.parser.screen().contents());
    if let Some(screen) = screen {
        system.push_str(&format!(
            "\n\nIts terminal shows:\n```\n{}\n```",
            screen.trim_end()
        ));
    }
    let title = format!("about {}", run.label());
    app.say(format!("new session about {}", run.label()), false);
    vec![new_session(None, Some(system), Some(title))]
}
