//! What the daemon and a run's supervisor say to each other, and the files they share.
//!
//! A run's folder holds `spec.json` (written by the daemon before the supervisor starts),
//! `output.log` (appended by the supervisor, read by the daemon), `sup.sock` (the supervisor's
//! control socket) and `exit.json` (written atomically by the supervisor once the job ended).
//! The log and the exit record are the source of truth: a daemon that was down meanwhile
//! catches up from them, so the socket only carries control and wake-ups.
//! Both directions are JSON, one message per line.

use std::path::PathBuf;

use reagent::run::OutputLoss;
use serde::{Deserialize, Serialize};

/// File names inside a run's folder.
pub mod files {
    /// The launch spec the daemon writes for the supervisor (0600: it holds the job's env).
    pub const SPEC: &str = "spec.json";
    /// Everything the job printed, byte for byte.
    pub const LOG: &str = "output.log";
    /// The supervisor's control socket.
    pub const SOCKET: &str = "sup.sock";
    /// How the job ended; present once the job has ended.
    pub const EXIT: &str = "exit.json";
    /// The supervisor's own diagnostics (its stderr).
    pub const SUPERVISOR_LOG: &str = "supervisor.log";
}

/// How to launch the job, read by the supervisor from `spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Working directory of the job.
    pub cwd: PathBuf,
    /// The job's environment (see `runs/env.rs`).
    pub env: Vec<(String, String)>,
    /// True when `env` is the job's whole environment, set on an empty one. False in specs
    /// written before the daemon did so (a run queued across an upgrade): `env` then goes
    /// over a minimal environment, never over the supervisor's own, which is the daemon's
    /// with its provider keys and webhook URLs.
    #[serde(default)]
    pub complete_env: bool,
    /// PTY width.
    pub cols: u16,
    /// PTY height.
    pub rows: u16,
    /// The file-creation mask the job starts with: the daemon's own is 077 (its files are
    /// private), which must not leak into the files a job creates.
    #[serde(default)]
    pub umask: Option<u32>,
}

/// The one line the supervisor prints on stdout once the launch is decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ready {
    /// The job runs; the control socket accepts connections.
    Started {
        /// The job's pid, which is also its process group id.
        pid: u32,
    },
    /// The job could not be started; `exit.json` records the same error.
    Failed {
        /// Why, in words a user can act on.
        error: String,
    },
}

/// How a job ended: the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit code when the job exited normally.
    pub exit_code: Option<i32>,
    /// The signal number when a signal ended the job.
    pub signal: Option<i32>,
    /// True when the job ended after a stop request.
    pub stopped: bool,
    /// A launch error (the job never ran).
    pub error: Option<String>,
    /// When the supervisor saw the job end, in Unix milliseconds.
    pub ended_at_ms: i64,
    /// Output that could not be written to the log over the run's life.
    #[serde(default)]
    pub lost: Option<OutputLoss>,
}

/// Supervisor → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SupervisorMsg {
    /// First message on every connection.
    Hello {
        /// The job's pid (and process group).
        pid: u32,
        /// Bytes in `output.log` so far.
        written: u64,
    },
    /// `output.log` has grown to `written` bytes. Coalesced: a slow reader sees fewer, larger steps.
    Written {
        /// Bytes in `output.log` so far.
        written: u64,
    },
    /// Output is being lost (a gap began), or logging resumed after a gap (`ongoing` false).
    Lost {
        /// The totals so far.
        loss: OutputLoss,
    },
    /// The job ended and the log is complete. `exit.json` holds the same record, unless it
    /// could not be written: then the supervisor waits for [`ControlMsg::Settled`] before it
    /// exits, so it never exits holding the only copy.
    Exited {
        /// Final size of `output.log`.
        written: u64,
        /// How it ended.
        record: ExitRecord,
    },
}

/// Daemon → supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMsg {
    /// Bytes for the job's terminal input, base64-encoded.
    Input {
        /// Base64 of the bytes.
        data: String,
    },
    /// New PTY size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// SIGTERM to the job's process group now, SIGKILL after `grace_ms` if it still runs.
    Stop {
        /// Milliseconds between SIGTERM and SIGKILL.
        grace_ms: u64,
    },
    /// The daemon has stored the run's end (from `Exited`): the supervisor may exit.
    Settled,
}
