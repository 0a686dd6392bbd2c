//! `[slurm]`: defaults for runs on a Slurm cluster (`reagent run --on slurm`), and how the
//! daemon follows their jobs.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// `[slurm]`: what every run on Slurm asks for unless it says otherwise, and the polling.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    /// The partition of runs that name none; the cluster's default when unset.
    pub partition: Option<String>,
    /// The account of runs that name none; the user's default when unset.
    pub account: Option<String>,
    /// More `sbatch` options for every run on Slurm (`["--qos=normal"]`), each one
    /// `#SBATCH` line, before the run's own `--sbatch-arg`s.
    pub sbatch_args: Vec<String>,
    /// Seconds between two looks at the queue while nothing changes: one `squeue` call for
    /// every Slurm run the daemon follows. It looks sooner after a submission, a stop or a
    /// change, and waits longer (up to 2 minutes) while the controller does not answer.
    #[serde(deserialize_with = "seconds")]
    pub poll_secs: f64,
    /// A folder on the filesystem the cluster's nodes share, for job scripts, output and
    /// metrics files (each run in `DIR/<run id>`); the run's own folder when unset, which
    /// suits a state folder in a home the nodes see.
    pub dir: Option<PathBuf>,
    /// Seconds a Slurm command (`sbatch`, `squeue`, …) may take before the controller is
    /// taken not to answer.
    #[serde(deserialize_with = "seconds")]
    pub timeout_secs: f64,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            account: None,
            sbatch_args: Vec::new(),
            poll_secs: 5.0,
            dir: None,
            timeout_secs: 30.0,
        }
    }
}

/// A duration in seconds, refused unless positive and finite: a poll every 0 s would spin,
/// and an infinite timeout never says the controller is gone.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(serde::de::Error::custom(format!(
            "{secs} is not a usable number of seconds; write a positive one, e.g. 5"
        )));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn slurm_defaults_parse_and_a_bad_interval_names_its_key() {
        let text = "[slurm]\npartition = \"gpu\"\nsbatch_args = [\"--qos=high\"]\n\
                    poll_secs = 0.5\ndir = \"/scratch/me/reagent\"\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(config.slurm.partition.as_deref(), Some("gpu"));
        assert_eq!(config.slurm.sbatch_args, ["--qos=high"]);
        assert_eq!(config.slurm.poll_secs, 0.5);
        assert_eq!(config.slurm.timeout_secs, 30.0);
        for bad in ["poll_secs = 0", "timeout_secs = -1", "poll_secs = nan"] {
            let err = Config::parse(Path::new("c.toml"), &format!("[slurm]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("c.toml:2:"), "{bad}: {err}");
            assert!(err.contains("slurm."), "{bad}: {err}");
        }
    }
}
