//! Rendering: a pure function of [`App`]. No IO, no daemon calls; the same state always
//! draws the same frame, which is what the snapshot tests rely on.
//!
//! Each area has its own module; later panels (charts, alerts, GPUs, chat) add theirs and a
//! slot in [`areas`].

mod alerts;
mod charts;
pub mod chat;
pub mod chat_popups;
mod gpus;
mod highlight;
pub mod markdown;
pub mod messages;
mod overlays;
pub(crate) mod pane;
mod runs_list;
mod status_bar;
mod wrap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};

use crate::app::App;
use crate::app::side::{self, Side};
use crate::app::state::{Focus, Mode, View};

/// Where each panel goes on a screen of `size`.
pub struct Areas {
    /// The runs list, when shown.
    pub runs: Option<Rect>,
    /// The run pane (or its placeholder).
    pub pane: Rect,
    /// The one-line status bar.
    pub status: Rect,
    /// The GPU panel, when shown.
    pub gpus: Option<Rect>,
    /// The side panel beside the pane, when chosen and the window is wide enough.
    pub side: Option<Rect>,
}

/// Splits the screen: the runs list on the left (when shown), the pane, the GPU panel below
/// them (when shown), the status bar.
pub fn areas(app: &App, area: Rect) -> Areas {
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let (main, gpus) = if app.show_gpus {
        let height = gpus::height(&app.gpus, main.height);
        let [main, panel] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(height)]).areas(main);
        (main, Some(panel))
    } else {
        (main, None)
    };
    // The side panel, in the runs view of a wide enough window, takes the right of it.
    let (main, side) = match app.side.shown {
        Some(_) if app.view == View::Runs && main.width >= side::MIN_SCREEN => {
            let room = main.width.saturating_sub(side::PANE_KEEPS + app.runs_width);
            let width = app.side.width.min(room).max(side::MIN_WIDTH);
            let [main, panel] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(main);
            (main, Some(panel))
        }
        _ => (main, None),
    };
    if !app.show_runs {
        return Areas {
            runs: None,
            pane: main,
            status,
            gpus,
            side,
        };
    }
    let width = app.runs_width.min(main.width.saturating_sub(12));
    let [runs, pane] =
        Layout::horizontal([Constraint::Length(width), Constraint::Min(0)]).areas(main);
    Areas {
        runs: Some(runs),
        pane,
        status,
        gpus,
        side,
    }
}

/// The areas on the current screen.
pub fn areas_of(app: &App) -> Areas {
    areas(app, Rect::new(0, 0, app.size.0, app.size.1))
}

/// The pane's inner size (cols, rows) on the current screen: what a run is resized to when
/// this client types into it.
pub fn pane_size(app: &App) -> (u16, u16) {
    let pane = areas_of(app).pane;
    (pane.width.saturating_sub(2), pane.height.saturating_sub(2))
}

/// Draws the whole cockpit.
pub fn render(app: &App, frame: &mut Frame<'_>) {
    let areas = areas(app, frame.area());
    match app.view {
        View::Runs => {
            if let Some(runs) = areas.runs {
                runs_list::render(app, frame, runs);
            }
            pane::render(app, frame, areas.pane);
            if let Some(panel) = areas.side {
                side(app, frame, panel);
            }
        }
        View::Chat => {
            if let Some(list) = areas.runs {
                chat::sessions(app, frame, list);
            }
            chat::conversation(app, frame, areas.pane, Focus::Pane);
        }
        View::Charts => {
            if let Some(runs) = areas.runs {
                runs_list::render(app, frame, runs);
            }
            charts::render(app, frame, areas.pane, Focus::Pane);
        }
        View::Alerts => {
            let whole = areas.runs.map_or(areas.pane, |runs| runs.union(areas.pane));
            alerts::render(app, frame, whole, Focus::Runs);
        }
    }
    if let Some(panel) = areas.gpus {
        gpus::render(app, frame, panel, None);
    }
    status_bar::render(app, frame, areas.status);
    match &app.mode {
        Mode::Help => overlays::help(app, frame),
        Mode::Palette(typed) => overlays::palette(typed, frame, areas.status),
        Mode::Confirm(confirm) => overlays::confirm(confirm, frame),
        Mode::Search(typed) => overlays::search(typed, frame, areas.status),
        Mode::Models(picker) => chat_popups::models(app, picker, frame),
        Mode::Usage => chat_popups::usage(app, frame),
        Mode::Normal | Mode::Input | Mode::Compose => {}
    }
}

/// The side panel: the chosen view drawn in it, its border lit when it has the keyboard.
fn side(app: &App, frame: &mut Frame<'_>, area: Rect) {
    match app.side.shown {
        Some(Side::Chat) => chat::conversation(app, frame, area, Focus::Side),
        Some(Side::Charts) => charts::render(app, frame, area, Focus::Side),
        Some(Side::Alerts) => alerts::render(app, frame, area, Focus::Side),
        Some(Side::Gpus) => gpus::render(app, frame, area, Some(Focus::Side)),
        None => {}
    }
}

/// The border style of a panel: bright when it has the keyboard.
fn border(app: &App, focus: Focus) -> Style {
    match (app.focus == focus, &app.mode) {
        (true, Mode::Input) => Style::new().fg(Color::Green),
        (true, _) => Style::new().fg(Color::Cyan),
        (false, _) => Style::new().fg(Color::DarkGray),
    }
}

#[cfg(test)]
mod gpu_tests;
#[cfg(test)]
mod pane_tests;
#[cfg(test)]
mod side_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_chat;
#[cfg(test)]
mod tidy_tests;
#[cfg(test)]
mod watch_tests;
