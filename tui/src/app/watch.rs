//! What the charts and alerts views hold: the chart settings (metric, log scale, smoothing,
//! zoom, runs overlaid, outlier clip, grid, cursor), the downsampled points the daemon sent
//! for them, and the alerts.
//!
//! The cockpit keeps only downsampled points (a few hundred per series); it asks again when a
//! `metrics` event says a charted run has new points, at most [`REQUERY_MS`] apart.

use std::collections::HashMap;

use reagent::alert::{AlertInfo, AlertStatus};
use reagent::metrics::{MetricsQueryReply, QueryWindow, SeriesPoints, Trend, main_metric};

/// Least time between two rounds of chart queries: 4 a second at most.
pub const REQUERY_MS: i64 = 250;

/// Smoothing choices (EMA weight of the past); 0 is raw.
pub const SMOOTHING: [f64; 5] = [0.0, 0.6, 0.8, 0.9, 0.99];

/// Zoom choices: every step, else the last N steps.
pub const ZOOMS: [Option<f64>; 5] = [None, Some(1e3), Some(1e4), Some(1e5), Some(1e6)];

/// How many metrics the grid shows at once (2x2): more would leave each chart too small to
/// read at 80x24.
pub const GRID: usize = 4;

/// The charts view's settings and data.
#[derive(Debug, Default)]
pub struct Charts {
    /// The metric charted, by name: it stays the same as the selection moves between runs
    /// that report different series. `None` charts `loss`, else a run's first series.
    pub metric: Option<String>,
    /// Log scale on the y axis.
    pub log: bool,
    /// Index into [`SMOOTHING`].
    pub smoothing: usize,
    /// Index into [`ZOOMS`].
    pub zoom: usize,
    /// Runs marked (space) to overlay on the selected one, by id.
    pub marked: Vec<String>,
    /// Whether the overlay's ranking puts the highest value first (accuracy) rather than the
    /// lowest (loss).
    pub max: bool,
    /// Whether the y range is clipped to the 1st–99th percentile of the shown points, so one
    /// spike does not flatten every curve.
    pub clip: bool,
    /// Whether up to [`GRID`] of the selected run's metrics are shown at once, from the
    /// charted one on, rather than the charted metric alone.
    pub grid: bool,
    /// The step the cursor stands on, whose values the chart reads out; `None` hides it. Kept
    /// as a step, not a column, so it stays on the same point as new points arrive.
    pub cursor: Option<f64>,
    /// The latest reply per run id.
    pub data: HashMap<String, MetricsQueryReply>,
    /// Whether a charted run has points the data does not show yet.
    pub stale: bool,
    /// When queries last went out (Unix ms).
    pub queried_at: i64,
    /// Each run's main metric over its whole run, by run id, for the runs list's sparklines:
    /// from the snapshot, then from `metrics` events.
    pub sparks: HashMap<String, Trend>,
}

impl Charts {
    /// The window the zoom asks for.
    pub fn window(&self) -> QueryWindow {
        match ZOOMS[self.zoom % ZOOMS.len()] {
            None => QueryWindow::All,
            Some(steps) => QueryWindow::LastSteps(steps),
        }
    }

    /// The EMA weight of the past.
    pub fn alpha(&self) -> f64 {
        SMOOTHING[self.smoothing % SMOOTHING.len()]
    }

    /// Every series name of `run`, in the daemon's order.
    pub fn names(&self, run: &str) -> Vec<&str> {
        self.data
            .get(run)
            .map(|reply| reply.series.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default()
    }

    /// The charted metric's name for the selected run `run`: the chosen one when the run
    /// reports it, else its main metric (`loss`, else its first series).
    pub fn metric_name(&self, run: &str) -> Option<&str> {
        let names = self.names(run);
        let chosen = self.metric.as_deref();
        names
            .iter()
            .find(|name| Some(**name) == chosen)
            .or_else(|| main_metric(&names).map(|i| &names[i]))
            .copied()
    }

    /// Charts the metric `step` places after (or before, when negative) the one charted for
    /// `run`, in the run's order, wrapping around.
    pub fn cycle_metric(&mut self, run: &str, step: isize) {
        let names = self.names(run);
        let Some(current) = self.metric_name(run) else {
            return;
        };
        let at = names.iter().position(|name| *name == current).unwrap_or(0);
        let next = (at as isize + step).rem_euclid(names.len() as isize) as usize;
        self.metric = Some(names[next].to_string());
    }

    /// The metrics the grid shows for `run`: the charted one, then the ones after it in the
    /// run's order (wrapping), at most [`GRID`]; `[` and `]` thus scroll the grid too.
    pub fn grid_metrics(&self, run: &str) -> Vec<&str> {
        let names = self.names(run);
        let Some(current) = self.metric_name(run) else {
            return Vec::new();
        };
        let at = names.iter().position(|name| *name == current).unwrap_or(0);
        (0..names.len().min(GRID))
            .map(|i| names[(at + i) % names.len()])
            .collect()
    }

    /// Moves the cursor about one of `columns` screen columns forward (or back) along the
    /// charted metric of `run`, onto the nearest point beyond, so the readout always names a
    /// real point; the first move puts it on the newest point.
    pub fn move_cursor(&mut self, run: &str, forward: bool, columns: u16) {
        let Some(points) = self
            .metric_name(run)
            .and_then(|metric| self.series(run, metric))
            .map(|series| series.points.as_slice())
        else {
            return;
        };
        let (Some(&(first, _)), Some(&(last, _))) = (points.first(), points.last()) else {
            return;
        };
        let delta = (last - first) / f64::from(columns.max(1));
        let step = match self.cursor {
            None => last,
            Some(at) if forward => {
                let next = points.partition_point(|&(x, _)| x < at + delta);
                points.get(next).map_or(last, |&(x, _)| x)
            }
            Some(at) => {
                let next = points.partition_point(|&(x, _)| x <= at - delta);
                next.checked_sub(1).map_or(first, |i| points[i].0)
            }
        };
        self.cursor = Some(step);
    }

    /// A run's points of metric `name`, if the daemon sent them.
    pub fn series(&self, run: &str, name: &str) -> Option<&SeriesPoints> {
        self.data.get(run)?.series.iter().find(|s| s.name == name)
    }

    /// Marks or unmarks a run for the overlay.
    pub fn toggle_mark(&mut self, run: &str) {
        match self.marked.iter().position(|id| id == run) {
            Some(i) => {
                self.marked.remove(i);
            }
            None => self.marked.push(run.to_string()),
        }
    }

    /// Whether new points of `run` concern the charts.
    pub fn touched(&mut self, run: &str, selected: Option<&str>) {
        if selected == Some(run) || self.marked.iter().any(|id| id == run) {
            self.stale = true;
        }
    }
}

/// The alerts view's list.
#[derive(Debug, Default)]
pub struct Alerts {
    /// Every alert, oldest first.
    pub alerts: Vec<AlertInfo>,
    /// Index of the highlighted alert.
    pub selected: usize,
    /// Whether the highlighted alert's details are shown.
    pub detail: bool,
}

impl Alerts {
    /// Adds or replaces an alert (from an event or a reply).
    pub fn upsert(&mut self, alert: AlertInfo) {
        match self.alerts.iter_mut().find(|a| a.id == alert.id) {
            Some(existing) => *existing = alert,
            None => self.alerts.push(alert),
        }
    }

    /// Alerts waiting for an answer: the status bar's badge.
    pub fn open(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Open)
            .count()
    }

    /// The highlighted alert.
    pub fn current(&self) -> Option<&AlertInfo> {
        self.alerts.get(self.selected)
    }
}
