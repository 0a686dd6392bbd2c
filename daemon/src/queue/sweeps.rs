//! Sweeps: expanding one into queued runs, and stopping one.

use std::sync::Arc;

use reagent::gpu::GpuRequest;
use reagent::protocol::{RpcError, codes};
use reagent::run::{RunSpec, RunStatus};
use reagent::sweep::{SweepInfo, SweepSpec, expand, render, run_name};
use reagent::time::now_ms;

use super::{Job, schedule};
use crate::state::{Daemon, short_id};
use crate::supervisor::wire::ControlMsg;

/// Expands a sweep into queued runs (each a job with the sweep's GPU needs), then schedules.
pub fn start(daemon: &Arc<Daemon>, spec: SweepSpec) -> Result<SweepInfo, RpcError> {
    let points = expand(&spec).map_err(|err| RpcError::new(codes::INVALID_PARAMS, err))?;
    let id = {
        let state = daemon.state();
        let mut id = short_id();
        while state.sweeps().iter().any(|s| s.id == id) {
            id = short_id();
        }
        id
    };
    let name = spec
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("sweep-{id}"));
    let mut runs = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (n, point) in points.iter().enumerate() {
        // Random search can draw the same point twice; names must stay unique.
        let mut run_name = run_name(&name, point);
        if !names.insert(run_name.clone()) {
            run_name = format!("{run_name}#{}", n + 1);
        }
        let run_spec = RunSpec {
            name: Some(run_name),
            command: render(&spec.command, point),
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            client_env: spec.client_env.clone(),
            pass_env: spec.pass_env.clone(),
            size: None,
            metrics: None,
            alerts: Vec::new(),
        };
        let run = crate::runs::create(daemon, run_spec, &format!("queued in sweep {name}"))?;
        runs.push(run.id);
    }
    let info = SweepInfo {
        id,
        name,
        command: spec.command,
        parallel: spec.parallel,
        runs,
        params: points,
        created_at: now_ms(),
        stopped: false,
    };
    // The sweep (with its `parallel` limit) is saved before any of its jobs is queued: a
    // schedule between the two would see jobs of an unknown sweep and start them all.
    let info = daemon.state().save_sweep(info)?;
    for run in &info.runs {
        super::schedule::enqueue(
            daemon,
            Job {
                run: run.clone(),
                request: GpuRequest {
                    count: spec.gpus,
                    ids: Vec::new(),
                },
                priority: spec.priority,
                retries_left: 0,
                sweep: Some(info.id.clone()),
                started: false,
                assigned: Vec::new(),
            },
        )?;
    }
    tracing::info!(sweep = %info.id, runs = info.runs.len(), "sweep started");
    schedule(daemon);
    Ok(info)
}

/// Stops a sweep: its queued runs end as stopped without starting, its running ones get
/// the usual stop (SIGTERM, then SIGKILL after the grace period).
pub fn stop(daemon: &Arc<Daemon>, query: &str) -> Result<SweepInfo, RpcError> {
    let mut state = daemon.state();
    let mut info = state.resolve_sweep(query)?.clone();
    info.stopped = true;
    let info = state.save_sweep(info)?;
    let grace_ms = (daemon.config.runs.stop_grace_secs.clamp(0.0, 86_400.0) * 1000.0) as u64;
    for id in &info.runs {
        let Some(run) = state.run(id).cloned() else {
            continue;
        };
        if run.status == RunStatus::Queued {
            let (queue, store) = state.queue_mut();
            queue.remove(store, id).map_err(crate::runs::internal)?;
            state.update_run(id, |r| {
                r.status = RunStatus::Stopped;
                r.reason = Some(format!("its sweep {} was stopped", info.name));
                r.ended_at = Some(now_ms());
            })?;
        } else if !run.status.is_terminal()
            && let Some(live) = state.live(id)
        {
            let _ = live.control.send(ControlMsg::Stop { grace_ms });
        }
    }
    tracing::info!(sweep = %info.id, "sweep stopped");
    Ok(info)
}
