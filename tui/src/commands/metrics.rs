//! `reagent metrics RUN [--json] [-f]`: a run's series, then (with `-f`) their newest values
//! as the daemon reports them, until the run ends.

use std::process::ExitCode;

use reagent::client::Update;
use reagent::metrics::{Latest, MetricsList};
use reagent::number::{Short, short};
use reagent::protocol::{EventKind, ListMetrics, ListRuns};
use reagent::run::RunInfo;

use super::{Ctx, aligned, print_json};
use crate::exit::Unreachable;
use crate::sanitize;

/// Prints the run's series; with `follow`, one line per update until the run ends.
pub async fn metrics(ctx: &Ctx, run: &str, json: bool, follow: bool) -> anyhow::Result<ExitCode> {
    let (client, notes) = ctx.connect().await?;
    // Subscribe before listing, so no update between the two is missed.
    let mut updates = if follow {
        Some(client.subscribe(notes, "reagent metrics -f").await?.1)
    } else {
        None
    };
    let list = client.call(&ListMetrics { run: run.into() }).await?;
    if json {
        print_json(&list)?;
    } else {
        print!("{}", summary(&list));
    }
    let Some(updates) = updates.as_mut() else {
        return Ok(ExitCode::SUCCESS);
    };
    let id = list.run;
    let runs = client.call(&ListRuns::default()).await?;
    if ended(&runs, &id) {
        return Ok(ExitCode::SUCCESS);
    }
    while let Some(update) = updates.next().await? {
        let event = match update {
            Update::Event(event) => event,
            Update::Output(_) => continue,
            // The events missed come next; a snapshot instead says whether the run ended.
            Update::Resynced(None) => continue,
            Update::Resynced(Some(snapshot)) if ended(&snapshot.runs, &id) => {
                return Ok(ExitCode::SUCCESS);
            }
            Update::Resynced(Some(_)) => continue,
        };
        match event.kind {
            EventKind::Metrics {
                run,
                last_step,
                latest,
                ..
            } if run == id => {
                if json {
                    let line = serde_json::json!({ "step": last_step, "latest": latest });
                    println!("{line}");
                } else {
                    println!("{}", update_line(last_step, &latest));
                }
            }
            EventKind::Run { run } if run.id == id && run.status.is_terminal() => {
                return Ok(ExitCode::SUCCESS);
            }
            _ => {}
        }
    }
    let why = format!("the daemon went away while following the metrics of {id}");
    Err(Unreachable(why).into())
}

/// Whether the run `id` is among `runs` and has ended.
fn ended(runs: &[RunInfo], id: &str) -> bool {
    runs.iter().any(|r| r.id == id && r.status.is_terminal())
}

/// The file, its counts, W&B, then one row per series.
fn summary(list: &MetricsList) -> String {
    let mut out = format!(
        "{}: {} lines, {} malformed\n",
        sanitize::line(&list.path.to_string_lossy()),
        list.lines,
        list.malformed
    );
    if let Some(wandb) = &list.wandb {
        for (what, value) in [("W&B run", &wandb.url), ("W&B dir", &wandb.dir)] {
            if let Some(value) = value {
                out.push_str(&format!("{what}: {}\n", sanitize::line(value)));
            }
        }
    }
    if list.metrics.is_empty() {
        out.push_str("no metrics yet\n");
        return out;
    }
    let mut rows = vec![
        ["METRIC", "POINTS", "STEP", "LAST"]
            .map(String::from)
            .to_vec(),
    ];
    for metric in &list.metrics {
        let (step, value) = metric.last.map_or(("-".into(), "-".into()), |s| {
            (short(s.step), short(s.value))
        });
        rows.push(vec![
            metric.name.clone(),
            metric.points.to_string(),
            step,
            value,
        ]);
    }
    out.push_str(&aligned(&rows));
    out
}

/// `step 120  loss=0.25  acc=0.9`
fn update_line(step: f64, latest: &[Latest]) -> String {
    let mut line = format!("step {}", Short(step));
    for metric in latest {
        line.push_str(&format!(
            "  {}={}",
            sanitize::line(&metric.name),
            Short(metric.value)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use reagent::metrics::{MetricSummary, Sample};

    #[test]
    fn the_summary_shows_counts_and_newest_values() {
        let list = MetricsList {
            run: "ab12".into(),
            path: "/r/metrics.jsonl".into(),
            lines: 3,
            malformed: 1,
            metrics: vec![
                MetricSummary {
                    name: "loss".into(),
                    points: 2,
                    last: Some(Sample {
                        step: 2.0,
                        value: f64::NAN,
                    }),
                },
                MetricSummary {
                    name: "acc".into(),
                    points: 2,
                    last: Some(Sample {
                        step: 2.0,
                        value: 0.1 + 0.2,
                    }),
                },
            ],
            wandb: None,
        };
        assert_eq!(
            summary(&list),
            "/r/metrics.jsonl: 3 lines, 1 malformed\n\
             METRIC  POINTS  STEP  LAST\n\
             loss    2       2     nan\n\
             acc     2       2     0.3\n"
        );
        let latest = [
            Latest {
                name: "loss".into(),
                value: 6.2092542530000046,
            },
            Latest {
                name: "lr".into(),
                value: 1.23456789e-5,
            },
        ];
        assert_eq!(
            update_line(7.0, &latest),
            "step 7  loss=6.2093  lr=1.2346e-5",
            "people get five significant digits"
        );
    }
}
