//! `reagent run`, `runs`, `stop`, `input`, `rename` (and the summary `wait` prints).
//! Removing and rerunning runs is in `tidy.rs`.

use std::process::ExitCode;

use reagent::gpu::{GpuRequest, SubmitRun};
use reagent::protocol::{Base64Text, ListRuns, RenameRun, SendInput, StopRun, WaitRun};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use reagent::time::{format_duration_ms, now_ms};

use super::{Ctx, aligned, print_json};
use crate::cli::{RunArgs, RunsArgs};
use crate::sanitize;

/// `reagent run [--name N] [--cwd DIR] [--env K=V]... -- CMD ARGS...`
pub async fn start(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    let cwd = match args.cwd {
        Some(cwd) => std::path::absolute(cwd)?,
        None => std::env::current_dir()?,
    };
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
    };
    let (client, _) = ctx.connect().await?;
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

/// The runs as an aligned table, one line per run; a queued run says what it waits for.
pub fn table(runs: &[RunInfo], now: i64) -> String {
    let mut rows = vec![
        ["ID", "NAME", "STATUS", "EXIT", "RUNTIME", "COMMAND"]
            .map(String::from)
            .to_vec(),
    ];
    for run in runs {
        let exit = match (run.exit_code, run.signal) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("sig{signal}"),
            (None, None) => "-".into(),
        };
        let status = match (&run.reason, run.status) {
            (Some(reason), RunStatus::Queued) => format!("queued ({reason})"),
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
        assert_eq!(lines[0], "ID        NAME   STATUS  EXIT  RUNTIME  COMMAND");
        assert_eq!(
            lines[1],
            "ab12cd34  train  failed  3     42s      python train.py"
        );
        run.exit_code = None;
        run.signal = Some(9);
        assert!(table(std::slice::from_ref(&run), 0).contains("sig9"));
        run.status = RunStatus::Queued;
        run.reason = Some("waiting for 1 GPU: 0 of 2 free".into());
        assert!(table(&[run], 0).contains("queued (waiting for 1 GPU: 0 of 2 free)"));
    }
}
