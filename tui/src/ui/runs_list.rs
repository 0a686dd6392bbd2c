//! The runs list: one row per run with its state at a glance.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use reagent::run::{RunInfo, RunStatus};
use reagent::time::format_duration_ms;

use super::border;
use crate::app::App;
use crate::app::state::Focus;

/// The symbol and colour of a status.
pub fn badge(status: RunStatus) -> (&'static str, Color) {
    match status {
        RunStatus::Queued => ("…", Color::Gray),
        RunStatus::Launching => ("◌", Color::Yellow),
        RunStatus::Running => ("●", Color::Green),
        RunStatus::Finished => ("✓", Color::Blue),
        RunStatus::Failed => ("✗", Color::Red),
        RunStatus::Stopped => ("■", Color::Yellow),
        RunStatus::Lost => ("?", Color::Magenta),
    }
}

fn row(run: &RunInfo, now: i64) -> Row<'static> {
    let (symbol, color) = badge(run.status);
    let exit = match (run.exit_code, run.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("sig{signal}"),
        (None, None) => String::new(),
    };
    let runtime = run
        .runtime_ms(now)
        .map(format_duration_ms)
        .unwrap_or_default();
    // A queued run says what it waits for (GPUs, its sweep's slot) next to its name.
    let label = match (&run.reason, run.status) {
        (Some(reason), RunStatus::Queued) => format!("{} · {reason}", run.label()),
        _ => run.label().to_string(),
    };
    Row::new([
        Cell::from(symbol).style(Style::new().fg(color)),
        Cell::from(label),
        Cell::from(run.status.as_str()).style(Style::new().fg(color)),
        Cell::from(exit),
        Cell::from(runtime),
    ])
}

/// Draws the list with the selected run highlighted.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let mut title = format!(" Runs ({}) ", app.runs.len());
    if let Some(progress) = sweep_progress(app) {
        title.push_str(&format!("· {progress} "));
    }
    let block = Block::bordered()
        .title(title)
        .border_style(border(app, Focus::Runs));
    if app.runs.is_empty() {
        let hint = ratatui::widgets::Paragraph::new("No runs yet.\nPress n to start one.")
            .style(Style::new().fg(Color::DarkGray))
            .block(block);
        frame.render_widget(hint, area);
        return;
    }
    let widths = [
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    let header = Row::new(["", "NAME", "STATUS", "EXIT", "TIME"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let highlight = if app.focus == Focus::Runs {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    // Build only the rows that fit: with thousands of runs, formatting every row each frame
    // would dominate the frame. The selection is kept near the middle once the list scrolls.
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let first = app
        .selected
        .saturating_sub(visible / 2)
        .min(app.runs.len().saturating_sub(visible));
    let shown = &app.runs[first..(first + visible).min(app.runs.len())];
    let table = Table::new(shown.iter().map(|run| row(run, app.now)), widths)
        .header(header)
        .block(block)
        .row_highlight_style(highlight);
    let mut state = TableState::default().with_selected(Some(app.selected - first));
    frame.render_stateful_widget(table, area, &mut state);
}

/// `sweep lr 2/4` for the newest sweep that still has runs to go, counting finished runs.
fn sweep_progress(app: &App) -> Option<String> {
    let status = |id: &String| app.runs.iter().find(|r| &r.id == id).map(|r| r.status);
    let sweep = app.sweeps.iter().rev().find(|sweep| {
        sweep
            .runs
            .iter()
            .any(|id| status(id).is_some_and(|s| !s.is_terminal()))
    })?;
    let done = sweep
        .runs
        .iter()
        .filter(|id| status(id) == Some(RunStatus::Finished))
        .count();
    Some(format!("sweep {} {done}/{}", sweep.name, sweep.runs.len()))
}
