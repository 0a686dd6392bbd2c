//! Submitting runs to Slurm: what is checked and kept when a run on Slurm is recorded, and
//! the batch script and `sbatch` call that submit it (or a sweep's runs as one job array).

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reagent::config::SlurmConfig;
use reagent::protocol::{RpcError, codes};
use reagent::run::{RunInfo, RunStatus};
use reagent::slurm::SlurmSpec;

use super::wire::{self, BatchJob, ClusterConfig, SubmittedJob, Task};
use super::{cmd, track};
use crate::daemon::{Daemon, State, internal};
use crate::runs::table::LiveRun;
use crate::runs::{follow, launch, lifecycle::RunEvent, orphan};
use crate::supervisor::wire::{LaunchSpec, files};

/// The file in a run's folder keeping what it asked of Slurm: read to submit it (the
/// config's defaults filled in then), and by `rerun`.
const SPEC_FILE: &str = "slurm.json";
/// A job's batch script, kept in its Slurm folder (or its array's): what was submitted.
const SCRIPT: &str = "job.sh";
/// The largest array when the cluster does not say (Slurm's default `MaxArraySize`).
const DEFAULT_MAX_ARRAY: usize = 1001;

/// Runs that go to Slurm together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// One run, one job, named `reagent-<run id>`.
    One(String),
    /// A sweep's runs as one job array named `reagent-<sweep id>`, task `i` the `i`th run.
    Array {
        /// The sweep.
        sweep: String,
        /// Its runs, in task order.
        runs: Vec<String>,
        /// At most this many tasks at once (`--parallel`).
        parallel: Option<usize>,
    },
}

impl Batch {
    /// The job's name in Slurm, by which a restarted daemon finds what it may have
    /// submitted without recording it.
    fn name(&self) -> String {
        match self {
            Self::One(id) => format!("reagent-{id}"),
            Self::Array { sweep, .. } => format!("reagent-{sweep}"),
        }
    }

    /// Its runs, in task order.
    fn runs(&self) -> Vec<String> {
        match self {
            Self::One(id) => vec![id.clone()],
            Self::Array { runs, .. } => runs.clone(),
        }
    }
}

/// What a run asks of Slurm with the config's `[slurm]` defaults filled in: the config's
/// partition and account unless the run names its own, the config's extra options before
/// the run's.
fn defaults(config: &SlurmConfig, asked: &SlurmSpec) -> SlurmSpec {
    SlurmSpec {
        partition: asked.partition.clone().or_else(|| config.partition.clone()),
        account: asked.account.clone().or_else(|| config.account.clone()),
        sbatch_args: (config.sbatch_args.iter().chain(&asked.sbatch_args))
            .cloned()
            .collect(),
        ..asked.clone()
    }
}

/// The folder of a run's Slurm files (its script, output and default metrics file), which
/// the cluster's nodes must see: `[slurm] dir/<run id>`, or the run's own folder.
pub fn folder(daemon: &Daemon, id: &str) -> PathBuf {
    match &daemon.config.slurm.dir {
        Some(dir) => dir.join(id),
        None => daemon.paths.run_dir(id),
    }
}

/// What `run` asked of Slurm, from its `slurm.json`; `None` for a run that did not run there.
pub fn past_spec(daemon: &Daemon, run: &RunInfo) -> Option<SlurmSpec> {
    run.executor.slurm()?;
    let bytes = std::fs::read(daemon.paths.run_dir(&run.id).join(SPEC_FILE)).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|err| tracing::warn!(run = %run.id, "{SPEC_FILE} does not parse: {err}"))
        .ok()
}

/// Readies a run on Slurm as it is recorded (its `spec.json` written): checks that its
/// batch script can be written, makes its Slurm folder (its log then a link to the output
/// file there, when that folder is not the run's own) and keeps `asked` in `slurm.json`.
pub fn prepare(
    daemon: &Daemon,
    id: &str,
    asked: &SlurmSpec,
    launch: &LaunchSpec,
    env_keys: &[String],
) -> Result<(), RpcError> {
    let slurm = &defaults(&daemon.config.slurm, asked);
    let folder = folder(daemon, id);
    let output = folder.join(files::LOG);
    let invalid = |why| RpcError::new(codes::INVALID_PARAMS, why);
    let pattern = wire::output_pattern(&output, false).map_err(invalid)?;
    let one = Batch::One(id.to_string());
    let job = batch_job(
        &one,
        slurm,
        launch,
        pattern,
        vec![task(launch, env_keys)],
        None,
    );
    wire::script(&job).map_err(invalid)?;
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |err: std::io::Error| internal(format!("cannot write {what}: {err}"))
    };
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let log = daemon.paths.run_dir(id).join(files::LOG);
    if output != log {
        std::os::unix::fs::symlink(&output, &log).map_err(io(&log))?;
    }
    let spec = daemon.paths.run_dir(id).join(SPEC_FILE);
    let bytes = serde_json::to_vec(asked).map_err(internal)?;
    std::fs::write(&spec, bytes).map_err(io(&spec))
}

/// The variables a run's batch script exports: the run's own (`--env`) and those reagent
/// sets per run (its metrics file, its id), which differ between an array's tasks. The rest
/// of its environment reaches the job through `sbatch`'s own.
fn task(launch: &LaunchSpec, env_keys: &[String]) -> Task {
    let per_run = [crate::metrics::ENV, orphan::RUN_ID_ENV];
    let env = (launch.env.iter())
        .filter(|(key, _)| env_keys.contains(key) || per_run.contains(&key.as_str()))
        .cloned()
        .collect();
    Task {
        env,
        command: launch.command.clone(),
    }
}

/// The batch job for `batch`, whose first run's `slurm` and `launch` give the options and
/// the folder it runs in.
fn batch_job(
    batch: &Batch,
    slurm: &SlurmSpec,
    launch: &LaunchSpec,
    output: String,
    tasks: Vec<Task>,
    parallel: Option<usize>,
) -> BatchJob {
    BatchJob {
        name: batch.name(),
        cwd: launch.cwd.clone(),
        output,
        partition: slurm.partition.clone(),
        gpus: slurm.gpus,
        cpus: slurm.cpus,
        mem: slurm.mem.clone(),
        time: slurm.time.clone(),
        account: slurm.account.clone(),
        extra: slurm.sbatch_args.clone(),
        tasks,
        parallel,
    }
}

/// Submits `batch` in the background. Its runs stay queued until Slurm takes their job
/// (they then wait in Slurm's queue, saying so) or refuses it (they fail, in Slurm's words).
pub fn submit(daemon: &Arc<Daemon>, batch: Batch) {
    let daemon = daemon.clone();
    tokio::spawn(async move { submit_now(&daemon, batch).await });
}

/// After a restart, submits runs that were never recorded as submitted. The daemon may have
/// died between `sbatch` and recording its answer, so any job of the batch's name is
/// cancelled first: there is never a second, unfollowed job of the same runs.
pub fn resubmit(daemon: &Arc<Daemon>, batch: Batch) {
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let args = ["--me".to_string(), format!("--name={}", batch.name())];
        match cmd::run(&daemon.config.slurm, "scancel", &args, None).await {
            Ok(out) if !out.ok => tracing::warn!("scancel: {}", out.error("scancel")),
            Err(err) => tracing::warn!("{err}"),
            Ok(_) => {}
        }
        submit_now(&daemon, batch).await;
    });
}

/// The batches that submit `runs` (queued, never submitted) again: a sweep's together, as
/// when it started; any other run alone.
pub fn regroup(state: &State, runs: &[RunInfo]) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    for run in runs {
        let sweep = state.sweeps().iter().find(|s| s.runs.contains(&run.id));
        let Some(sweep) = sweep else {
            batches.push(Batch::One(run.id.clone()));
            continue;
        };
        let joined = batches.iter_mut().find_map(|batch| match batch {
            Batch::Array {
                sweep: id, runs, ..
            } if *id == sweep.id => Some(runs),
            _ => None,
        });
        match joined {
            Some(runs) => runs.push(run.id.clone()),
            None => batches.push(Batch::Array {
                sweep: sweep.id.clone(),
                runs: vec![run.id.clone()],
                parallel: (sweep.parallel > 0).then_some(sweep.parallel as usize),
            }),
        }
    }
    batches
}

/// Submits `batch` now: as one job or array when it fits, else (an array larger than the
/// cluster's largest) each run as its own job, which only a sweep without `--parallel` may.
async fn submit_now(daemon: &Arc<Daemon>, batch: Batch) {
    let cluster = cluster(daemon).await;
    let max = cluster.max_array_size.unwrap_or(DEFAULT_MAX_ARRAY);
    let runs = batch.runs();
    if let Batch::Array { parallel, .. } = &batch
        && runs.len() > max
    {
        if parallel.is_some() {
            let why = format!(
                "the sweep's {} points are more than one Slurm job array holds (MaxArraySize \
                 {max}), and --parallel is an array's limit: split the sweep or drop --parallel",
                runs.len()
            );
            for id in &runs {
                follow::settle_failed(daemon, id, &why);
            }
            return;
        }
        for id in runs {
            submit_one(daemon, &Batch::One(id), &cluster).await;
        }
        return;
    }
    submit_one(daemon, &batch, &cluster).await;
}

/// Runs `sbatch` for `batch` (a few at a time) and records the answer on its runs.
async fn submit_one(daemon: &Arc<Daemon>, batch: &Batch, cluster: &ClusterConfig) {
    let turns = daemon.state().runs.slurm.submitting.clone();
    // The semaphore is never closed.
    let _turn = turns.acquire_owned().await.ok();
    match sbatch(daemon, batch).await {
        Ok(job) => record(daemon, batch, &job, cluster),
        Err(why) => {
            tracing::info!(job = %batch.name(), "not submitted: {why}");
            for id in batch.runs() {
                follow::settle_failed(daemon, &id, &why);
            }
        }
    }
}

/// The cluster's name and largest array, asked of `scontrol show config` once per daemon;
/// nothing when it does not answer (runs then show no cluster, arrays assume Slurm's
/// default).
async fn cluster(daemon: &Daemon) -> ClusterConfig {
    if let Some(known) = daemon.state().runs.slurm.cluster.clone() {
        return known;
    }
    let args = ["show".to_string(), "config".into()];
    match cmd::run(&daemon.config.slurm, "scontrol", &args, None).await {
        Ok(out) if out.ok => {
            let config = wire::parse_config(&out.stdout);
            daemon.state().runs.slurm.cluster = Some(config.clone());
            config
        }
        Ok(out) => {
            tracing::warn!("scontrol show config: {}", out.error("scontrol"));
            ClusterConfig::default()
        }
        Err(err) => {
            tracing::warn!("{err}");
            ClusterConfig::default()
        }
    }
}

/// Writes the batch's script and submits it, with the first run's job environment as
/// sbatch's (which passes it on to the job), never the daemon's.
async fn sbatch(daemon: &Daemon, batch: &Batch) -> Result<SubmittedJob, String> {
    let (script, env) = write_script(daemon, batch)?;
    let args = [
        "--parsable".to_string(),
        script.to_string_lossy().into_owned(),
    ];
    let out = cmd::run(&daemon.config.slurm, "sbatch", &args, Some(&env)).await?;
    if !out.ok {
        return Err(format!("sbatch refused the job: {}", out.error("sbatch")));
    }
    wire::parse_submitted(&out.stdout)
}

/// Writes the batch's script (an array's with a link per task to its run's log) and
/// returns its path with the environment `sbatch` runs in.
fn write_script(
    daemon: &Daemon,
    batch: &Batch,
) -> Result<(PathBuf, Vec<(String, String)>), String> {
    let runs: Vec<RunInfo> = {
        let state = daemon.state();
        (batch.runs().iter())
            .filter_map(|id| state.run(id).cloned())
            .collect()
    };
    let first = runs.first().ok_or("its runs are gone")?;
    let read = |run: &RunInfo| launch::read_spec(&daemon.paths.run_dir(&run.id));
    let launch = read(first).map_err(|err| err.message)?;
    let asked = past_spec(daemon, first).ok_or("its slurm.json is missing")?;
    let slurm = defaults(&daemon.config.slurm, &asked);
    let mut tasks = Vec::new();
    for run in &runs {
        tasks.push(task(&read(run).map_err(|err| err.message)?, &run.env_keys));
    }
    let (job, script) = match batch {
        Batch::One(id) => {
            let folder = folder(daemon, id);
            let output = wire::output_pattern(&folder.join(files::LOG), false)?;
            let job = batch_job(batch, &slurm, &launch, output, tasks, None);
            (job, folder.join(SCRIPT))
        }
        Batch::Array {
            sweep, parallel, ..
        } => {
            let base = (daemon.config.slurm.dir.clone()).unwrap_or_else(|| daemon.paths.runs_dir());
            let dir = base.join(format!("array-{sweep}"));
            link_tasks(daemon, &dir, &runs).map_err(|err| format!("{}: {err}", dir.display()))?;
            let output = wire::output_pattern(&dir, true)?;
            let job = batch_job(batch, &slurm, &launch, output, tasks, *parallel);
            (job, dir.join(SCRIPT))
        }
    };
    let text = wire::script(&job)?;
    write_private(&script, text.as_bytes())
        .map_err(|err| format!("cannot write {}: {err}", script.display()))?;
    let mut env = launch.env;
    // sbatch hands the job its own file mask unless told one; the daemon's is 077.
    if let Some(umask) = launch.umask {
        env.push(("SLURM_UMASK".into(), format!("{umask:04o}")));
    }
    Ok((script, env))
}

/// Makes `dir/<i>.log`, the output file of an array's task `i`, a link to its run's log, so
/// each task writes its own run's log.
fn link_tasks(daemon: &Daemon, dir: &Path, runs: &[RunInfo]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (index, run) in runs.iter().enumerate() {
        let link = dir.join(format!("{index}.log"));
        match std::fs::remove_file(&link) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        std::os::unix::fs::symlink(folder(daemon, &run.id).join(files::LOG), &link)?;
    }
    Ok(())
}

/// Writes a file only its owner reads: a script holds the run's own variables.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Records Slurm's answer: each run of the batch waits in Slurm's queue with its job (or
/// its array's task). A run stopped while `sbatch` ran has its job cancelled at once.
fn record(daemon: &Arc<Daemon>, batch: &Batch, job: &SubmittedJob, cluster: &ClusterConfig) {
    // Their panes, from any output a job of theirs left before (read outside the lock).
    let runs: Vec<RunInfo> = {
        let state = daemon.state();
        (batch.runs().iter())
            .filter_map(|id| state.run(id).cloned())
            .collect()
    };
    let mut panes: HashMap<String, LiveRun> = (runs.iter())
        .map(|run| (run.id.clone(), crate::runs::live_from_log(run).0))
        .collect();
    let mut state = daemon.state();
    let mut unwanted = Vec::new();
    for (index, id) in batch.runs().iter().enumerate() {
        let task = match batch {
            Batch::One(_) => job.id.clone(),
            Batch::Array { .. } => format!("{}_{index}", job.id),
        };
        let submitted = RunEvent::Submitted {
            job: task.clone(),
            cluster: job.cluster.clone().or_else(|| cluster.name.clone()),
        };
        match state.advance_run(id, submitted) {
            Ok(run) => {
                tracing::info!(run = %id, job = %task, "submitted to Slurm");
                let live = (panes.remove(id)).unwrap_or_else(|| crate::runs::live_from_log(&run).0);
                state.set_live(id, live);
            }
            Err(err) => {
                let gone = state
                    .run(id)
                    .is_none_or(|run| run.status != RunStatus::Queued);
                if !gone {
                    tracing::error!(run = %id, "cannot record its Slurm job {task}: {err}");
                }
                unwanted.push(task);
            }
        }
    }
    super::wake_tracker(daemon, &mut state);
    drop(state);
    if !unwanted.is_empty() {
        track::cancel(daemon, unwanted);
    }
}
