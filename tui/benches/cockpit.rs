//! `cockpit`: what the cockpit (`reagent` with no subcommand) costs to draw, and whether it
//! stays responsive while a job floods its pane — each measured side by side with a baseline,
//! reported as absolute numbers and as ratios, checked against a target.
//!
//! Why: the cockpit promises that a job printing as fast as it can costs parsing, not
//! redraws, and that keys stay responsive. Both halves of that promise are measured here: the
//! price of one frame (so 60 fps is cheap), and the time from a key press to the screen
//! changing while ~100 MB go through the pane, together with the client's memory.
//!
//! 1. **Render**: [`reagent_tui::ui::render`] of a 200x50 cockpit with 1,000 runs listed
//!    (mixed statuses, names, exit codes) and a run open in the pane whose screen (and
//!    scrollback) is full of SGR-coloured text, drawn on a `ratatui::Terminal<TestBackend>`
//!    frame after frame (2,000 frames after a warm-up, in interleaved rounds). Target: mean
//!    < 2 ms per frame. Baseline: the same terminal drawing one plain 200x50 `Paragraph` per
//!    frame. To show where the time goes, the list alone and the pane alone are timed too.
//! 2. **Responsiveness under a flood**: the release `reagent` in a 200x50 PTY, read through a
//!    vt100 parser as a person's terminal would, against a real `reagentd` on a temporary
//!    `REAGENT_DIR`. A run waits on `read`; the cockpit opens it (Enter), the run is released
//!    (`go`), and it prints `head -c 75000000 /dev/zero | base64` (~100 MB through its PTY);
//!    Ctrl-b returns to cockpit keys. Until the client has shown the end of the flood, `?` is
//!    pressed and timed until the help overlay appears, then `x` until it is gone. Baseline:
//!    the same presses while the run is idle, in the same session, just before the flood.
//!    `VmRSS` of the client is sampled every 10 ms. Targets: p95 key-to-screen latency under
//!    the flood < 50 ms (with at least 20 samples), client max RSS < 64 MiB.
//!
//! Run with `cargo bench -p reagent-tui --bench cockpit [-- --quick]` (`--quick`: fewer frames
//! and idle samples). The `reagent`/`reagentd` release binaries next to the bench executable
//! are (re)built first with `cargo build --release`. Exits with status 1 when a target fails
//! or a measurement cannot be made. On Ctrl-C the run and the daemon are stopped before exit.
//! The table, statistics, `/proc` readings, signals and PTY helpers are shared with the
//! daemon's `spine` bench in `benches/support.rs`.

#[path = "../../benches/support.rs"]
mod support;

use std::io::{Read, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use portable_pty::CommandBuilder;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use reagent::config::PrefixKey;
use reagent::protocol::{Attached, Blob};
use reagent::run::{RunInfo, RunStatus};
use reagent_tui::app::App;
use reagent_tui::app::side::Side;
use reagent_tui::app::state::{Focus, Link, Mode};
use rustix::process::Signal;
use serde_json::Value;
use support::{Master, PtyChild, Stats, Table, mib};

/// Screen width, for the render and the PTY.
const COLS: u16 = 200;
/// Screen height, for the render and the PTY.
const ROWS: u16 = 50;
/// Runs in the list.
const RUNS: usize = 1000;
/// Which run is open in the pane (and selected), mid-list so the table scrolls.
const PANE_RUN: usize = 500;
/// Coloured lines painted into the pane before measuring (fills the 2,000-line scrollback).
const PANE_LINES: usize = 2500;
/// Frames drawn per scenario in a full run, and with `--quick`.
const FRAMES: [usize; 2] = [2000, 400];
/// Rounds the frames are split into, interleaving the scenarios, in a full run.
const ROUNDS: usize = 4;
/// Frames drawn per scenario before timing.
const WARMUP: usize = 200;
/// Render target: mean milliseconds per frame.
const MAX_FRAME_MS: f64 = 2.0;
/// Fixed wall clock for rendering (Unix ms).
const NOW: i64 = 1_800_000_000_000;

/// The flood's command: waits for a line, floods, marks its end, then waits again so the run
/// (and the pane) stays open.
const FLOOD: &str = "read x; head -c 75000000 /dev/zero | base64; echo FLOOD-DONE; read y";
/// What the flood prints last.
const MARKER: &str = "FLOOD-DONE";
/// Text of the help overlay (the `q` binding).
const HELP_TEXT: &str = "quit the client";
/// Idle (baseline) `?`/`x` pairs in a full run, and with `--quick`.
const IDLE_PAIRS: [usize; 2] = [30, 10];
/// Latency target under the flood: p95, in milliseconds.
const MAX_P95_MS: f64 = 50.0;
/// Fewest latency samples the flood must yield.
const MIN_SAMPLES: usize = 20;
/// Client RSS target, in bytes.
const MAX_TUI_RSS: u64 = 64 << 20;
/// How long one key may take to show before it counts as lost.
const KEY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long setup steps (daemon start, the TUI's first screen) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole flood may take before the measurement is abandoned.
const FLOOD_DEADLINE: Duration = Duration::from_secs(600);
/// How often the monitor samples RSS and the log.
const MONITOR_EVERY: Duration = Duration::from_millis(10);

/// Parses `--quick`, runs both measurements, prints the table, exits 1 when a target fails.
fn main() -> ExitCode {
    clean_up_on_interrupt();
    support::exit_code("cockpit", bench(support::quick()))
}

/// Both measurements, then the table; true when every target held.
fn bench(quick: bool) -> anyhow::Result<bool> {
    let mode = usize::from(quick);
    println!(
        "cockpit: {} mode, {COLS}x{ROWS}",
        if quick { "quick" } else { "full" }
    );
    let render = measure_render(FRAMES[mode], if quick { 1 } else { ROUNDS })?;
    let bins = binaries()?;
    let flood = measure_flood(&bins, IDLE_PAIRS[mode])?;
    Ok(report(&render, &flood))
}

/// Prints the table; true when every target held.
fn report(render: &RenderResult, flood: &FloodResult) -> bool {
    let mut table = Table::default();
    let base = Stats::of_ms(&render.baseline);
    let full = Stats::of_ms(&render.cockpit);
    let frames = |stats: &Stats| {
        let (mean, p99, n) = (stats.mean, stats.p99, stats.n);
        format!("mean {mean:.3} ms, p99 {p99:.3} ms (n={n})")
    };
    table.info("render: baseline, plain 200x50 Paragraph", frames(&base));
    table.check(
        "render: cockpit, 1000 runs + coloured pane",
        format!("{}, {:.1}x baseline", frames(&full), full.mean / base.mean),
        format!("mean < {MAX_FRAME_MS} ms"),
        full.mean < MAX_FRAME_MS,
    );
    let side = Stats::of_ms(&render.with_side);
    table.check(
        "render: cockpit with the side panel open",
        format!("{}, {:.1}x baseline", frames(&side), side.mean / base.mean),
        format!("mean < {MAX_FRAME_MS} ms"),
        side.mean < MAX_FRAME_MS,
    );
    for (what, times) in [
        ("  part: runs list only (no pane)", &render.list_only),
        ("  part: pane only (1-run list)", &render.pane_only),
    ] {
        let part = Stats::of_ms(times);
        let share = 100.0 * part.mean / full.mean;
        table.info(what, format!("{}, {share:.0}% of cockpit", frames(&part)));
    }

    let secs = |time: Duration| time.as_secs_f64();
    table.info(
        "flood: logged | shown by the client",
        format!(
            "{:.1} MB in {:.2} s | after {:.2} s, {:.0}% of a core",
            flood.log_bytes as f64 / 1e6,
            secs(flood.flood_time),
            secs(flood.caught_up),
            100.0 * flood.cpu_secs / secs(flood.caught_up)
        ),
    );
    let idle = Stats::of_ms(&flood.idle);
    let busy = Stats::of_ms(&flood.flood);
    let keys = |stats: &Stats| {
        let (p50, p95, max, n) = (stats.p50, stats.p95, stats.max, stats.n);
        format!("p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms (n={n})")
    };
    table.info("latency: baseline, run idle (?, x)", keys(&idle));
    table.check(
        "latency: during the flood (?, x)",
        keys(&busy),
        format!("p95 < {MAX_P95_MS} ms"),
        busy.p95 < MAX_P95_MS && flood.lost == 0,
    );
    table.info(
        "  flood / idle",
        format!(
            "p50 {:.1}x, p95 {:.1}x",
            busy.p50 / idle.p50,
            busy.p95 / idle.p95
        ),
    );
    table.check(
        "latency samples during the flood",
        format!(
            "{} ({} before the log was complete, {} lost)",
            flood.flood.len(),
            flood.before_log_done,
            flood.lost
        ),
        format!(">= {MIN_SAMPLES}"),
        flood.flood.len() >= MIN_SAMPLES,
    );
    table.info("client VmRSS: baseline, run idle", mib(flood.idle_rss));
    table.check(
        "client VmRSS: max during the flood",
        format!(
            "{} ({:.1}x idle)",
            mib(flood.max_rss),
            flood.max_rss as f64 / flood.idle_rss as f64
        ),
        format!("< {}", mib(MAX_TUI_RSS)),
        flood.max_rss < MAX_TUI_RSS,
    );
    table.print()
}

// ---------------------------------------------------------------------------------------
// 1. Render
// ---------------------------------------------------------------------------------------

/// Per-frame times of every render scenario.
struct RenderResult {
    /// One plain `Paragraph` filling the screen.
    baseline: Vec<Duration>,
    /// The whole cockpit: 1,000 runs and a coloured pane.
    cockpit: Vec<Duration>,
    /// 1,000 runs, no pane open (the pane shows its hint).
    list_only: Vec<Duration>,
    /// The coloured pane with a one-run list.
    pane_only: Vec<Duration>,
    /// The whole cockpit with the alerts side panel open beside the pane.
    with_side: Vec<Duration>,
}

/// One render scenario: its terminal, and what it draws each frame.
struct Scenario {
    /// The terminal, kept across rounds so the diff against the previous frame is realistic.
    terminal: Terminal<TestBackend>,
    /// The cockpit state, when it draws the cockpit; `None` draws the baseline's paragraph.
    app: Option<App>,
    /// The baseline's text.
    text: String,
    /// Frame times.
    times: Vec<Duration>,
}

impl Scenario {
    /// A scenario drawing `app` (or, with `None`, the plain paragraph), warmed up.
    fn new(app: Option<App>) -> anyhow::Result<Self> {
        let terminal = Terminal::new(TestBackend::new(COLS, ROWS)).context("test terminal")?;
        let row: String = "lorem ipsum dolor sit amet "
            .chars()
            .cycle()
            .take(usize::from(COLS))
            .collect();
        let text = vec![row; usize::from(ROWS)].join("\n");
        let mut scenario = Self {
            terminal,
            app,
            text,
            times: Vec::new(),
        };
        for _ in 0..WARMUP {
            scenario.frame()?;
        }
        scenario.times.clear();
        Ok(scenario)
    }

    /// Draws one frame and records how long the draw took.
    fn frame(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        match &self.app {
            Some(app) => self
                .terminal
                .draw(|frame| reagent_tui::ui::render(app, frame)),
            None => {
                let text = self.text.as_str();
                self.terminal
                    .draw(|frame| frame.render_widget(Paragraph::new(text), frame.area()))
            }
        }
        .context("draw")?;
        self.times.push(start.elapsed());
        Ok(())
    }
}

/// Times every scenario, `frames` frames each, in `rounds` interleaved rounds.
fn measure_render(frames: usize, rounds: usize) -> anyhow::Result<RenderResult> {
    println!("render: {frames} frames per scenario in {rounds} round(s), {WARMUP} warm-up");
    let mut scenarios = [
        Scenario::new(None)?,
        Scenario::new(Some(cockpit(RUNS, true)))?,
        Scenario::new(Some(cockpit(RUNS, false)))?,
        Scenario::new(Some(cockpit(1, true)))?,
        Scenario::new(Some(with_side_panel(cockpit(RUNS, true))))?,
    ];
    let per_round = frames.div_ceil(rounds);
    for round in 0..rounds {
        // Rotate who goes first, so no scenario always meets the same machine state.
        for i in 0..scenarios.len() {
            let count = scenarios.len();
            let scenario = &mut scenarios[(i + round) % count];
            for _ in 0..per_round {
                scenario.frame()?;
            }
        }
    }
    let [baseline, cockpit, list_only, pane_only, with_side] =
        scenarios.map(|scenario| scenario.times);
    Ok(RenderResult {
        baseline,
        cockpit,
        list_only,
        pane_only,
        with_side,
    })
}

/// `app` with the alerts side panel beside its pane (1,000 runs, so a full list to draw).
fn with_side_panel(mut app: App) -> App {
    app.side.shown = Some(Side::Alerts);
    app
}

/// A cockpit with `runs` runs listed and, when `pane`, one open in the pane full of colour.
fn cockpit(runs: usize, pane: bool) -> App {
    let mut app = App::new(
        "local",
        PrefixKey('b'),
        (COLS, ROWS),
        NOW,
        reagent_tui::ui::typesetter(),
    );
    app.link = Link::Connected { clients: 2 };
    let pane_index = if runs == 1 { 0 } else { PANE_RUN };
    app.runs = (0..runs)
        .map(|i| run_info(if runs == 1 { PANE_RUN } else { i }))
        .collect();
    app.selected = pane_index;
    app.say("typing into train-gpt-500: Ctrl-b leaves", false);
    if !pane {
        return app;
    }
    let (cols, rows) = reagent_tui::app::geometry::pane_size(&app);
    let run = &mut app.runs[pane_index];
    run.cols = cols;
    run.rows = rows;
    let run = run.clone();
    app.open_pane(&run);
    let screen: String = (0..PANE_LINES)
        .map(|i| coloured_line(i, usize::from(cols)))
        .collect();
    let attached = Attached {
        run,
        offset: screen.len() as u64,
        screen: Blob(screen.into_bytes()),
    };
    assert!(app.attached(attached, &[]), "the pane takes its screen");
    app.focus = Focus::Pane;
    app.mode = Mode::Input;
    app
}

/// Run number `i` of the list: statuses, names and exit codes vary.
fn run_info(i: usize) -> RunInfo {
    const NAMES: [&str; 6] = [
        "train-gpt",
        "eval",
        "sweep-lr",
        "finetune-llama-7b",
        "tokenize",
        "ablation-no-dropout",
    ];
    let status = match i % 10 {
        0..=2 => RunStatus::Running,
        3..=5 => RunStatus::Finished,
        6 | 7 => RunStatus::Failed,
        8 => RunStatus::Stopped,
        _ => [RunStatus::Queued, RunStatus::Launching, RunStatus::Lost][i % 3],
    };
    let status = if i == PANE_RUN {
        RunStatus::Running
    } else {
        status
    };
    let (exit_code, signal) = match status {
        RunStatus::Finished => (Some(0), None),
        RunStatus::Failed if i.is_multiple_of(4) => (None, Some(9)),
        RunStatus::Failed => (Some(i32::try_from(i % 127).unwrap_or(1) + 1), None),
        RunStatus::Stopped => (None, Some(15)),
        _ => (None, None),
    };
    let secs = i64::try_from(i * 37 % 200_000).unwrap_or(0) + 1;
    RunInfo {
        id: format!("{:08x}", i.wrapping_mul(2_654_435_761) & 0xffff_ffff),
        name: (i % 4 != 3).then(|| format!("{}-{i}", NAMES[i % NAMES.len()])),
        command: vec!["python".into(), "train.py".into(), format!("--seed={i}")],
        cwd: "/work".into(),
        env_keys: Vec::new(),
        status,
        exit_code,
        signal,
        reason: (status == RunStatus::Lost).then(|| "supervisor vanished".into()),
        pid: (status == RunStatus::Running).then_some(10_000 + u32::try_from(i).unwrap_or(0)),
        cols: 120,
        rows: 40,
        created_at: NOW - secs * 1000,
        started_at: (status != RunStatus::Queued).then_some(NOW - secs * 1000),
        ended_at: status.is_terminal().then_some(NOW - 1000),
        log_path: "/x".into(),
        wandb: None,
        lost_output: None,
        agent_session: None,
        executor: Default::default(),
    }
}

/// Line `n` of a training log, coloured every few words (16 colours, 256 colours, truecolor,
/// bold, italic, underline, backgrounds), filling `cols` columns; ends in CR LF.
fn coloured_line(n: usize, cols: usize) -> String {
    let mut line = String::new();
    let mut width = 0;
    for k in 0.. {
        let word = match k % 6 {
            0 => format!("[{:02}:{:02}:{:02}]", n / 3600 % 24, n / 60 % 60, n % 60),
            1 => format!("step={}", n * 10 + k),
            2 => format!("loss={:.4}", 1.0 / (1.0 + (n + k) as f64 * 0.01)),
            3 => format!("lr={:.2e}", 3e-4 / (1.0 + k as f64)),
            4 => ["INFO", "WARN", "DEBUG", "ERROR"][(n + k) % 4].to_string(),
            _ => format!("tok/s={}", 1000 + (n * 7 + k * 13) % 9000),
        };
        if width + word.len() + 1 > cols {
            break;
        }
        let style = match (n + k) % 7 {
            0 => format!("\x1b[3{}m", (n + k) % 8),
            1 => format!("\x1b[1;9{}m", (n + k) % 8),
            2 => format!("\x1b[38;5;{}m", (n * 3 + k * 11) % 256),
            3 => format!(
                "\x1b[38;2;{};{};{}m",
                (n * 5) % 256,
                (k * 40) % 256,
                (n + k) % 256
            ),
            4 => format!("\x1b[4;3{};4{}m", (k + 1) % 8, n % 8),
            5 => "\x1b[3;2m".to_string(),
            _ => format!("\x1b[48;5;{}m", (n + k * 17) % 256),
        };
        line.push_str(&style);
        line.push_str(&word);
        line.push_str("\x1b[0m ");
        width += word.len() + 1;
    }
    line.push_str("\r\n");
    line
}

// ---------------------------------------------------------------------------------------
// 2. Responsiveness under a flood
// ---------------------------------------------------------------------------------------

/// Where the release binaries are.
#[derive(Clone)]
struct Binaries {
    /// The client.
    reagent: PathBuf,
    /// The daemon.
    reagentd: PathBuf,
}

/// The release `reagent` and `reagentd` next to this bench (`target/release`), built first.
fn binaries() -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("bench executable path")?;
    // target/release/deps/cockpit-<hash> → target/release
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("target dir")?
        .to_path_buf();
    let bins = Binaries {
        reagent: dir.join("reagent"),
        reagentd: dir.join("reagentd"),
    };
    let present = bins.reagent.exists() && bins.reagentd.exists();
    // Always ask cargo (a no-op when fresh), so a stale daemon is never measured.
    println!("flood: building the release binaries in {}", dir.display());
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "reagentd",
            "-p",
            "reagent-tui",
        ])
        .status()
        .context("run cargo build")?;
    if !built.success() {
        if !present {
            bail!("building reagent/reagentd failed and no binaries exist");
        }
        eprintln!("cockpit: WARNING: cargo build failed; measuring the existing binaries");
    }
    Ok(bins)
}

/// What the flood measurement found.
struct FloodResult {
    /// Key-to-screen latencies with the run idle.
    idle: Vec<Duration>,
    /// Key-to-screen latencies while the client digested the flood.
    flood: Vec<Duration>,
    /// Of `flood`, samples started before the log was complete.
    before_log_done: usize,
    /// Keys whose effect never showed within [`KEY_TIMEOUT`] (counted in the samples as
    /// the timeout).
    lost: usize,
    /// Client RSS before the flood, in bytes.
    idle_rss: u64,
    /// Client max RSS from `go` until it showed the end of the flood.
    max_rss: u64,
    /// Size of the run's `output.log` at the end.
    log_bytes: u64,
    /// From `go` until `output.log` held the end marker.
    flood_time: Duration,
    /// From `go` until the client's screen showed the end marker.
    caught_up: Duration,
    /// CPU seconds the client used from `go` until it caught up.
    cpu_secs: f64,
}

/// The whole flood scenario on a fresh installation; cleans up whatever happens.
fn measure_flood(bins: &Binaries, idle_pairs: usize) -> anyhow::Result<FloodResult> {
    let install = Install::new(bins)?;
    let result = flood_session(&install, idle_pairs);
    let cleanup = install.cleanup();
    let result = result?;
    cleanup?;
    Ok(result)
}

/// Starts the paused run and the TUI, measures idle latency, floods, measures again.
fn flood_session(install: &Install, idle_pairs: usize) -> anyhow::Result<FloodResult> {
    install.reagent(&["daemon", "start"])?;
    let id = install
        .reagent(&["run", "--name", "flood", "--", "sh", "-c", FLOOD])?
        .trim()
        .to_string();
    let log = install.log_path(&id)?;
    println!("flood: run {id}, log {}", log.display());

    let mut tui = Tui::start(install)?;
    tui.wait_for(STEP_TIMEOUT, |s| {
        s.contains("flood") && s.contains("running")
    })
    .context("the cockpit never listed the run")?;
    tui.send(b"\r")?;
    tui.wait_for(STEP_TIMEOUT, |s| {
        s.contains("[typing]") && !s.contains("attaching")
    })
    .context("Enter did not open the run")?;
    tui.send(b"\x02")?;
    tui.wait_for(STEP_TIMEOUT, |s| s.contains("cockpit keys"))
        .context("Ctrl-b did not return to cockpit keys")?;

    println!("flood: {idle_pairs} idle ?/x pairs");
    let mut idle = Vec::new();
    let mut lost = 0;
    for i in 0..idle_pairs {
        lost += tui.pair(&mut idle)?;
        std::thread::sleep(gap(i));
    }
    let idle_rss = support::vm_rss(tui.pid)?;

    tui.send(b"\r")?;
    tui.wait_for(STEP_TIMEOUT, |s| s.contains("[typing]"))
        .context("Enter did not return to the job")?;
    let monitor = Monitor::start(tui.pid, log.clone());
    let cpu_start = support::cpu_seconds(tui.pid)?.0;
    let go = Instant::now();
    tui.send(b"go\r")?;
    tui.send(b"\x02")?;
    println!("flood: released; sampling ?/x until the cockpit shows {MARKER}");
    tui.wait_for(KEY_TIMEOUT, |s| s.contains("cockpit keys"))
        .context("Ctrl-b did not return to cockpit keys during the flood")?;

    let mut flood = Vec::new();
    let mut before_log_done = 0;
    let mut i = 0;
    while !(monitor.log_done() && tui.marker_seen().is_some()) {
        if go.elapsed() > FLOOD_DEADLINE {
            bail!("the flood did not end within {FLOOD_DEADLINE:?}");
        }
        let log_done = monitor.log_done();
        let before = flood.len();
        lost += tui.pair(&mut flood)?;
        if !log_done {
            before_log_done += flood.len() - before;
        }
        std::thread::sleep(gap(i));
        i += 1;
    }
    let caught_up = tui
        .marker_seen()
        .context("marker vanished")?
        .saturating_duration_since(go);
    let cpu_secs = support::cpu_seconds(tui.pid)?.0 - cpu_start;
    let watched = monitor.stop()?;
    let flood_time = watched
        .log_done
        .context("the log never held the marker")?
        .saturating_duration_since(go);
    tui.quit();
    Ok(FloodResult {
        idle,
        flood,
        before_log_done,
        lost,
        idle_rss,
        max_rss: watched.max_rss,
        log_bytes: std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0),
        flood_time,
        caught_up,
        cpu_secs,
    })
}

/// A pause between samples, varied so presses do not lock onto the client's frame clock.
fn gap(i: usize) -> Duration {
    Duration::from_millis(15 + (i as u64 * 7) % 17)
}

/// One hermetic installation: a temporary `REAGENT_DIR`, the daemon it starts, its runs.
struct Install {
    /// The `REAGENT_DIR`.
    dir: tempfile::TempDir,
    /// The binaries it runs.
    bins: Binaries,
}

/// The installation the interrupt handler must clean up: its `REAGENT_DIR` and binaries.
/// Whoever takes it out cleans up, so that happens once.
static LIVE: Mutex<Option<(PathBuf, Binaries)>> = Mutex::new(None);

/// Takes the live installation out of [`LIVE`], if any.
fn take_live() -> Option<(PathBuf, Binaries)> {
    LIVE.lock().map_or(None, |mut live| live.take())
}

impl Install {
    /// A fresh, empty installation, registered for cleanup on Ctrl-C.
    fn new(bins: &Binaries) -> anyhow::Result<Self> {
        let dir = support::reagent_dir("rgcockpit")?;
        if let Ok(mut live) = LIVE.lock() {
            *live = Some((dir.path().to_path_buf(), bins.clone()));
        }
        let bins = bins.clone();
        Ok(Self { dir, bins })
    }

    /// Runs `reagent ARGS` on this installation, requires success, returns stdout.
    fn reagent(&self, args: &[&str]) -> anyhow::Result<String> {
        reagent(self.dir.path(), &self.bins, args)
    }

    /// The run's `output.log`.
    fn log_path(&self, id: &str) -> anyhow::Result<PathBuf> {
        let runs: Vec<Value> = serde_json::from_str(&self.reagent(&["runs", "--json"])?)
            .context("parse runs --json")?;
        let listed = runs
            .into_iter()
            .find(|run| run["id"] == id)
            .and_then(|run| run["log_path"].as_str().map(PathBuf::from));
        Ok(listed.unwrap_or_else(|| self.dir.path().join("runs").join(id).join("output.log")))
    }

    /// Kills every run's process group, then stops the daemon; once.
    fn cleanup(&self) -> anyhow::Result<()> {
        match take_live() {
            Some((dir, bins)) => clean(&dir, &bins),
            None => Ok(()),
        }
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        if let Err(err) = self.cleanup() {
            eprintln!("cockpit: cleanup: {err:#}");
        }
    }
}

/// `reagent ARGS` on the installation in `dir`.
fn reagent_cmd(dir: &Path, bins: &Binaries, args: &[&str]) -> Command {
    let mut cmd = support::reagent_command(&bins.reagent, dir);
    cmd.env("REAGENTD", &bins.reagentd).args(args);
    cmd
}

/// Runs `reagent ARGS` on the installation in `dir`, requires success, returns stdout.
fn reagent(dir: &Path, bins: &Binaries, args: &[&str]) -> anyhow::Result<String> {
    let out = reagent_cmd(dir, bins, args)
        .output()
        .with_context(|| format!("run reagent {args:?}"))?;
    if !out.status.success() {
        bail!(
            "reagent {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills every run's process group on the installation in `dir` (runs outlive the daemon),
/// then stops the daemon: `reagent daemon stop`, SIGTERM if it lingers, SIGKILL at last.
fn clean(dir: &Path, bins: &Binaries) -> anyhow::Result<()> {
    let daemon: Option<u32> = std::fs::read_to_string(dir.join("reagentd.lock"))
        .ok()
        .and_then(|pid| pid.trim().parse().ok());
    if dir.join("reagentd.sock").exists()
        && let Ok(listed) = reagent(dir, bins, &["runs", "--json"])
    {
        let runs: Vec<Value> = serde_json::from_str(&listed).unwrap_or_default();
        let pids = runs.iter().filter_map(|run| run["pid"].as_u64());
        for pid in pids.filter_map(|pid| u32::try_from(pid).ok()) {
            // The job leads its own session and process group.
            let _ = support::signal_group(pid, Signal::KILL);
        }
    }
    // Its exit status does not matter: the daemon may close the connection as it goes.
    let stopped = reagent_cmd(dir, bins, &["daemon", "stop"]).output();
    if let Some(pid) = daemon
        && support::alive(pid)
    {
        support::terminate(pid, Duration::from_secs(10), || !support::alive(pid))
            .with_context(|| format!("reagentd ({pid}) ignored `daemon stop`"))?;
    }
    stopped.context("reagent daemon stop")?;
    Ok(())
}

/// On SIGINT or SIGTERM (Ctrl-C during `cargo bench`): cleans up the live installation, whose
/// daemon and runs would otherwise outlive the bench, then exits with status 130.
fn clean_up_on_interrupt() {
    std::thread::spawn(|| {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let interrupted = runtime.block_on(async {
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return false;
            };
            tokio::select! {
                _ = int.recv() => true,
                _ = term.recv() => true,
            }
        });
        if !interrupted {
            return;
        }
        eprintln!("cockpit: interrupted; stopping the run and the daemon");
        if let Some((dir, bins)) = take_live() {
            if let Err(err) = clean(&dir, &bins) {
                eprintln!("cockpit: cleanup: {err:#}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::process::exit(130);
    });
}

/// The screen as the TUI's terminal shows it, stamped by the reader thread.
struct Screen {
    /// The terminal emulator fed with everything the TUI writes.
    parser: vt100::Parser,
    /// Whether [`HELP_TEXT`] shows, and since when (the return of the read that made it so).
    help: (bool, Instant),
    /// When the screen first showed [`MARKER`].
    marker: Option<Instant>,
    /// Whether the PTY closed.
    closed: bool,
}

/// The screen, shared between the reader thread and the measurer.
type Shared = Arc<(Mutex<Screen>, Condvar)>;

/// Locks the screen (a panicked reader poisons it: then the measurement is over anyway).
fn lock(shared: &Shared) -> MutexGuard<'_, Screen> {
    shared.0.lock().expect("the PTY reader panicked")
}

/// The `reagent` cockpit in a PTY of `COLS`x`ROWS`.
struct Tui {
    /// Its screen.
    shared: Shared,
    /// Keyboard.
    writer: Box<dyn Write + Send>,
    /// The process.
    child: PtyChild,
    /// Its pid.
    pid: u32,
    /// Kept open for the reader.
    _master: Master,
}

impl Tui {
    /// Starts `reagent` (no arguments: the cockpit) on `install`.
    fn start(install: &Install) -> anyhow::Result<Self> {
        let mut cmd = CommandBuilder::new(&install.bins.reagent);
        cmd.env("REAGENT_DIR", install.dir.path());
        cmd.env("REAGENTD", &install.bins.reagentd);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("REAGENT_CONFIG");
        cmd.env_remove("RUST_LOG");
        let (master, child) = support::spawn_in_pty(cmd, COLS, ROWS).context("start reagent")?;
        let pid = child.process_id().context("the client's pid")?;
        let screen = Screen {
            parser: vt100::Parser::new(ROWS, COLS, 0),
            help: (false, Instant::now()),
            marker: None,
            closed: false,
        };
        let shared: Shared = Arc::new((Mutex::new(screen), Condvar::new()));
        let reader = master.try_clone_reader().context("PTY reader")?;
        let sink = shared.clone();
        std::thread::spawn(move || read_screen(reader, &sink));
        let writer = master.take_writer().context("PTY writer")?;
        Ok(Self {
            shared,
            writer,
            child,
            pid,
            _master: master,
        })
    }

    /// Types bytes.
    fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(bytes).context("type into the PTY")?;
        self.writer.flush().context("flush the PTY")
    }

    /// What the screen shows now.
    fn contents(&self) -> String {
        lock(&self.shared).parser.screen().contents()
    }

    /// When the screen first showed the flood's end marker.
    fn marker_seen(&self) -> Option<Instant> {
        lock(&self.shared).marker
    }

    /// Waits until the screen satisfies `done`; the error shows the screen.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        support::poll(timeout, || done(&self.contents()))
            .map_err(|_| anyhow!("the screen shows:\n{}", self.contents()))
    }

    /// Presses `?` then `x`, pushing both latencies; returns how many were lost (timed out).
    fn pair(&mut self, samples: &mut Vec<Duration>) -> anyhow::Result<usize> {
        let mut lost = 0;
        for (key, present) in [(b"?", true), (b"x", false)] {
            if let Some(latency) = self.press(key, present)? {
                samples.push(latency);
                continue;
            }
            lost += 1;
            samples.push(KEY_TIMEOUT);
            // Let the late effect land before the next press.
            self.wait_for(STEP_TIMEOUT, |s| s.contains(HELP_TEXT) == present)
                .context("a key never took effect")?;
        }
        Ok(lost)
    }

    /// Presses `key` and times until [`HELP_TEXT`] appears (`present`) or disappears; `None`
    /// after [`KEY_TIMEOUT`].
    fn press(&mut self, key: &[u8], present: bool) -> anyhow::Result<Option<Duration>> {
        if lock(&self.shared).help.0 == present {
            bail!("before pressing {key:?}, the help already shows = {present}");
        }
        let start = Instant::now();
        self.send(key)?;
        let deadline = start + KEY_TIMEOUT;
        let mut screen = lock(&self.shared);
        while screen.help.0 != present {
            if screen.closed {
                bail!("the client closed its terminal");
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            screen = self
                .shared
                .1
                .wait_timeout(screen, deadline - now)
                .map_err(|_| anyhow!("the PTY reader panicked"))?
                .0;
        }
        Ok(Some(screen.help.1.saturating_duration_since(start)))
    }

    /// Quits with `q` (the daemon and runs go on), killing the client if it lingers.
    fn quit(&mut self) {
        let _ = self.send(b"q");
        let exited = support::poll(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if exited.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The PTY reader: parses everything the TUI writes as fast as it comes, and stamps the
/// moment the help overlay appears or disappears, and the end marker first shows.
fn read_screen(reader: Box<dyn Read + Send>, shared: &Shared) {
    support::read_pty(reader, |bytes| {
        let now = Instant::now();
        let Ok(mut screen) = shared.0.lock() else {
            return false;
        };
        screen.parser.process(bytes);
        let contents = screen.parser.screen().contents();
        if screen.marker.is_none() && contents.contains(MARKER) {
            screen.marker = Some(now);
        }
        let help = contents.contains(HELP_TEXT);
        if help != screen.help.0 {
            screen.help = (help, now);
        }
        shared.1.notify_all();
        true
    });
    if let Ok(mut screen) = shared.0.lock() {
        screen.closed = true;
    }
    shared.1.notify_all();
}

/// Samples the client's RSS and watches the run's log, every [`MONITOR_EVERY`].
struct Monitor {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// Set once the log holds the end marker.
    done: Arc<AtomicBool>,
    /// The thread.
    handle: JoinHandle<Watched>,
}

/// What the monitor saw.
struct Watched {
    /// Highest client RSS, in bytes.
    max_rss: u64,
    /// When the log first held the end marker.
    log_done: Option<Instant>,
}

impl Monitor {
    /// Starts watching client `pid` and `log`.
    fn start(pid: u32, log: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (stop_flag, done_flag) = (stop.clone(), done.clone());
        let handle = std::thread::spawn(move || {
            let mut watched = Watched {
                max_rss: 0,
                log_done: None,
            };
            let mut size = 0;
            while !stop_flag.load(Ordering::Relaxed) {
                if let Ok(rss) = support::vm_rss(pid) {
                    watched.max_rss = watched.max_rss.max(rss);
                }
                let now_size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(size);
                if watched.log_done.is_none() && now_size != size {
                    size = now_size;
                    if tail_has_marker(&log, size) {
                        watched.log_done = Some(Instant::now());
                        done_flag.store(true, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(MONITOR_EVERY);
            }
            watched
        });
        Self { stop, done, handle }
    }

    /// Whether the log holds the end marker yet.
    fn log_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops and returns what it saw.
    fn stop(self) -> anyhow::Result<Watched> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow!("the monitor thread panicked"))
    }
}

/// Whether the last bytes of `log` (of `size` bytes) contain [`MARKER`].
fn tail_has_marker(log: &Path, size: u64) -> bool {
    let Ok(mut file) = std::fs::File::open(log) else {
        return false;
    };
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(size.saturating_sub(64))).is_ok()
        && file.read_to_end(&mut tail).is_ok()
        && String::from_utf8_lossy(&tail).contains(MARKER)
}
