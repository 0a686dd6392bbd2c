//! A chart's axes: which ticks to label (round values, powers of ten on a log scale) and
//! where ratatui's braille canvas puts them, so a label sits on the row or column its value is
//! drawn at.
//!
//! ratatui's `Chart` spreads its labels evenly whatever their values, so the chart is given
//! blank labels (which reserve the rows and columns for them and draw the axis lines) and the
//! labels are written here, at the cells the canvas maps their values to.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use reagent::number::short;

/// One labelled tick: where it is on the axis (in the chart's coordinates, so the log10 of
/// the value on a log scale) and what it says (in the metric's own units).
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Position in chart coordinates.
    pub at: f64,
    /// The label.
    pub label: String,
}

/// Braille dots per cell: 2 across, 4 down.
const DOTS: (u16, u16) = (2, 4);

/// The x axis's title, written at the start of its label row.
pub const X_TITLE: &str = "step";

/// Round tick values inside `[lo, hi]`, about `count` of them: multiples of 1, 2 or 5 × 10^k,
/// as people label axes.
pub fn linear_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    ticks_every(lo, hi, nice_step((hi - lo) / count.max(1) as f64))
}

/// The 1, 2 or 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|n| norm <= *n * (1.0 + 1e-9))
        .unwrap_or(10.0);
    nice * magnitude
}

/// The multiples of `step` inside `[lo, hi]`, computed from integers so they stay round.
fn ticks_every(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && step > 0.0) || hi < lo {
        return Vec::new();
    }
    let tolerance = step * 1e-9;
    let first = ((lo - tolerance) / step).ceil();
    let last = ((hi + tolerance) / step).floor();
    if last - first > 1000.0 {
        return Vec::new();
    }
    let count = (last - first).max(-1.0) as i64 + 1;
    (0..count).map(|i| (first + i as f64) * step).collect()
}

/// The y ticks of a range in chart coordinates: plain round values, or on a log scale (where
/// the coordinates are log10 of the values) powers of ten when the range spans a decade or
/// more, else round values of the metric itself; labels are always in the metric's units.
pub fn y_ticks([lo, hi]: [f64; 2], log: bool, count: usize) -> Vec<Tick> {
    let tick = |at: f64, value: f64| Tick {
        at,
        label: short(value),
    };
    if !log {
        return linear_ticks(lo, hi, count)
            .into_iter()
            .map(|v| tick(v, v))
            .collect();
    }
    if (1.0..=3.0).contains(&(hi - lo)) {
        // A few decades: 1, 2 and 5 of each, or a single power of ten would be the only tick.
        let decades = lo.floor() as i32..=hi.ceil() as i32;
        return decades
            .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
            .map(|v| (v.log10(), v))
            .filter(|(p, _)| (lo - 1e-9..=hi + 1e-9).contains(p))
            .map(|(p, v)| tick(p, v))
            .collect();
    }
    if hi - lo >= 1.0 {
        let step = nice_step((hi - lo) / count.max(1) as f64).max(1.0);
        return ticks_every(lo, hi, step)
            .into_iter()
            .map(|p| tick(p, 10f64.powf(p)))
            .collect();
    }
    let (low, high) = (10f64.powf(lo), 10f64.powf(hi));
    linear_ticks(low, high, count)
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(|v| tick(v.log10(), v))
        .collect()
}

/// The x ticks of a range of steps.
pub fn x_ticks([lo, hi]: [f64; 2], count: usize) -> Vec<Tick> {
    linear_ticks(lo, hi, count)
        .into_iter()
        .map(|v| Tick {
            at: v,
            label: short(v),
        })
        .collect()
}

/// Where ratatui's `Chart` puts the plot inside `area` when both axes have labels and the y
/// labels are `label_width` wide: right of the labels and the y axis line, above the x axis
/// line and its label row.
pub fn graph_area(area: Rect, label_width: u16) -> Rect {
    let left = label_width.min(area.width / 3) + 1;
    Rect::new(
        area.x + left,
        area.y,
        area.width.saturating_sub(left),
        area.height.saturating_sub(2),
    )
}

/// The column of `graph` the canvas draws step `x` in, when the x axis spans `bounds`.
pub fn column(x: f64, bounds: [f64; 2], graph: Rect) -> Option<u16> {
    dot(x - bounds[0], bounds, graph.width, DOTS.0).map(|cell| graph.x + cell)
}

/// The row of `graph` the canvas draws value `y` in, when the y axis spans `bounds`.
pub fn row(y: f64, bounds: [f64; 2], graph: Rect) -> Option<u16> {
    dot(bounds[1] - y, bounds, graph.height, DOTS.1).map(|cell| graph.y + cell)
}

/// The cell `offset` into `bounds` falls in, from ratatui's canvas rule: the dot is
/// `round(offset × (dots − 1) / span)`.
fn dot(offset: f64, [lo, hi]: [f64; 2], cells: u16, per_cell: u16) -> Option<u16> {
    let span = hi - lo;
    let dots = f64::from(cells) * f64::from(per_cell);
    if cells == 0 || span <= 0.0 || !(0.0..=span).contains(&offset) {
        return None;
    }
    let dot = (offset * (dots - 1.0) / span).round();
    Some((dot as u16) / per_cell)
}

/// Writes the tick labels of both axes (right-aligned left of the y axis, centred under the
/// x axis after its title) and tick marks on the axis lines. `area` is the chart's area and
/// `graph` its plot, from [`graph_area`].
pub fn draw(
    buf: &mut Buffer,
    area: Rect,
    graph: Rect,
    (x_bounds, x_ticks): ([f64; 2], &[Tick]),
    (y_bounds, y_ticks): ([f64; 2], &[Tick]),
) {
    let style = Style::new().fg(Color::DarkGray);
    if graph.width < 2 || graph.height < 1 || graph.x <= area.x {
        return;
    }
    let axis_x = graph.x - 1;
    let label_width = axis_x - area.x;
    let mut last_row = None;
    for tick in y_ticks {
        let Some(row) = row(tick.at, y_bounds, graph) else {
            continue;
        };
        if last_row == Some(row) {
            continue;
        }
        last_row = Some(row);
        buf[(axis_x, row)].set_symbol("┤").set_style(style);
        let text: String = tick.label.chars().take(usize::from(label_width)).collect();
        let width = text.chars().count() as u16;
        buf.set_string(axis_x - width, row, &text, Style::new());
    }
    let (axis_row, label_row) = (graph.bottom(), graph.bottom() + 1);
    if label_row >= area.bottom() {
        return;
    }
    let mut placed: Vec<(u16, &str)> = Vec::new();
    let mut free = area.x;
    for tick in x_ticks {
        let Some(col) = column(tick.at, x_bounds, graph) else {
            continue;
        };
        buf[(col, axis_row)].set_symbol("┴").set_style(style);
        let width = tick.label.chars().count() as u16;
        let start = col
            .saturating_sub(width / 2)
            .min(graph.right().saturating_sub(width));
        if start >= free && start + width <= area.right() {
            placed.push((start, &tick.label));
            free = start + width + 1;
        }
    }
    // The title goes after the last label, else before the first, else in the last one's
    // place: the axis is always named.
    let title = X_TITLE.len() as u16;
    let first_start = placed.first().map_or(area.right(), |(start, _)| *start);
    let at = if free + title <= area.right() {
        area.right() - title
    } else if area.x + title < first_start {
        area.x
    } else {
        area.right().saturating_sub(title)
    };
    for (start, label) in placed {
        let end = start + label.chars().count() as u16;
        if end < at || start > at + title {
            buf.set_string(start, label_row, label, Style::new());
        }
    }
    buf.set_string(at, label_row, X_TITLE, style);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn linear_ticks_are_round_values_inside_the_range() {
        assert_eq!(linear_ticks(0.0, 1990.0, 4), [0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(linear_ticks(0.191, 4.0, 5), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            labels(&y_ticks([0.25, 0.95], false, 4)),
            ["0.4", "0.6", "0.8"]
        );
        assert_eq!(linear_ticks(3.0, 3.0, 4), [3.0]);
        assert!(linear_ticks(f64::NAN, 1.0, 4).is_empty());
    }

    #[test]
    fn log_ticks_are_powers_of_ten_labelled_in_the_metrics_units() {
        // 1e-4 to 10: five decades.
        let ticks = y_ticks([-4.0, 1.0], true, 6);
        assert_eq!(
            labels(&ticks),
            ["0.0001", "0.001", "0.01", "0.1", "1", "10"]
        );
        assert_eq!(ticks[2].at, -2.0);
        // Fourteen decades, fewer rows: every fifth power.
        let ticks = y_ticks([-12.0, 2.0], true, 4);
        assert_eq!(labels(&ticks), ["1e-10", "1e-5", "1"]);
        // A decade or so: 1, 2 and 5 of each.
        let ticks = y_ticks([0.2f64.log10(), 4f64.log10()], true, 6);
        assert_eq!(labels(&ticks), ["0.2", "0.5", "1", "2"]);
        // Within a decade: round values of the metric, placed at their logarithm.
        let ticks = y_ticks([2f64.log10(), 5f64.log10()], true, 3);
        assert_eq!(labels(&ticks), ["2", "3", "4", "5"]);
        assert!((ticks[1].at - 3f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn cells_follow_the_braille_canvas() {
        let graph = Rect::new(10, 0, 40, 10);
        assert_eq!(column(0.0, [0.0, 100.0], graph), Some(10));
        assert_eq!(column(100.0, [0.0, 100.0], graph), Some(49));
        assert_eq!(column(50.0, [0.0, 100.0], graph), Some(30));
        assert_eq!(column(101.0, [0.0, 100.0], graph), None);
        assert_eq!(row(1.0, [0.0, 1.0], graph), Some(0));
        assert_eq!(row(0.0, [0.0, 1.0], graph), Some(9));
    }
}
