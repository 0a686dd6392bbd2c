//! `spine`: what the daemon costs on its hot paths, measured against doing the same work
//! with a bare PTY, side by side.
//!
//! Every measurement alternates a baseline and the real `reagentd` (release build, on a fresh
//! temporary `REAGENT_DIR` each time), repeats that N times (3, or 1 with `--quick`), takes
//! medians, and checks a target: a ratio or an absolute bound, never a timed test.
//!
//! 1. **Throughput**: ~150 MB of `base64` through a 200x50 PTY. Baseline: one thread reading
//!    the PTY master into a 64 KiB buffer and discarding. Reagent: the run started through the
//!    daemon, with one client attached that consumes every `output` notification; timed from
//!    `run.start` until the run's terminal `run` event (which the daemon queues after the last
//!    output, so every byte has reached the client). Target: ≤ 1.3 × baseline.
//! 2. **Idle memory**: the daemon's VmRSS after start and one `daemon.status`. Target < 16 MiB
//!    (a `sleep` process's RSS is printed for scale).
//! 3. **100 finished runs**: 100 runs of `true` submitted back to back, then waited for.
//!    Targets: first submit to last end < 5 s, and RSS grows < 1 MiB over the idle figure.
//!    Baseline for context: 100 sequential `true` spawns in fresh PTYs through portable-pty.
//!
//! Run with `cargo bench -p reagentd --bench spine [-- --quick]`. Exits with status 1 when a
//! target fails (or a measurement cannot be made).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use reagent::client::{Client, Notifications};
use reagent::protocol::{
    Attach, DaemonStatus, EventKind, Notification, StopRun, Sync as CatchUp, WaitRun,
};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use rustix::process::{Pid, Signal};

/// The flood: 110 MB of zeros as base64, ~150 MB once the PTY turns `\n` into `\r\n`.
const FLOOD: &str = "head -c 110000000 /dev/zero | base64";
/// PTY width for every run.
const COLS: u16 = 200;
/// PTY height for every run.
const ROWS: u16 = 50;
/// Baseline read buffer.
const READ_BUF: usize = 64 * 1024;
/// Throughput target: reagent time over baseline time, at most.
const MAX_THROUGHPUT_RATIO: f64 = 1.3;
/// Idle daemon RSS target, in bytes.
const MAX_IDLE_RSS: u64 = 16 << 20;
/// Runs in the batch measurement.
const BATCH: usize = 100;
/// Batch target: first submit to last end.
const MAX_BATCH_TIME: Duration = Duration::from_secs(5);
/// RSS growth allowed by 100 finished runs, in bytes.
const MAX_RSS_GROWTH: u64 = 1 << 20;
/// How long the daemon may take to create its socket.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long one flood (or one batch) may take before the measurement is abandoned.
const RUN_DEADLINE: Duration = Duration::from_secs(300);
/// Clock ticks per second of the times in /proc/<pid>/stat (fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;
/// How long the daemon may take to exit after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Parses `--quick`, runs the measurements, exits 1 when a target fails.
fn main() -> ExitCode {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let reps = if quick { 1 } else { 3 };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("spine: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(reps)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("spine: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every measurement `reps` times, prints the table, and says whether all targets held.
async fn bench(reps: usize) -> anyhow::Result<bool> {
    println!(
        "spine: {reps} repetition(s), daemon {}",
        daemon_binary().display()
    );
    let mut flood = Vec::new();
    for rep in 0..reps {
        // Alternate which side goes first, so neither always gets the warmer machine.
        let (base, real) = if rep % 2 == 0 {
            let base = tokio::task::spawn_blocking(baseline_flood).await??;
            (base, reagent_flood().await?)
        } else {
            let real = reagent_flood().await?;
            (tokio::task::spawn_blocking(baseline_flood).await??, real)
        };
        println!(
            "  flood #{}: baseline {:.3} s ({} B), reagent {:.3} s (log {} B, client got {} B \
             after attaching at {}, {} resync(s), {}; CPU: daemon {:.2} s, supervisor+job \
             {:.2} s, client {:.2} s)",
            rep + 1,
            base.elapsed.as_secs_f64(),
            base.bytes,
            real.elapsed.as_secs_f64(),
            real.log_bytes,
            real.received,
            real.attach_offset,
            real.resyncs,
            real.status,
            real.daemon_cpu,
            real.children_cpu,
            real.client_cpu,
        );
        flood.push((base, real));
    }
    let mut batch = Vec::new();
    for rep in 0..reps {
        let (base, real) = if rep % 2 == 0 {
            let base = tokio::task::spawn_blocking(baseline_batch).await??;
            (base, reagent_batch().await?)
        } else {
            let real = reagent_batch().await?;
            (tokio::task::spawn_blocking(baseline_batch).await??, real)
        };
        println!(
            "  batch #{}: baseline {:.3} s, reagent {:.3} s ({} finished), RSS idle {} KiB, \
             after {} KiB (of which anonymous: {} -> {} KiB)",
            rep + 1,
            base.as_secs_f64(),
            real.elapsed.as_secs_f64(),
            real.finished,
            real.idle_rss >> 10,
            real.after_rss >> 10,
            real.anon.0 >> 10,
            real.anon.1 >> 10,
        );
        batch.push((base, real));
    }
    let sleep_rss = sleep_rss()?;
    Ok(report(&flood, &batch, sleep_rss))
}

/// Prints the table; true when every target held.
fn report(
    flood: &[(FloodBase, FloodSample)],
    batch: &[(Duration, BatchSample)],
    sleep: u64,
) -> bool {
    let mut table = Table::default();

    let base_s = median(flood.iter().map(|(b, _)| b.elapsed.as_secs_f64()));
    let real_s = median(flood.iter().map(|(_, r)| r.elapsed.as_secs_f64()));
    let ratio = median(
        flood
            .iter()
            .map(|(b, r)| r.elapsed.as_secs_f64() / b.elapsed.as_secs_f64()),
    );
    let base_bytes = flood.iter().map(|(b, _)| b.bytes).max().unwrap_or(0);
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;
    table.info(
        "flood: baseline (bare PTY)",
        format!("{base_s:.3} s, {:.0} MB/s", mb(base_bytes, base_s)),
    );
    let log_bytes = flood.iter().map(|(_, r)| r.log_bytes).max().unwrap_or(0);
    table.info(
        "flood: reagent (1 client attached)",
        format!("{real_s:.3} s, {:.0} MB/s", mb(log_bytes, real_s)),
    );
    table.check(
        "flood: reagent / baseline (median of pairs)",
        format!("{ratio:.2}x"),
        format!("<= {MAX_THROUGHPUT_RATIO}x"),
        ratio <= MAX_THROUGHPUT_RATIO,
    );
    let complete = flood
        .iter()
        .all(|(b, r)| r.log_bytes == b.bytes && r.status == RunStatus::Finished);
    let sizes = if complete {
        format!("{log_bytes} B = {base_bytes} B ({n}/{n})", n = flood.len())
    } else {
        let each: Vec<String> = flood
            .iter()
            .map(|(b, r)| format!("{}/{} B {}", r.log_bytes, b.bytes, r.status))
            .collect();
        each.join(", ")
    };
    table.check(
        "flood: output.log size = baseline bytes",
        sizes,
        "equal, run finished".into(),
        complete,
    );
    let delivered = flood
        .iter()
        .all(|(_, r)| r.resyncs == 0 && r.attach_offset + r.received == r.log_bytes);
    let got = if delivered {
        format!("every byte, no resync ({n}/{n})", n = flood.len())
    } else {
        let each: Vec<String> = flood
            .iter()
            .map(|(_, r)| {
                format!(
                    "{}+{} B, {} resync(s)",
                    r.attach_offset, r.received, r.resyncs
                )
            })
            .collect();
        each.join("; ")
    };
    table.info("flood: what the client received", got);
    let cpu = |pick: fn(&FloodSample) -> f64| median(flood.iter().map(|(_, r)| pick(r)));
    table.info(
        "flood: baseline CPU seconds (median)",
        format!(
            "reader {:.2} s, job {:.2} s",
            median(flood.iter().map(|(b, _)| b.cpu.0)),
            median(flood.iter().map(|(b, _)| b.cpu.1)),
        ),
    );
    table.info(
        "flood: reagent CPU seconds (median)",
        format!(
            "daemon {:.2} s, supervisor+job {:.2} s, client {:.2} s",
            cpu(|r| r.daemon_cpu),
            cpu(|r| r.children_cpu),
            cpu(|r| r.client_cpu),
        ),
    );

    let idle = median_u64(batch.iter().map(|(_, r)| r.idle_rss));
    table.check(
        "idle daemon VmRSS",
        kib(idle),
        format!("< {}", kib(MAX_IDLE_RSS)),
        idle < MAX_IDLE_RSS,
    );
    table.info("  for scale: `sleep 100` VmRSS", kib(sleep));

    let base_batch = median(batch.iter().map(|(b, _)| b.as_secs_f64()));
    let real_batch = median(batch.iter().map(|(_, r)| r.elapsed.as_secs_f64()));
    let batch_ratio = median(
        batch
            .iter()
            .map(|(b, r)| r.elapsed.as_secs_f64() / b.as_secs_f64()),
    );
    let all_finished = batch.iter().all(|(_, r)| r.finished == BATCH);
    table.check(
        &format!("{BATCH} runs of `true`: submit to last end"),
        format!("{real_batch:.3} s"),
        format!("< {:.0} s, all finished", MAX_BATCH_TIME.as_secs_f64()),
        real_batch < MAX_BATCH_TIME.as_secs_f64() && all_finished,
    );
    table.info(
        &format!("  baseline: {BATCH} sequential PTY spawns"),
        format!("{base_batch:.3} s (reagent {batch_ratio:.1}x)"),
    );
    let growth = median_i64(
        batch
            .iter()
            .map(|(_, r)| r.after_rss as i64 - r.idle_rss as i64),
    );
    let after = median_u64(batch.iter().map(|(_, r)| r.after_rss));
    table.check(
        &format!("VmRSS growth after {BATCH} runs"),
        format!("{:+} KiB (now {})", growth / 1024, kib(after)),
        format!("< {}", kib(MAX_RSS_GROWTH)),
        growth < MAX_RSS_GROWTH as i64,
    );
    table.print()
}

/// Rows of the result table.
#[derive(Default)]
struct Table {
    /// Measurement, value, target, verdict.
    rows: Vec<[String; 4]>,
    /// Whether any check failed.
    failed: bool,
}

impl Table {
    /// A row with a target.
    fn check(&mut self, what: &str, value: String, target: String, pass: bool) {
        let verdict = if pass { "PASS" } else { "FAIL" };
        self.failed |= !pass;
        self.rows.push([what.into(), value, target, verdict.into()]);
    }

    /// A row for context only.
    fn info(&mut self, what: &str, value: String) {
        self.rows
            .push([what.into(), value, String::new(), String::new()]);
    }

    /// Prints the rows aligned; true when every check passed.
    fn print(&self) -> bool {
        let header = [
            "measurement".to_string(),
            "measured".into(),
            "target".into(),
            "verdict".into(),
        ];
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        println!();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            println!("{}", line.trim_end());
        }
        let ok = !self.failed;
        println!(
            "\n{}",
            if ok {
                "all targets met"
            } else {
                "TARGETS FAILED"
            }
        );
        ok
    }
}

/// The baseline side of the flood.
struct FloodBase {
    /// From `openpty` until the reader saw the end and the job was reaped.
    elapsed: Duration,
    /// Bytes the reader got.
    bytes: u64,
    /// CPU seconds of this process (the reader thread) and of the reaped job.
    cpu: (f64, f64),
}

/// The reagent side of the flood.
struct FloodSample {
    /// From `run.start` until the run's terminal event reached the client.
    elapsed: Duration,
    /// Size of the run's `output.log`.
    log_bytes: u64,
    /// Bytes carried by `output` notifications.
    received: u64,
    /// Where the client's attachment started (bytes before it came as the screen).
    attach_offset: u64,
    /// `resync` notifications the client got (each means dropped output).
    resyncs: u32,
    /// How the run ended.
    status: RunStatus,
    /// CPU seconds of the daemon's own threads.
    daemon_cpu: f64,
    /// CPU seconds of the reaped supervisor and, through it, the job.
    children_cpu: f64,
    /// CPU seconds of this process (the client) during the run.
    client_cpu: f64,
}

/// The reagent side of the batch.
struct BatchSample {
    /// From the first `run.start` until the last `run.wait` answered.
    elapsed: Duration,
    /// Runs that ended `finished`.
    finished: usize,
    /// VmRSS after start and one `daemon.status`.
    idle_rss: u64,
    /// VmRSS once every run ended.
    after_rss: u64,
    /// RssAnon (heap and stacks; the rest is file-backed code) idle and after.
    anon: (u64, u64),
}

/// The flood through a bare PTY: one thread reads and discards, counting bytes.
fn baseline_flood() -> anyhow::Result<FloodBase> {
    let cpu_before = cpu_seconds(std::process::id())?;
    let start = Instant::now();
    let pair = native_pty_system().openpty(pty_size()).context("openpty")?;
    let mut cmd = CommandBuilder::new("sh");
    cmd.args(["-c", FLOOD]);
    let mut child = pair.slave.spawn_command(cmd).context("spawn the flood")?;
    // Only the child holds the slave now, so its exit reads as the PTY's end.
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().context("PTY reader")?;
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; READ_BUF];
        let mut bytes = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return bytes,
                Ok(n) => bytes += n as u64,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: the slave side closed.
                Err(_) => return bytes,
            }
        }
    });
    child.wait().context("wait for the flood")?;
    let bytes = counter
        .join()
        .map_err(|_| anyhow!("the reader thread panicked"))?;
    let elapsed = start.elapsed();
    drop(pair.master);
    let cpu_after = cpu_seconds(std::process::id())?;
    let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    Ok(FloodBase {
        elapsed,
        bytes,
        cpu,
    })
}

/// The flood through the daemon, with one attached client consuming every output line.
async fn reagent_flood() -> anyhow::Result<FloodSample> {
    let daemon = Daemon::start().await?;
    let (client, notes) = Client::connect(&daemon.socket()).await?;
    client.hello("spine-bench", None).await?;
    let spec = RunSpec {
        command: vec!["sh".into(), "-c".into(), FLOOD.into()],
        cwd: Some(daemon.path().to_path_buf()),
        size: Some((COLS, ROWS)),
        ..RunSpec::default()
    };
    let client_cpu = cpu_seconds(std::process::id())?;
    let start = Instant::now();
    let run = client.call(&spec).await?;
    let result = follow_flood(&client, notes, &run, start).await;
    if result.is_err() {
        // Do not leave the flood running under its supervisor.
        let stop = StopRun {
            run: run.id.clone(),
            grace_secs: Some(0.0),
        };
        let _ = client.call(&stop).await;
    }
    let mut sample = result?;
    sample.client_cpu = cpu_seconds(std::process::id())?.0 - client_cpu.0;
    (sample.daemon_cpu, sample.children_cpu) = daemon.cpu()?;
    daemon.stop()?;
    Ok(sample)
}

/// Attaches to the flood and consumes its output until its terminal `run` event.
async fn follow_flood(
    client: &Client,
    mut notes: Notifications,
    run: &RunInfo,
    start: Instant,
) -> anyhow::Result<FloodSample> {
    let attach = Attach {
        run: run.id.clone(),
        size: None,
    };
    let attached = client.call(&attach).await?;
    let attach_offset = attached.offset;
    let mut received = 0u64;
    let mut resyncs = 0u32;
    let mut last_seq = None;
    let deadline = tokio::time::Instant::now() + RUN_DEADLINE;
    let ended = loop {
        let note = tokio::time::timeout_at(deadline, notes.recv())
            .await
            .context("the flood did not end in time")?
            .context("the daemon closed the connection")?;
        match note {
            Notification::Output(output) if output.run == run.id => {
                received += output.data.0.len() as u64;
            }
            Notification::Event(event) => {
                last_seq = Some(event.seq);
                if let Some(done) = terminal(&event.kind, &run.id) {
                    break done;
                }
            }
            Notification::Resync(_) => {
                // The client fell behind and its queue was dropped: catch up, re-attach.
                resyncs += 1;
                let reply = client.hello("spine-bench", last_seq).await?;
                let missed = match reply.sync {
                    CatchUp::Events { events } => events
                        .iter()
                        .find_map(|event| terminal(&event.kind, &run.id)),
                    CatchUp::Snapshot(snapshot) => snapshot
                        .runs
                        .into_iter()
                        .find(|r| r.id == run.id && r.status.is_terminal()),
                };
                if let Some(done) = missed {
                    break done;
                }
                let again = client.call(&attach).await?;
                if again.run.status.is_terminal() {
                    break again.run;
                }
            }
            _ => {}
        }
    };
    let elapsed = start.elapsed();
    // The wait reply must agree (and proves `run.wait` works under load).
    let waited = client
        .call(&WaitRun {
            run: run.id.clone(),
        })
        .await?;
    if waited.status != ended.status {
        bail!(
            "run.wait said {} but the event said {}",
            waited.status,
            ended.status
        );
    }
    let log_bytes = std::fs::metadata(&run.log_path)
        .with_context(|| format!("stat {}", run.log_path.display()))?
        .len();
    Ok(FloodSample {
        elapsed,
        log_bytes,
        received,
        attach_offset,
        resyncs,
        status: ended.status,
        daemon_cpu: 0.0,
        children_cpu: 0.0,
        client_cpu: 0.0,
    })
}

/// The run, when `kind` says run `id` ended.
fn terminal(kind: &EventKind, id: &str) -> Option<RunInfo> {
    match kind {
        EventKind::Run { run } if run.id == id && run.status.is_terminal() => Some(run.clone()),
        _ => None,
    }
}

/// 100 sequential spawns of `true`, each in a fresh PTY, as the supervisor does.
fn baseline_batch() -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..BATCH {
        let pair = native_pty_system().openpty(pty_size()).context("openpty")?;
        let mut child = pair
            .slave
            .spawn_command(CommandBuilder::new("true"))
            .context("spawn true")?;
        drop(pair.slave);
        child.wait().context("wait for true")?;
    }
    Ok(start.elapsed())
}

/// Idle RSS, then 100 runs of `true` submitted back to back and waited for, then RSS again.
async fn reagent_batch() -> anyhow::Result<BatchSample> {
    let daemon = Daemon::start().await?;
    let (client, mut notes) = Client::connect(&daemon.socket()).await?;
    client.call(&DaemonStatus {}).await?;
    let idle_rss = daemon.rss()?;
    let idle_anon = daemon.rss_anon()?;
    // A client that said hello, as the TUI would be: the daemon broadcasts every change to it.
    client.hello("spine-bench", None).await?;
    let drain = tokio::spawn(async move { while notes.recv().await.is_some() {} });
    let spec = RunSpec {
        command: vec!["true".into()],
        cwd: Some(daemon.path().to_path_buf()),
        size: Some((COLS, ROWS)),
        ..RunSpec::default()
    };
    let start = Instant::now();
    let mut ids = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        ids.push(client.call(&spec).await?.id);
    }
    let waits = ids.into_iter().map(|run| {
        let client = client.clone();
        async move { client.call(&WaitRun { run }).await }
    });
    let all = futures_util::future::try_join_all(waits);
    let ended = tokio::time::timeout(RUN_DEADLINE, all)
        .await
        .context("the batch did not end in time")??;
    let elapsed = start.elapsed();
    let finished = ended
        .iter()
        .filter(|run| run.status == RunStatus::Finished)
        .count();
    let after_rss = daemon.rss()?;
    let after_anon = daemon.rss_anon()?;
    drop(client);
    drain.abort();
    daemon.stop()?;
    Ok(BatchSample {
        elapsed,
        finished,
        idle_rss,
        after_rss,
        anon: (idle_anon, after_anon),
    })
}

/// VmRSS of a `sleep 100`, for scale.
fn sleep_rss() -> anyhow::Result<u64> {
    let mut child = Command::new("sleep")
        .arg("100")
        .stdin(Stdio::null())
        .spawn()
        .context("spawn sleep")?;
    let pid = child.id();
    // Until it sleeps, the RSS is that of a fork or of a half-loaded program.
    let sleeping = || {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        comm.is_ok_and(|c| c.trim() == "sleep")
            && stat.is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('S'))
            })
    };
    let rss = poll_until(START_DEADLINE, sleeping)
        .context("sleep did not start")
        .and_then(|()| proc_status_bytes(pid, "VmRSS:"));
    let _ = child.kill();
    let _ = child.wait();
    rss
}

/// One `reagentd` in the foreground on its own temporary `REAGENT_DIR`.
struct Daemon {
    /// The process, until stopped.
    child: Option<Child>,
    /// Its `REAGENT_DIR`, removed on drop.
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon and waits until its socket exists.
    async fn start() -> anyhow::Result<Self> {
        // Short path: socket paths must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rgspine")
            .tempdir_in("/tmp")
            .context("temporary REAGENT_DIR")?;
        let child = Command::new(daemon_binary())
            .env("REAGENT_DIR", dir.path())
            .env_remove("REAGENT_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn reagentd")?;
        let mut daemon = Self {
            child: Some(child),
            dir,
        };
        let socket = daemon.socket();
        let deadline = Instant::now() + START_DEADLINE;
        let mut delay = Duration::from_millis(1);
        while !socket.exists() {
            if let Some(status) = daemon.child_mut()?.try_wait()? {
                bail!("reagentd exited before it listened ({status})");
            }
            if Instant::now() >= deadline {
                bail!("reagentd did not create {} in time", socket.display());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// The daemon process, while it runs.
    fn child_mut(&mut self) -> anyhow::Result<&mut Child> {
        self.child
            .as_mut()
            .context("the daemon was already stopped")
    }

    /// Its `REAGENT_DIR`.
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its socket.
    fn socket(&self) -> PathBuf {
        self.path().join("reagentd.sock")
    }

    /// Its resident set size now.
    fn rss(&self) -> anyhow::Result<u64> {
        let child = self.child.as_ref().context("the daemon was stopped")?;
        proc_status_bytes(child.id(), "VmRSS:")
    }

    /// Its anonymous resident memory now (RssAnon: heap, stacks).
    fn rss_anon(&self) -> anyhow::Result<u64> {
        let child = self.child.as_ref().context("the daemon was stopped")?;
        proc_status_bytes(child.id(), "RssAnon:")
    }

    /// CPU seconds of its own threads, and of its reaped children (supervisors and jobs).
    fn cpu(&self) -> anyhow::Result<(f64, f64)> {
        let pid = self.child.as_ref().context("the daemon was stopped")?.id();
        // The daemon reaps a supervisor just after settling its run: give it a moment.
        let reaped = || cpu_seconds(pid).is_ok_and(|(_, children)| children > 0.0);
        let _ = poll_until(Duration::from_secs(2), reaped);
        cpu_seconds(pid)
    }

    /// SIGTERM, and wait for it to exit (SIGKILL if it takes too long).
    fn stop(mut self) -> anyhow::Result<()> {
        let mut child = self
            .child
            .take()
            .context("the daemon was already stopped")?;
        signal(child.id(), Signal::TERM)?;
        let exited = poll_until(STOP_DEADLINE, || matches!(child.try_wait(), Ok(Some(_))));
        if exited.is_err() {
            let _ = signal(child.id(), Signal::KILL);
            let _ = child.wait();
            bail!("reagentd did not exit within {STOP_DEADLINE:?} of SIGTERM");
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Only when a measurement failed half-way: no daemon may outlive the bench.
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = signal(child.id(), Signal::KILL);
            let _ = child.wait();
        }
    }
}

/// The `reagentd` cargo built for this bench.
fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}

/// Signals one process with the system call; refuses pids 0 and 1.
fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 1)
        .and_then(Pid::from_raw)
        .with_context(|| format!("refusing to signal pid {pid}"))?;
    rustix::process::kill_process(pid, signal).context("kill")?;
    Ok(())
}

/// Polls `done` with a growing delay until it holds or `timeout` passes.
fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    while !done() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// A process's CPU seconds (user + system): its own, and its reaped children's.
fn cpu_seconds(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The fields after the command name, which may hold spaces: utime stime cutime cstime
    // are the 14th to 17th fields of the line, so 12th to 15th after `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        let value = fields
            .get(i)
            .with_context(|| format!("short /proc/{pid}/stat"))?;
        Ok(value.parse::<f64>()? / USER_HZ)
    };
    Ok((ticks(11)? + ticks(12)?, ticks(13)? + ticks(14)?))
}

/// A memory figure (`VmRSS:`, `RssAnon:` …) of /proc/<pid>/status, in bytes.
fn proc_status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .with_context(|| format!("no {key} in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// The PTY size every run gets.
fn pty_size() -> PtySize {
    PtySize {
        rows: ROWS,
        cols: COLS,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// Bytes as whole KiB, for the table.
fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes >> 10)
}

/// The median of some floats (NaN for none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median (upper, for an even count) of some byte counts.
fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// The median (upper, for an even count) of some signed byte counts.
fn median_i64(values: impl Iterator<Item = i64>) -> i64 {
    let mut values: Vec<i64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}
