//! Test harness: real binaries on a temporary `REAGENT_DIR`, and waits on conditions.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod http;
pub mod mock_hook;
pub mod mock_llm;
pub mod pty;
pub mod script_llm;

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde_json::{Value, json};

/// Generous: the suite must pass on a loaded 2-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `done` until it holds, failing the test with `what` after `TIMEOUT`.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    assert!(within_timeout(done), "timed out waiting for {what}");
}

/// Polls `done` until it holds or `TIMEOUT` passes; returns whether it held.
pub fn within_timeout(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while !done() {
        if start.elapsed() > TIMEOUT {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    true
}

/// The folder holding the built `reagent` and `reagentd`, built once per test process.
/// (Integration tests of the root package cannot name other packages' binaries directly.)
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "reagentd", "-p", "reagent-tui"]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// One hermetic reagent installation: its own state folder and daemon.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        // Short paths: socket paths must stay under 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rg")
            .tempdir_in("/tmp")
            .expect("tempdir");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("reagentd.sock")
    }

    /// A `reagent` command on this installation.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("reagent"));
        cmd.args(args)
            .env("REAGENT_DIR", self.path())
            .env_remove("REAGENT_CONFIG");
        cmd.env("REAGENTD", bin_dir().join("reagentd"))
            .stdin(Stdio::null());
        cmd
    }

    /// Writes this installation's config file (read by the daemon when it starts).
    pub fn write_config(&self, toml: impl AsRef<[u8]>) {
        std::fs::write(self.path().join("config.toml"), toml).expect("write config");
    }

    /// Every log line the daemon wrote so far.
    pub fn daemon_log(&self) -> String {
        walk(&self.path().join("logs"))
            .iter()
            .map(|file| std::fs::read_to_string(file).unwrap_or_default())
            .collect()
    }

    /// Every alert (with `all`, answered ones too), as `reagent alerts --json` prints them.
    pub fn alerts(&self, all: bool) -> Vec<Value> {
        let mut args = vec!["alerts", "--json"];
        if all {
            args.push("--all");
        }
        serde_json::from_str(&self.ok(&args)).expect("alerts --json")
    }

    /// Runs `reagent ARGS` and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run reagent")
    }

    /// Runs `reagent ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "reagent {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the daemon with extra environment variables (a provider key, fake GPUs: what
    /// only the daemon may see) and asserts it came up.
    pub fn start_daemon(&self, vars: &[(&str, &str)]) {
        let mut cmd = self.cmd(&["daemon", "start"]);
        cmd.envs(vars.iter().copied());
        let out = cmd.output().expect("start the daemon");
        assert!(
            out.status.success(),
            "the daemon did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a run and returns its id.
    pub fn start(&self, command: &[&str]) -> String {
        let mut args = vec!["run", "--"];
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    /// Adds the recipes in `toml` (written to a file in this installation's folder).
    pub fn add_recipes(&self, toml: &str) {
        let file = self.path().join("recipes.toml");
        std::fs::write(&file, toml).expect("write recipes");
        self.ok(&["recipe", "add", file.to_str().expect("utf-8 path")]);
    }

    /// Every model instance, as `reagent models --json` prints them.
    pub fn models(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["models", "--json"])).expect("models json")
    }

    /// One model instance by name.
    pub fn model(&self, name: &str) -> Value {
        self.models()
            .into_iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no model {name}"))
    }

    /// Every run, as the daemon reports them.
    pub fn runs(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["runs", "--json"])).expect("runs --json")
    }

    /// One run by id.
    pub fn get(&self, id: &str) -> Value {
        self.runs()
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no run {id}"))
    }

    pub fn status_of(&self, id: &str) -> String {
        self.get(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The daemon's pid, from its lock file.
    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path().join("reagentd.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `kill -9` the daemon and wait until it is gone.
    pub fn kill_daemon(&self) {
        let pid = self.daemon_pid().expect("daemon pid");
        signal(pid, Signal::KILL);
        // A killed process shows as a zombie while its other threads still hold its files
        // (the socket, the lock): wait for the lock itself, which is what a new daemon needs.
        wait_until("the daemon to die", || !alive(pid) && self.lock_is_free());
    }

    /// Whether no daemon holds this state directory's lock.
    pub fn lock_is_free(&self) -> bool {
        let Ok(file) = std::fs::File::open(self.path().join("reagentd.lock")) else {
            return true;
        };
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok()
    }

    /// A raw protocol connection to the daemon (started if needed).
    pub fn connect(&self) -> Conn {
        self.ok(&["daemon", "start"]);
        Conn::open(&self.socket())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Kill what is still running, then the daemon, so no test leaves processes behind.
        if self.socket().exists()
            && let Ok(out) = self.cmd(&["runs", "--json"]).output()
        {
            let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
            for run in runs {
                let pid = run["pid"].as_i64().and_then(|pid| i32::try_from(pid).ok());
                if let Some(pid) = pid.filter(|&pid| pid > 1).and_then(Pid::from_raw) {
                    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
                }
            }
        }
        if let Some(pid) = self.daemon_pid().filter(|&pid| alive(pid)) {
            signal(pid, Signal::KILL);
        }
        if std::thread::panicking() {
            // Keep the evidence: the daemon's log and the run folders.
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("state of the failed test kept in {}", kept.keep().display());
        }
    }
}

/// Sends a signal with the system call. (Never `kill -SIG -PGID` through the `kill`
/// program: some versions misread negative pids, and `-1` means every process.)
pub fn signal(pid: i32, signal: Signal) {
    let pid = Pid::from_raw(pid).filter(|_| pid > 1).expect("a real pid");
    let _ = rustix::process::kill_process(pid, signal);
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A line-oriented JSON-RPC connection, as a third-party client would write it.
pub struct Conn {
    pub writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Conn {
    pub fn open(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect to the daemon");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Self {
            writer: stream,
            reader,
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads the next line as the daemon wrote it, newline included.
    pub fn read_text(&mut self) -> String {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("read a line from the daemon");
        line
    }

    /// Reads the next message (response or notification).
    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("read a line from the daemon");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line).expect("the daemon sends JSON")
    }

    /// Reads until EOF or error; true when the daemon closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Err(err) => return err.kind() != std::io::ErrorKind::WouldBlock,
                Ok(_) => {}
            }
        }
    }

    /// Reads messages until the response to `id`, returning it; notifications go to `skipped`.
    pub fn response(&mut self, id: u64, skipped: &mut Vec<Value>) -> Value {
        loop {
            let message = self.read();
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
            skipped.push(message);
        }
    }

    /// Sends a request and returns its response (notifications read meanwhile are dropped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{request}\n").as_bytes());
        self.response(id, &mut Vec::new())
    }

    /// Reads the next `event` notification.
    pub fn next_event(&mut self) -> Value {
        loop {
            let message = self.read();
            if message["method"] == "event" {
                return message["params"].clone();
            }
        }
    }
}

/// A line of `/proc/PID/status` in KiB (`VmRSS` now, `VmHWM` at its peak).
pub fn memory_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Every file under `dir`, recursively: to check that a secret is in none of them.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}
