//! Runs on Slurm: where a run executes ([`Executor`]), and what a run asks of Slurm
//! ([`SlurmSpec`]). Slurm is the engine; reagent writes a batch script, submits it and
//! follows the job, so everything else about a run (its log, metrics, alerts, sweeps) is the
//! same wherever it runs.

use serde::{Deserialize, Serialize};

/// Where a run executes. The run's lifecycle, log, metrics and alerts are the same for every
/// executor; only starting, following and stopping the job differ.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Executor {
    /// On the daemon's machine, in a PTY under a supervisor process: the default.
    #[default]
    Local,
    /// A batch job on a Slurm cluster, its output file the run's log.
    Slurm(SlurmJob),
}

/// A run's Slurm job, as far as reagent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlurmJob {
    /// The job id once `sbatch` accepted the job (`1234`, or `1234_5` for a sweep's task in
    /// a job array): what `squeue`, `scancel` and `sacct` take.
    #[serde(default)]
    pub job: Option<String>,
    /// The cluster's name (Slurm's `ClusterName`), when known.
    #[serde(default)]
    pub cluster: Option<String>,
    /// When a stop was asked for, the moment (Unix ms) its grace ends and the job is
    /// cancelled outright if it still runs. Kept with the run, so the grace holds across a
    /// daemon restart, and so a job that then ends reads as stopped, not failed.
    #[serde(default)]
    pub stop_by: Option<i64>,
}

impl Executor {
    /// Where the run executes, for listings: `local`, `slurm` (not submitted yet),
    /// `slurm:1234` or `slurm:1234@cluster`.
    pub fn describe(&self) -> String {
        match self {
            Self::Local => "local".into(),
            Self::Slurm(slurm) => match (&slurm.job, &slurm.cluster) {
                (Some(job), Some(cluster)) => format!("slurm:{job}@{cluster}"),
                (Some(job), None) => format!("slurm:{job}"),
                (None, _) => "slurm".into(),
            },
        }
    }

    /// The Slurm job, when the run executes on Slurm.
    pub fn slurm(&self) -> Option<&SlurmJob> {
        match self {
            Self::Slurm(slurm) => Some(slurm),
            Self::Local => None,
        }
    }
}

/// What a run asks of Slurm (`reagent run --on slurm …`). Unset fields fall back to the
/// config's `[slurm]` defaults, then to the cluster's own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSpec {
    /// The partition (`--partition`).
    #[serde(default)]
    pub partition: Option<String>,
    /// GPUs for the job (`--gpus`).
    #[serde(default)]
    pub gpus: Option<u32>,
    /// CPUs for its one task (`--cpus-per-task`).
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Memory in Slurm's syntax (`--mem`, e.g. `32G`).
    #[serde(default)]
    pub mem: Option<String>,
    /// The time limit in Slurm's syntax (`--time`, e.g. `4:00:00`).
    #[serde(default)]
    pub time: Option<String>,
    /// The account to charge (`--account`).
    #[serde(default)]
    pub account: Option<String>,
    /// More `sbatch` options, each as one `#SBATCH` line (`--qos=high`), after the config's.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_says_where_it_executes() {
        assert_eq!(Executor::Local.describe(), "local");
        let mut job = SlurmJob::default();
        assert_eq!(Executor::Slurm(job.clone()).describe(), "slurm");
        job.job = Some("1234".into());
        assert_eq!(Executor::Slurm(job.clone()).describe(), "slurm:1234");
        job.cluster = Some("tiger".into());
        assert_eq!(Executor::Slurm(job).describe(), "slurm:1234@tiger");
    }

    #[test]
    fn the_executor_reads_as_tagged_json_and_defaults_to_local() {
        let json = serde_json::json!({"kind": "slurm", "job": "7", "cluster": "c"});
        let executor: Executor = serde_json::from_value(json).unwrap();
        assert_eq!(executor.slurm().and_then(|s| s.job.as_deref()), Some("7"));
        let local = serde_json::to_value(Executor::Local).unwrap();
        assert_eq!(local, serde_json::json!({"kind": "local"}));
    }
}
