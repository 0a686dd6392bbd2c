//! How a client reaches the daemon: its local socket, or a remote machine's through
//! `ssh HOST reagent proxy` (so the TUI renders here and only the protocol crosses the wire).

use std::process::Stdio;

use tokio::io::AsyncReadExt as _;

use crate::client::{Client, Notifications};
use crate::paths::Paths;
use crate::{Error, Result};

/// Environment variable naming the ssh program (tests point it at a stand-in).
pub const ENV_SSH: &str = "REAGENT_SSH";

/// Where the daemon is.
#[derive(Debug, Clone)]
pub enum Transport {
    /// This machine's daemon.
    Local(Paths),
    /// The daemon on `HOST`, reached with `ssh HOST reagent proxy`.
    Remote(String),
}

impl Transport {
    /// This machine's daemon, or `host`'s when given.
    pub fn new(remote: Option<String>) -> Result<Self> {
        match remote {
            Some(host) => Ok(Self::Remote(host)),
            None => Ok(Self::Local(Paths::from_env()?)),
        }
    }

    /// Connects, starting the daemon when none runs (remotely, `reagent proxy` does that).
    pub async fn connect(&self) -> Result<(Client, Notifications)> {
        match self {
            Self::Local(paths) => Client::connect_or_start(paths).await,
            Self::Remote(host) => connect_remote(host).await,
        }
    }

    /// Connects to a daemon that should already run, without starting one: what a client
    /// does after losing its daemon (someone may have stopped it on purpose).
    pub async fn reconnect(&self) -> Result<(Client, Notifications)> {
        match self {
            Self::Local(paths) => Client::connect(&paths.socket()).await,
            Self::Remote(host) => connect_remote(host).await,
        }
    }

    /// The environment a client sends with a new run (`RunSpec::client_env`): this
    /// process's own when the daemon is on this machine, so the job runs as if started from
    /// this shell; none to a remote daemon, whose machine has paths of its own (its jobs get
    /// a minimal environment there).
    pub fn run_env(&self) -> Option<Vec<(String, String)>> {
        match self {
            Self::Local(_) => Some(process_env()),
            Self::Remote(_) => None,
        }
    }

    /// Where this leads, for messages: `local` or the host name.
    pub fn describe(&self) -> &str {
        match self {
            Self::Local(_) => "local",
            Self::Remote(host) => host,
        }
    }
}

/// This process's environment as it can travel in JSON: variables whose name or value is not
/// UTF-8 are left out.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

async fn connect_remote(host: &str) -> Result<(Client, Notifications)> {
    let ssh = std::env::var(ENV_SSH).unwrap_or_else(|_| "ssh".into());
    let mut child = tokio::process::Command::new(&ssh)
        .args([host, "reagent", "proxy"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io("run", &ssh))?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::Protocol(format!("{ssh} gave no pipes")));
    };
    // ssh's own messages would tear a full-screen client apart: keep them for errors instead.
    let host = host.to_string();
    tokio::spawn(async move {
        let mut said = Vec::new();
        let _ = stderr.read_to_end(&mut said).await;
        let status = child.wait().await;
        let said = String::from_utf8_lossy(&said);
        if !said.trim().is_empty() || status.as_ref().is_ok_and(|s| !s.success()) {
            remember_remote_error(&host, said.trim(), status.ok());
        }
    });
    Ok(Client::from_stream(stdout, stdin))
}

/// Remembers why the last remote connection ended, for [`last_remote_error`].
fn remember_remote_error(host: &str, said: &str, status: Option<std::process::ExitStatus>) {
    let status = status.map_or(String::new(), |s| format!(" ({s})"));
    let message = format!("ssh {host}{status}: {said}");
    *LAST_REMOTE_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
}

static LAST_REMOTE_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// What ssh last said when a remote connection ended badly, if anything.
pub fn last_remote_error() -> Option<String> {
    LAST_REMOTE_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
