//! Where reagent keeps its state.
//!
//! `REAGENT_DIR`, when set, holds everything (socket, database, logs, run folders), which keeps
//! tests hermetic and lets several daemons run side by side. Otherwise the platform directories
//! apply: the state directory for the database, logs and runs, the runtime directory for the
//! socket. `REAGENT_CONFIG` names the config file.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

use crate::{Error, Result};

/// Environment variable that moves all state into one folder.
pub const ENV_DIR: &str = "REAGENT_DIR";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "REAGENT_CONFIG";

/// Every path reagent uses, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Folder of the socket (kept 0700).
    pub runtime_dir: PathBuf,
    /// Folder of the database, logs and runs.
    pub state_dir: PathBuf,
    /// The config file (may not exist).
    pub config_file: PathBuf,
}

impl Paths {
    /// Resolves paths from the environment and the platform conventions.
    pub fn from_env() -> Result<Self> {
        let config_override = std::env::var_os(ENV_CONFIG).map(PathBuf::from);
        if let Some(dir) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
            let dir = absolute(Path::new(&dir));
            let config_file = config_override.unwrap_or_else(|| dir.join("config.toml"));
            return Ok(Self::in_dir(&dir, config_file));
        }
        let dirs = ProjectDirs::from("", "", "reagent").ok_or(Error::NoHome)?;
        let state_dir = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf();
        let runtime_dir = match dirs.runtime_dir() {
            Some(dir) => dir.to_path_buf(),
            None => std::env::temp_dir().join(format!("reagent-{}", rustix::process::getuid())),
        };
        let config_file = config_override.unwrap_or_else(|| dirs.config_dir().join("config.toml"));
        Ok(Self {
            runtime_dir,
            state_dir,
            config_file,
        })
    }

    /// All state in one folder, as with `REAGENT_DIR`.
    pub fn in_dir(dir: &Path, config_file: PathBuf) -> Self {
        Self {
            runtime_dir: dir.to_path_buf(),
            state_dir: dir.to_path_buf(),
            config_file,
        }
    }

    /// The daemon's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("reagentd.sock")
    }

    /// The lock file that keeps one daemon per state directory.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("reagentd.lock")
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("reagent.db")
    }

    /// The daemon's rotating log files.
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// The folder holding one folder per run.
    pub fn runs_dir(&self) -> PathBuf {
        self.state_dir.join("runs")
    }

    /// One run's folder: its log, supervisor socket and exit record.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(run_id)
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_folder_holds_everything() {
        let paths = Paths::in_dir(Path::new("/x"), PathBuf::from("/x/config.toml"));
        assert_eq!(paths.socket(), Path::new("/x/reagentd.sock"));
        assert_eq!(paths.database(), Path::new("/x/reagent.db"));
        assert_eq!(paths.run_dir("ab12"), Path::new("/x/runs/ab12"));
    }
}
