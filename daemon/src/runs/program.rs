//! Finding a run's program before anything is recorded: a command that cannot start is an
//! error of `reagent run` itself (exit 1, the reason), not a run that fails a moment later.
//!
//! The search follows what the supervisor's `exec` will do: a name with a `/` is a path from
//! the run's working directory; a bare name is looked up in the `PATH` of the run's own
//! environment (the client's), not the daemon's.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// `PATH` when the run's environment has none (what a shell assumes).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Checks that `program` names an executable file, as the job's `exec` would find it.
pub fn check(program: &str, cwd: &Path, env: &[(String, String)]) -> Result<(), String> {
    if program.contains('/') {
        let path = cwd.join(program);
        return match executable(&path) {
            Some(true) => Ok(()),
            Some(false) => Err(format!("`{program}` is not executable")),
            None => Err(format!("`{program}` does not exist")),
        };
    }
    let search = env
        .iter()
        .find(|(key, _)| key == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
    find(program, cwd, search).map(|_| ()).ok_or_else(|| {
        format!("`{program}` is not found in the run's PATH ({search}); give its path or fix PATH")
    })
}

/// Where a bare program name is found in `search` (a `PATH`), as `exec` would look.
pub fn find(program: &str, cwd: &Path, search: &str) -> Option<PathBuf> {
    search
        .split(':')
        .map(|dir| {
            if dir.is_empty() {
                PathBuf::from(".")
            } else {
                PathBuf::from(dir)
            }
        })
        .map(|dir| cwd.join(dir).join(program))
        .find(|path| executable(path) == Some(true))
}

/// Whether `path` is an executable file (`None`: there is no file there).
fn executable(path: &Path) -> Option<bool> {
    let meta = std::fs::metadata(path).ok()?;
    Some(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(path: &str) -> Vec<(String, String)> {
        vec![("PATH".into(), path.into())]
    }

    #[test]
    fn programs_are_found_as_exec_would_find_them() {
        let cwd = Path::new("/");
        assert_eq!(check("sh", cwd, &env("/usr/bin:/bin")), Ok(()));
        assert_eq!(check("/bin/sh", cwd, &[]), Ok(()));
        let missing = check("does-not-exist", cwd, &env("/bin")).unwrap_err();
        assert!(
            missing.contains("not found in the run's PATH (/bin)"),
            "{missing}"
        );
        assert!(
            check("./nope", cwd, &[])
                .unwrap_err()
                .contains("does not exist")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), "x").unwrap();
        let plain = check("./data", dir.path(), &[]).unwrap_err();
        assert!(plain.contains("not executable"), "{plain}");
    }
}
