//! The charts view: line charts of one metric of the selected run over steps, in braille,
//! with the marked runs overlaid and ranked in a side list by the metric's newest value; log
//! scale, EMA smoothing and zoom are applied here, to the downsampled points the daemon sent,
//! so changing them needs no new query.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, LegendPosition, Paragraph,
};
use reagent::sweep::by_best;

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
    // Each run keeps its colour (by its place: the selected run first) whatever its rank.
    let lines: Vec<Charted> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let series = charts.series(&r.id, metric);
            Charted {
                label: r.label().to_string(),
                color: COLORS[i % COLORS.len()],
                points: series.map_or_else(Vec::new, |s| transform(charts, &s.points)),
                last: series.and_then(|s| s.last).map(|s| s.value),
            }
        })
        .collect();
    let block = block.title(title(charts, metric, &app.charts.names(&run.id)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
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
    let datasets = lines
        .iter()
        .filter(|line| !line.points.is_empty() || line.last.is_some())
        .map(|line| {
            Dataset::default()
                .name(line.label.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(line.color))
                .data(&line.points)
        })
        .collect();
    let (xs, ys) = bounds(lines.iter().flat_map(|line| line.points.iter()));
    let y_label = |y: f64| number(if charts.log { 10f64.powf(y) } else { y });
    let chart = Chart::new(datasets)
        .legend_position((!overlay).then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)))
        .x_axis(
            Axis::default()
                .bounds(xs)
                .labels([number(xs[0]), number(xs[1])])
                .style(Color::DarkGray),
        )
        .y_axis(
            Axis::default()
                .bounds(ys)
                .labels([y_label(ys[0]), y_label(ys[1])])
                .style(Color::DarkGray),
        );
    frame.render_widget(chart, chart_area);
    if let Some(list_area) = list_area {
        frame.render_widget(ranking(charts, metric, &lines), list_area);
    }
}

/// One charted run: its legend label, colour, transformed points and newest raw value.
struct Charted {
    label: String,
    color: Color,
    points: Vec<(f64, f64)>,
    last: Option<f64>,
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
        let value = line.last.map_or("-".into(), number);
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
        .map(|line| line.label.chars().count() + line.last.map_or(1, |v| number(v).len()) + 7)
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
    if charts.alpha() > 0.0 {
        text.push_str(&format!(" · ema {}", charts.alpha()));
    }
    if let Some(steps) = ZOOMS[charts.zoom % ZOOMS.len()] {
        text.push_str(&format!(" · last {} steps", number(steps)));
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

/// The x and y ranges of the points, widened a little when flat so a line still shows.
fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> ([f64; 2], [f64; 2]) {
    let mut xs = [f64::INFINITY, f64::NEG_INFINITY];
    let mut ys = [f64::INFINITY, f64::NEG_INFINITY];
    for &(x, y) in points {
        xs = [xs[0].min(x), xs[1].max(x)];
        ys = [ys[0].min(y), ys[1].max(y)];
    }
    let widen = |[lo, hi]: [f64; 2]| {
        if !lo.is_finite() {
            [0.0, 1.0]
        } else if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
            [lo - 0.5, hi + 0.5]
        } else {
            [lo, hi]
        }
    };
    (widen(xs), widen(ys))
}

/// A short label: plain for ordinary magnitudes, scientific for tiny or huge ones.
fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
