//! Tools over the rest of the lab: metrics, sweeps, alerts, GPUs and the queue, recipes and
//! model servers, and `finish` for a wild-mode loop whose goal is met.

use reagent::alert::{AlertStatus, Choice};
use reagent::metrics::{QueryWindow, Sample};
use reagent::protocol::{LaunchModel, ListAlerts, QueryMetrics, RespondAlert, StopModel, SweepRef};
use reagent::sweep::SweepSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Builtin, Ctx, FINISH, Run, args, json, refused};

/// How a model asks for metrics.
#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
enum MetricsMode {
    /// Each series' newest value.
    #[default]
    Latest,
    /// Each series downsampled to `points` (min and max per bucket).
    Series,
    /// Each series' min, max, last and trend.
    Summary,
}

/// `metrics_read` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsArgs {
    run: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    mode: MetricsMode,
    #[serde(default = "default_points")]
    points: usize,
}

fn default_points() -> usize {
    40
}

/// One series summarised for a model.
#[derive(Serialize, Debug, PartialEq)]
struct Summary {
    name: String,
    points: u64,
    min: Option<f64>,
    max: Option<f64>,
    last: Option<Sample>,
    /// `falling`, `rising` or `flat`: the last quarter's mean against the first's.
    trend: &'static str,
    /// Steps where the series was NaN or infinite.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nan_steps: Vec<f64>,
}

/// The direction of values in step order: the last quarter's mean against the first's,
/// `flat` within 5% (or with too few points to say).
fn trend(values: &[f64]) -> &'static str {
    let quarter = values.len() / 4;
    if quarter == 0 {
        return "flat";
    }
    let mean = |slice: &[f64]| slice.iter().sum::<f64>() / slice.len() as f64;
    let (first, last) = (
        mean(&values[..quarter]),
        mean(&values[values.len() - quarter..]),
    );
    let scale = first.abs().max(last.abs()).max(f64::MIN_POSITIVE);
    match (last - first) / scale {
        change if change < -0.05 => "falling",
        change if change > 0.05 => "rising",
        _ => "flat",
    }
}

/// `metrics_read`.
pub const METRICS: Builtin = Builtin {
    name: "metrics_read",
    description: "A run's metrics: each series' newest value (`latest`), a downsampled series \
                  (`series`), or min, max, last and trend (`summary`). NaN steps are listed.",
    schema: || {
        json!({"type": "object", "properties": {
            "run": {"type": "string", "description": "the run's id, name or unique id prefix"},
            "names": {"type": "array", "items": {"type": "string"}, "description": "the series; all when empty"},
            "mode": {"type": "string", "enum": ["latest", "series", "summary"], "default": "latest"},
            "points": {"type": "integer", "minimum": 2, "maximum": 500, "default": 40}
        }, "required": ["run"]})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let wanted: MetricsArgs = args(value)?;
        let daemon = ctx.daemon;
        if let MetricsMode::Latest = wanted.mode {
            let mut list = crate::metrics::list(daemon, &wanted.run).map_err(refused)?;
            if !wanted.names.is_empty() {
                list.metrics.retain(|m| wanted.names.contains(&m.name));
            }
            return json(&list);
        }
        let query = QueryMetrics {
            run: wanted.run,
            names: wanted.names,
            window: QueryWindow::All,
            columns: (wanted.points / 2).clamp(1, 250),
        };
        let reply = crate::metrics::query(daemon, &query).map_err(refused)?;
        if let MetricsMode::Series = wanted.mode {
            return json(&reply);
        }
        let summaries: Vec<Summary> = (reply.series.into_iter())
            .map(|series| {
                let values: Vec<f64> = series.points.iter().map(|&(_, value)| value).collect();
                Summary {
                    min: values.iter().copied().reduce(f64::min),
                    max: values.iter().copied().reduce(f64::max),
                    trend: trend(&values),
                    name: series.name,
                    points: series.total,
                    last: series.last,
                    nan_steps: series.nan_steps,
                }
            })
            .collect();
        json(&summaries)
    }),
};

/// `sweeps_list`.
pub const SWEEPS: Builtin = Builtin {
    name: "sweeps_list",
    description: "Every sweep: its command template, parallelism, runs and their parameters.",
    schema: || json!({"type": "object", "properties": {}}),
    action: None,
    run: Run::Now(|ctx, _| json(&ctx.daemon.state().sweeps().to_vec())),
};

/// `sweep_start`.
pub const SWEEP_START: Builtin = Builtin {
    name: "sweep_start",
    description: "Start a sweep: the command with `{param}` placeholders run for every point \
                  of a grid (or `count` random points), `parallel` at a time, each run's \
                  alerts handed to this session.",
    schema: || {
        json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "command": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "argv with {param} placeholders"},
            "method": {"type": "string", "enum": ["grid", "random"]},
            "count": {"type": "integer", "minimum": 1},
            "parameters": {"type": "object", "description": "name → {\"values\": [..]} or {\"min\": x, \"max\": y, \"log\": bool}"},
            "parallel": {"type": "integer", "minimum": 0},
            "gpus": {"type": "integer", "minimum": 0, "description": "GPUs per run"},
            "slurm": super::runs::slurm_schema()
        }, "required": ["command", "parameters"]})
    },
    action: Some(|ctx, value| {
        let spec = sweep_spec(ctx, value.clone())?;
        let points = reagent::sweep::expand(&spec)?;
        Ok(format!(
            "start a sweep of {} run(s), {} at a time:\n$ {}\n  in {}",
            points.len(),
            match spec.parallel {
                0 => "all".to_string(),
                n => n.to_string(),
            },
            reagent::shell::line(&spec.command),
            ctx.session.cwd.display()
        ))
    }),
    run: Run::Now(|ctx, value| {
        let spec = sweep_spec(ctx, value)?;
        json(&crate::queue::sweeps::start(ctx.daemon, spec).map_err(refused)?)
    }),
};

/// The sweep a model described, run in the session's directory with alerts to the session.
fn sweep_spec(ctx: &Ctx<'_>, value: Value) -> Result<SweepSpec, String> {
    let mut spec: SweepSpec = args(value)?;
    spec.cwd = Some(match spec.cwd {
        Some(cwd) => ctx.session.cwd.join(cwd),
        None => ctx.session.cwd.clone(),
    });
    spec.agent_session = Some(ctx.session.id.clone());
    spec.client_env = None;
    spec.pass_env = Vec::new();
    Ok(spec)
}

fn sweep_ref_schema() -> Value {
    json!({"type": "object", "properties": {
        "sweep": {"type": "string", "description": "the sweep's id, name or unique id prefix"}
    }, "required": ["sweep"]})
}

/// `sweep_stop`.
pub const SWEEP_STOP: Builtin = Builtin {
    name: "sweep_stop",
    description: "Stop a sweep: its running runs are stopped and its queued ones dropped.",
    schema: sweep_ref_schema,
    action: Some(|ctx, value| {
        let SweepRef { sweep } = args(value.clone())?;
        let state = ctx.daemon.state();
        let sweep = state.resolve_sweep(&sweep).map_err(refused)?;
        Ok(format!(
            "stop sweep {} ({} runs)",
            sweep.name,
            sweep.runs.len()
        ))
    }),
    run: Run::Now(|ctx, value| {
        let SweepRef { sweep } = args(value)?;
        json(&crate::queue::sweeps::stop(ctx.daemon, &sweep).map_err(refused)?)
    }),
};

/// `sweep_rank` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RankArgs {
    sweep: String,
    metric: String,
    #[serde(default)]
    maximize: bool,
}

/// One run of a sweep, ranked.
#[derive(Serialize)]
struct Ranked {
    run: String,
    name: Option<String>,
    status: String,
    params: Vec<(String, String)>,
    value: Option<f64>,
    step: Option<f64>,
}

/// `sweep_rank`.
pub const SWEEP_RANK: Builtin = Builtin {
    name: "sweep_rank",
    description: "A sweep's runs ranked by a metric's latest value (lowest first, or highest \
                  with `maximize`), with their parameters; runs without the metric last.",
    schema: || {
        json!({"type": "object", "properties": {
            "sweep": {"type": "string"},
            "metric": {"type": "string"},
            "maximize": {"type": "boolean", "default": false}
        }, "required": ["sweep", "metric"]})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let rank: RankArgs = args(value)?;
        let (sweep, runs) = {
            let state = ctx.daemon.state();
            let sweep = state.resolve_sweep(&rank.sweep).map_err(refused)?.clone();
            let runs: Vec<_> = (sweep.runs.iter())
                .filter_map(|id| state.run(id).cloned())
                .collect();
            (sweep, runs)
        };
        let mut ranked: Vec<Ranked> = runs
            .into_iter()
            .map(|run| {
                let last = crate::metrics::list(ctx.daemon, &run.id)
                    .ok()
                    .and_then(|list| list.metrics.into_iter().find(|m| m.name == rank.metric))
                    .and_then(|m| m.last)
                    .filter(|sample| sample.value.is_finite());
                let at = sweep.runs.iter().position(|id| *id == run.id);
                Ranked {
                    params: at
                        .and_then(|i| sweep.params.get(i).cloned())
                        .unwrap_or_default(),
                    value: last.map(|s| s.value),
                    step: last.map(|s| s.step),
                    status: run.status.to_string(),
                    name: run.name,
                    run: run.id,
                }
            })
            .collect();
        ranked.sort_by(|a, b| match (a.value, b.value) {
            (Some(a), Some(b)) if rank.maximize => b.total_cmp(&a),
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        json(&ranked)
    }),
};

/// `alerts_list` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsArgs {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    run: Option<String>,
}

/// `alerts_list`.
pub const ALERTS: Builtin = Builtin {
    name: "alerts_list",
    description: "Open alerts (every alert with `all`), optionally one run's: rule, message, \
                  step and the choices each accepts.",
    schema: || {
        json!({"type": "object", "properties": {
            "all": {"type": "boolean", "default": false},
            "run": {"type": "string"}
        }})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let wanted: AlertsArgs = args(value)?;
        let list = ListAlerts {
            status: (!wanted.all).then_some(AlertStatus::Open),
            run: wanted.run,
        };
        json(&crate::alerts::list(ctx.daemon, &list).map_err(refused)?)
    }),
};

/// `alert_answer`.
pub const ALERT_ANSWER: Builtin = Builtin {
    name: "alert_answer",
    description: "Answer an open alert with one of its choices: `ignore` closes it, `stop` \
                  stops its run, `chat` opens a chat about it.",
    schema: || {
        json!({"type": "object", "properties": {
            "id": {"type": "string", "description": "the alert's id or unique id prefix"},
            "choice": {"type": "string", "enum": Choice::ALL.map(|c| c.to_string())}
        }, "required": ["id", "choice"]})
    },
    action: Some(|ctx, value| {
        let answer: RespondAlert = args(value.clone())?;
        let state = ctx.daemon.state();
        let alert = state.resolve_alert(&answer.id).map_err(refused)?;
        let run = state
            .run(&alert.run)
            .map_or(alert.run.as_str(), |r| r.label());
        Ok(format!(
            "answer alert {} on run {run} ({}) with `{}`",
            alert.id, alert.message, answer.choice
        ))
    }),
    run: Run::Now(|ctx, value| {
        let answer: RespondAlert = args(value)?;
        let response = crate::triage::respond::respond(ctx.daemon, &answer.id, answer.choice);
        json(&response.map_err(refused)?)
    }),
};

/// `gpus`.
pub const GPUS: Builtin = Builtin {
    name: "gpus",
    description: "The GPUs now (memory, utilisation, who holds each) and the GPU queue: runs \
                  waiting and why, runs and models holding GPUs.",
    schema: || json!({"type": "object", "properties": {}}),
    action: None,
    run: Run::Now(|ctx, _| {
        let state = ctx.daemon.state();
        json(&json!({
            "gpus": state.gpus.full_report(),
            "queue": crate::queue::entries(&state),
        }))
    }),
};

/// `recipes_list`.
pub const RECIPES: Builtin = Builtin {
    name: "recipes_list",
    description: "Every model-server recipe: backend, model, GPUs, memory.",
    schema: || json!({"type": "object", "properties": {}}),
    action: None,
    run: Run::Now(|ctx, _| json(&crate::models::recipes::list(ctx.daemon))),
};

/// `models_list`.
pub const MODELS: Builtin = Builtin {
    name: "models_list",
    description: "Every model server: state, port, GPUs, serving figures.",
    schema: || json!({"type": "object", "properties": {}}),
    action: None,
    run: Run::Now(|ctx, _| json(&crate::models::list(ctx.daemon))),
};

/// `model_launch`.
pub const MODEL_LAUNCH: Builtin = Builtin {
    name: "model_launch",
    description: "Launch a recipe's model server and wait until it is ready (or failed); it \
                  is then chat model `local/NAME`.",
    schema: || {
        json!({"type": "object", "properties": {
            "recipe": {"type": "string"},
            "preempt": {"type": "boolean", "default": false}
        }, "required": ["recipe"]})
    },
    action: Some(|ctx, value| {
        let launch: LaunchModel = args(value.clone())?;
        let recipe = ctx
            .daemon
            .state()
            .recipe(&launch.recipe)
            .map_err(refused)?
            .clone();
        Ok(format!(
            "launch model {} ({} serving {})",
            recipe.name, recipe.backend, recipe.model
        ))
    }),
    run: Run::Later(|ctx, value| {
        Box::pin(async move {
            let launch: LaunchModel = args(value)?;
            json(
                &crate::models::launch(ctx.daemon, launch)
                    .await
                    .map_err(refused)?,
            )
        })
    }),
};

/// `model_stop`.
pub const MODEL_STOP: Builtin = Builtin {
    name: "model_stop",
    description: "Stop a model server, or cancel its launch.",
    schema: || {
        json!({"type": "object", "properties": {
            "name": {"type": "string"}
        }, "required": ["name"]})
    },
    action: Some(|_, value| {
        let stop: StopModel = args(value.clone())?;
        Ok(format!("stop model {}", stop.name))
    }),
    run: Run::Later(|ctx, value| {
        Box::pin(async move {
            let stop: StopModel = args(value)?;
            let stopped = crate::models::stop(ctx.daemon, &stop.name, "stopped by the agent");
            json(&stopped.await.map_err(refused)?)
        })
    }),
};

/// `finish` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    summary: String,
}

/// `finish`.
pub const FINISH_TOOL: Builtin = Builtin {
    name: FINISH,
    description: "Say the goal is met, with a summary of what was done and found: a wild-mode \
                  loop ends here.",
    schema: || {
        json!({"type": "object", "properties": {
            "summary": {"type": "string"}
        }, "required": ["summary"]})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let FinishArgs { summary } = args(value)?;
        crate::agent::wild::finish(ctx.daemon, &ctx.session.id, summary).map_err(refused)?;
        Ok("recorded: the goal is met".into())
    }),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_compares_the_last_quarter_with_the_first() {
        assert_eq!(trend(&[4.0, 3.0, 2.0, 1.0]), "falling");
        assert_eq!(trend(&[1.0, 1.0, 1.0, 1.02]), "flat");
        assert_eq!(trend(&[0.0, 0.0, 1.0, 2.0]), "rising");
        assert_eq!(trend(&[5.0]), "flat", "too few points to say");
    }
}
