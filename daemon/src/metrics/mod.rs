//! Metrics: every run's series, in memory and in series files, and the tasks that tail live
//! runs' metrics files.
//!
//! A run gets `REAGENT_METRICS_FILE` (its folder's `metrics.jsonl` unless `--metrics` named
//! another file). [`ingest`] tails it from a thread per live run; [`run::RunMetrics`] holds
//! the series, which the `metrics.*` requests read. Runs that ended keep their series: they
//! are loaded from their files the first time someone asks.

pub(crate) mod files;
pub(crate) mod ingest;
pub(crate) mod parse;
pub mod run;
pub mod series;
pub(crate) mod wandb;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reagent::alert::AlertStatus;
use reagent::metrics::{MetricsList, MetricsQueryReply, QueryWindow, Sample, SeriesPoints};
use reagent::protocol::{QueryMetrics, RpcError, codes};
use series::{Series, Window};

use crate::alerts::rules::{Engine, Rules};
use crate::daemon::{Daemon, State};
use crate::store::IngestRecord;
use run::RunMetrics;

/// The variable that tells a job where to write its metrics.
pub const ENV: &str = "REAGENT_METRICS_FILE";
/// The metrics file name in a run's folder, when the run names none.
pub const DEFAULT_FILE: &str = "metrics.jsonl";
/// The folder of series files in a run's folder.
pub const SERIES_DIR: &str = "series";
/// The widest chart a client may ask for, in columns.
const MAX_COLUMNS: usize = 4096;

/// Each run's whole-run trend as last saved, by run id: what a new client's snapshot shows.
pub type Trends = HashMap<String, reagent::metrics::Trend>;

impl State {
    /// Saves how far a run's metrics were read with its trend, then keeps the trend for
    /// snapshots: a new client sees what a restarted daemon would (at most a second behind
    /// the `metrics` events, which carry the live one).
    pub fn save_metrics_progress(
        &mut self,
        run: &str,
        record: &IngestRecord,
        trend: Option<reagent::metrics::Trend>,
    ) -> anyhow::Result<()> {
        self.store().save_progress(run, record, trend.as_ref())?;
        if let Some(trend) = trend {
            self.trends.insert(run.to_string(), trend);
        }
        Ok(())
    }
}

/// Every run's metrics that were needed since the daemon started.
#[derive(Default)]
pub struct Registry {
    runs: Mutex<HashMap<String, Arc<Mutex<RunMetrics>>>>,
}

impl Registry {
    /// A run's metrics, loaded from the store and its series files on first use; `None` for
    /// a run from before metrics existed. The loading happens outside the registry's lock,
    /// so a run whose series files are large holds up no other run's metrics; should two
    /// callers load the same run at once, the first one kept is the one both get.
    pub fn get(&self, daemon: &Daemon, id: &str) -> anyhow::Result<Option<Arc<Mutex<RunMetrics>>>> {
        if let Some(run) = self.runs().get(id) {
            return Ok(Some(run.clone()));
        }
        let Some(loaded) = load(daemon, id)? else {
            return Ok(None);
        };
        let mut runs = self.runs();
        let run = runs.entry(id.to_string()).or_insert(loaded);
        Ok(Some(run.clone()))
    }

    fn runs(&self) -> MutexGuard<'_, HashMap<String, Arc<Mutex<RunMetrics>>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A run's metrics from the store and its series files, with its alert rules' state.
fn load(daemon: &Daemon, id: &str) -> anyhow::Result<Option<Arc<Mutex<RunMetrics>>>> {
    let Some(record) = daemon.state().store().ingest(id)? else {
        return Ok(None);
    };
    let rules = Rules::new(&daemon.config.alerts, &record.rules)
        .or_else(|why| {
            tracing::warn!(run = %id, "ignoring the run's alert rules: {why}");
            Rules::new(&daemon.config.alerts, &[])
        })
        .map_err(|why| anyhow::anyhow!("[alerts] thresholds: {why}"))?;
    let mut engine = Engine::new(rules);
    // Alerts still open from before a restart keep their rules quiet.
    let open = AlertStatus::Open;
    for alert in (daemon.state().alerts().iter()).filter(|a| a.run == id && a.status == open) {
        engine.claim(alert.rule, alert.subject.as_deref());
    }
    let dir = daemon.paths.run_dir(id).join(SERIES_DIR);
    let run = RunMetrics::load(&dir, record, engine)?;
    Ok(Some(Arc::new(Mutex::new(run))))
}

impl Registry {
    /// Lets an ended run's metrics go: its series stay in their files and come back on the
    /// next query, so a daemon that has run thousands of jobs holds only the live ones.
    pub fn forget(&self, id: &str) {
        self.runs().remove(id);
    }
}

/// Locks a run's metrics; a poisoned lock only means a panic elsewhere.
pub fn lock(run: &Mutex<RunMetrics>) -> MutexGuard<'_, RunMetrics> {
    run.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a new run's metrics file is: `--metrics` relative to its cwd, else its folder's.
pub fn file_for(
    daemon: &Daemon,
    id: &str,
    cwd: &std::path::Path,
    asked: Option<PathBuf>,
) -> PathBuf {
    match asked {
        Some(path) => cwd.join(path),
        None => daemon.paths.run_dir(id).join(DEFAULT_FILE),
    }
}

/// `metrics.list`: every series of a run with its count and newest point.
pub fn list(daemon: &Daemon, query: &str) -> Result<MetricsList, RpcError> {
    let run = &daemon.state().resolve(query)?.clone();
    let Some(metrics) = daemon
        .metrics
        .get(daemon, &run.id)
        .map_err(crate::daemon::internal)?
    else {
        return Ok(MetricsList {
            run: run.id.clone(),
            path: daemon.paths.run_dir(&run.id).join(DEFAULT_FILE),
            lines: 0,
            malformed: 0,
            metrics: Vec::new(),
            wandb: run.wandb.clone(),
        });
    };
    let metrics = lock(&metrics);
    Ok(MetricsList {
        run: run.id.clone(),
        path: metrics.record.path.clone(),
        lines: metrics.record.lines,
        malformed: metrics.record.malformed,
        metrics: metrics.summaries(),
        wandb: run.wandb.clone(),
    })
}

/// `metrics.query`: each series asked for (all when none), downsampled for a chart.
pub fn query(daemon: &Daemon, query: &QueryMetrics) -> Result<MetricsQueryReply, RpcError> {
    let run = &daemon.state().resolve(&query.run)?.clone();
    if query.columns == 0 || query.columns > MAX_COLUMNS {
        let message = format!("`columns`: {} is outside 1 to {MAX_COLUMNS}", query.columns);
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    }
    let window = match query.window {
        QueryWindow::All => Window::All,
        QueryWindow::LastSteps(n) if n.is_finite() && n > 0.0 => Window::LastSteps(n),
        QueryWindow::LastSteps(n) => {
            let message = format!("`window`: last {n} steps is not a positive number of steps");
            return Err(RpcError::new(codes::INVALID_PARAMS, message));
        }
    };
    let mut reply = MetricsQueryReply {
        run: run.id.clone(),
        series: Vec::new(),
    };
    let Some(metrics) = daemon
        .metrics
        .get(daemon, &run.id)
        .map_err(crate::daemon::internal)?
    else {
        return Ok(reply);
    };
    let metrics = lock(&metrics);
    let names = if query.names.is_empty() {
        metrics.names().to_vec()
    } else {
        query.names.clone()
    };
    for name in names {
        if let Some(series) = metrics.series(&name) {
            reply
                .series
                .push(chart(name, series, window, query.columns));
        }
    }
    Ok(reply)
}

/// One series as a chart of `columns` columns of `window` needs it.
fn chart(name: String, series: &Series, window: Window, columns: usize) -> SeriesPoints {
    let mut points = series.downsample(window, columns);
    // JSON has no NaN: non-finite points travel as their steps, and as `last`.
    points.retain(|(x, y)| x.is_finite() && y.is_finite());
    SeriesPoints {
        name,
        points,
        total: series.len() as u64,
        last: series.last().map(|(step, value)| Sample { step, value }),
        nan_steps: series.nonfinite_steps(window, columns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_carries_every_nan_step_its_points_leave_out() {
        let mut series = Series::new();
        for step in 0..1000 {
            let value = match step {
                100 | 700 => f64::NAN,
                701 => f64::NEG_INFINITY,
                999 => f64::INFINITY,
                _ => 1.0,
            };
            series.push(f64::from(step), value);
        }
        let reply = chart("loss".into(), &series, Window::All, 200);
        assert!(reply.points.iter().all(|(_, y)| y.is_finite()));
        assert_eq!(
            reply.nan_steps,
            [100.0, 700.0, 999.0],
            "700 and 701 share a column"
        );
        let zoomed = chart("loss".into(), &series, Window::LastSteps(500.0), 1000);
        assert_eq!(zoomed.nan_steps, [700.0, 701.0, 999.0]);
        assert!(zoomed.last.is_some_and(|last| last.value.is_infinite()));
        // Bounded by the columns, however many NaNs there are.
        let mut dead = Series::new();
        for step in 0..100_000 {
            dead.push(f64::from(step), f64::NAN);
        }
        assert_eq!(
            chart("loss".into(), &dead, Window::All, 80).nan_steps.len(),
            80
        );
        let json = serde_json::to_value(chart("acc".into(), &Series::new(), Window::All, 8));
        assert!(
            json.unwrap().get("nan_steps").is_none(),
            "left out when empty"
        );
    }
}
