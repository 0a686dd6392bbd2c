//! Sweeps: expanding one into queued runs (or a Slurm job array), and stopping one.

use std::sync::Arc;

use reagent::gpu::GpuRequest;
use reagent::names::MAX_NAME_CHARS;
use reagent::protocol::{EventKind, RpcError, codes};
use reagent::run::RunSpec;
use reagent::sweep::{Point, SweepInfo, SweepSpec, expand, render, run_name};
use reagent::time::now_ms;

use super::{Job, schedule};
use crate::daemon::{Daemon, State, short_id};
use crate::runs::slurm::Batch;

impl State {
    /// Every sweep, oldest first.
    pub fn sweeps(&self) -> &[SweepInfo] {
        self.sweeps.all()
    }

    /// Finds a sweep by id, name or unique id prefix.
    pub fn resolve_sweep(&self, query: &str) -> Result<&SweepInfo, RpcError> {
        self.sweeps.resolve(query)
    }

    /// Commits a new or changed sweep, then broadcasts it.
    pub fn save_sweep(&mut self, sweep: SweepInfo) -> Result<SweepInfo, RpcError> {
        self.bus.emit(EventKind::Sweep {
            sweep: sweep.clone(),
        })?;
        self.sweeps.upsert(sweep.clone());
        Ok(sweep)
    }
}

/// Expands a sweep into queued runs (each a job with the sweep's GPU needs), then schedules.
/// A sweep on Slurm skips the GPU queue: its runs are submitted as one job array (one job
/// when it has one point), `parallel` being the array's limit, and wait in Slurm's queue.
pub fn start(daemon: &Arc<Daemon>, mut spec: SweepSpec) -> Result<SweepInfo, RpcError> {
    if let Some(name) = &spec.name {
        reagent::names::check("name", name)?;
    }
    if let Some(slurm) = &mut spec.slurm {
        if spec.priority != 0 {
            let message = "`priority` orders reagent's own GPU queue; a sweep on Slurm waits \
                           in Slurm's queue (use --sbatch-arg=--nice=N or a QOS)";
            return Err(RpcError::new(codes::INVALID_PARAMS, message));
        }
        // Its GPUs are Slurm's to give.
        slurm.gpus = slurm.gpus.or((spec.gpus > 0).then_some(spec.gpus));
    }
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
    for (point, run_name) in points.iter().zip(run_names(&name, &points)?) {
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
            agent_session: spec.agent_session.clone(),
            slurm: spec.slurm.clone(),
        };
        let reason = match &spec.slurm {
            Some(_) => crate::runs::SUBMITTING.to_string(),
            None => format!("queued in sweep {name}"),
        };
        let run = crate::runs::create(daemon, run_spec, &reason)?;
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
    if spec.slurm.is_some() {
        let batch = match info.runs.as_slice() {
            [one] => Batch::One(one.clone()),
            runs => Batch::Array {
                sweep: info.id.clone(),
                runs: runs.to_vec(),
                parallel: (info.parallel > 0).then_some(info.parallel as usize),
            },
        };
        tracing::info!(sweep = %info.id, runs = info.runs.len(), "sweep submitted to Slurm");
        crate::runs::slurm::submit(daemon, batch);
        return Ok(info);
    }
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

/// The sweep's run names: unique (random search can draw the same point twice) and each
/// within the name limit, all checked before any run is recorded, so a refused sweep leaves
/// no runs behind.
fn run_names(sweep: &str, points: &[Point]) -> Result<Vec<String>, RpcError> {
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::with_capacity(points.len());
    for (n, point) in points.iter().enumerate() {
        let mut name = run_name(sweep, point);
        if !seen.insert(name.clone()) {
            name = format!("{name}#{}", n + 1);
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            let message = format!(
                "`parameters`: a run's name is the sweep's name and its values, and one would \
                 be {chars} characters, over the limit of {MAX_NAME_CHARS}: shorten the name or \
                 the values"
            );
            return Err(RpcError::new(codes::INVALID_PARAMS, message));
        }
        names.push(name);
    }
    Ok(names)
}

/// Stops a sweep: each of its runs that has not ended gets the runs service's stop (a
/// queued one ends without starting, a running one gets SIGTERM, then SIGKILL after the
/// grace period).
pub fn stop(daemon: &Arc<Daemon>, query: &str) -> Result<SweepInfo, RpcError> {
    let info = {
        let mut state = daemon.state();
        let mut info = state.resolve_sweep(query)?.clone();
        info.stopped = true;
        state.save_sweep(info)?
    };
    let why = format!("its sweep {} was stopped", info.name);
    for id in &info.runs {
        let live = (daemon.state().run(id)).is_some_and(|run| !run.status.is_terminal());
        // A run that ends meanwhile has nothing left to stop.
        if live && let Err(err) = crate::runs::control::stop(daemon, id, None, &why) {
            tracing::debug!(run = %id, "not stopped with its sweep: {}", err.message);
        }
    }
    tracing::info!(sweep = %info.id, "sweep stopped");
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: &str) -> Point {
        vec![("lr".to_string(), value.to_string())]
    }

    #[test]
    fn run_names_are_unique_and_a_long_one_refuses_the_whole_sweep() {
        let names = run_names("s", &[point("1"), point("1")]).unwrap();
        assert_eq!(names, ["s-lr=1", "s-lr=1#2"]);
        let long = "9".repeat(MAX_NAME_CHARS);
        let err = run_names("s", &[point("1"), point(&long)]).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(err.message.starts_with("`parameters`:"), "{}", err.message);
        assert!(
            err.message.contains("over the limit of 200"),
            "{}",
            err.message
        );
    }
}
