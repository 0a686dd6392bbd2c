//! `gpus`: what GPU sampling costs the daemon, against baselines measured side by side.
//!
//! 1. **One sample and its broadcast**: reading 8 fake GPUs, recording them on the board
//!    (history included) and encoding the `gpus` event as the line every client is sent.
//!    CPU time of this thread (from `/proc/thread-self/schedstat`, in nanoseconds) over many
//!    samples, per sample. Baseline: encoding an empty event (`clients`) the same number of
//!    times. Target: < 1 ms of CPU per sample.
//! 2. **Idle daemon**: a release `reagentd` with `REAGENT_FAKE_GPUS=8`, sampling every second
//!    and broadcasting each change, with no client and no run; its threads' CPU time from
//!    `/proc` over 10 s (5 s with `--quick`). Baseline: the same daemon without GPUs (nothing to sample).
//!    Target: < 1% of one core.
//!
//! Run with `cargo bench -p reagentd --bench gpus [-- --quick]`; exits 1 when a target fails.

#[path = "../../benches/support.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use reagent::protocol::{Event, EventKind, Notification};
use reagent::time::now_ms;
use reagentd::gpu::GpuSource as _;
use reagentd::gpu::fake::FakeSource;
use reagentd::gpu::{FAKE_ENV, GpuBoard};
use reagentd::outbox::encode_notification;
use support::{BenchDaemon, Table};

/// Fake GPUs sampled.
const GPUS: u32 = 8;
/// Per-sample CPU target, nanoseconds.
const MAX_SAMPLE_NS: f64 = 1_000_000.0;
/// Idle CPU target, fraction of one core.
const MAX_IDLE_CORE: f64 = 0.01;

fn main() -> ExitCode {
    support::exit_code("gpus", bench())
}

fn bench() -> anyhow::Result<bool> {
    let quick = support::quick();
    let budget_ns = if quick { 0.3e9 } else { 2e9 };
    let idle = Duration::from_secs(if quick { 5 } else { 10 });
    let mut table = Table::default();

    let baseline = per_iteration_ns(budget_ns, |_| {
        let line = encode_notification(&Notification::Event(event(EventKind::Clients {
            attached: 1,
        })));
        line.len()
    })?;
    let mut source = FakeSource::new(GPUS);
    let mut board = GpuBoard::new(reagent::gpu::GpuSourceKind::Fake, None, 120);
    let sample = per_iteration_ns(budget_ns, |_| {
        let gpus = source.sample().unwrap_or_default();
        board.record(now_ms(), gpus);
        let report = &board.report;
        let kind = EventKind::Gpus {
            source: report.source,
            unavailable: report.unavailable.clone(),
            gpus: report.gpus.clone(),
        };
        encode_notification(&Notification::Event(event(kind))).len()
    })?;
    table.info(
        "empty event encode (baseline)",
        format!("{:.2} µs", baseline / 1000.0),
    );
    table.check(
        &format!("sample {GPUS} fake GPUs + encode"),
        format!(
            "{:.1} µs ({:.0}× baseline)",
            sample / 1000.0,
            sample / baseline.max(1.0)
        ),
        "< 1 ms CPU".into(),
        sample < MAX_SAMPLE_NS,
    );

    let without = idle_core(&[], idle)?;
    let with = idle_core(&[(FAKE_ENV, "8")], idle)?;
    let resolution = format!("(over {} s)", idle.as_secs());
    table.info(
        "idle daemon, no GPUs (baseline)",
        format!("{:.3}% of a core {resolution}", without * 100.0),
    );
    table.check(
        "idle daemon, 8 fake GPUs sampled each second",
        format!("{:.3}% of a core {resolution}", with * 100.0),
        "< 1% of a core".into(),
        with < MAX_IDLE_CORE,
    );
    Ok(table.print())
}

fn event(kind: EventKind) -> Event {
    Event {
        seq: 1,
        ts: now_ms(),
        kind,
    }
}

/// This thread's CPU time so far, nanoseconds.
fn thread_cpu_ns() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").context("read schedstat")?;
    let first = text.split_whitespace().next().context("empty schedstat")?;
    Ok(first.parse::<f64>()?)
}

/// CPU nanoseconds per call of `work`, calling it until `budget_ns` of CPU went by (the
/// kernel updates a thread's CPU time at scheduler ticks, so short loops would read 0). The
/// results are kept alive so the work cannot be optimised away.
fn per_iteration_ns(budget_ns: f64, mut work: impl FnMut(usize) -> usize) -> anyhow::Result<f64> {
    let start = thread_cpu_ns()?;
    let mut sink = 0usize;
    let mut calls = 0usize;
    loop {
        for _ in 0..100 {
            sink = sink.wrapping_add(work(calls));
            calls += 1;
        }
        let spent = thread_cpu_ns()? - start;
        if spent >= budget_ns {
            std::hint::black_box(sink);
            return Ok(spent / calls as f64);
        }
    }
}

/// The fraction of one core a fresh daemon uses while idle over `window`: the larger of the
/// sum of its threads' scheduler times (nanoseconds, but a thread that exits takes its time
/// along) and its `/proc` CPU ticks (every thread, but 10 ms a tick).
fn idle_core(env: &[(&str, &str)], window: Duration) -> anyhow::Result<f64> {
    let mut daemon = BenchDaemon::start(&daemon_binary(), "rggpus", |_, command| {
        for (key, value) in env {
            command.env(key, value);
        }
        Ok(())
    })?;
    // Let start-up (the store, the GPU probe, the first samples) settle first.
    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon.pid()?;
    let (ticks_before, _) = support::cpu_seconds(pid)?;
    let threads_before = support::threads_cpu_ns(pid)?;
    std::thread::sleep(window);
    let (ticks_after, _) = support::cpu_seconds(pid)?;
    let threads_after = support::threads_cpu_ns(pid)?;
    daemon.stop()?;
    let seconds = ((threads_after - threads_before) / 1e9).max(ticks_after - ticks_before);
    Ok(seconds / window.as_secs_f64())
}

fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}
