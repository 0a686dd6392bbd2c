//! Shared bench plumbing for `daemon/benches/spine.rs` and `tui/benches/cockpit.rs`: the
//! result table and its statistics, readings from `/proc`, signals through the system call,
//! polling, PTY spawning and reading, a hermetic `REAGENT_DIR`, and how a stand-in provider
//! on loopback reads its requests.
//!
//! It lives at the repository root, outside both packages, because the two benches belong to
//! different crates and neither crate should export bench helpers; each bench includes it with
//! `#[path = "../../benches/support.rs"] mod support;`. It uses only what every package of the
//! workspace can reach from a bench: `std`, `anyhow`, `tokio`, `rustix`, `portable-pty` and
//! `tempfile`.

// Each bench uses only part of this file; the rest would warn as dead code in that bench.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use anyhow::{Context as _, bail};
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use rustix::process::{Pid, Signal};

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;
/// PTY read buffer.
const READ_BUF: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// Command line and exit status
// ---------------------------------------------------------------------------------------

/// Whether the bench was run with `-- --quick`.
pub fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// The exit status of bench `name`: success when every target held; 1 when one failed or a
/// measurement could not be made (the error is printed).
pub fn exit_code(name: &str, outcome: anyhow::Result<bool>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("{name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an async bench on a multi-threaded runtime; its outcome becomes the exit status.
pub fn block_on(
    name: &str,
    bench: impl std::future::Future<Output = anyhow::Result<bool>>,
) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(bench));
    exit_code(name, outcome)
}

// ---------------------------------------------------------------------------------------
// The result table and its statistics
// ---------------------------------------------------------------------------------------

/// Rows of the result table.
#[derive(Default)]
pub struct Table {
    /// Measurement, measured, target, verdict.
    rows: Vec<[String; 4]>,
    /// Whether a check failed.
    failed: bool,
}

impl Table {
    /// A row with a target.
    pub fn check(&mut self, what: &str, value: String, target: String, pass: bool) {
        let verdict = if pass { "PASS" } else { "FAIL" };
        self.failed |= !pass;
        self.rows.push([what.into(), value, target, verdict.into()]);
    }

    /// A row for context only.
    pub fn info(&mut self, what: &str, value: String) {
        self.rows
            .push([what.into(), value, String::new(), String::new()]);
    }

    /// Prints the rows aligned, then the verdict; true when every check passed.
    pub fn print(&self) -> bool {
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

/// Summary of some values, in their own unit.
pub struct Stats {
    /// How many.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Summarises `values` with nearest-rank percentiles (so the median of an odd count is its
    /// middle value, of an even count the lower middle one); NaN for none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let pick = |p: f64| {
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
            sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
        };
        Self {
            n,
            mean: sorted.iter().sum::<f64>() / n as f64,
            p50: pick(0.5),
            p95: pick(0.95),
            p99: pick(0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Summarises durations, in milliseconds.
    pub fn of_ms(times: &[Duration]) -> Self {
        Self::of(times.iter().map(|t| t.as_secs_f64() * 1e3))
    }
}

/// The median of some values (see [`Stats::of`]; NaN for none).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    Stats::of(values).p50
}

/// Bytes as whole KiB, for the table.
pub fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes >> 10)
}

/// Bytes as MiB, for the table.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

// ---------------------------------------------------------------------------------------
// Processes: /proc, signals, polling
// ---------------------------------------------------------------------------------------

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and
/// parentheses): the first is the state, field 3 of the line.
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let (_, rest) = stat
        .rsplit_once(')')
        .with_context(|| format!("malformed /proc/{pid}/stat"))?;
    Ok(rest.split_whitespace().map(String::from).collect())
}

/// A process's state letter (`R`, `S`, `Z`, …); `None` when it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid).ok()?.first()?.chars().next()
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z')
}

/// A process's CPU seconds (user + system): its own, and its reaped children's.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<(f64, f64)> {
    let fields = stat_fields(pid)?;
    // utime stime cutime cstime are fields 14 to 17 of the line, so 11 to 14 after the name.
    let seconds = |i: usize| -> anyhow::Result<f64> {
        let ticks = fields
            .get(i)
            .with_context(|| format!("short /proc/{pid}/stat"))?;
        Ok(ticks.parse::<f64>()? / USER_HZ)
    };
    Ok((seconds(11)? + seconds(12)?, seconds(13)? + seconds(14)?))
}

/// A memory figure (`VmRSS:`, `RssAnon:` …) of `/proc/<pid>/status`, in bytes.
pub fn proc_status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
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

/// A process's resident set size (`VmRSS`), in bytes.
pub fn vm_rss(pid: u32) -> anyhow::Result<u64> {
    proc_status_bytes(pid, "VmRSS:")
}

/// A process's peak resident set size (`VmHWM`), in bytes: since it started, or since
/// [`reset_peak_rss`].
pub fn vm_hwm(pid: u32) -> anyhow::Result<u64> {
    proc_status_bytes(pid, "VmHWM:")
}

/// Resets a process's `VmHWM` to its current RSS (`5` into `/proc/<pid>/clear_refs`), so a
/// later [`vm_hwm`] is the peak of what came after; fails where the kernel or the sandbox
/// does not allow it.
pub fn reset_peak_rss(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("reset the peak RSS of pid {pid}"))
}

/// The CPU time of every live thread of `pid`, nanoseconds (from each thread's `schedstat`).
pub fn threads_cpu_ns(pid: u32) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).context("list threads")? {
        let path = task?.path().join("schedstat");
        // A thread that exited since the listing has nothing left to count.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .unwrap_or("0")
                .parse::<f64>()?;
        }
    }
    Ok(total)
}

/// A process's own CPU time at one moment, read two ways (see [`CpuReading::core_since`]).
pub struct CpuReading {
    /// When it was taken.
    at: Instant,
    /// User + system seconds from `/proc/<pid>/stat`: every thread, exited ones included,
    /// but in 10 ms ticks.
    ticks: f64,
    /// The live threads' scheduler times: nanoseconds, but a thread that exits takes its
    /// time along.
    threads_ns: f64,
}

impl CpuReading {
    /// Reads `pid`'s CPU time now.
    pub fn now(pid: u32) -> anyhow::Result<Self> {
        let (ticks, _) = cpu_seconds(pid)?;
        Ok(Self {
            at: Instant::now(),
            ticks,
            threads_ns: threads_cpu_ns(pid)?,
        })
    }

    /// The fraction of one core the process used from `earlier` to this reading: the larger
    /// of what the two clocks saw, each missing something the other counts.
    pub fn core_since(&self, earlier: &Self) -> f64 {
        let threads = (self.threads_ns - earlier.threads_ns) / 1e9;
        let seconds = threads.max(self.ticks - earlier.ticks);
        seconds / self.at.duration_since(earlier.at).as_secs_f64()
    }
}

/// A pid safe to signal: never 0 or 1 (nor anything that is not a valid pid).
fn real_pid(pid: u32) -> anyhow::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 1)
        .and_then(Pid::from_raw)
        .with_context(|| format!("refusing to signal pid {pid}"))
}

/// Signals one process with the system call.
pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    rustix::process::kill_process(real_pid(pid)?, signal).context("kill")
}

/// Signals the process group `pgid` with the system call.
pub fn signal_group(pgid: u32, signal: Signal) -> anyhow::Result<()> {
    rustix::process::kill_process_group(real_pid(pgid)?, signal).context("killpg")
}

/// SIGTERM to `pid`, then SIGKILL unless `gone` holds within `grace`; an error when it took
/// SIGKILL (the caller reaps a child of its own).
pub fn terminate(pid: u32, grace: Duration, gone: impl FnMut() -> bool) -> anyhow::Result<()> {
    // A failure here (it just exited) shows in `gone`.
    let _ = signal(pid, Signal::TERM);
    if poll(grace, gone).is_err() {
        let _ = signal(pid, Signal::KILL);
        bail!("pid {pid} ignored SIGTERM for {grace:?}; killed");
    }
    Ok(())
}

/// Polls `done` with a growing delay (200 µs up to 5 ms) until it holds or `timeout` passes.
pub fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
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
// PTYs and installations
// ---------------------------------------------------------------------------------------

/// The master side of a PTY.
pub type Master = Box<dyn MasterPty + Send>;
/// A process running in a PTY.
pub type PtyChild = Box<dyn Child + Send + Sync>;

/// Starts `cmd` in a fresh `cols`x`rows` PTY. The slave side is closed here, so once the
/// child exits the master reads as ended.
pub fn spawn_in_pty(
    cmd: CommandBuilder,
    cols: u16,
    rows: u16,
) -> anyhow::Result<(Master, PtyChild)> {
    let size = PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    };
    let pair = native_pty_system().openpty(size).context("openpty")?;
    let child = pair.slave.spawn_command(cmd).context("spawn in a PTY")?;
    drop(pair.slave);
    Ok((pair.master, child))
}

/// Reads a PTY master as fast as it delivers, handing each read to `chunk`, until the PTY
/// closes (end of file, or EIO once the slave side is gone) or `chunk` returns false.
pub fn read_pty(mut reader: impl Read, mut chunk: impl FnMut(&[u8]) -> bool) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if !chunk(&buf[..n]) {
                    return;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A fresh, empty `REAGENT_DIR` in /tmp, removed on drop (a short path: socket paths must stay
/// under 108 bytes).
pub fn reagent_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .context("temporary REAGENT_DIR")
}

/// `program` (`reagentd` or `reagent`) on the installation in `dir` only: `REAGENT_DIR` set,
/// `REAGENT_CONFIG` and `RUST_LOG` cleared, stdin closed.
pub fn reagent_command(program: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("REAGENT_DIR", dir)
        .env_remove("REAGENT_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// One `reagentd` in the foreground on its own temporary `REAGENT_DIR`: what every bench
/// measures against. Killed on drop if a measurement failed half-way.
pub struct BenchDaemon {
    /// The process, until stopped.
    child: Option<std::process::Child>,
    /// Its `REAGENT_DIR`, removed on drop.
    dir: tempfile::TempDir,
}

impl BenchDaemon {
    /// Starts `binary` on a fresh folder named after `prefix`; `prepare` may write files into
    /// the folder (a config) and adjust the command (environment) first. Waits for the socket.
    pub fn start(
        binary: &Path,
        prefix: &str,
        prepare: impl FnOnce(&Path, &mut Command) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let dir = reagent_dir(prefix)?;
        let mut command = reagent_command(binary, dir.path());
        command.stdout(Stdio::null()).stderr(Stdio::null());
        prepare(dir.path(), &mut command)?;
        let child = command.spawn().context("spawn reagentd")?;
        let mut daemon = Self {
            child: Some(child),
            dir,
        };
        let socket = daemon.socket();
        let child = daemon.child.as_mut().context("no daemon process")?;
        let mut exited = None;
        let listening = poll(Duration::from_secs(30), || {
            socket.exists() || {
                exited = child.try_wait().ok().flatten();
                exited.is_some()
            }
        });
        if let Some(status) = exited {
            bail!("reagentd exited before it listened ({status})");
        }
        listening.with_context(|| format!("reagentd did not create {}", socket.display()))?;
        Ok(daemon)
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> anyhow::Result<u32> {
        let child = self.child.as_ref().context("the daemon was stopped")?;
        Ok(child.id())
    }

    /// Its `REAGENT_DIR`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its socket.
    pub fn socket(&self) -> std::path::PathBuf {
        self.path().join("reagentd.sock")
    }

    /// Its resident set size now.
    pub fn rss(&self) -> anyhow::Result<u64> {
        vm_rss(self.pid()?)
    }

    /// Its anonymous resident memory now (RssAnon: heap, stacks).
    pub fn rss_anon(&self) -> anyhow::Result<u64> {
        proc_status_bytes(self.pid()?, "RssAnon:")
    }

    /// CPU seconds of its own threads, and of its reaped children (supervisors and jobs).
    pub fn cpu(&self) -> anyhow::Result<(f64, f64)> {
        let pid = self.pid()?;
        // The daemon reaps a supervisor just after settling its run: give it a moment.
        let reaped = || cpu_seconds(pid).is_ok_and(|(_, children)| children > 0.0);
        let _ = poll(Duration::from_secs(2), reaped);
        cpu_seconds(pid)
    }

    /// SIGTERM, and wait for it to exit (SIGKILL if it takes too long).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let mut child = self
            .child
            .take()
            .context("the daemon was already stopped")?;
        let pid = child.id();
        let exited = || matches!(child.try_wait(), Ok(Some(_)));
        let stopped = terminate(pid, Duration::from_secs(10), exited);
        if stopped.is_err() {
            let _ = child.wait();
        }
        stopped.context("reagentd")
    }
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = signal(child.id(), Signal::KILL);
            let _ = child.wait();
        }
    }
}

/// Proxy variables removed from a daemon's environment in benches whose provider is a
/// stand-in on loopback: loopback must stay loopback.
pub const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Reads one request a stand-in provider gets: its body when it is `POST /v1/chat/completions` (with a length or
/// chunked), `None` for anything else or a client that left.
pub async fn read_chat_request(
    stream: &mut tokio::net::TcpStream,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if !head.starts_with("POST /v1/chat/completions ") {
        return Ok(None);
    }
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_ascii_lowercase())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if let Some(body) = dechunk(&buf[head_end..]) {
                return Ok(Some(body));
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(None);
            }
        }
    }
    let length = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
    Ok(Some(buf[head_end..head_end + length].to_vec()))
}

/// A chunked body, once its last chunk is in `raw`.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
