//! One daemon per state directory: an exclusive `flock` on a lock file, held for the
//! daemon's lifetime and released by the kernel however the daemon ends (even `kill -9`).
//! The file also holds the owner's pid, for the error a second daemon prints.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use rustix::fs::{FlockOperation, flock};

/// The held lock; dropping it (or exiting) releases it.
pub struct Lock {
    _file: File,
}

/// Takes the lock, or explains who holds it.
pub fn acquire(path: &Path) -> anyhow::Result<Lock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let dir = path.parent().unwrap_or(path);
        anyhow::bail!(
            "reagentd is already running (pid {}) for {}",
            pid.trim(),
            dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reagentd.lock");
        let held = acquire(&path).unwrap();
        let err = acquire(&path).err().unwrap().to_string();
        assert!(err.contains("already running"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        acquire(&path).unwrap();
    }
}
