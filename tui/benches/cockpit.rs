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
//!    frame. For context, the list alone, the pane alone, and the cockpit while one new
//!    coloured line scrolls the pane every frame (so every frame differs) are timed as well.
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
//! To explain the latency, each key also records what the client's main thread (its
//! current-thread runtime runs the event loop, the link and the parsing) did while the key
//! waited — ran, waited for a CPU, or slept — from `/proc/<pid>/task/<pid>/schedstat`; and
//! the client's work per 256 KiB `output` notification (JSON decode, pane feed) is timed in
//! process, to show what one turn of its message loop can cost.
//!
//! Run with `cargo bench -p reagent-tui --bench cockpit [-- --quick]` (`--quick`: fewer frames
//! and idle samples). The `reagent`/`reagentd` release binaries next to the bench executable
//! are (re)built first with `cargo build --release`. Exits with status 1 when a target fails
//! or a measurement cannot be made. On Ctrl-C the run and the daemon are stopped before exit.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use reagent::config::PrefixKey;
use reagent::protocol::{Attached, Blob, Notification, Output};
use reagent::run::{RunInfo, RunStatus};
use reagent_tui::app::App;
use reagent_tui::app::state::{Focus, Link, Mode};
use rustix::process::{Pid, Signal};
use serde_json::Value;

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
/// The daemon's largest `output` chunk (`daemon/src/runs/follow.rs`).
const CHUNK: usize = 256 * 1024;
/// Messages the client's loop applies per turn after the first (`tui/src/app/mod.rs`).
const LOOP_BATCH: usize = 256;
/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Parses `--quick`, runs both measurements, prints the table, exits 1 when a target fails.
fn main() -> ExitCode {
    let quick = std::env::args().any(|arg| arg == "--quick");
    clean_up_on_interrupt();
    match bench(quick) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("cockpit: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Both measurements, then the table; true when every target held.
fn bench(quick: bool) -> anyhow::Result<bool> {
    let mode = usize::from(quick);
    println!(
        "cockpit: {} mode, {COLS}x{ROWS}",
        if quick { "quick" } else { "full" }
    );
    let render = measure_render(FRAMES[mode], if quick { 1 } else { ROUNDS })?;
    let costs = measure_client_costs(if quick { 16 } else { 64 })?;
    let bins = binaries()?;
    let flood = measure_flood(&bins, IDLE_PAIRS[mode])?;
    Ok(report(&render, &flood, &costs))
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
    /// The whole cockpit with one new line fed into the pane before each frame.
    scrolling: Vec<Duration>,
}

/// One render scenario: its terminal, and what it draws each frame.
struct Scenario {
    /// The terminal, kept across rounds so the diff against the previous frame is realistic.
    terminal: Terminal<TestBackend>,
    /// The cockpit state, when it draws the cockpit.
    app: Option<App>,
    /// The baseline's text, when it draws a paragraph.
    text: String,
    /// Feed one new pane line before each frame.
    scroll: bool,
    /// Lines fed so far (for the next line's content and offset).
    fed: usize,
    /// Log offset of the pane's next byte.
    offset: u64,
    /// Frame times.
    times: Vec<Duration>,
}

impl Scenario {
    /// A scenario drawing `app` (or, with `None`, the plain paragraph).
    fn new(app: Option<App>, scroll: bool) -> anyhow::Result<Self> {
        let terminal = Terminal::new(TestBackend::new(COLS, ROWS)).context("test terminal")?;
        let offset = app
            .as_ref()
            .and_then(|app| app.pane.as_ref())
            .and_then(|pane| pane.offset)
            .unwrap_or(0);
        let mut scenario = Self {
            terminal,
            app,
            text: plain_text(),
            scroll,
            fed: PANE_LINES,
            offset,
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
        if self.scroll
            && let Some(app) = self.app.as_mut()
        {
            let line = coloured_line(self.fed, usize::from(pane_cols(app)));
            self.fed += 1;
            let run = app.pane.as_ref().map(|pane| pane.run.clone());
            let output = Output {
                run: run.context("no pane")?,
                offset: self.offset,
                data: Blob(line.into_bytes()),
            };
            self.offset += output.data.0.len() as u64;
            if !app.output(output) {
                bail!("the pane refused contiguous output");
            }
        }
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
        Scenario::new(None, false)?,
        Scenario::new(Some(cockpit(RUNS, true)), false)?,
        Scenario::new(Some(cockpit(RUNS, false)), false)?,
        Scenario::new(Some(cockpit(1, true)), false)?,
        Scenario::new(Some(cockpit(RUNS, true)), true)?,
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
    let [baseline, cockpit, list_only, pane_only, scrolling] =
        scenarios.map(|scenario| scenario.times);
    Ok(RenderResult {
        baseline,
        cockpit,
        list_only,
        pane_only,
        scrolling,
    })
}

/// A cockpit with `runs` runs listed and, when `pane`, one open in the pane full of colour.
fn cockpit(runs: usize, pane: bool) -> App {
    let mut app = App::new("local", PrefixKey('b'), (COLS, ROWS), NOW);
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
    let (cols, rows) = reagent_tui::ui::pane_size(&app);
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
    assert!(app.attached(attached), "the pane takes its screen");
    app.focus = Focus::Pane;
    app.mode = Mode::Input;
    app
}

/// The pane's width in columns.
fn pane_cols(app: &App) -> u16 {
    app.pane
        .as_ref()
        .map_or(80, |pane| pane.parser.screen().size().1)
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

/// The baseline's text: `ROWS` lines of `COLS` plain characters.
fn plain_text() -> String {
    let row: String = "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(usize::from(COLS))
        .collect();
    vec![row; usize::from(ROWS)].join("\n")
}

/// What one flood-sized `output` notification costs the client, in process.
struct ClientCosts {
    /// Decoding its JSON line as the client's reader does (to a `Value`, then to a
    /// `Notification`, which decodes the base64).
    decode_ms: f64,
    /// `App::output`: feeding its bytes to the pane's vt100 parser.
    feed_ms: f64,
}

/// Times the client's work per 256 KiB `output` of the flood (the daemon's largest chunk),
/// over `chunks` chunks, on a pane of the size the flood's pane has at 200x50.
fn measure_client_costs(chunks: usize) -> anyhow::Result<ClientCosts> {
    let mut app = cockpit(1, true);
    let (cols, rows) = reagent_tui::ui::pane_size(&app);
    let run = &mut app.runs[0];
    (run.cols, run.rows) = (cols, rows);
    let run = run.clone();
    app.pane = None;
    app.open_pane(&run);
    let id = run.id.clone();
    let attached = Attached {
        run,
        offset: 0,
        screen: Blob(Vec::new()),
    };
    if !app.attached(attached) {
        bail!("the pane refused its screen");
    }
    // `base64` output: 76 columns a line, CR LF once through a PTY.
    let line = format!("{}\r\n", "A".repeat(76));
    let data: Vec<u8> = line.bytes().cycle().take(CHUNK).collect();
    let mut decode = Duration::ZERO;
    let mut feed = Duration::ZERO;
    let mut offset = 0u64;
    for _ in 0..chunks {
        let note = Notification::Output(Output {
            run: id.clone(),
            offset,
            data: Blob(data.clone()),
        });
        let wire = serde_json::to_vec(&note).context("encode")?;
        let start = Instant::now();
        // As `reagent::client`'s reader does.
        let value: Value = serde_json::from_slice(&wire).context("decode JSON")?;
        let note: Notification = serde_json::from_value(value).context("decode notification")?;
        decode += start.elapsed();
        let Notification::Output(output) = note else {
            bail!("not an output");
        };
        offset += output.data.0.len() as u64;
        let start = Instant::now();
        if !app.output(output) {
            bail!("the pane refused contiguous output");
        }
        feed += start.elapsed();
    }
    let per = |total: Duration| total.as_secs_f64() * 1e3 / chunks as f64;
    Ok(ClientCosts {
        decode_ms: per(decode),
        feed_ms: per(feed),
    })
}

// ---------------------------------------------------------------------------------------
// 2. Responsiveness under a flood
// ---------------------------------------------------------------------------------------

/// Where the release binaries are.
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
    idle: Vec<Sample>,
    /// Key-to-screen latencies while the client digested the flood.
    flood: Vec<Sample>,
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
    /// From Ctrl-b (sent just after `go`) until the cockpit said "cockpit keys".
    first_key: Duration,
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
    install.ok(&["daemon", "start"])?;
    let id = install
        .ok(&["run", "--name", "flood", "--", "sh", "-c", FLOOD])?
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
    let idle_rss = vm_rss(tui.pid)?;

    tui.send(b"\r")?;
    tui.wait_for(STEP_TIMEOUT, |s| s.contains("[typing]"))
        .context("Enter did not return to the job")?;
    let monitor = Monitor::start(tui.pid, log.clone());
    let cpu_start = cpu_ticks(tui.pid)?;
    let go = Instant::now();
    tui.send(b"go\r")?;
    tui.send(b"\x02")?;
    println!("flood: released; sampling ?/x until the cockpit shows {MARKER}");
    tui.wait_for(KEY_TIMEOUT, |s| s.contains("cockpit keys"))
        .context("Ctrl-b did not return to cockpit keys during the flood")?;
    let first_key = go.elapsed();

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
    let cpu_secs = (cpu_ticks(tui.pid)? - cpu_start) as f64 / USER_HZ;
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
        first_key,
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
    /// The client binary.
    reagent: PathBuf,
    /// The daemon binary (`REAGENTD`).
    reagentd: PathBuf,
}

/// The installation the interrupt handler must clean up: (`REAGENT_DIR`, client, daemon).
/// Whoever takes it out cleans up, so that happens once.
static LIVE: Mutex<Option<(PathBuf, PathBuf, PathBuf)>> = Mutex::new(None);

/// Takes the live installation out of [`LIVE`], if any.
fn take_live() -> Option<(PathBuf, PathBuf, PathBuf)> {
    LIVE.lock().map_or(None, |mut live| live.take())
}

impl Install {
    /// A fresh, empty installation, registered for cleanup on Ctrl-C.
    fn new(bins: &Binaries) -> anyhow::Result<Self> {
        // Short path: socket paths must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rgcockpit")
            .tempdir_in("/tmp")
            .context("temporary REAGENT_DIR")?;
        let install = Self {
            dir,
            reagent: bins.reagent.clone(),
            reagentd: bins.reagentd.clone(),
        };
        if let Ok(mut live) = LIVE.lock() {
            *live = Some((
                install.dir.path().to_path_buf(),
                install.reagent.clone(),
                install.reagentd.clone(),
            ));
        }
        Ok(install)
    }

    /// `reagent ARGS` on this installation.
    fn cmd(&self, args: &[&str]) -> Command {
        reagent_cmd(self.dir.path(), &self.reagent, &self.reagentd, args)
    }

    /// Runs `reagent ARGS`, requires success, returns stdout.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        reagent_ok(&mut self.cmd(args), args)
    }

    /// The run's `output.log`.
    fn log_path(&self, id: &str) -> anyhow::Result<PathBuf> {
        let runs: Vec<Value> =
            serde_json::from_str(&self.ok(&["runs", "--json"])?).context("parse runs --json")?;
        let listed = runs
            .into_iter()
            .find(|run| run["id"] == id)
            .and_then(|run| run["log_path"].as_str().map(PathBuf::from));
        Ok(listed.unwrap_or_else(|| self.dir.path().join("runs").join(id).join("output.log")))
    }

    /// Kills every run's process group, then stops the daemon; once.
    fn cleanup(&self) -> anyhow::Result<()> {
        match take_live() {
            Some((dir, reagent, reagentd)) => clean(&dir, &reagent, &reagentd),
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
fn reagent_cmd(dir: &Path, reagent: &Path, reagentd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(reagent);
    cmd.args(args)
        .env("REAGENT_DIR", dir)
        .env("REAGENTD", reagentd)
        .env_remove("REAGENT_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` (`reagent ARGS`), requires success, returns stdout.
fn reagent_ok(cmd: &mut Command, args: &[&str]) -> anyhow::Result<String> {
    let out = cmd
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
fn clean(dir: &Path, reagent: &Path, reagentd: &Path) -> anyhow::Result<()> {
    let daemon: Option<i32> = std::fs::read_to_string(dir.join("reagentd.lock"))
        .ok()
        .and_then(|pid| pid.trim().parse().ok());
    let args = ["runs", "--json"];
    if dir.join("reagentd.sock").exists()
        && let Ok(listed) = reagent_ok(&mut reagent_cmd(dir, reagent, reagentd, &args), &args)
    {
        let runs: Vec<Value> = serde_json::from_str(&listed).unwrap_or_default();
        for run in runs {
            let pid = run["pid"].as_i64().and_then(|pid| i32::try_from(pid).ok());
            if let Some(pid) = pid {
                // The job leads its own session and process group.
                let _ = signal_group(pid, Signal::KILL);
            }
        }
    }
    let stopped = reagent_cmd(dir, reagent, reagentd, &["daemon", "stop"]).output();
    if let Some(pid) = daemon
        && alive(pid)
    {
        let _ = signal(pid, Signal::TERM);
        if poll(Duration::from_secs(10), || !alive(pid)).is_err() {
            let _ = signal(pid, Signal::KILL);
            bail!("reagentd ({pid}) ignored `daemon stop` and SIGTERM; killed");
        }
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
        if let Some((dir, reagent, reagentd)) = take_live() {
            if let Err(err) = clean(&dir, &reagent, &reagentd) {
                eprintln!("cockpit: cleanup: {err:#}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::process::exit(130);
    });
}

/// The screen as the TUI's terminal shows it, and what the reader thread watches for.
struct Screen {
    /// The terminal emulator fed with everything the TUI writes.
    parser: vt100::Parser,
    /// A pending key's expected effect.
    watch: Option<Watch>,
    /// When the screen first showed [`MARKER`].
    marker: Option<Instant>,
    /// Whether the PTY closed.
    closed: bool,
}

/// What a pressed key should do to the screen.
struct Watch {
    /// The text to look for.
    text: &'static str,
    /// Whether it should appear (or disappear).
    present: bool,
    /// When the read that made it so returned.
    hit: Option<Instant>,
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
    writer: Box<dyn std::io::Write + Send>,
    /// The process.
    child: Box<dyn Child + Send + Sync>,
    /// Its pid.
    pid: u32,
    /// Kept open for the reader.
    _master: Box<dyn MasterPty + Send>,
}

impl Tui {
    /// Starts `reagent` (no arguments: the cockpit) on `install`.
    fn start(install: &Install) -> anyhow::Result<Self> {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|err| anyhow!("openpty: {err}"))?;
        let mut cmd = CommandBuilder::new(&install.reagent);
        cmd.env("REAGENT_DIR", install.dir.path());
        cmd.env("REAGENTD", &install.reagentd);
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("REAGENT_CONFIG");
        cmd.env_remove("RUST_LOG");
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|err| anyhow!("spawn reagent: {err}"))?;
        drop(pair.slave);
        let pid = child.process_id().context("the client's pid")?;
        let shared: Shared = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(ROWS, COLS, 0),
                watch: None,
                marker: None,
                closed: false,
            }),
            Condvar::new(),
        ));
        let reader = pair
            .master
            .try_clone_reader()
            .map_err(|err| anyhow!("PTY reader: {err}"))?;
        let sink = shared.clone();
        std::thread::spawn(move || read_screen(reader, &sink));
        let writer = pair
            .master
            .take_writer()
            .map_err(|err| anyhow!("PTY writer: {err}"))?;
        Ok(Self {
            shared,
            writer,
            child,
            pid,
            _master: pair.master,
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
        poll(timeout, || done(&self.contents()))
            .map_err(|_| anyhow!("the screen shows:\n{}", self.contents()))
    }

    /// Presses `?` then `x`, pushing both latencies; returns how many were lost (timed out).
    fn pair(&mut self, samples: &mut Vec<Sample>) -> anyhow::Result<usize> {
        let mut lost = 0;
        for (key, present) in [(b"?", true), (b"x", false)] {
            match self.press(key, HELP_TEXT, present)? {
                Some(sample) => samples.push(sample),
                None => {
                    lost += 1;
                    samples.push(Sample {
                        open: present,
                        latency: KEY_TIMEOUT,
                        on_cpu: Duration::ZERO,
                        waiting: Duration::ZERO,
                    });
                    // Let the late effect land before the next press.
                    self.wait_for(STEP_TIMEOUT, |s| s.contains(HELP_TEXT) == present)
                        .context("a key never took effect")?;
                }
            }
        }
        Ok(lost)
    }

    /// Presses `key` and times until `text` appears (`present`) or disappears; `None` after
    /// [`KEY_TIMEOUT`].
    fn press(
        &mut self,
        key: &[u8],
        text: &'static str,
        present: bool,
    ) -> anyhow::Result<Option<Sample>> {
        {
            let mut screen = lock(&self.shared);
            if screen.parser.screen().contents().contains(text) == present {
                bail!("before pressing {key:?}, {text:?} already shows = {present}");
            }
            screen.watch = Some(Watch {
                text,
                present,
                hit: None,
            });
        }
        let before = schedstat(self.pid);
        let start = Instant::now();
        self.send(key)?;
        let deadline = start + KEY_TIMEOUT;
        let mut screen = lock(&self.shared);
        loop {
            if let Some(hit) = screen.watch.as_ref().and_then(|watch| watch.hit) {
                screen.watch = None;
                drop(screen);
                let after = schedstat(self.pid);
                let (on_cpu, waiting) = match (before, after) {
                    (Some(before), Some(after)) => (
                        after.0.saturating_sub(before.0),
                        after.1.saturating_sub(before.1),
                    ),
                    _ => (Duration::ZERO, Duration::ZERO),
                };
                return Ok(Some(Sample {
                    open: present,
                    latency: hit.saturating_duration_since(start),
                    on_cpu,
                    waiting,
                }));
            }
            if screen.closed {
                bail!("the client closed its terminal");
            }
            let now = Instant::now();
            if now >= deadline {
                screen.watch = None;
                return Ok(None);
            }
            screen = self
                .shared
                .1
                .wait_timeout(screen, deadline - now)
                .map_err(|_| anyhow!("the PTY reader panicked"))?
                .0;
        }
    }

    /// Quits with `q` (the daemon and runs go on), killing the client if it lingers.
    fn quit(&mut self) {
        let _ = self.send(b"q");
        if poll(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        })
        .is_err()
        {
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
/// moment a watched change (or the end marker) first shows.
fn read_screen(mut reader: Box<dyn std::io::Read + Send>, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: the client closed the PTY.
            Err(_) => break,
        };
        let now = Instant::now();
        let Ok(mut screen) = shared.0.lock() else {
            return;
        };
        screen.parser.process(&buf[..n]);
        let watching = screen.watch.as_ref().is_some_and(|w| w.hit.is_none());
        if watching || screen.marker.is_none() {
            let contents = screen.parser.screen().contents();
            if screen.marker.is_none() && contents.contains(MARKER) {
                screen.marker = Some(now);
            }
            if let Some(watch) = screen.watch.as_mut().filter(|w| w.hit.is_none())
                && contents.contains(watch.text) == watch.present
            {
                watch.hit = Some(now);
            }
            shared.1.notify_all();
        }
    }
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
                if let Ok(rss) = vm_rss(pid) {
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
    let from = size.saturating_sub(64);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(from)).is_ok()
        && file.read_to_end(&mut tail).is_ok()
        && String::from_utf8_lossy(&tail).contains(MARKER)
}

/// VmRSS of a process, in bytes.
fn vm_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// One key's latency, and what the client's main thread (the one running its event loop:
/// the client uses a current-thread runtime) did from the press until the check after it.
#[derive(Clone, Copy)]
struct Sample {
    /// Whether the key opened the help (`?`) rather than closed it (`x`).
    open: bool,
    /// Key press to the screen showing its effect.
    latency: Duration,
    /// Time the main thread ran on a CPU meanwhile.
    on_cpu: Duration,
    /// Time the main thread was runnable but waited for a CPU meanwhile.
    waiting: Duration,
}

/// The main thread's (on-CPU, waiting-for-a-CPU) totals from
/// `/proc/<pid>/task/<pid>/schedstat`.
fn schedstat(pid: u32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/schedstat")).ok()?;
    let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
    let on_cpu = fields.next()??;
    let waiting = fields.next()??;
    Some((Duration::from_nanos(on_cpu), Duration::from_nanos(waiting)))
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit(')').next().context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {n} in /proc/{pid}/stat"))
    };
    Ok(field(14)? + field(15)?)
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// A pid safe to signal: never 0, 1 or negative.
fn real_pid(pid: i32) -> anyhow::Result<Pid> {
    Pid::from_raw(pid)
        .filter(|_| pid > 1)
        .with_context(|| format!("refusing to signal pid {pid}"))
}

/// Signals one process with the system call.
fn signal(pid: i32, signal: Signal) -> anyhow::Result<()> {
    rustix::process::kill_process(real_pid(pid)?, signal).context("kill")
}

/// Signals the process group `pgid` with the system call.
fn signal_group(pgid: i32, signal: Signal) -> anyhow::Result<()> {
    rustix::process::kill_process_group(real_pid(pgid)?, signal).context("killpg")
}

/// Polls `done` with a growing delay (at most 5 ms) until it holds or `timeout` passes.
fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_micros(200);
    while !done() {
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(5));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

/// How the client's main thread spent the keys' waits: running, waiting for a CPU, or
/// neither (asleep: waiting for a frame tick or for input).
fn thread_split(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "none".into();
    }
    let total: f64 = samples.iter().map(|s| s.latency.as_secs_f64()).sum();
    let ran: f64 = samples.iter().map(|s| s.on_cpu.as_secs_f64()).sum();
    let waited: f64 = samples.iter().map(|s| s.waiting.as_secs_f64()).sum();
    let pct = |part: f64| 100.0 * part / total;
    format!(
        "ran {:.0}%, waited for a CPU {:.0}%, slept {:.0}%",
        pct(ran),
        pct(waited),
        pct((total - ran - waited).max(0.0))
    )
}

/// Prints the table; true when every target held.
fn report(render: &RenderResult, flood: &FloodResult, costs: &ClientCosts) -> bool {
    let mut table = Table::default();
    let base = Stats::of(&render.baseline);
    let full = Stats::of(&render.cockpit);
    table.info(
        "render: baseline, plain 200x50 Paragraph",
        base.frame_text(),
    );
    table.check(
        "render: cockpit, 1000 runs + coloured pane",
        full.frame_text(),
        format!("mean < {MAX_FRAME_MS} ms"),
        full.mean_ms < MAX_FRAME_MS,
    );
    table.info(
        "  cockpit / baseline",
        format!(
            "mean {:.1}x, p99 {:.1}x",
            full.mean_ms / base.mean_ms,
            full.p99_ms / base.p99_ms
        ),
    );
    for (what, times) in [
        ("  part: runs list only (no pane)", &render.list_only),
        ("  part: pane only (1-run list)", &render.pane_only),
        ("  cockpit, pane scrolls 1 line/frame", &render.scrolling),
    ] {
        let stats = Stats::of(times);
        table.info(
            what,
            format!(
                "{} ({:.1}x baseline, {:.0}% of cockpit)",
                stats.frame_text(),
                stats.mean_ms / base.mean_ms,
                100.0 * stats.mean_ms / full.mean_ms
            ),
        );
    }

    let latencies = |samples: &[Sample]| samples.iter().map(|s| s.latency).collect::<Vec<_>>();
    let idle = Stats::of(&latencies(&flood.idle));
    let busy = Stats::of(&latencies(&flood.flood));
    let mb = flood.log_bytes as f64 / 1e6;
    table.info(
        "flood: output.log bytes, time from `go`",
        format!(
            "{} B in {:.2} s ({:.0} MB/s)",
            flood.log_bytes,
            flood.flood_time.as_secs_f64(),
            mb / flood.flood_time.as_secs_f64()
        ),
    );
    table.info(
        "flood: client showed the end after",
        format!(
            "{:.2} s, {:.2} CPU s ({:.0}% of a core)",
            flood.caught_up.as_secs_f64(),
            flood.cpu_secs,
            100.0 * flood.cpu_secs / flood.caught_up.as_secs_f64()
        ),
    );
    table.info("latency: baseline, run idle (?, x)", idle.latency_text());
    table.check(
        "latency: during the flood (?, x)",
        busy.latency_text(),
        format!("p95 < {MAX_P95_MS} ms"),
        busy.p95_ms < MAX_P95_MS && flood.lost == 0,
    );
    let by_key = |samples: &[Sample], open: bool| {
        let times: Vec<Duration> = samples
            .iter()
            .filter(|s| s.open == open)
            .map(|s| s.latency)
            .collect();
        let stats = Stats::of(&times);
        format!("p50 {:.1} / p95 {:.1} ms", stats.p50_ms, stats.p95_ms)
    };
    table.info(
        "  idle: ? (opens help) | x (closes it)",
        format!(
            "{} | {}",
            by_key(&flood.idle, true),
            by_key(&flood.idle, false)
        ),
    );
    table.info(
        "  flood: ? (opens help) | x (closes it)",
        format!(
            "{} | {}",
            by_key(&flood.flood, true),
            by_key(&flood.flood, false)
        ),
    );
    table.info(
        "  flood / idle",
        format!(
            "p50 {:.1}x, p95 {:.1}x",
            busy.p50_ms / idle.p50_ms,
            busy.p95_ms / idle.p95_ms
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
    let slow: Vec<Sample> = flood
        .flood
        .iter()
        .copied()
        .filter(|s| s.latency.as_secs_f64() * 1e3 >= MAX_P95_MS)
        .collect();
    table.info(
        "  while a key waited, the client's thread",
        format!("all keys: {}", thread_split(&flood.flood)),
    );
    table.info(
        &format!("  ... for keys >= {MAX_P95_MS} ms"),
        format!("{} keys: {}", slow.len(), thread_split(&slow)),
    );
    let batch_ms = costs.decode_ms + costs.feed_ms;
    table.info(
        "client cost of one 256 KiB `output`",
        format!(
            "decode {:.2} ms + pane feed {:.2} ms = {batch_ms:.2} ms; a full loop turn \
             (1 + {LOOP_BATCH}) of them = {:.0} ms",
            costs.decode_ms,
            costs.feed_ms,
            batch_ms * (LOOP_BATCH + 1) as f64
        ),
    );
    table.info(
        "  Ctrl-b right after `go` showed after",
        format!("{:.1} ms", flood.first_key.as_secs_f64() * 1e3),
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

/// Summary of some durations, in milliseconds.
struct Stats {
    /// How many.
    n: usize,
    /// Mean.
    mean_ms: f64,
    /// Median.
    p50_ms: f64,
    /// 95th percentile.
    p95_ms: f64,
    /// 99th percentile.
    p99_ms: f64,
    /// Largest.
    max_ms: f64,
}

impl Stats {
    /// Summarises `times` (NaN for none).
    fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        // Nearest rank.
        let pick = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
            ms.get(rank - 1).copied().unwrap_or(f64::NAN)
        };
        Self {
            n,
            mean_ms: ms.iter().sum::<f64>() / n as f64,
            p50_ms: pick(0.5),
            p95_ms: pick(0.95),
            p99_ms: pick(0.99),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// For frame times.
    fn frame_text(&self) -> String {
        format!(
            "mean {:.3} ms, p99 {:.3} ms (n={})",
            self.mean_ms, self.p99_ms, self.n
        )
    }

    /// For key latencies.
    fn latency_text(&self) -> String {
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (n={})",
            self.p50_ms, self.p95_ms, self.max_ms, self.n
        )
    }
}

/// Bytes as MiB, for the table.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Rows of the result table.
#[derive(Default)]
struct Table {
    /// Measurement, measured, target, verdict.
    rows: Vec<[String; 4]>,
    /// Whether a check failed.
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
        let header = ["measurement", "measured", "target", "verdict"].map(String::from);
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
