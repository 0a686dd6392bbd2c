//! End-to-end tests of the per-run supervisor: the real `reagentd supervise <RUN_DIR>` binary,
//! driven through its files and its control socket the way the daemon drives it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reagentd::supervisor::wire::{ControlMsg, ExitRecord, LaunchSpec, Ready, SupervisorMsg, files};

/// Generous: these tests must pass on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` every few milliseconds until it holds, failing the test after `timeout`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool, timeout: Duration) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A running supervisor and its run folder.
struct Sup {
    child: Child,
    _dir: tempfile::TempDir,
    run_dir: PathBuf,
    ready: Ready,
}

impl Sup {
    /// Writes the spec and starts `reagentd supervise`, returning once it printed `Ready`.
    fn start(command: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = dir.path().to_path_buf();
        let spec = LaunchSpec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            cwd: run_dir.clone(),
            env: vec![("REAGENT_TEST".into(), "1".into())],
            complete_env: false,
            cols: 80,
            rows: 24,
            umask: None,
        };
        fs::write(
            run_dir.join(files::SPEC),
            serde_json::to_vec(&spec).expect("spec"),
        )
        .expect("write spec");
        let stderr = fs::File::create(run_dir.join(files::SUPERVISOR_LOG)).expect("supervisor.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_reagentd"))
            .arg("supervise")
            .arg(&run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn reagentd supervise");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).expect("no Ready line in time");
        let ready =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad Ready {line:?}: {e}"));
        Self {
            child,
            _dir: dir,
            run_dir,
            ready,
        }
    }

    fn pid(&self) -> u32 {
        match self.ready {
            Ready::Started { pid } => pid,
            Ready::Failed { ref error } => panic!("the job did not start: {error}"),
        }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.run_dir.join(files::LOG)).unwrap_or_default())
            .into_owned()
    }

    fn wait_log(&self, needle: &str) {
        wait_until(
            &format!("{needle:?} in the log"),
            || self.log().contains(needle),
            DEADLINE,
        );
    }

    fn connect(&self) -> Conn {
        let stream = UnixStream::connect(self.run_dir.join(files::SOCKET)).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        Conn {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Waits for the supervisor to exit successfully and returns `exit.json`.
    fn finish(&mut self) -> ExitRecord {
        let mut status = None;
        wait_until(
            "the supervisor to exit",
            || {
                status = self.child.try_wait().expect("try_wait");
                status.is_some()
            },
            DEADLINE,
        );
        let supervisor_log =
            fs::read_to_string(self.run_dir.join(files::SUPERVISOR_LOG)).unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "supervisor failed: {supervisor_log}"
        );
        assert!(
            !self.run_dir.join(files::SOCKET).exists(),
            "sup.sock left behind"
        );
        read_exit(&self.run_dir)
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ready::Started { pid } = self.ready {
                kill_group(pid);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// SIGKILL to a job's process group, through the syscall: procps-ng 4.0.2's `kill -KILL -PGID`
/// signals the group named by the first digit only (`-1…` becomes every process).
fn kill_group(pgid: u32) {
    let pid = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid.filter(|pid| pid.as_raw_nonzero().get() > 1) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn read_exit(run_dir: &Path) -> ExitRecord {
    serde_json::from_slice(&fs::read(run_dir.join(files::EXIT)).expect("exit.json"))
        .expect("exit record")
}

/// One daemon-side connection to the control socket.
struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Conn {
    fn send(&mut self, msg: &ControlMsg) {
        let mut line = serde_json::to_vec(msg).expect("json");
        line.push(b'\n');
        self.writer.write_all(&line).expect("send");
    }

    fn send_input(&mut self, text: &str) {
        self.send(&ControlMsg::Input {
            data: BASE64.encode(text),
        });
    }

    /// The next message, or `None` at EOF.
    fn next(&mut self) -> Option<SupervisorMsg> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("read from supervisor");
        (n > 0).then(|| {
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad msg {line:?}: {e}"))
        })
    }
}

#[test]
fn exit_code_and_output_are_recorded() {
    let mut sup = Sup::start(&["sh", "-c", "echo hello; exit 3"]);
    let pid = sup.pid();
    assert!(pid > 0);
    let record = sup.finish();
    assert!(sup.log().contains("hello"), "log: {:?}", sup.log());
    assert_eq!(record.exit_code, Some(3));
    assert_eq!(record.signal, None);
    assert!(!record.stopped);
    assert_eq!(record.error, None);
    assert!(record.ended_at_ms > 0);
}

#[test]
fn supervisor_and_job_have_their_own_sessions() {
    let mut sup = Sup::start(&["sh", "-c", "read x"]);
    let sup_pid = rustix::process::Pid::from_child(&sup.child);
    assert_eq!(
        rustix::process::getsid(Some(sup_pid)).expect("getsid"),
        sup_pid
    );
    let job = rustix::process::Pid::from_raw(i32::try_from(sup.pid()).expect("pid")).expect("pid");
    assert_eq!(rustix::process::getpgid(Some(job)).expect("getpgid"), job);
    sup.connect().send_input("\n");
    assert_eq!(sup.finish().exit_code, Some(0));
}

#[test]
fn a_missing_binary_fails_the_launch() {
    let mut sup = Sup::start(&["reagent-no-such-binary", "arg"]);
    let Ready::Failed { error } = sup.ready.clone() else {
        panic!("expected Failed, got {:?}", sup.ready);
    };
    assert!(error.contains("reagent-no-such-binary"), "error: {error}");
    let record = sup.finish();
    assert_eq!(record.error.as_deref(), Some(error.as_str()));
    assert_eq!(record.exit_code, None);
    assert!(
        sup.log().contains("cannot start `reagent-no-such-binary`"),
        "log: {:?}",
        sup.log()
    );
}

#[test]
fn input_reaches_the_job_and_bad_lines_are_ignored() {
    let mut sup = Sup::start(&["sh", "-c", "read x; echo got:$x"]);
    let mut conn = sup.connect();
    conn.writer
        .write_all(b"this is not json\n{\"type\":\"nope\"}\n\n")
        .expect("send garbage");
    conn.send(&ControlMsg::Input {
        data: "%%% not base64".into(),
    });
    conn.send_input("hi\n");
    let record = sup.finish();
    assert!(sup.log().contains("got:hi"), "log: {:?}", sup.log());
    assert_eq!(record.exit_code, Some(0));
}

#[test]
fn resize_reaches_the_pty() {
    let mut sup = Sup::start(&["sh", "-c", "read x; stty size"]);
    let mut conn = sup.connect();
    conn.send(&ControlMsg::Resize {
        cols: 100,
        rows: 40,
    });
    conn.send_input("\n");
    sup.finish();
    assert!(sup.log().contains("40 100"), "log: {:?}", sup.log());
}

#[test]
fn stop_escalates_to_sigkill_after_the_grace() {
    let mut sup = Sup::start(&["sh", "-c", "trap '' TERM; echo armed; sleep 100"]);
    sup.wait_log("armed");
    sup.connect().send(&ControlMsg::Stop { grace_ms: 300 });
    let record = sup.finish();
    assert_eq!(record.signal, Some(9));
    assert!(record.stopped);
}

#[test]
fn stop_terminates_with_sigterm() {
    let mut sup = Sup::start(&["sleep", "100"]);
    let start = Instant::now();
    sup.connect().send(&ControlMsg::Stop { grace_ms: 60_000 });
    let record = sup.finish();
    assert_eq!(record.signal, Some(15));
    assert_eq!(record.exit_code, None);
    assert!(record.stopped);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the grace period delayed the exit"
    );
}

fn assert_all_lines(log: &str, count: usize) {
    let lines: Vec<&str> = log
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("line"))
        .collect();
    let expected: Vec<String> = (1..=count).map(|i| format!("line{i}")).collect();
    assert_eq!(lines, expected);
}

#[test]
fn output_flows_without_a_daemon() {
    let mut sup = Sup::start(&["sh", "-c", "for i in $(seq 1 2000); do echo line$i; done"]);
    assert_eq!(sup.finish().exit_code, Some(0));
    assert_all_lines(&sup.log(), 2000);
}

#[test]
fn output_flows_after_the_daemon_vanishes() {
    let mut sup = Sup::start(&[
        "sh",
        "-c",
        "read x; for i in $(seq 1 2000); do echo line$i; done",
    ]);
    let mut conn = sup.connect();
    assert!(matches!(conn.next(), Some(SupervisorMsg::Hello { .. })));
    conn.send_input("go\n");
    sup.wait_log("go");
    drop(conn); // abruptly, with messages unread
    assert_eq!(sup.finish().exit_code, Some(0));
    assert_all_lines(&sup.log(), 2000);
}

#[test]
fn the_newest_connection_replaces_the_previous_one() {
    let mut sup = Sup::start(&["sh", "-c", "read x; echo bye"]);
    let mut first = sup.connect();
    assert!(matches!(first.next(), Some(SupervisorMsg::Hello { .. })));
    let mut second = sup.connect();
    assert!(matches!(second.next(), Some(SupervisorMsg::Hello { .. })));
    assert_eq!(first.next(), None, "the replaced connection must be closed");
    second.send_input("\n");
    let mut exited = None;
    while let Some(msg) = second.next() {
        if let SupervisorMsg::Exited { record, .. } = msg {
            exited = Some(record);
        }
    }
    assert_eq!(exited.map(|r| r.exit_code), Some(Some(0)));
    sup.finish();
}

#[test]
fn hello_then_written_then_exited_track_the_log() {
    let mut sup = Sup::start(&[
        "sh",
        "-c",
        "read x; echo out:$x; read y; echo out:$y; exit 4",
    ]);
    let mut conn = sup.connect();
    let Some(SupervisorMsg::Hello { pid, written }) = conn.next() else {
        panic!("the first message must be Hello");
    };
    assert_eq!(pid, sup.pid());
    assert_eq!(written, 0);
    conn.send_input("a\n");
    let mut last = 0;
    loop {
        match conn.next() {
            Some(SupervisorMsg::Written { written }) => {
                assert!(
                    written > last,
                    "Written must advance: {written} after {last}"
                );
                last = written;
                let log_len = fs::metadata(sup.run_dir.join(files::LOG))
                    .expect("log")
                    .len();
                assert!(
                    written <= log_len,
                    "Written {written} beyond the log ({log_len})"
                );
                if sup.log().contains("out:a") {
                    break;
                }
            }
            other => panic!("expected Written, got {other:?}"),
        }
    }
    conn.send_input("b\n");
    let (written, record) = loop {
        match conn.next() {
            Some(SupervisorMsg::Written { written }) => {
                assert!(written > last);
                last = written;
            }
            Some(SupervisorMsg::Exited { written, record }) => break (written, record),
            other => panic!("expected Written or Exited, got {other:?}"),
        }
    };
    assert_eq!(conn.next(), None, "EOF after Exited");
    assert!(written >= last);
    let on_disk = sup.finish();
    assert_eq!(record, on_disk);
    assert_eq!(record.exit_code, Some(4));
    assert_eq!(
        written,
        fs::metadata(sup.run_dir.join(files::LOG))
            .expect("log")
            .len()
    );
    assert!(sup.log().contains("out:b"));
}

#[test]
fn a_grandchild_holding_the_pty_does_not_keep_the_run_open() {
    // The background sleep ignores the hang-up and keeps the PTY open after `sh` exits.
    let mut sup = Sup::start(&["sh", "-c", "trap '' HUP; sleep 60 & echo bye"]);
    let start = Instant::now();
    let record = sup.finish();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "waited for the grandchild"
    );
    assert_eq!(record.exit_code, Some(0));
    assert!(sup.log().contains("bye"));
    kill_group(sup.pid());
}

#[test]
fn a_supervisor_whose_run_folder_is_deleted_exits_when_its_job_ends() {
    let mut sup = Sup::start(&["sh", "-c", "read x; exit 3"]);
    let mut conn = sup.connect();
    let _ = conn.next();
    fs::remove_dir_all(&sup.run_dir).expect("remove the run folder");
    conn.send_input("go\n");
    wait_until(
        "the supervisor to exit: nobody can ever ask for its record",
        || sup.child.try_wait().expect("try_wait").is_some(),
        DEADLINE,
    );
}
