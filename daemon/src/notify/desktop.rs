//! Desktop notifications through `notify-send` (or the configured program), when the daemon's
//! PATH has it; a machine without one (a server) simply has no desktop sink.

use std::path::PathBuf;
use std::time::Duration;

use reagent::config::notify::DesktopConfig;

use super::Notice;

/// The program that shows a notification.
pub struct Desktop {
    program: PathBuf,
}

impl Desktop {
    /// Finds the program on PATH (or as given, when it names a path); `Err` when absent.
    pub fn from_config(config: &DesktopConfig) -> Result<Self, String> {
        find_program(&config.command)
            .map(|program| Self { program })
            .ok_or_else(|| format!("`{}` is not on the daemon's PATH", config.command))
    }

    /// Runs `PROGRAM TITLE BODY`; a non-zero exit or a hang (10 s) is an error.
    pub async fn send(&self, notice: &Notice) -> Result<(), String> {
        let mut child = tokio::process::Command::new(&self.program)
            .arg(&notice.title)
            .arg(&notice.body)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", self.program.display()))?;
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("{} {status}", self.program.display())),
            Ok(Err(err)) => Err(format!("{}: {err}", self.program.display())),
            Err(_) => Err(format!("{} did not exit in 10 s", self.program.display())),
        }
    }
}

/// `command` itself when it contains a slash, else the first executable of that name on PATH.
fn find_program(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |path: &PathBuf| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        return Some(PathBuf::from(command)).filter(executable);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(executable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_or_not_at_all() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("surely-no-such-notifier").is_none());
        let config = DesktopConfig {
            command: "surely-no-such-notifier".into(),
        };
        let err = Desktop::from_config(&config).err().unwrap_or_default();
        assert!(err.contains("not on the daemon's PATH"), "{err}");
    }
}
