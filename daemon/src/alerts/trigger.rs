//! A run's `.alert_trigger` file: a job raises an alert by writing its text there.
//!
//! The file is the job's to make, so it is opened as something that may be hostile. It is
//! checked on every wake of the one metrics thread that serves every run, so opening it must
//! never block: `O_NONBLOCK` (a FIFO with no writer would otherwise hold the thread, and with
//! it every run's metrics, for good). It must be the job's own text: `O_NOFOLLOW` (a symlink
//! to `/etc/shadow` would otherwise send that file out as an alert, to Slack included), and
//! only a regular file is read (checked on the opened file, so nothing can swap it between
//! the check and the read). Anything else is left alone and said once per run in the log,
//! not on every wake.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reagent::alert::{AlertRule, Severity};
use rustix::fs::{Mode, OFlags};

use super::rules::Draft;
use crate::daemon::Daemon;

/// The file a job writes in its working directory to raise an alert with the file's text.
pub const TRIGGER_FILE: &str = ".alert_trigger";
/// The most of a trigger file's text an alert carries.
const TRIGGER_BYTES: u64 = 4096;
/// How long an empty trigger file is given to get its text.
const TRIGGER_SETTLE: Duration = Duration::from_secs(1);

/// One run's trigger file and whether its log line about an unusable one was written.
pub struct Trigger {
    path: PathBuf,
    warned: bool,
}

/// What is at the trigger path now.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Nothing: the usual case.
    Nothing,
    /// An empty regular file written a moment ago: the job may still be writing it.
    Settling,
    /// A regular file with this text (empty when the job wrote none).
    Text(String),
    /// Something that is not a regular file of the job's, or cannot be read: why.
    Unusable(String),
}

impl Trigger {
    /// The trigger file of a run working in `cwd`.
    pub fn new(cwd: &Path) -> Self {
        Self {
            path: cwd.join(TRIGGER_FILE),
            warned: false,
        }
    }

    /// Raises an alert with the file's text and removes the file, if there is one; called on
    /// each wake of the metrics thread, so it never blocks and never repeats a warning.
    pub fn check(&mut self, daemon: &Daemon, run: &str) {
        let text = match look(&self.path) {
            Found::Nothing | Found::Settling => return,
            Found::Unusable(why) => return self.warn_once(run, &why),
            Found::Text(text) => text,
        };
        if let Err(err) = std::fs::remove_file(&self.path) {
            // Left in place it would be raised again on the next wake.
            return self.warn_once(run, &format!("cannot remove it ({err}); not raising it"));
        }
        let message = if text.trim().is_empty() {
            "the job raised an alert (its trigger file was empty)".to_string()
        } else {
            text.trim().to_string()
        };
        let draft = Draft {
            rule: AlertRule::Trigger,
            subject: None,
            severity: Severity::Warning,
            message,
            step: None,
        };
        super::raise(daemon, run, draft);
    }

    fn warn_once(&mut self, run: &str, why: &str) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(run = %run, "ignoring {}: {why}", self.path.display());
        }
    }
}

/// Opens the trigger path without following a symlink or waiting on a FIFO, and reads it
/// only if it is a regular file.
fn look(path: &Path) -> Found {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Found::Nothing,
        Err(rustix::io::Errno::LOOP) => {
            return Found::Unusable(
                "it is a symbolic link; write the alert's text into a file".into(),
            );
        }
        Err(err) => return Found::Unusable(std::io::Error::from(err).to_string()),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(err) => return Found::Unusable(err.to_string()),
    };
    if !meta.file_type().is_file() {
        return Found::Unusable(format!(
            "it is {}, not a file holding the alert's text",
            kind(&meta)
        ));
    }
    let mut bytes = Vec::new();
    if let Err(err) = file.take(TRIGGER_BYTES).read_to_end(&mut bytes) {
        return Found::Unusable(err.to_string());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) && fresh(&meta) {
        return Found::Settling;
    }
    Found::Text(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether the file was modified less than [`TRIGGER_SETTLE`] ago (or in the future).
fn fresh(meta: &std::fs::Metadata) -> bool {
    meta.modified()
        .is_ok_and(|at| at.elapsed().unwrap_or_default() < TRIGGER_SETTLE)
}

/// What a non-regular file is, in words.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// `look`, on another thread, failing the test if it blocks.
    fn look_within_a_second(path: &Path) -> Found {
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(look(&path));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("looking at the trigger file blocked")
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRIGGER_FILE);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let found = look_within_a_second(&path);
        assert!(
            matches!(&found, Found::Unusable(why) if why.contains("FIFO")),
            "{found:?}"
        );
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root:$6$hash").unwrap();
        let path = dir.path().join(TRIGGER_FILE);
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        let found = look_within_a_second(&path);
        assert!(
            matches!(&found, Found::Unusable(why) if why.contains("symbolic link")),
            "{found:?}"
        );
    }

    #[test]
    fn a_directory_is_refused_and_a_file_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRIGGER_FILE);
        assert_eq!(look(&path), Found::Nothing);
        std::fs::create_dir(&path).unwrap();
        let found = look(&path);
        assert!(
            matches!(&found, Found::Unusable(why) if why.contains("directory")),
            "{found:?}"
        );
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            look(&path),
            Found::Settling,
            "an empty file just written may be growing"
        );
        std::fs::write(&path, "loader stuck\n").unwrap();
        assert_eq!(look(&path), Found::Text("loader stuck\n".into()));
        std::fs::write(&path, "x".repeat(10_000)).unwrap();
        assert_eq!(look(&path), Found::Text("x".repeat(4096)));
    }
}
