//! The charts view: line charts of the selected run's metrics over steps, in braille, with
//! the marked runs overlaid and ranked in a side list by the metric's newest value, or up to
//! four metrics at once in a grid. Log scale, EMA smoothing, the outlier clip and zoom are
//! applied here, to the downsampled points the daemon sent, so changing them needs no new
//! query. Each chart is drawn by [`plot`], its axes by [`axes`].

mod axes;
mod marks;
mod plot;
#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use reagent::number::{Short, short};
use reagent::run::RunInfo;
use reagent::sweep::by_best;

use self::marks::{Mark, marks};
use self::plot::{Charted, Plot};
use super::border;
use crate::app::App;
use crate::app::state::Focus;
use crate::app::watch::{Charts, ZOOMS};

/// Line colours of the overlaid runs, the selected run first.
const COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
];

/// Draws the chart panel in `area`.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let charts = &app.charts;
    let block = Block::bordered().border_style(border(app, panel));
    let Some(run) = app.selected_run() else {
        let text = Paragraph::new("no run selected").block(block.title(" Charts "));
        frame.render_widget(text, area);
        return;
    };
    let Some(metric) = charts.metric_name(&run.id) else {
        let text = format!(
            "no metrics from {} yet: a job appends JSON lines (one object per step) to \
             $REAGENT_METRICS_FILE",
            run.label()
        );
        let text = Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(block.title(" Charts "));
        frame.render_widget(text, area);
        return;
    };
    let mut runs = vec![run];
    runs.extend(
        charts
            .marked
            .iter()
            .filter(|id| **id != run.id)
            .filter_map(|id| app.runs.iter().find(|r| &r.id == id)),
    );
    let block = block.title(title(charts, metric, &app.charts.names(&run.id)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let alerts = &app.alerts.alerts;
    if charts.grid {
        let metrics = charts.grid_metrics(&run.id);
        let cells = grid(inner, metrics.len());
        for (i, (metric, cell)) in metrics.iter().zip(cells).enumerate() {
            let lines = charted(charts, &runs, metric);
            let marks = marks(alerts, &ids, &lines);
            // The charted metric's cell stands out: `[` and `]` move the grid from it.
            let style = match i {
                0 => Style::new().add_modifier(Modifier::BOLD),
                _ => Style::new().fg(Color::DarkGray),
            };
            let block = Block::new()
                .borders(Borders::TOP)
                .border_style(Style::new().fg(Color::DarkGray))
                .title(Span::styled(format!(" {metric} "), style));
            let plot_area = block.inner(cell);
            frame.render_widget(block, cell);
            plot::draw(frame, plot_area, &settings(charts, &lines, &marks, false));
        }
        return;
    }
    let lines = charted(charts, &runs, metric);
    let marks = marks(alerts, &ids, &lines);
    let overlay = lines.len() > 1;
    let (chart_area, list_area) = if overlay {
        let [chart, list] = Layout::horizontal([
            Constraint::Min(10),
            Constraint::Length(list_width(&lines, inner)),
        ])
        .areas(inner);
        (chart, Some(list))
    } else {
        (inner, None)
    };
    plot::draw(
        frame,
        chart_area,
        &settings(charts, &lines, &marks, !overlay),
    );
    if let Some(list_area) = list_area {
        frame.render_widget(ranking(charts, metric, &lines), list_area);
    }
}

/// The lines of `metric`, one per run: each run keeps its colour (by its place, the selected
/// run first) whatever its rank.
fn charted<'a>(charts: &'a Charts, runs: &[&RunInfo], metric: &str) -> Vec<Charted<'a>> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            let series = charts.series(&r.id, metric);
            let raw = series.map_or(&[][..], |s| s.points.as_slice());
            Charted {
                label: r.label().to_string(),
                color: COLORS[i % COLORS.len()],
                points: transform(charts, raw),
                raw,
                last: series.and_then(|s| s.last).map(|s| s.value),
                nans: series.map_or(&[][..], |s| s.nan_steps.as_slice()),
            }
        })
        .collect()
}

/// The chart settings of the view for `lines`.
fn settings<'a>(
    charts: &Charts,
    lines: &'a [Charted<'a>],
    marks: &'a [Mark],
    legend: bool,
) -> Plot<'a> {
    Plot {
        lines,
        log: charts.log,
        clip: charts.clip,
        marks,
        cursor: charts.cursor,
        legend,
    }
}

/// The cells of a grid of `count` charts: two columns, as many rows as needed (2x2 for 4).
fn grid(area: Rect, count: usize) -> Vec<Rect> {
    let rows = count.div_ceil(2).max(1);
    let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows]).split(area);
    let mut cells = Vec::with_capacity(count);
    for (r, row) in row_areas.iter().enumerate() {
        let in_row = (count - r * 2).min(2);
        cells.extend(
            Layout::horizontal(vec![Constraint::Fill(1); in_row])
                .split(*row)
                .iter(),
        );
    }
    cells
}

/// The side list of an overlay: the runs ranked by the metric's newest value, best first
/// (lowest, or highest after `o`), runs without a value last.
fn ranking(charts: &Charts, metric: &str, lines: &[Charted]) -> Paragraph<'static> {
    let mut order: Vec<&Charted> = lines.iter().collect();
    order.sort_by(|a, b| by_best(a.last, b.last, charts.max));
    let arrow = if charts.max { "highest" } else { "lowest" };
    let mut text = vec![Line::from(Span::styled(
        format!("{metric}, {arrow} first"),
        Style::new().fg(Color::DarkGray),
    ))];
    for (rank, line) in order.iter().enumerate() {
        let value = line.last.map_or("-".into(), short);
        text.push(Line::from(vec![
            Span::raw(format!("{:>2} ", rank + 1)),
            Span::styled(format!("● {} ", line.label), Style::new().fg(line.color)),
            Span::raw(value),
        ]));
    }
    Paragraph::new(text).block(Block::new().borders(Borders::LEFT))
}

/// Wide enough for the longest row of the ranking, at most half the panel.
fn list_width(lines: &[Charted], inner: Rect) -> u16 {
    let widest = lines
        .iter()
        .map(|line| line.label.chars().count() + line.last.map_or(1, |v| short(v).len()) + 7)
        .max()
        .unwrap_or(0);
    u16::try_from(widest)
        .unwrap_or(u16::MAX)
        .min(inner.width / 2)
}

/// The panel title: the metric, its place among the run's series, and the settings in use.
fn title(charts: &Charts, metric: &str, names: &[&str]) -> Line<'static> {
    let at = names.iter().position(|name| *name == metric).unwrap_or(0);
    let mut text = format!(" {metric} ({}/{})", at + 1, names.len());
    if charts.log {
        text.push_str(" · log");
    }
    if charts.clip {
        text.push_str(" · clip");
    }
    if charts.grid {
        text.push_str(" · grid");
    }
    if charts.alpha() > 0.0 {
        text.push_str(&format!(" · ema {}", charts.alpha()));
    }
    if let Some(steps) = ZOOMS[charts.zoom % ZOOMS.len()] {
        text.push_str(&format!(" · last {} steps", Short(steps)));
    }
    Line::from(text + " ")
}

/// Smoothing, then the log scale (values ≤ 0 have no logarithm and are left out).
pub fn transform(charts: &Charts, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let alpha = charts.alpha();
    let mut smoothed: Option<f64> = None;
    points
        .iter()
        .map(|&(x, y)| {
            let s = smoothed.map_or(y, |s| alpha * s + (1.0 - alpha) * y);
            smoothed = Some(s);
            (x, s)
        })
        .filter_map(|(x, y)| match charts.log {
            true if y > 0.0 => Some((x, y.log10())),
            true => None,
            false => Some((x, y)),
        })
        .collect()
}
