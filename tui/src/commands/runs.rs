//! `reagent run` (here or on Slurm), `runs`, `stop`, `input`, `rename` (and the summary
//! `wait` prints).
//! Removing and rerunning runs is in `tidy.rs`.

use std::process::ExitCode;

use anyhow::bail;
use reagent::client::{Client, Notifications, Update};
use reagent::gpu::{GpuRequest, SubmitRun};
use reagent::protocol::{
    Base64Text, Event, EventKind, ListRuns, RenameRun, SendInput, StopRun, Sync, WaitRun,
};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use reagent::slurm::SlurmSpec;
use reagent::time::{format_duration_ms, now_ms};

use super::{Ctx, aligned, print_json};
use crate::cli::{On, RunArgs, RunsArgs, SlurmArgs};
use crate::sanitize;

/// `reagent run [--name N] [--cwd DIR] [--env K=V]... [--on slurm ...] -- CMD ARGS...`
pub async fn start(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    let cwd = match args.cwd {
        Some(cwd) => std::path::absolute(cwd)?,
        None => std::env::current_dir()?,
    };
    let mut slurm = slurm_spec(args.slurm)?;
    if let Some(slurm) = &mut slurm {
        let local_queue = [
            ("--gpu-ids", !args.gpu_ids.is_empty()),
            ("--priority", args.priority.is_some()),
            ("--retry-gpu", args.retry_gpu.is_some()),
        ];
        if let Some((flag, _)) = local_queue.iter().find(|(_, given)| *given) {
            bail!(
                "{flag} is for this machine's GPU queue; a run on Slurm waits in Slurm's queue \
                 (ask it for GPUs with --gpus N, or pass options with --sbatch-arg)"
            );
        }
        slurm.gpus = args.gpus;
    }
    let spec = RunSpec {
        name: args.name,
        command: args.command,
        cwd: Some(cwd),
        env: args.env,
        client_env: ctx.transport.run_env(),
        pass_env: args.pass_env,
        size: None,
        metrics: args.metrics,
        alerts: args.alerts,
        agent_session: args.agent_session,
        slurm,
    };
    let (client, notes) = ctx.connect().await?;
    if spec.slurm.is_some() {
        let run = client.call(&spec).await?;
        let run = until_submitted(&client, notes, run).await?;
        if run.status.is_terminal() {
            eprintln!("reagent: {}", summary(&run));
            return Ok(ExitCode::FAILURE);
        }
        return print_started(&run, args.json);
    }
    let queued = args.gpus.is_some()
        || !args.gpu_ids.is_empty()
        || args.priority.is_some()
        || args.retry_gpu.is_some();
    let run = if queued {
        let submit = SubmitRun {
            spec,
            gpus: GpuRequest {
                count: args.gpus.unwrap_or(0),
                ids: args.gpu_ids,
            },
            priority: args.priority.unwrap_or(0),
            retry_gpu: args.retry_gpu.unwrap_or(0),
        };
        client.call(&submit).await?
    } else {
        client.call(&spec).await?
    };
    print_started(&run, args.json)
}

/// The run once Slurm took its job (it then waits in Slurm's queue) or refused it (it then
/// failed, in Slurm's words): a job Slurm refuses is an error of `reagent run` itself.
async fn until_submitted(
    client: &Client,
    notes: Notifications,
    run: RunInfo,
) -> anyhow::Result<RunInfo> {
    let submitting = |run: &RunInfo| {
        !run.status.is_terminal() && run.executor.slurm().is_some_and(|s| s.job.is_none())
    };
    let (hello, mut updates) = client.subscribe(notes, "reagent run").await?;
    let id = run.id.clone();
    let newer = |runs: Vec<RunInfo>| runs.into_iter().find(|other| other.id == id);
    let mut run = match hello.sync {
        Sync::Snapshot(snapshot) => newer(snapshot.runs).unwrap_or(run),
        Sync::Events { .. } => run,
    };
    while submitting(&run) {
        run = match updates.next().await? {
            Some(Update::Event(Event {
                kind: EventKind::Run { run: changed },
                ..
            })) if changed.id == id => changed,
            Some(Update::Resynced(Some(snapshot))) => newer(snapshot.runs).unwrap_or(run),
            Some(_) => run,
            None => bail!("the daemon went away while it submitted run {id}"),
        };
    }
    Ok(run)
}

/// What `--on slurm` and its flags ask of Slurm; `None` for a run here, which refuses the
/// flags that only Slurm reads.
pub(super) fn slurm_spec(args: SlurmArgs) -> anyhow::Result<Option<SlurmSpec>> {
    if args.on == Some(On::Slurm) {
        return Ok(Some(SlurmSpec {
            partition: args.partition,
            gpus: None,
            cpus: args.cpus,
            mem: args.mem,
            time: args.time,
            account: args.account,
            sbatch_args: args.sbatch_args,
        }));
    }
    let slurm_only = [
        ("--partition", args.partition.is_some()),
        ("--cpus", args.cpus.is_some()),
        ("--mem", args.mem.is_some()),
        ("--time", args.time.is_some()),
        ("--account", args.account.is_some()),
        ("--sbatch-arg", !args.sbatch_args.is_empty()),
    ];
    if let Some((flag, _)) = slurm_only.iter().find(|(_, given)| *given) {
        bail!("{flag} is what a run asks of Slurm: add --on slurm");
    }
    Ok(None)
}

/// Says which run a command started: its id, for scripts to keep, or the run as JSON.
pub(super) fn print_started(run: &RunInfo, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        print_json(run)?;
    } else {
        println!("{}", run.id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent runs [--status S] [--name GLOB] [--limit N] [--json]`
pub async fn list(ctx: &Ctx, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let filters = ListRuns {
        status: args.status,
        name: args.name,
        limit: args.limit,
    };
    let runs = client.call(&filters).await?;
    if args.json {
        print_json(&runs)?;
    } else {
        print!("{}", table(&runs, now_ms()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs as an aligned table, one line per run; a queued run says what it waits for (a
/// run on Slurm also what Slurm said last), and every run where it executes.
pub fn table(runs: &[RunInfo], now: i64) -> String {
    let mut rows = vec![
        [
            "ID", "NAME", "STATUS", "EXIT", "RUNTIME", "WHERE", "COMMAND",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for run in runs {
        let exit = match (run.exit_code, run.signal) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("sig{signal}"),
            (None, None) => "-".into(),
        };
        let on_slurm = run.executor.slurm().is_some();
        let status = match (&run.reason, run.status) {
            (Some(reason), RunStatus::Queued) => format!("queued ({reason})"),
            // Why Slurm cannot be asked about a running job, say.
            (Some(reason), RunStatus::Running) if on_slurm => format!("running ({reason})"),
            _ => run.status.to_string(),
        };
        // Output missing from the log is said where runs are listed; `logs` has the marker.
        let status = match &run.lost_output {
            Some(loss) if loss.ongoing => format!("{status} (losing output)"),
            Some(_) => format!("{status} (output lost)"),
            None => status,
        };
        rows.push(vec![
            run.id.clone(),
            run.name.clone().unwrap_or_else(|| "-".into()),
            status,
            exit,
            run.runtime_ms(now).map_or("-".into(), format_duration_ms),
            run.executor.describe(),
            run.command_line(),
        ]);
    }
    aligned(&rows)
}

/// `reagent stop RUN [--grace SECS] [--no-wait]`
pub async fn stop(
    ctx: &Ctx,
    run: &str,
    grace: Option<f64>,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let stopping = client
        .call(&StopRun {
            run: run.into(),
            grace_secs: grace,
        })
        .await?;
    if no_wait {
        println!("stopping {}", sanitize::line(stopping.label()));
        return Ok(ExitCode::SUCCESS);
    }
    let ended = client
        .call(&WaitRun {
            run: stopping.id.clone(),
        })
        .await?;
    println!("{}", summary(&ended));
    Ok(ExitCode::SUCCESS)
}

/// `reagent input RUN TEXT [--no-enter]`
pub async fn input(ctx: &Ctx, run: &str, text: &str, enter: bool) -> anyhow::Result<ExitCode> {
    let mut data = text.as_bytes().to_vec();
    if enter {
        // Enter is a carriage return on a terminal; the line discipline turns it into \n.
        data.push(b'\r');
    }
    let (client, _) = ctx.connect().await?;
    client
        .call(&SendInput {
            run: run.into(),
            data: Base64Text::encode(&data),
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// `reagent rename RUN NAME`
pub async fn rename(ctx: &Ctx, run: &str, name: &str) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let renamed = client
        .call(&RenameRun {
            run: run.into(),
            name: name.into(),
        })
        .await?;
    println!("{} is now {}", renamed.id, sanitize::line(renamed.label()));
    Ok(ExitCode::SUCCESS)
}

/// `ab12cd34 failed: exited with code 3`, made safe to print.
pub(super) fn summary(run: &RunInfo) -> String {
    let label = sanitize::line(run.label());
    let mut summary = match &run.reason {
        Some(reason) => format!("{label} {}: {}", run.status, sanitize::line(reason)),
        None => format!("{label} {}", run.status),
    };
    if let Some(loss) = &run.lost_output {
        summary.push_str(&format!("; {}", loss.describe()));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns_and_shows_exit_codes() {
        let mut run: RunInfo = serde_json::from_value(serde_json::json!({
            "id": "ab12cd34", "name": "train", "command": ["python", "train.py"], "cwd": "/",
            "env_keys": [], "status": "failed", "exit_code": 3, "signal": null, "reason": null,
            "pid": null, "cols": 80, "rows": 24, "created_at": 0, "started_at": 1000,
            "ended_at": 43000, "log_path": "/x"
        }))
        .unwrap();
        let text = table(std::slice::from_ref(&run), 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID        NAME   STATUS  EXIT  RUNTIME  WHERE  COMMAND"
        );
        assert_eq!(
            lines[1],
            "ab12cd34  train  failed  3     42s      local  python train.py"
        );
        run.exit_code = None;
        run.signal = Some(9);
        assert!(table(std::slice::from_ref(&run), 0).contains("sig9"));
        run.status = RunStatus::Queued;
        run.reason = Some("waiting for 1 GPU: 0 of 2 free".into());
        assert!(
            table(std::slice::from_ref(&run), 0)
                .contains("queued (waiting for 1 GPU: 0 of 2 free)")
        );
        run.executor = reagent::slurm::Executor::Slurm(reagent::slurm::SlurmJob {
            job: Some("1234".into()),
            cluster: Some("tiger".into()),
            stop_by: None,
        });
        run.reason = Some("waiting in Slurm's queue: Priority".into());
        let text = table(&[run], 0);
        assert!(
            text.contains("queued (waiting in Slurm's queue: Priority)"),
            "{text}"
        );
        assert!(text.contains("slurm:1234@tiger"), "{text}");
    }

    #[test]
    fn slurm_flags_need_on_slurm_and_make_its_spec() {
        let flags = SlurmArgs {
            time: Some("0:01".into()),
            ..SlurmArgs::default()
        };
        let err = slurm_spec(flags).unwrap_err().to_string();
        assert_eq!(err, "--time is what a run asks of Slurm: add --on slurm");
        let flags = SlurmArgs {
            on: Some(On::Slurm),
            partition: Some("gpu".into()),
            ..SlurmArgs::default()
        };
        let spec = slurm_spec(flags).unwrap().unwrap();
        assert_eq!(spec.partition.as_deref(), Some("gpu"));
        let local = SlurmArgs {
            on: Some(On::Local),
            ..SlurmArgs::default()
        };
        assert_eq!(slurm_spec(local).unwrap(), None);
    }
}
