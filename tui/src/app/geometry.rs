//! Where each panel is on the screen: a function of the state, shared by drawing (which fills
//! the areas) and key handling (which pages, cycles focus and resizes a typed-into run by
//! them), so both always agree on the layout.

use ratatui::layout::{Constraint, Layout, Rect};
use reagent::gpu::GpuReport;

use super::side;
use super::state::{App, Mode, View};

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
    /// The wild bar above the status bar: a row per wild-mode loop going on, when any is.
    pub wild: Option<Rect>,
}

/// Rows the wild bar takes at most; more loops than that are counted on its last row.
pub const WILD_ROWS: usize = 3;

/// Splits the screen: the runs list on the left (when shown), the pane, the GPU panel below
/// them (when shown), the status bar.
pub fn areas(app: &App, area: Rect) -> Areas {
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    // Loops going on are always in view, whatever the view: they act on their own.
    let loops = app.agent.live().count().min(WILD_ROWS);
    let (main, wild) = if loops > 0 {
        let rows = u16::try_from(loops).unwrap_or(1).min(main.height / 3);
        let [main, bar] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(rows)]).areas(main);
        (main, (rows > 0).then_some(bar))
    } else {
        (main, None)
    };
    let (main, gpus) = if app.show_gpus {
        let height = gpu_panel_height(&app.gpus, main.height);
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
            wild,
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
        wild,
    }
}

/// Where the pending approval's box goes and how its action fits in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalBox {
    /// The box, borders included.
    pub area: Rect,
    /// Rows the whole action takes at the box's inner width.
    pub rows: usize,
    /// Rows of it the box shows.
    pub shown: usize,
}

impl ApprovalBox {
    /// The furthest the action scrolls: its last row at the box's bottom.
    pub fn max_scroll(&self) -> u16 {
        u16::try_from(self.rows.saturating_sub(self.shown)).unwrap_or(u16::MAX)
    }
}

/// The pending approval's box, when one is pending: a panel above the chat input in the
/// chat view (where the person who talks to the model looks; the messages make room, see
/// [`chat_messages`]), else over the bottom of the panels (their top while keys go to a
/// job). As tall as its action, up to two thirds of that room; drawing and the keys that
/// scroll it both read it from here.
pub fn approval_box(app: &App) -> Option<ApprovalBox> {
    let approval = app.agent.pending()?;
    let areas = areas_of(app);
    let room = if app.view == View::Chat {
        chat_split(areas.pane)[0]
    } else {
        [areas.runs, areas.side]
            .into_iter()
            .flatten()
            .fold(areas.pane, |all, area| all.union(area))
    };
    let (width, _) = inner(room);
    let rows = super::agent::action_rows(&approval.action, width);
    let most = (room.height * 2 / 3).max(5).min(room.height);
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX).min(most);
    // Typing into a job, its prompt is at the bottom more often than not: the box leaves it
    // in view.
    let top = app.mode == Mode::Input && app.view != View::Chat;
    let y = if top { room.y } else { room.bottom() - height };
    let area = Rect::new(room.x, y, room.width, height);
    Some(ApprovalBox {
        area,
        rows,
        shown: usize::from(height.saturating_sub(2)),
    })
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

/// Rows the GPU panel wants on a screen with `room` rows to spare.
pub fn gpu_panel_height(report: &GpuReport, room: u16) -> u16 {
    // Without GPUs, two lines for the reason (it names the library that failed to load);
    // with them, the header, a row per GPU and one per process.
    let lines = if report.gpus.is_empty() {
        2
    } else {
        1 + report.gpus.len() + report.gpus.iter().map(|g| g.processes.len()).sum::<usize>()
    };
    let rows = u16::try_from(lines).unwrap_or(u16::MAX);
    (rows + 2).min(room / 2).max(3)
}

/// A conversation's panel split into its messages and its input box.
pub fn chat_split(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(area)
}

/// The size (width, height) inside a bordered `area`, at least one column wide.
pub fn inner(area: Rect) -> (usize, usize) {
    (
        usize::from(area.width.saturating_sub(2)).max(1),
        usize::from(area.height.saturating_sub(2)),
    )
}

/// The conversation's messages in `area`, its panel: above its input box and, when it is
/// the chat view's (`main`), above the approval box, which there is a panel of its own
/// rather than a cover over the newest messages.
pub fn chat_messages(app: &App, area: Rect, main: bool) -> Rect {
    let [mut messages, _] = chat_split(area);
    if main
        && app.view == View::Chat
        && let Some(placed) = approval_box(app)
    {
        messages.height = messages.height.saturating_sub(placed.area.height);
    }
    messages
}

/// The conversation's inner size (width, height) on the current screen: what key handling
/// scrolls by.
pub fn chat_viewport(app: &App) -> (usize, usize) {
    inner(chat_messages(app, areas_of(app).pane, true))
}

/// The first row of the job's screen a pane of `height` rows shows: when the pane is shorter
/// than the job's terminal, the rows at the cursor (the newest output) stay in view and the
/// rows above it are reached by scrolling back, as when a terminal shrinks (tmux anchors a
/// larger window at its cursor the same way).
pub fn anchor_top(screen: &vt100::Screen, height: u16) -> u16 {
    let (rows, _) = screen.size();
    let (cursor_row, _) = screen.cursor_position();
    (cursor_row + 1)
        .saturating_sub(height)
        .min(rows.saturating_sub(height))
}
