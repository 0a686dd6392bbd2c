//! Errors of the shared library. Each variant carries what a user needs to fix the cause.

use std::path::PathBuf;

use crate::protocol::RpcError;

/// Shorthand for results in this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the shared library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or socket operation failed on a known path.
    // The OS error is part of the message and deliberately not a `source`: `{:#}` prints a
    // chain of sources, and it printed this one twice ("Is a directory (os error 21): Is a
    // directory (os error 21)").
    #[error("cannot {op} {}: {error}", path.display())]
    Io {
        /// What we tried to do ("read", "create", "connect to" …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The config file exists but does not parse.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// No usable directory for state could be found.
    #[error("cannot find a home directory for reagent's state; set REAGENT_DIR")]
    NoHome,
    /// The daemon answered a request with an error.
    // Transparent: the daemon's message is the whole story, and `{:#}` must not print it twice.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The connection carried something that is not our protocol.
    #[error("daemon connection: {0}")]
    Protocol(String),
    /// The connection broke before the reply came: the daemon (or ssh) went away. Kept apart
    /// from [`Error::Protocol`] because a client may reconnect and ask again (`reagent wait`
    /// does), and because the CLI exits with its own code for it.
    #[error("lost the daemon: {0}")]
    Disconnected(String),
    /// The daemon would not start and said why (a broken config, say): a cause to fix, told
    /// by the daemon itself, rather than a daemon that could not be reached.
    #[error("{0}")]
    DaemonRefused(String),
    /// The daemon speaks another protocol version.
    #[error(
        "the daemon speaks protocol {daemon}, this client {client}: restart the daemon \
         (`reagent daemon stop`, then run reagent again)"
    )]
    VersionMismatch {
        /// The daemon's version.
        daemon: u32,
        /// Ours.
        client: u32,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |error| Error::Io { op, path, error }
    }
}
