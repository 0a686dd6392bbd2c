//! Starting a run again: `run.rerun`, and the spec of a past run that it shares with the
//! queue's retries.
//!
//! A rerun is a new run (its own id, log and exit status) built from the old run's
//! `spec.json` and metrics record: the same name, cwd, environment (the old job's, whose
//! secrets were removed already; those left were passed on purpose), terminal size, metrics
//! file and alert rules, the same GPU request, priority and retries when the old run
//! went through the queue, and the same Slurm requests when it ran there. Only the command
//! may change. It starts through the one start
//! path there is: [`crate::runs::start`], or [`super::submit`] for a queued run. It is the
//! queue's, not the runs service's, because a rerun may need the queue (its GPUs).

use std::sync::Arc;

use reagent::gpu::SubmitRun;
use reagent::protocol::{RerunRun, RpcError};
use reagent::run::{RunInfo, RunSpec};

use super::{CUDA_ENV, Job};
use crate::daemon::Daemon;
use crate::daemon::internal;
use crate::runs::{launch, orphan};

/// `run.rerun`: starts `rerun.run` again as a new run, with `rerun.command` if given.
pub fn rerun(daemon: &Arc<Daemon>, rerun: RerunRun) -> Result<RunInfo, RpcError> {
    let old = daemon.state().resolve(&rerun.run)?.clone();
    let old_dir = daemon.paths.run_dir(&old.id);
    let job = super::queued_job(&old_dir);
    let mut spec = past_spec(daemon, &old, job.as_ref())?;
    if let Some(command) = rerun.command {
        spec.command = command;
    }
    let record = daemon.state().store().ingest(&old.id).map_err(internal)?;
    if let Some(record) = record {
        // The old run's own metrics file is in its folder (its Slurm folder, on Slurm); the
        // new run gets its own there.
        let own_files = [&old_dir, &crate::runs::slurm::folder(daemon, &old.id)]
            .map(|dir| dir.join(crate::metrics::DEFAULT_FILE));
        spec.metrics = (!own_files.contains(&record.path)).then_some(record.path);
        spec.alerts = record.rules;
    }
    tracing::info!(run = %old.id, "rerun requested");
    match job {
        Some(job) => super::submit(
            daemon,
            SubmitRun {
                spec,
                gpus: job.request,
                priority: job.priority,
                retry_gpu: job.retries_left,
            },
        ),
        None => crate::runs::start(daemon, spec),
    }
}

/// The spec that starts `run`'s job again, from its `spec.json`: its name, command, cwd,
/// environment and size, without the variables reagent sets per run (the metrics file, the
/// run id, and the GPUs when the queue handed them out under `job`). No metrics file or
/// alert rules: the caller decides those.
pub fn past_spec(daemon: &Daemon, run: &RunInfo, job: Option<&Job>) -> Result<RunSpec, RpcError> {
    let spec = launch::read_spec(&daemon.paths.run_dir(&run.id))?;
    let queue_gpus = job.is_some_and(|job| job.request.wanted() > 0);
    let per_run = |key: &str| {
        key == crate::metrics::ENV || key == orphan::RUN_ID_ENV || (queue_gpus && key == CUDA_ENV)
    };
    let (own, base): (Vec<_>, Vec<_>) = spec
        .env
        .into_iter()
        .filter(|(key, _)| !per_run(key))
        .partition(|(key, _)| run.env_keys.contains(key));
    Ok(RunSpec {
        name: run.name.clone(),
        command: spec.command,
        cwd: Some(spec.cwd),
        env: own,
        pass_env: match spec.complete_env {
            true => daemon.config.secret_vars(),
            false => Vec::new(),
        },
        client_env: spec.complete_env.then_some(base),
        size: Some((spec.cols, spec.rows)),
        metrics: None,
        alerts: Vec::new(),
        agent_session: run.agent_session.clone(),
        slurm: crate::runs::slurm::past_spec(daemon, run),
    })
}
