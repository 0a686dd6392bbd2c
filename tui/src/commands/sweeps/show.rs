//! `reagent sweep show ID [--rank METRIC] [--max] [--json]`: a sweep's runs with their
//! parameters and status, ranked best first by a metric's best value.
//!
//! The values come from `metrics.query` per run with a single column: the daemon's
//! downsampling keeps each column's smallest and largest point, so one column is exactly the
//! series' minimum and maximum, and `last` is its newest value.

use std::collections::BTreeMap;
use std::process::ExitCode;

use reagent::client::Client;
use reagent::metrics::QueryWindow;
use reagent::number::short;
use reagent::protocol::{ListRuns, QueryMetrics};
use reagent::run::{RunInfo, RunStatus};
use reagent::sweep::{SweepInfo, SweepRef, by_best};
use serde::Serialize;

use super::{progress, state};
use crate::commands::{Ctx, aligned, print_json};
use crate::sanitize;

/// The metric a ranking uses when none is asked for.
const DEFAULT_METRIC: &str = "loss";

/// `sweep show --json`: the sweep as `sweep.show` returns it, plus its runs ranked.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    sweep: SweepInfo,
    /// The metric ranked by; none when no run reports the default one.
    metric: Option<String>,
    /// `min` or `max`: which end is best.
    best_is: &'static str,
    /// The runs, best first; runs without a value last, in expansion order.
    ranked: Vec<Ranked>,
}

/// One run in a ranking.
#[derive(Debug, Serialize)]
struct Ranked {
    id: String,
    name: Option<String>,
    status: Option<RunStatus>,
    /// Parameter values by name.
    params: BTreeMap<String, String>,
    /// The metric's newest value.
    last: Option<f64>,
    /// Its step.
    step: Option<f64>,
    /// Its smallest (or, with `--max`, largest) finite value so far.
    best: Option<f64>,
}

/// Shows a sweep, ranked by `rank` (or `loss` when a run has it).
pub async fn show(
    ctx: &Ctx,
    sweep: &str,
    rank: Option<String>,
    max: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let info = client
        .call(&SweepRef {
            sweep: sweep.into(),
        })
        .await?;
    let runs = client.call(&ListRuns::default()).await?;
    let metric = rank.clone().unwrap_or_else(|| DEFAULT_METRIC.into());
    let mut ranked = Vec::with_capacity(info.runs.len());
    for (i, id) in info.runs.iter().enumerate() {
        let run = runs.iter().find(|r| &r.id == id);
        ranked.push(score(&client, id, run, info.params.get(i), &metric, max).await?);
    }
    let reported = ranked.iter().any(|r| r.last.is_some());
    let metric = (rank.is_some() || reported).then_some(metric);
    // A stable sort: runs without a value keep their expansion order, at the end.
    ranked.sort_by(|a, b| by_best(a.best, b.best, max));
    let shown = Shown {
        metric,
        best_is: if max { "max" } else { "min" },
        ranked,
        sweep: info,
    };
    if json {
        print_json(&shown)?;
    } else {
        print!("{}", text(&shown, &runs));
    }
    Ok(ExitCode::SUCCESS)
}

/// A run's parameters, status and values of `metric`.
async fn score(
    client: &Client,
    id: &str,
    run: Option<&RunInfo>,
    params: Option<&Vec<(String, String)>>,
    metric: &str,
    max: bool,
) -> anyhow::Result<Ranked> {
    let mut ranked = Ranked {
        id: id.to_string(),
        name: run.and_then(|r| r.name.clone()),
        status: run.map(|r| r.status),
        params: params.cloned().unwrap_or_default().into_iter().collect(),
        last: None,
        step: None,
        best: None,
    };
    if run.is_none() {
        return Ok(ranked);
    }
    let reply = client
        .call(&QueryMetrics {
            run: id.to_string(),
            names: vec![metric.to_string()],
            window: QueryWindow::All,
            columns: 1,
        })
        .await?;
    if let Some(series) = reply.series.into_iter().next() {
        ranked.last = series.last.map(|s| s.value);
        ranked.step = series.last.map(|s| s.step);
        let values = series.points.iter().map(|&(_, y)| y);
        ranked.best = if max {
            values.reduce(f64::max)
        } else {
            values.reduce(f64::min)
        };
    }
    Ok(ranked)
}

/// The human form: a header, then one row per run with a column per parameter.
fn text(shown: &Shown, runs: &[RunInfo]) -> String {
    let sweep = &shown.sweep;
    let mut out = format!(
        "sweep {} ({}): {} · {}\ncommand: {}\n",
        sanitize::line(&sweep.name),
        sweep.id,
        progress(sweep, runs),
        state(sweep, runs),
        sanitize::line(&sweep.command.join(" "))
    );
    let names: Vec<&str> = shown
        .ranked
        .iter()
        .find(|r| !r.params.is_empty())
        .map(|r| r.params.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut header: Vec<String> = ["#", "ID", "NAME", "STATUS"].map(String::from).to_vec();
    header.extend(names.iter().map(|n| n.to_string()));
    match &shown.metric {
        Some(metric) => {
            out.push_str(&format!(
                "ranked by {} ({} is best)\n",
                sanitize::line(metric),
                if shown.best_is == "max" {
                    "highest"
                } else {
                    "lowest"
                }
            ));
            header.extend([metric.to_uppercase(), shown.best_is.to_uppercase()]);
        }
        None => out.push_str(&format!(
            "no run has reported `{DEFAULT_METRIC}` yet; --rank METRIC ranks by another\n"
        )),
    }
    let mut rows = vec![header];
    let value = |v: Option<f64>| v.map_or("-".into(), short);
    for (i, run) in shown.ranked.iter().enumerate() {
        let mut row = vec![
            if run.best.is_some() {
                (i + 1).to_string()
            } else {
                "-".into()
            },
            run.id.clone(),
            run.name.clone().unwrap_or_else(|| "-".into()),
            run.status.map_or("gone".into(), |s| s.to_string()),
        ];
        for name in &names {
            row.push(run.params.get(*name).cloned().unwrap_or_else(|| "-".into()));
        }
        if shown.metric.is_some() {
            row.extend([value(run.last), value(run.best)]);
        }
        rows.push(row);
    }
    out.push_str(&aligned(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranking_shows_five_significant_digits() {
        let sweep = SweepInfo {
            id: "5eef".into(),
            name: "lr".into(),
            command: vec!["train".into()],
            parallel: 1,
            runs: vec!["ab12".into()],
            params: Vec::new(),
            created_at: 0,
            stopped: false,
        };
        let shown = Shown {
            sweep,
            metric: Some("loss".into()),
            best_is: "min",
            ranked: vec![Ranked {
                id: "ab12".into(),
                name: None,
                status: None,
                params: BTreeMap::new(),
                last: Some(6.2092542530000046),
                step: Some(9.0),
                best: Some(1.23456789e-5),
            }],
        };
        let text = text(&shown, &[]);
        let row = text.lines().last().unwrap_or_default();
        assert!(row.ends_with("6.2093  1.2346e-5"), "{text}");
    }
}
