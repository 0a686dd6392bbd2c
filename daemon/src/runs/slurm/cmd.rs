//! Running Slurm's commands (`sbatch`, `squeue`, `scontrol`, `scancel`, `sacct`): found on
//! the daemon's `PATH`, given a time limit, their failures put in words a user can act on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reagent::config::SlurmConfig;

use crate::runs::program;

/// What a Slurm command printed, once it ended within its time.
#[derive(Debug)]
pub struct Output {
    /// Whether it exited 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error, trimmed: Slurm's own error text.
    pub stderr: String,
}

impl Output {
    /// Slurm's error text, or the exit's when it printed none.
    pub fn error(&self, program: &str) -> String {
        match self.stderr.is_empty() {
            true => format!("`{program}` failed without saying why"),
            false => self.stderr.clone(),
        }
    }
}

/// Where `program` is on the daemon's `PATH`, or why it is not usable: a machine without
/// Slurm's commands is told so, not handed a run that can never start.
pub fn find(program: &str) -> Result<PathBuf, String> {
    let search = std::env::var("PATH").unwrap_or_default();
    program::find(program, Path::new("/"), &search).ok_or_else(|| {
        format!(
            "`{program}` is not on the daemon's PATH ({search}): runs on Slurm need Slurm's \
             commands where reagentd runs (a login node), or reagentd started with them on its \
             PATH"
        )
    })
}

/// Runs `program` with `args`, killing it after the config's `timeout_secs`. `env`, when
/// given, is its whole environment (as for `sbatch`, whose environment a job inherits);
/// otherwise it gets the daemon's.
pub async fn run(
    config: &SlurmConfig,
    program: &str,
    args: &[String],
    env: Option<&[(String, String)]>,
) -> Result<Output, String> {
    let path = find(program)?;
    let mut command = tokio::process::Command::new(&path);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(env) = env {
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    let child = command
        .spawn()
        .map_err(|err| format!("cannot run {}: {err}", path.display()))?;
    let limit = Duration::from_secs_f64(config.timeout_secs);
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Ok(Err(err)) => Err(format!("cannot run {}: {err}", path.display())),
        // Dropping the future kills the child (`kill_on_drop`).
        Err(_) => Err(format!(
            "`{program}` did not answer within {} s: Slurm's controller does not answer \
             ([slurm] timeout_secs)",
            config.timeout_secs
        )),
    }
}
