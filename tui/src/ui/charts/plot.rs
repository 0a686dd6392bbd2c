//! One chart: lines in braille over labelled axes (`step` along x), alerts and NaNs marked on
//! the x axis at their steps, and the cursor with the values of every line at its step.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition};
use reagent::number::Short;

use super::axes;
use super::marks::{Mark, clip_range, nearest};

/// One charted line: a run's series of one metric.
pub struct Charted<'a> {
    /// The legend label (the run's).
    pub label: String,
    /// Its colour, kept by the run's place whatever its rank.
    pub color: Color,
    /// The points as drawn: smoothed, on a log scale in log10.
    pub points: Vec<(f64, f64)>,
    /// The points as the daemon sent them, for the cursor's readout.
    pub raw: &'a [(f64, f64)],
    /// The newest value (which may be NaN).
    pub last: Option<f64>,
    /// The steps where the series was NaN or infinite (the daemon's `nan_steps`): the x range
    /// reaches them, so each is marked even past the last finite point.
    pub nans: &'a [f64],
}

/// What one chart shows and how.
pub struct Plot<'a> {
    /// The lines, the selected run's first.
    pub lines: &'a [Charted<'a>],
    /// Whether the y axis is log10 (the points already are).
    pub log: bool,
    /// Whether the y range leaves out the top and bottom percent of the points.
    pub clip: bool,
    /// Steps marked on the x axis.
    pub marks: &'a [Mark],
    /// The cursor's step.
    pub cursor: Option<f64>,
    /// Whether to draw the legend (one run alone; an overlay has its ranking instead).
    pub legend: bool,
}

/// Smallest area worth labelling: below it the chart is drawn bare.
const MIN_LABELLED: (u16, u16) = (12, 4);

/// Colour of the cursor's line and marker.
const CURSOR: Color = Color::Gray;

/// Draws `plot` in `area`.
pub fn draw(frame: &mut Frame<'_>, area: Rect, plot: &Plot<'_>) {
    let mut area = area;
    if let Some(step) = plot.cursor
        && area.height > MIN_LABELLED.1 + 1
    {
        let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(readout(step, plot.lines), top);
        area = rest;
    }
    let points = || plot.lines.iter().flat_map(|line| line.points.iter());
    let nans = plot.lines.iter().flat_map(|line| line.nans.iter().copied());
    let (xs, mut ys) = bounds(points(), nans);
    if plot.clip
        && let Some(clipped) = clip_range(points().map(|&(_, y)| y).collect())
    {
        ys = widen(clipped);
    }
    let labelled = area.width >= MIN_LABELLED.0 && area.height >= MIN_LABELLED.1;
    let rows = area.height.saturating_sub(2);
    let y_ticks = axes::y_ticks(ys, plot.log, usize::from(rows / 3).clamp(2, 8));
    let label_width = y_ticks
        .iter()
        .map(|t| t.label.chars().count())
        .max()
        .unwrap_or(1);
    let graph = axes::graph_area(area, u16::try_from(label_width).unwrap_or(u16::MAX));
    let x_ticks = axes::x_ticks(xs, usize::from(graph.width / 10).max(2));
    let cursor_line: Vec<(f64, f64)> = plot
        .cursor
        .filter(|step| (xs[0]..=xs[1]).contains(step))
        .map(|step| vec![(step, ys[0]), (step, ys[1])])
        .unwrap_or_default();
    // The cursor first, so the lines keep their colours where they cross it.
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(CURSOR))
            .data(&cursor_line),
    ];
    datasets.extend(
        plot.lines
            .iter()
            .filter(|line| !line.points.is_empty() || line.last.is_some())
            .map(|line| {
                Dataset::default()
                    .name(line.label.clone())
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(line.color))
                    .data(&line.points)
            }),
    );
    let blank = || " ".repeat(label_width);
    let (x_labels, y_labels) = if labelled {
        (vec![String::new(); 2], vec![blank(), blank()])
    } else {
        (Vec::new(), Vec::new())
    };
    let chart = Chart::new(datasets)
        .legend_position(plot.legend.then_some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(50)))
        .x_axis(
            Axis::default()
                .bounds(xs)
                .labels(x_labels)
                .style(Color::DarkGray),
        )
        .y_axis(
            Axis::default()
                .bounds(ys)
                .labels(y_labels)
                .style(Color::DarkGray),
        );
    frame.render_widget(chart, area);
    if !labelled {
        return;
    }
    let buf = frame.buffer_mut();
    axes::draw(buf, area, graph, (xs, &x_ticks), (ys, &y_ticks));
    let cursor = plot.cursor.map(|step| Mark {
        step,
        symbol: "▲",
        color: CURSOR,
    });
    for mark in plot.marks.iter().chain(cursor.as_ref()) {
        if let Some(col) = axes::column(mark.step, xs, graph) {
            buf[(col, graph.bottom())]
                .set_symbol(mark.symbol)
                .set_fg(mark.color);
        }
    }
}

/// `step 1230 · ● train 0.54321 · ● eval 0.6`: each line's value at the point nearest the
/// cursor, at five significant digits.
fn readout(step: f64, lines: &[Charted<'_>]) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("step {}", Short(step)),
        Style::new().fg(CURSOR),
    )];
    for line in lines {
        let value = nearest(line.raw, step).map_or("-".into(), |(_, y)| Short(y).to_string());
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(
            format!("● {} ", line.label),
            Style::new().fg(line.color),
        ));
        spans.push(Span::raw(value));
    }
    Line::from(spans)
}

/// The x and y ranges of the points (the x range reaching the steps `more_xs` too), widened a
/// little when flat so a line still shows.
fn bounds<'a>(
    points: impl Iterator<Item = &'a (f64, f64)>,
    more_xs: impl Iterator<Item = f64>,
) -> ([f64; 2], [f64; 2]) {
    let mut xs = [f64::INFINITY, f64::NEG_INFINITY];
    let mut ys = [f64::INFINITY, f64::NEG_INFINITY];
    for &(x, y) in points {
        xs = [xs[0].min(x), xs[1].max(x)];
        ys = [ys[0].min(y), ys[1].max(y)];
    }
    for x in more_xs {
        xs = [xs[0].min(x), xs[1].max(x)];
    }
    (widen(xs), widen(ys))
}

/// A range fit for an axis: `[0, 1]` when empty, ±0.5 around a single value.
fn widen([lo, hi]: [f64; 2]) -> [f64; 2] {
    if !lo.is_finite() || !hi.is_finite() {
        [0.0, 1.0]
    } else if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        [lo - 0.5, hi + 0.5]
    } else {
        [lo, hi]
    }
}
