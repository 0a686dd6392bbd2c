//! Nothing is lost without a recorded reason when the disk fills or the log cannot be written:
//! the job never freezes, logging resumes when it can, the gap is marked in the log and on the
//! run, and the exit code survives an exit during the outage (even a daemon restart).
//!
//! The disk-full tests mount a small tmpfs as `REAGENT_DIR`, which needs root (CI runs as
//! root); where that is impossible they say so and pass without checking.

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, alive, wait_until};
use serde_json::{Value, json};

/// A small tmpfs mounted on a fresh folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (e.g. `16m`), or says why it cannot.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("rgfs")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs here ({}); run as root to test a full disk",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(err) => {
                eprintln!("skipping: cannot run mount ({err}); run as root to test a full disk");
                None
            }
        }
    }

    /// An installation whose state folder is on this tmpfs.
    fn env(&self) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("rg")
            .tempdir_in(self.dir.path())
            .expect("tempdir on the tmpfs");
        Env { dir }
    }

    /// Fills the disk to the last byte; returns the filler, removed by [`Tmpfs::free`].
    fn fill(&self) -> PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 64 * 1024];
        loop {
            if let Err(err) = file.write_all(&block) {
                assert_eq!(
                    err.raw_os_error(),
                    Some(28),
                    "filling stops at ENOSPC: {err}"
                );
                break;
            }
        }
        // Byte by byte for the last partial block.
        while file.write_all(&[0]).is_ok() {}
        path
    }

    fn free(filler: &Path) {
        std::fs::remove_file(filler).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A job folder outside the state folder (on the normal disk): the job reports its progress
/// there, and waits there for the test's go-ahead.
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rgjob")
            .tempdir_in("/tmp")
            .expect("tempdir");
        Self { dir }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 path")
    }

    /// How many lines the job has printed, as it reports in `count`.
    fn count(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("count"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    fn wait_for_more(&self, lines: u64) {
        let from = self.count();
        wait_until("the job to go on printing", || self.count() >= from + lines);
    }

    fn say_stop(&self) {
        std::fs::write(self.dir.path().join("stop"), "").expect("write stop");
    }
}

/// Prints a numbered line (padded: a hundred of them fill more than the page a log's last
/// write may still find room in) every few ms until `stop` appears, then `done`, and exits 7.
const PRINTER: &str = "i=0; while [ ! -e stop ]; do i=$((i+1)); \
                       echo line $i ................................................................; \
                       echo $i > count; sleep 0.005; done; echo done; exit 7";

fn start_in(env: &Env, job: &Job, script: &str) -> String {
    env.ok(&["run", "--cwd", job.path(), "--", "sh", "-c", script])
        .trim()
        .to_string()
}

fn log_of(env: &Env, id: &str) -> PathBuf {
    env.path().join("runs").join(id).join("output.log")
}

fn read_log(env: &Env, id: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(log_of(env, id)).unwrap_or_default()).into_owned()
}

/// The checks every gap must pass once the run ended: real exit code, output from before
/// and after, the marker in the log, the loss on the run and an alert.
fn assert_gap_recorded(env: &Env, id: &str) {
    assert_eq!(env.run(&["wait", id]).status.code(), Some(7));
    let run = env.get(id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 7);
    let log = read_log(env, id);
    assert!(log.contains("line 1 "), "output before the gap is kept");
    assert!(log.contains("done\r\n"), "output after the gap is kept");
    assert!(
        log.contains("[reagent: lost ") && log.contains(" bytes of output at "),
        "the gap is marked in the log"
    );
    let listed = env.ok(&["runs"]);
    assert!(
        listed.contains("(output lost)"),
        "reagent runs says so: {listed}"
    );
    let loss = &run["lost_output"];
    assert!(
        loss["bytes"].as_u64().unwrap_or(0) > 0,
        "the run says: {loss}"
    );
    assert_eq!(loss["ongoing"], false);
    let alert = env
        .alerts(true)
        .into_iter()
        .find(|alert| alert["run"] == id && alert["rule"] == "output_lost");
    let alert = alert.expect("an output_lost alert on the run");
    assert!(alert["message"].as_str().unwrap_or("").contains("lost "));
}

#[test]
fn a_full_disk_freezes_no_job_and_the_gap_is_recorded() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let env = fs.env();
    let job = Job::new();
    let id = start_in(&env, &job, PRINTER);
    wait_until("the first lines in the log", || {
        read_log(&env, &id).contains("line 10 ")
    });

    let filler = fs.fill();
    job.wait_for_more(100);
    Tmpfs::free(&filler);
    let size = std::fs::metadata(log_of(&env, &id)).map_or(0, |m| m.len());
    wait_until("logging to resume", || {
        std::fs::metadata(log_of(&env, &id)).map_or(0, |m| m.len()) > size + 1000
    });
    job.say_stop();
    assert_gap_recorded(&env, &id);
}

#[test]
fn a_log_made_unwritable_for_a_moment_resumes_and_records_the_gap() {
    let env = Env::new();
    let job = Job::new();
    let id = start_in(&env, &job, PRINTER);
    let log = log_of(&env, &id);
    wait_until("the first lines in the log", || {
        read_log(&env, &id).contains("line 10 ")
    });
    let chattr = |flag: &str| Command::new("chattr").arg(flag).arg(&log).output();
    match chattr("+i") {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("skipping: chattr +i does not work here ({other:?})");
            job.say_stop();
            return;
        }
    }
    job.wait_for_more(100);
    assert!(chattr("-i").expect("chattr -i").status.success());
    job.say_stop();
    assert_gap_recorded(&env, &id);
}

/// A run whose job exits with code 3 while the disk is full; returns the installation, the
/// run and the filler to free (the caller decides what happens before space returns).
fn exit_while_full(fs: &Tmpfs) -> (Env, Job, String, PathBuf) {
    let env = fs.env();
    let job = Job::new();
    let id = start_in(
        &env,
        &job,
        "while [ ! -e stop ]; do sleep 0.01; done; exit 3",
    );
    wait_until("the run to be running", || env.status_of(&id) == "running");
    let pid = env.get(&id)["pid"].as_i64().expect("pid") as i32;
    let filler = fs.fill();
    job.say_stop();
    wait_until("the job to end", || !alive(pid));
    (env, job, id, filler)
}

#[test]
fn an_exit_during_a_full_disk_keeps_its_code_across_a_daemon_restart() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let (env, _job, id, filler) = exit_while_full(&fs);
    // Neither `exit.json` nor the database can take the end now; the supervisor holds it.
    env.kill_daemon();
    assert!(!env.path().join("runs").join(&id).join("exit.json").exists());
    Tmpfs::free(&filler);

    assert_eq!(env.run(&["wait", &id]).status.code(), Some(3));
    let run = env.get(&id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
}

#[test]
fn an_exit_during_a_full_disk_is_stored_once_space_returns() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let (env, _job, id, filler) = exit_while_full(&fs);
    Tmpfs::free(&filler);
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(3));
    assert_eq!(env.get(&id)["exit_code"], 3);
}

#[test]
fn a_run_refused_on_a_full_disk_leaves_no_folder() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let env = fs.env();
    env.ok(&["daemon", "start"]);
    let before = std::fs::read_dir(env.path().join("runs"))
        .expect("runs")
        .count();
    let filler = fs.fill();
    let out = env.run(&["run", "--", "true"]);
    assert!(!out.status.success(), "a run on a full disk fails");
    let after = std::fs::read_dir(env.path().join("runs"))
        .expect("runs")
        .count();
    assert_eq!(before, after, "no empty run folder is left behind");
    Tmpfs::free(&filler);
}

#[test]
fn state_files_are_private_but_jobs_keep_the_users_umask() {
    let env = Env::new();
    let job = Job::new();
    let id = start_in(&env, &job, "echo hi; touch made");
    assert_eq!(env.run(&["wait", &id]).status.code(), Some(0));
    for file in common::walk(env.path()) {
        let mode = std::fs::symlink_metadata(&file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o}", file.display(), mode & 0o777);
    }
    let umask = std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
        .expect("umask");
    let made = std::fs::metadata(job.dir.path().join("made")).expect("the job's file");
    assert_eq!(made.permissions().mode() & 0o777, 0o666 & !umask);
}

#[test]
fn an_orphaned_job_of_a_lost_run_can_be_stopped() {
    let env = Env::new();
    let id = env.start(&["sh", "-c", "trap '' HUP; while true; do sleep 0.05; done"]);
    wait_until("the run to be running", || env.status_of(&id) == "running");
    let pid = env.get(&id)["pid"].as_i64().expect("pid") as i32;
    let supervisor = parent_of(pid);
    common::signal(supervisor, rustix::process::Signal::KILL);
    wait_until("the run to be lost", || env.status_of(&id) == "lost");
    assert!(alive(pid), "the job ignores SIGHUP and lives on");

    let out = env.run(&["stop", &id]);
    assert!(
        out.status.success(),
        "stop works on a lost run's job: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the orphan to end", || !alive(pid));
    wait_until("the run to say so", || {
        env.get(&id)["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("was stopped"))
    });
    let again = env.run(&["stop", &id]);
    assert!(!again.status.success(), "nothing left to stop");
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    rest.split_whitespace()
        .nth(1)
        .expect("ppid")
        .parse()
        .expect("number")
}

/// Starts a run with `env` through the protocol and returns its failure reason.
fn launch_failure(env: &Env, vars: Value) -> String {
    let mut conn = env.connect();
    let reply = conn.call("run.start", json!({"command": ["true"], "env": vars}));
    let id = reply["result"]["id"]
        .as_str()
        .expect("a run id")
        .to_string();
    wait_until("the run to end", || {
        let status = env.status_of(&id);
        status != "launching" && status != "running"
    });
    let run = env.get(&id);
    assert_eq!(run["status"], "failed");
    run["reason"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_argument_list_too_long_is_a_launch_error() {
    let env = Env::new();
    let reason = launch_failure(&env, json!([["BIG", "x".repeat(200 * 1024)]]));
    assert!(
        reason.contains("argument list too long") && reason.contains("BIG"),
        "the reason names the variable: {reason}"
    );
    // Each under the limit for one, together over the limit for all (6 MiB at most).
    let many: Vec<Value> = (0..60)
        .map(|i| json!([format!("V{i}"), "x".repeat(120 * 1024)]))
        .collect();
    let reason = launch_failure(&env, Value::Array(many));
    assert!(
        reason.contains("argument list too long") && reason.contains("its environment take"),
        "the reason says what is too long: {reason}"
    );
}
