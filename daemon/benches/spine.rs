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
//! target fails (or a measurement cannot be made). The table, statistics, `/proc` readings,
//! signals and PTY helpers are shared with the cockpit bench in `benches/support.rs`.

#[path = "../../benches/support.rs"]
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use portable_pty::CommandBuilder;
use reagent::client::{Client, Notifications};
use reagent::protocol::{
    Attach, DaemonStatus, EventKind, Notification, StopRun, Sync as CatchUp, WaitRun,
};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use support::{BenchDaemon, Stats, Table, kib, median};

/// The flood: 110 MB of zeros as base64, ~150 MB once the PTY turns `\n` into `\r\n`.
const FLOOD: &str = "head -c 110000000 /dev/zero | base64";
/// PTY width for every run.
const COLS: u16 = 200;
/// PTY height for every run.
const ROWS: u16 = 50;
/// Throughput target: reagent time over baseline time, at most.
const MAX_THROUGHPUT_RATIO: f64 = 1.3;
/// Idle daemon RSS target, in bytes.
const MAX_IDLE_RSS: u64 = 16 << 20;
/// Runs in the batch measurement.
const BATCH: usize = 100;
/// Runs before it, whose one-time costs the growth target leaves out.
const WARM_UP: usize = 5;
/// Batch target: first submit to last end.
const MAX_BATCH_TIME: Duration = Duration::from_secs(5);
/// RSS growth allowed by 100 finished runs, in bytes.
const MAX_RSS_GROWTH: u64 = 1 << 20;
/// How long the daemon (or `sleep`) may take to start.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long one flood (or one batch) may take before the measurement is abandoned.
const RUN_DEADLINE: Duration = Duration::from_secs(300);
/// A change made in one cockpit shows in the others within this many milliseconds.
const MAX_PROPAGATION_MS: f64 = 50.0;

/// Parses `--quick`, runs the measurements, exits 1 when a target fails.
fn main() -> ExitCode {
    let reps = if support::quick() { 1 } else { 3 };
    support::block_on("spine", bench(reps))
}

/// Runs every measurement `reps` times, prints the table, and says whether all targets held.
async fn bench(reps: usize) -> anyhow::Result<bool> {
    println!(
        "spine: {reps} repetition(s), daemon {}",
        daemon_binary().display()
    );
    let mut flood = Vec::new();
    for rep in 0..reps {
        let (base, real) = side_by_side(rep, baseline_flood, reagent_flood).await?;
        progress("flood", rep, base.elapsed, real.elapsed);
        flood.push((base, real));
    }
    let mut batch = Vec::new();
    for rep in 0..reps {
        let (base, real) = side_by_side(rep, baseline_batch, reagent_batch).await?;
        progress("batch", rep, base, real.elapsed);
        batch.push((base, real));
    }
    let sleep_rss = sleep_rss()?;
    Ok(report(&flood, &batch, sleep_rss))
}

/// Measures the baseline (on a blocking thread) and the real thing, one after the other;
/// which goes first alternates with `rep`, so neither always gets the warmer machine.
async fn side_by_side<B, R, F>(
    rep: usize,
    baseline: fn() -> anyhow::Result<B>,
    real: impl FnOnce() -> F,
) -> anyhow::Result<(B, R)>
where
    B: Send + 'static,
    F: Future<Output = anyhow::Result<R>>,
{
    let baseline = async { tokio::task::spawn_blocking(baseline).await? };
    if rep.is_multiple_of(2) {
        let base = baseline.await?;
        Ok((base, real().await?))
    } else {
        let real = real().await?;
        Ok((baseline.await?, real))
    }
}

/// Prints one repetition's times as it ends.
fn progress(what: &str, rep: usize, base: Duration, real: Duration) {
    let (base, real) = (base.as_secs_f64(), real.as_secs_f64());
    println!(
        "  {what} #{}: baseline {base:.3} s, reagent {real:.3} s",
        rep + 1
    );
}

/// Prints the table; true when every target held.
fn report(
    flood: &[(FloodBase, FloodSample)],
    batch: &[(Duration, BatchSample)],
    sleep: u64,
) -> bool {
    let mut table = Table::default();
    flood_rows(&mut table, flood);
    batch_rows(&mut table, batch, sleep);
    table.print()
}

/// The throughput rows: both sides' times, their ratio, completeness, CPU.
fn flood_rows(table: &mut Table, flood: &[(FloodBase, FloodSample)]) {
    let secs = |elapsed: Duration| elapsed.as_secs_f64();
    let base_s = median(flood.iter().map(|(b, _)| secs(b.elapsed)));
    let real_s = median(flood.iter().map(|(_, r)| secs(r.elapsed)));
    let ratio = median(flood.iter().map(|(b, r)| secs(r.elapsed) / secs(b.elapsed)));
    let base_bytes = flood.iter().map(|(b, _)| b.bytes).max().unwrap_or(0);
    let log_bytes = flood.iter().map(|(_, r)| r.log_bytes).max().unwrap_or(0);
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;
    // Every repetition's figures, for a row whose check failed.
    let each = |show: fn(&FloodBase, &FloodSample) -> String, sep: &str| {
        let all: Vec<String> = flood.iter().map(|(b, r)| show(b, r)).collect();
        all.join(sep)
    };
    let n = flood.len();
    table.info(
        "flood: baseline (bare PTY)",
        format!("{base_s:.3} s, {:.0} MB/s", mb(base_bytes, base_s)),
    );
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
    table.check(
        "flood: output.log size = baseline bytes",
        if complete {
            format!("{log_bytes} B = {base_bytes} B ({n}/{n})")
        } else {
            each(
                |b, r| format!("{}/{} B {}", r.log_bytes, b.bytes, r.status),
                ", ",
            )
        },
        "equal, run finished".into(),
        complete,
    );
    let delivered = flood
        .iter()
        .all(|(_, r)| r.resyncs == 0 && r.attach_offset + r.received == r.log_bytes);
    table.info(
        "flood: what the client received",
        if delivered {
            format!("every byte, no resync ({n}/{n})")
        } else {
            let show = |_: &FloodBase, r: &FloodSample| {
                format!(
                    "{}+{} B, {} resync(s)",
                    r.attach_offset, r.received, r.resyncs
                )
            };
            each(show, "; ")
        },
    );
    table.info(
        "flood: baseline CPU seconds (median)",
        format!(
            "reader {:.2} s, job {:.2} s",
            median(flood.iter().map(|(b, _)| b.cpu.0)),
            median(flood.iter().map(|(b, _)| b.cpu.1)),
        ),
    );
    let cpu = |pick: fn(&FloodSample) -> f64| median(flood.iter().map(|(_, r)| pick(r)));
    table.info(
        "flood: reagent CPU seconds (median)",
        format!(
            "daemon {:.2} s, supervisor+job {:.2} s, client {:.2} s",
            cpu(|r| r.daemon_cpu),
            cpu(|r| r.children_cpu),
            cpu(|r| r.client_cpu),
        ),
    );
}

/// The memory and batch rows: idle RSS, 100 runs' time and RSS growth.
fn batch_rows(table: &mut Table, batch: &[(Duration, BatchSample)], sleep: u64) {
    // Byte counts are whole KiB, so exact as floats.
    let bytes = |pick: fn(&BatchSample) -> f64| median(batch.iter().map(|(_, r)| pick(r)));
    let idle = bytes(|r| r.idle_rss as f64) as u64;
    table.check(
        "idle daemon VmRSS",
        kib(idle),
        format!("< {}", kib(MAX_IDLE_RSS)),
        idle < MAX_IDLE_RSS,
    );
    table.info("  for scale: `sleep 100` VmRSS", kib(sleep));

    let base_batch = median(batch.iter().map(|(b, _)| b.as_secs_f64()));
    let real_batch = median(batch.iter().map(|(_, r)| r.elapsed.as_secs_f64()));
    let ratio = median(
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
        format!("{base_batch:.3} s (reagent {ratio:.1}x)"),
    );
    let delays: Vec<f64> = batch
        .iter()
        .flat_map(|(_, r)| r.propagation.iter().map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    let delays = Stats::of(delays);
    // The cockpit draws a change at its next frame, at most 16 ms later.
    table.check(
        "a run started by one client, seen by another",
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (+ <= 16 ms to the next frame)",
            delays.p50, delays.p95, delays.max
        ),
        format!("p95 + 16 < {MAX_PROPAGATION_MS:.0} ms"),
        delays.p95 + 16.0 < MAX_PROPAGATION_MS,
    );
    let growth = bytes(|r| r.rss.1 as f64 - r.rss.0 as f64) as i64;
    let anon = bytes(|r| r.anon.1 as f64 - r.anon.0 as f64) as i64;
    table.check(
        &format!("VmRSS growth over {BATCH} runs (after {WARM_UP})"),
        format!(
            "{:+} KiB (now {}; anonymous {:+} KiB)",
            growth / 1024,
            kib(bytes(|r| r.rss.1 as f64) as u64),
            anon / 1024
        ),
        format!("< {}", kib(MAX_RSS_GROWTH)),
        growth < MAX_RSS_GROWTH as i64,
    );
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
    /// VmRSS idle (after start and one `daemon.status`).
    idle_rss: u64,
    /// VmRSS after the warm-up runs, and once every run of the batch ended.
    rss: (u64, u64),
    /// RssAnon (heap and stacks; the rest is file-backed code), at the same two times.
    anon: (u64, u64),
    /// For each run: from sending its `run.start` until a second, subscribed client had the
    /// run's first event — how fast one cockpit sees what another did.
    propagation: Vec<Duration>,
}

/// The flood through a bare PTY: one thread reads and discards, counting bytes.
fn baseline_flood() -> anyhow::Result<FloodBase> {
    let cpu_before = support::cpu_seconds(std::process::id())?;
    let start = Instant::now();
    let mut cmd = CommandBuilder::new("sh");
    cmd.args(["-c", FLOOD]);
    let (master, mut child) = support::spawn_in_pty(cmd, COLS, ROWS)?;
    let reader = master.try_clone_reader().context("PTY reader")?;
    let counter = std::thread::spawn(move || {
        let mut bytes = 0u64;
        support::read_pty(reader, |chunk| {
            bytes += chunk.len() as u64;
            true
        });
        bytes
    });
    child.wait().context("wait for the flood")?;
    let bytes = counter
        .join()
        .map_err(|_| anyhow!("the reader thread panicked"))?;
    let elapsed = start.elapsed();
    drop(master);
    let cpu_after = support::cpu_seconds(std::process::id())?;
    let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    Ok(FloodBase {
        elapsed,
        bytes,
        cpu,
    })
}

/// The flood through the daemon, with one attached client consuming every output line.
async fn reagent_flood() -> anyhow::Result<FloodSample> {
    let mut daemon = BenchDaemon::start(&daemon_binary(), "rgspine", |_, _| Ok(()))?;
    let (client, notes) = Client::connect(&daemon.socket()).await?;
    client.hello("spine-bench", None).await?;
    let spec = RunSpec {
        command: vec!["sh".into(), "-c".into(), FLOOD.into()],
        cwd: Some(daemon.path().to_path_buf()),
        size: Some((COLS, ROWS)),
        ..RunSpec::default()
    };
    let client_cpu = support::cpu_seconds(std::process::id())?;
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
    sample.client_cpu = support::cpu_seconds(std::process::id())?.0 - client_cpu.0;
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
        let (_master, mut child) = support::spawn_in_pty(CommandBuilder::new("true"), COLS, ROWS)?;
        child.wait().context("wait for true")?;
    }
    Ok(start.elapsed())
}

/// Idle RSS, then 100 runs of `true` submitted back to back and waited for, then RSS again.
async fn reagent_batch() -> anyhow::Result<BatchSample> {
    let mut daemon = BenchDaemon::start(&daemon_binary(), "rgspine", |_, _| Ok(()))?;
    let (client, _) = Client::connect(&daemon.socket()).await?;
    client.call(&DaemonStatus {}).await?;
    let idle_rss = daemon.rss()?;
    // A second client that said hello, as another cockpit would: it notes when it first
    // hears of each run.
    let (watcher, mut notes) = Client::connect(&daemon.socket()).await?;
    watcher.hello("spine-bench watcher", None).await?;
    let recorder = tokio::spawn(async move {
        let mut seen = HashMap::new();
        while let Some(note) = notes.recv().await {
            if let Notification::Event(event) = note
                && let EventKind::Run { run } = event.kind
            {
                seen.entry(run.id).or_insert_with(Instant::now);
            }
        }
        seen
    });
    let spec = RunSpec {
        command: vec!["true".into()],
        cwd: Some(daemon.path().to_path_buf()),
        size: Some((COLS, ROWS)),
        ..RunSpec::default()
    };
    // The first runs touch code and buffers for the first time (the metrics thread, the
    // queue's task, SQLite's page cache): a one-time cost, not one that grows with runs. The
    // growth target is measured from after them, so it catches what 100 runs leave behind.
    let warm_up: Vec<String> = futures_util::future::try_join_all(
        (0..WARM_UP).map(|_| async { anyhow::Ok(client.call(&spec).await?.id) }),
    )
    .await?;
    for run in warm_up {
        client.call(&WaitRun { run }).await?;
    }
    let warm_rss = daemon.rss()?;
    let warm_anon = daemon.rss_anon()?;
    let start = Instant::now();
    let mut ids = Vec::with_capacity(BATCH);
    let mut sent = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        sent.push(Instant::now());
        ids.push(client.call(&spec).await?.id);
    }
    let waits = ids.clone().into_iter().map(|run| {
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
    drop(watcher);
    daemon.stop()?;
    let seen = recorder.await?;
    let propagation = ids
        .iter()
        .zip(sent)
        .map(|(id, sent)| {
            let heard = seen.get(id).context("the watcher never heard of a run")?;
            Ok(heard.saturating_duration_since(sent))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(BatchSample {
        elapsed,
        finished,
        idle_rss,
        rss: (warm_rss, after_rss),
        anon: (warm_anon, after_anon),
        propagation,
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
        comm.is_ok_and(|c| c.trim() == "sleep") && support::proc_state(pid) == Some('S')
    };
    let rss = support::poll(START_DEADLINE, sleeping)
        .context("sleep did not start")
        .and_then(|()| support::vm_rss(pid));
    let _ = child.kill();
    let _ = child.wait();
    rss
}

/// The `reagentd` cargo built for this bench.
fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}
