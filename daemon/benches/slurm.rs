//! `slurm`: what following runs on Slurm costs the daemon, against a baseline measured side
//! by side.
//!
//! **1,000 pending jobs.** A release `reagentd` with stand-ins of Slurm's commands first on
//! its PATH (`tests/standin/slurm_stub.sh`: `sbatch` hands out ids, `squeue` lists every job
//! asked for as `PENDING (Priority)`, one line each) is handed 1,000 runs on Slurm through
//! `run.start`, waits until all are submitted and say `waiting in Slurm's queue: Priority`,
//! then lets its looks at the queue slow down to the default `poll_secs` (5 s: one `squeue`
//! call for all 1,000 jobs, printing 1,000 lines). Then its own threads' CPU time over 30 s
//! (10 s with `--quick`). Baseline, over the same window: a second daemon with no runs.
//! Target: < 1% of one core. Also reported: the `squeue` calls in the window (the stub counts
//! them), and how long the 1,000 submissions took.
//!
//! Run with `cargo bench -p reagentd --bench slurm [-- --quick]`; exits 1 when a target fails.

#[path = "../../benches/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use reagent::client::Client;
use reagent::protocol::ListRuns;
use reagent::run::RunSpec;
use reagent::slurm::SlurmSpec;
use support::{BenchDaemon, CpuReading, Table};

/// The stand-in of Slurm's commands.
const STUB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/standin/slurm_stub.sh"
);
/// Runs followed.
const RUNS: usize = 1000;
/// CPU target, fraction of one core.
const MAX_CORE: f64 = 0.01;
/// The default `[slurm] poll_secs`.
const POLL_SECS: f64 = 5.0;

fn main() -> ExitCode {
    support::block_on("slurm", bench())
}

async fn bench() -> anyhow::Result<bool> {
    let window = Duration::from_secs(if support::quick() { 10 } else { 30 });
    let mut table = Table::default();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_reagentd"));
    let stubs = tempfile::Builder::new().prefix("rgstub").tempdir()?;
    for name in ["sbatch", "squeue", "scontrol", "scancel", "sacct"] {
        std::os::unix::fs::symlink(STUB, stubs.path().join(name))?;
    }
    let path = format!(
        "{}:{}",
        stubs.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut idle = BenchDaemon::start(&binary, "rgidle", |_, _| Ok(()))?;
    let mut slurm = BenchDaemon::start(&binary, "rgslurm", |_, command| {
        command.env("PATH", &path);
        Ok(())
    })?;

    let submitted = submit(&slurm).await?;
    table.info(
        &format!("{RUNS} runs submitted (sbatch stub) and pending"),
        format!("{:.1} s", submitted.as_secs_f64()),
    );
    // Looks come quickly after the submissions, then slow to the interval: let them.
    tokio::time::sleep(Duration::from_secs_f64(POLL_SECS * 2.0)).await;

    let calls = stubs.path().join("squeue.calls");
    std::fs::write(&calls, "")?;
    let (idle_pid, slurm_pid) = (idle.pid()?, slurm.pid()?);
    let before = (CpuReading::now(idle_pid)?, CpuReading::now(slurm_pid)?);
    let children_before = support::cpu_seconds(slurm_pid)?.1;
    tokio::time::sleep(window).await;
    let after = (CpuReading::now(idle_pid)?, CpuReading::now(slurm_pid)?);
    let children = support::cpu_seconds(slurm_pid)?.1 - children_before;
    let looks = std::fs::read_to_string(&calls)?.lines().count();
    let (idle_core, slurm_core) = (after.0.core_since(&before.0), after.1.core_since(&before.1));
    let over = format!("(over {} s)", window.as_secs());
    table.info(
        "idle daemon, no runs (baseline)",
        format!("{:.3}% of a core {over}", idle_core * 100.0),
    );
    table.info(
        "squeue calls in the window (1,000 lines each)",
        format!("{looks} (one per {POLL_SECS} s)"),
    );
    table.info(
        "its stub commands (the cluster's cost, not the daemon's)",
        format!("{:.3}% of a core", children / window.as_secs_f64() * 100.0),
    );
    table.check(
        &format!("daemon following {RUNS} pending Slurm jobs"),
        format!("{:.3}% of a core {over}", slurm_core * 100.0),
        "< 1% of a core".into(),
        slurm_core < MAX_CORE,
    );
    idle.stop()?;
    slurm.stop()?;
    Ok(table.print())
}

/// Starts the runs on Slurm through one connection, and waits until every one waits in
/// (stand-in) Slurm's queue with Slurm's reason; how long that took.
async fn submit(daemon: &BenchDaemon) -> anyhow::Result<Duration> {
    let (client, _) = Client::connect(&daemon.socket()).await?;
    let started = Instant::now();
    let mut replies = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let spec = RunSpec {
            name: Some(format!("pending-{i}")),
            command: vec!["train".into(), format!("--seed={i}")],
            cwd: Some(Path::new("/tmp").to_path_buf()),
            slurm: Some(SlurmSpec::default()),
            ..RunSpec::default()
        };
        replies.push(client.request(&spec).await?);
    }
    for reply in replies {
        reply.await.context("run.start")?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = client.call(&ListRuns::default()).await?;
        let waiting = (runs.iter())
            .filter(|run| run.reason.as_deref() == Some("waiting in Slurm's queue: Priority"))
            .count();
        if waiting == RUNS {
            return Ok(started.elapsed());
        }
        ensure!(
            Instant::now() < deadline,
            "only {waiting} of {RUNS} runs wait in Slurm's queue after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
