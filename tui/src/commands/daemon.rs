//! `reagent daemon start|stop|status` and `reagent status`.

use std::process::ExitCode;

use reagent::Error;
use reagent::client::{Client, no_daemon, start_daemon};
use reagent::paths::Paths;
use reagent::protocol::{DaemonStatus, Shutdown, StatusReply};
use reagent::time::{format_duration_ms, now_ms};
use reagent::transport::Transport;

use super::{Ctx, print_json, unreachable};
use crate::cli::DaemonAction;
use crate::sanitize;

/// Connects without starting a daemon; `None` when none runs.
async fn running(paths: &Paths) -> anyhow::Result<Option<Client>> {
    match Client::connect(&paths.socket()).await {
        Ok((client, _)) => Ok(Some(client)),
        Err(Error::Io { error, .. }) if no_daemon(&error) => Ok(None),
        Err(err) => Err(unreachable(err)),
    }
}

/// `reagent daemon …`
pub async fn daemon(ctx: &Ctx, action: DaemonAction) -> anyhow::Result<ExitCode> {
    let paths = match &ctx.transport {
        Transport::Local(paths) => paths,
        Transport::Remote(_) => return remote_daemon(ctx, action).await,
    };
    let client = running(paths).await?;
    match (action, client) {
        (DaemonAction::Start, Some(client)) => {
            let status = client.call(&DaemonStatus {}).await?;
            println!("reagentd is already running (pid {})", status.daemon.pid);
        }
        (DaemonAction::Start, None) => {
            start_daemon().await.map_err(unreachable)?;
            let (client, _) = Client::connect(&paths.socket())
                .await
                .map_err(unreachable)?;
            let status = client.call(&DaemonStatus {}).await?;
            println!("started reagentd (pid {})", status.daemon.pid);
        }
        (DaemonAction::Stop, Some(client)) => {
            let status = client.call(&DaemonStatus {}).await?;
            client.call(&Shutdown {}).await?;
            wait_for_exit(status.daemon.pid).await;
            println!(
                "stopped reagentd (pid {}); runs keep going",
                status.daemon.pid
            );
        }
        (DaemonAction::Stop, None) => println!("reagentd is not running"),
        (DaemonAction::Status, Some(client)) => print_status(&client.call(&DaemonStatus {}).await?),
        (DaemonAction::Status, None) => {
            println!("reagentd is not running ({})", paths.socket().display());
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reagent --remote HOST daemon …`: through the remote proxy, which starts the daemon there
/// when none runs.
async fn remote_daemon(ctx: &Ctx, action: DaemonAction) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let status = client.call(&DaemonStatus {}).await?;
    match action {
        DaemonAction::Start | DaemonAction::Status => print_status(&status),
        DaemonAction::Stop => {
            client.call(&Shutdown {}).await?;
            println!(
                "stopped reagentd (pid {}) on {}",
                status.daemon.pid,
                ctx.transport.describe()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits (up to 10 s) until the daemon's process is gone, so a following start cannot race
/// it for the lock.
async fn wait_for_exit(pid: u32) {
    let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0)) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while rustix::process::test_kill_process(pid).is_ok() && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `reagent status`
pub async fn status(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let status = client.call(&DaemonStatus {}).await?;
    if json {
        print_json(&status)?;
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(status: &StatusReply) {
    let daemon = &status.daemon;
    println!(
        "reagentd {} (pid {}), up {}, state in {}",
        sanitize::line(&daemon.version),
        daemon.pid,
        format_duration_ms(now_ms() - daemon.started_at),
        sanitize::line(&daemon.state_dir)
    );
    let runs: Vec<String> = status
        .runs
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    let runs = if runs.is_empty() {
        "no runs".to_string()
    } else {
        runs.join(", ")
    };
    println!("{runs}; {} client(s) attached", status.clients);
}
