//! The runs list: one row per run with its state at a glance.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use reagent::metrics::{Sample, TREND_POINTS};
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

/// A sparkline of a trend's values in at most `width` eighth blocks, scaled to their range:
/// with more values than columns, each column shows the mean of its share. A non-finite one
/// (a part of the run that was only NaN) shows as `!`, the thing to notice.
pub fn sparkline(points: &[Sample], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let columns = width.min(points.len());
    // A NaN anywhere in a column's share makes its mean NaN, so it is not averaged away.
    let column = |c: usize| {
        let share = &points[c * points.len() / columns..(c + 1) * points.len() / columns];
        share.iter().map(|p| p.value).sum::<f64>() / share.len() as f64
    };
    let finite = (0..columns).map(column).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    (0..columns)
        .map(column)
        .map(|v| {
            if !v.is_finite() {
                '!'
            } else if hi > lo {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BARS[3]
            }
        })
        .collect()
}

/// `label` in at most `width` columns: cut in the middle, where sweep runs' names repeat
/// their sweep's (`lr-bs=32,lr=1e-3` and `lr-bs=64,lr=1e-3` stay told apart by their ends).
fn fit(label: &str, width: usize) -> String {
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= width || width < 5 {
        return label.to_string();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut fitted: String = chars[..head].iter().collect();
    fitted.push('…');
    fitted.extend(&chars[chars.len() - tail..]);
    fitted
}

fn row(
    run: &RunInfo,
    now: i64,
    marked: bool,
    trend: Option<String>,
    name_width: usize,
) -> Row<'static> {
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
        _ => fit(run.label(), name_width - usize::from(marked)),
    };
    let mut cells = vec![
        Cell::from(symbol).style(Style::new().fg(color)),
        if marked {
            // Overlaid in the charts view.
            Cell::from(format!("+{label}")).style(Style::new().fg(Color::Yellow))
        } else {
            Cell::from(label)
        },
        Cell::from(run.status.as_str()).style(Style::new().fg(color)),
        Cell::from(exit),
        Cell::from(runtime),
    ];
    if let Some(trend) = trend {
        cells.push(Cell::from(trend).style(Style::new().fg(Color::Cyan)));
    }
    Row::new(cells)
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
    // The trend column (a sparkline of each run's main metric over its whole run) appears
    // once a run has metrics; it takes what the name can spare past 20 columns.
    let sparks = &app.charts.sparks;
    let trends = !sparks.is_empty();
    let spare = usize::from(area.width.saturating_sub(2 + 26 + 1 + 20));
    let spark_width = spare.clamp(8, TREND_POINTS);
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    let mut titles = vec!["", "NAME", "STATUS", "EXIT", "TIME"];
    if trends {
        widths.push(Constraint::Length(spark_width as u16));
        titles.push("TREND");
    }
    let header = Row::new(titles).style(Style::new().add_modifier(Modifier::BOLD));
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
    let trend = |run: &RunInfo| {
        let points = sparks.get(&run.id).map_or(&[][..], |t| t.points.as_slice());
        trends.then(|| sparkline(points, spark_width))
    };
    let marked = |run: &RunInfo| app.charts.marked.contains(&run.id);
    // What the name column gets: the area less its borders, the other columns and the gaps.
    let others: u16 = 1 + 9 + 5 + 7 + if trends { spark_width as u16 + 1 } else { 0 } + 4;
    let name_width = usize::from(area.width.saturating_sub(2 + others)).max(8);
    let rows = shown
        .iter()
        .map(|run| row(run, app.now, marked(run), trend(run), name_width));
    let table = Table::new(rows, widths)
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

#[cfg(test)]
mod tests {
    #[test]
    fn long_names_are_cut_in_the_middle_so_sweep_runs_stay_apart() {
        let a = super::fit("lr-sweep-bs=32,lr=1e-3", 12);
        let b = super::fit("lr-sweep-bs=32,lr=1e-4", 12);
        assert_eq!(a.chars().count(), 12);
        assert!(a.contains('…'), "{a}");
        assert_ne!(a, b, "the values at the end tell them apart: {a} {b}");
        assert_eq!(super::fit("short", 12), "short");
    }
}
