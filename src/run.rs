//! Runs: one command in a PTY here or as a Slurm job, with its status, exit code and log.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a run is in its life.
///
/// `queued → launching → running → finished | failed | stopped`, or `lost` when its supervisor
/// vanished without recording how the job ended (a reboot, say). A run on Slurm goes from
/// `queued` (submitted, pending in Slurm's queue) straight to `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, waiting for its turn: in reagent's queue, or in Slurm's for a run on Slurm.
    Queued,
    /// Its supervisor is starting the command.
    Launching,
    /// The command runs.
    Running,
    /// Exited with code 0.
    Finished,
    /// Non-zero exit, a signal, or a launch error.
    Failed,
    /// Ended after a user's stop request.
    Stopped,
    /// Its supervisor disappeared; how the job ended is unknown.
    Lost,
}

impl RunStatus {
    /// True once the run can no longer change.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finished | Self::Failed | Self::Stopped | Self::Lost
        )
    }

    /// The lowercase name used on the wire, in the database and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Launching => "launching",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Lost => "lost",
        }
    }

    /// Parses [`RunStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Launching,
            Self::Running,
            Self::Finished,
            Self::Failed,
            Self::Stopped,
            Self::Lost,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client asks for when it starts a run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// A name to find the run by; must not be taken by another run.
    #[serde(default)]
    pub name: Option<String>,
    /// Program and arguments; the program is looked up in `PATH`.
    pub command: Vec<String>,
    /// Working directory; the client's when started from the CLI.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment. Values go to the job only: they are never echoed back to clients.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The submitting client's environment, which the job starts from (as with pueue): a job
    /// sees what the user's shell had, never what the daemon inherited (its provider keys and
    /// webhook URLs). `None` from clients that send none, such as scripts speaking JSON-RPC:
    /// the job then gets a minimal environment from the daemon (`PATH`, `HOME`, `USER`,
    /// `LANG`). Either way the variables the daemon reads secrets from are removed unless
    /// `pass_env` names them. Never echoed back, stored only in the run's private spec file.
    #[serde(default)]
    pub client_env: Option<Vec<(String, String)>>,
    /// Variables the daemon reads secrets from that this job may have all the same
    /// (`--pass-env NAME`), from the environment it starts from.
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// PTY size as (cols, rows); the config's default when absent.
    #[serde(default)]
    pub size: Option<(u16, u16)>,
    /// The metrics file the job writes (`REAGENT_METRICS_FILE`), relative to `cwd`;
    /// `metrics.jsonl` in the run's folder when absent.
    #[serde(default)]
    pub metrics: Option<PathBuf>,
    /// Alert rules for this run on top of the config's, as `METRIC OP VALUE` (`loss > 5`).
    #[serde(default)]
    pub alerts: Vec<String>,
    /// The chat session whose agent is handed this run's alerts (`--agent-session`); runs the
    /// agent starts carry its own session.
    #[serde(default)]
    pub agent_session: Option<String>,
    /// Run it on Slurm, with these requests (`--on slurm`); on this machine when absent.
    #[serde(default)]
    pub slurm: Option<crate::slurm::SlurmSpec>,
}

/// A run as every client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Short unique id (8 hex digits).
    pub id: String,
    /// The user's name for it, if any.
    pub name: Option<String>,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Names of the extra environment variables (values stay in the daemon).
    pub env_keys: Vec<String>,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Exit code, once exited normally.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// Why it failed or was lost, in words.
    pub reason: Option<String>,
    /// The job's pid while it runs.
    pub pid: Option<u32>,
    /// PTY width.
    pub cols: u16,
    /// PTY height.
    pub rows: u16,
    /// When it was submitted (Unix ms).
    pub created_at: i64,
    /// When the job started (Unix ms).
    pub started_at: Option<i64>,
    /// When it ended (Unix ms).
    pub ended_at: Option<i64>,
    /// The log file on the daemon's machine.
    pub log_path: PathBuf,
    /// Weights & Biases, once the job's output mentioned its run directory or page.
    #[serde(default)]
    pub wandb: Option<crate::metrics::WandbInfo>,
    /// Output the job printed that could not be written to its log (a full disk, say). The
    /// job itself never waits for the disk; what was lost is counted and said here, in the
    /// log (a marker line where the gap is) and as an alert.
    #[serde(default)]
    pub lost_output: Option<OutputLoss>,
    /// The chat session whose agent answers this run's alerts: the one that started it, or
    /// the one named with `--agent-session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_session: Option<String>,
    /// Where it executes: here (`local`) or as a Slurm job.
    #[serde(default)]
    pub executor: crate::slurm::Executor,
}

/// What a run's supervisor could not write to the run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLoss {
    /// Bytes lost over the run's whole life.
    pub bytes: u64,
    /// How many separate gaps those bytes make.
    pub gaps: u32,
    /// When the latest gap began (Unix ms).
    pub at_ms: i64,
    /// Why the latest gap happened (`disk full`, or the system's error text).
    pub error: String,
    /// True while output is being lost now; false once logging resumed (or the run ended).
    pub ongoing: bool,
}

impl OutputLoss {
    /// One line for listings, alerts and reasons: `lost 12,288 bytes of output at 14:02:11
    /// UTC: disk full`.
    pub fn describe(&self) -> String {
        let bytes = thousands(self.bytes);
        let at = crate::time::utc_time(self.at_ms);
        let error = &self.error;
        match (self.ongoing, self.gaps) {
            (true, _) => format!("losing output since {at}: {error} ({bytes} bytes so far)"),
            (false, 0 | 1) => format!("lost {bytes} bytes of output at {at}: {error}"),
            (false, gaps) => {
                format!("lost {bytes} bytes of output in {gaps} gaps, the last at {at}: {error}")
            }
        }
    }
}

/// `12288` as `12,288`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl RunInfo {
    /// The name if set, else the id: what listings and titles show.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// The command as one shell-like line, for display.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }

    /// Milliseconds the job ran (or has run so far, given `now`).
    pub fn runtime_ms(&self, now: i64) -> Option<i64> {
        self.started_at
            .map(|start| self.ended_at.unwrap_or(now) - start)
    }

    /// The exit code a script should see for this run: the job's own code, 128 + signal for a
    /// signal (as shells do), 1 for other failures, 0 while not ended.
    pub fn exit_status(&self) -> i32 {
        match (self.exit_code, self.signal, self.status) {
            (Some(code), _, _) => code,
            (None, Some(signal), _) => 128 + signal,
            (None, None, RunStatus::Finished) => 0,
            (None, None, status) if status.is_terminal() => 1,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in [RunStatus::Queued, RunStatus::Running, RunStatus::Lost] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        assert_eq!(RunStatus::parse("exploded"), None);
    }

    #[test]
    fn output_loss_reads_as_a_sentence() {
        let mut loss = OutputLoss {
            bytes: 12_288,
            gaps: 1,
            at_ms: 50_531_000,
            error: "disk full".into(),
            ongoing: false,
        };
        assert_eq!(
            loss.describe(),
            "lost 12,288 bytes of output at 14:02:11 UTC: disk full"
        );
        loss.gaps = 3;
        loss.bytes = 1_234_567;
        assert_eq!(
            loss.describe(),
            "lost 1,234,567 bytes of output in 3 gaps, the last at 14:02:11 UTC: disk full"
        );
        loss.ongoing = true;
        assert!(
            loss.describe()
                .starts_with("losing output since 14:02:11 UTC")
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
