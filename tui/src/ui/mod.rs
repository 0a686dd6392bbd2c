//! Rendering: a pure function of [`App`]. No IO, no daemon calls; the same state always
//! draws the same frame, which is what the snapshot tests rely on.
//!
//! Each area has its own module; later panels (charts, alerts, GPUs, chat) add theirs and a
//! slot in [`areas`](crate::app::geometry::areas).

mod agent;
mod alerts;
mod charts;
pub mod chat;
pub mod chat_popups;
mod gateway;
mod gpus;
mod highlight;
pub mod markdown;
pub mod messages;
mod models;
mod overlays;
pub(crate) mod pane;
mod runs_list;
mod status_bar;
mod tools;
mod wrap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};

use crate::app::App;
use crate::app::conversation::Typesetter;
use crate::app::geometry::areas;
use crate::app::side::Side;
use crate::app::state::{Focus, Mode, View};

/// The typesetter an [`App`] is built with: how this renderer lays chat messages out as
/// lines, remembering each until it changes.
pub fn typesetter() -> Box<dyn Typesetter> {
    Box::new(messages::Typeset::default())
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
        View::Models => {
            let whole = areas.runs.map_or(areas.pane, |runs| runs.union(areas.pane));
            models::render(app, frame, whole, Focus::Runs);
        }
        View::Gateway => {
            let whole = areas.runs.map_or(areas.pane, |runs| runs.union(areas.pane));
            gateway::render(app, frame, whole, Focus::Runs);
        }
    }
    if let Some(panel) = areas.gpus {
        gpus::render(app, frame, panel, None);
    }
    status_bar::render(app, frame, areas.status);
    if let Some(bar) = areas.wild {
        agent::wild(app, frame, bar);
    }
    // Over the panels, under whatever the keys are busy with (help, the palette, a question).
    agent::approval(app, frame);
    match &app.mode {
        Mode::Help => overlays::help(app, frame),
        Mode::Palette(typed) => overlays::palette(typed, frame, areas.status),
        Mode::Confirm(confirm) => overlays::confirm(confirm, frame),
        Mode::Search(typed) => overlays::search(typed, frame, areas.status),
        Mode::Models(picker) => chat_popups::models(app, picker, frame),
        Mode::Usage => chat_popups::usage(app, frame),
        Mode::Launch(selected) => models::picker(app, *selected, frame),
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
        Some(Side::Models) => models::render(app, frame, area, Focus::Side),
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
mod agent_tests;
#[cfg(test)]
mod gateway_tests;
#[cfg(test)]
mod gpu_tests;
#[cfg(test)]
mod models_tests;
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
