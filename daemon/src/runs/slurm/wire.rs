//! What reagent writes to Slurm and reads back from it, as text: the batch script `sbatch`
//! takes, and the outputs of `sbatch --parsable`, `squeue`, `scontrol show job -o` and
//! `sacct`. Pure and IO-free, so every format is tested against lines a real Slurm printed
//! (22.05, the one-node cluster of `scripts/slurm-local.sh`); running the commands is the
//! caller's job.
//!
//! How a job is followed, and why three readers:
//! - `squeue` answers for many jobs in one call, which is what a poll wants. With
//!   `--states=all` it also lists jobs that ended, but only for `MinJobAge` after they did
//!   (300 s by default), and it has no exit code.
//! - `scontrol show job -o` has the exit code and signal, for the same window.
//! - `sacct` remembers jobs for good, but only where the cluster keeps accounting
//!   (`slurmdbd`); without it, it fails with `Slurm accounting storage is disabled`.

use std::path::{Path, PathBuf};

/// One job for `sbatch`: what [`script`] turns into a batch script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJob {
    /// The job's name in `squeue` (`--job-name`). No whitespace: `scontrol show job -o`
    /// prints it unquoted among the fields [`parse_scontrol_job`] reads.
    pub name: String,
    /// Working directory of the job (`--chdir`), on the node that runs it.
    pub cwd: PathBuf,
    /// Where the job's stdout and stderr go (one file: without `--error` Slurm writes both to
    /// `--output`). It is a Slurm filename pattern (see [`output_pattern`]): `%j` is the job
    /// id, `%A` an array's id and `%a` a task's index, so an array's tasks each get their
    /// own file with `%a` in it; a literal `%` is written `%%`, and a backslash anywhere
    /// turns the patterns off.
    pub output: String,
    /// The partition (`--partition`); the cluster's default one when `None`.
    pub partition: Option<String>,
    /// GPUs for the whole job (`--gpus`).
    pub gpus: Option<u32>,
    /// CPUs for its one task (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// Memory per node in Slurm's syntax (`--mem`, e.g. `32G`).
    pub mem: Option<String>,
    /// The time limit in Slurm's syntax (`--time`, e.g. `4:00:00` or `2-00:00:00`).
    pub time: Option<String>,
    /// The account to charge (`--account`).
    pub account: Option<String>,
    /// More `sbatch` options, each written as is on its own `#SBATCH` line: sbatch splits
    /// such a line at whitespace, reads quotes and backslashes itself, and takes an unquoted
    /// `#` as the start of a comment.
    pub extra: Vec<String>,
    /// What the job runs. One task makes a plain job; several make a job array
    /// (`--array=0-(N-1)`), task `i` running the `i`th command (it sees `i` in
    /// `SLURM_ARRAY_TASK_ID`).
    pub tasks: Vec<Task>,
    /// At most this many of an array's tasks at once (`%N`); no limit when `None`.
    pub parallel: Option<usize>,
}

/// One command of a batch job, with the variables it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Variables the script exports before the command, over whatever environment `sbatch`
    /// passes on (by default all of the submitter's: the caller chooses what that is).
    pub env: Vec<(String, String)>,
    /// Program and arguments, run with `exec` so the job is the program itself and Slurm's
    /// signals (a cancel, a time limit) reach it.
    pub command: Vec<String>,
}

/// The batch script for `job`: `#SBATCH` lines, then each task's `export`s and `exec` of its
/// command (for an array, inside a `case` on the task's index).
///
/// Values on `#SBATCH` lines are quoted as in the shell, which sbatch's own reader of those
/// lines understands, so a path may hold spaces and any value quotes or `#`. A line cannot
/// hold a line break, and a shell cannot hold a NUL: such values are refused, as are a name
/// that is not one word, an empty command, a variable name the shell cannot export, and a
/// job of no tasks or an array run none at once. Refusals never quote an environment value,
/// which may be a secret.
pub fn script(job: &BatchJob) -> Result<String, String> {
    let mut lines = vec!["#!/bin/sh".to_string()];
    let mut option = |flag: &str, value: &str| -> Result<(), String> {
        let value = one_line(flag, value)?;
        lines.push(format!("#SBATCH --{flag}={}", quote(value)));
        Ok(())
    };
    if job.name.is_empty() || job.name.chars().any(char::is_whitespace) {
        return Err(format!(
            "job name {:?}: a Slurm job name here is one word",
            job.name
        ));
    }
    option("job-name", &job.name)?;
    option("output", &job.output)?;
    // A requeued job's output goes after what it printed before, never over it: the run's
    // log only grows, which everything reading it counts on.
    option("open-mode", "append")?;
    option("chdir", path_text("cwd", &job.cwd)?)?;
    let words = [
        ("partition", &job.partition),
        ("mem", &job.mem),
        ("time", &job.time),
        ("account", &job.account),
    ];
    for (flag, value) in words {
        if let Some(value) = value {
            option(flag, value)?;
        }
    }
    for (flag, value) in [("gpus", job.gpus), ("cpus-per-task", job.cpus)] {
        if let Some(value) = value {
            option(flag, &value.to_string())?;
        }
    }
    let count = job.tasks.len();
    if count == 0 || job.parallel == Some(0) {
        return Err(format!("{count} tasks, {:?} at once", job.parallel));
    }
    if count > 1 {
        let limit = job.parallel.map(|p| format!("%{p}")).unwrap_or_default();
        option("array", &format!("0-{}{limit}", count - 1))?;
    }
    for extra in &job.extra {
        lines.push(format!("#SBATCH {}", one_line("an extra option", extra)?));
    }
    // sbatch reads `#SBATCH` lines only up to the first command: the tasks come after.
    if let [task] = job.tasks.as_slice() {
        lines.extend(task_lines(task)?);
    } else {
        lines.push("case \"$SLURM_ARRAY_TASK_ID\" in".into());
        for (index, task) in job.tasks.iter().enumerate() {
            lines.push(format!("{index})"));
            lines.extend(
                task_lines(task)?
                    .into_iter()
                    .map(|line| format!("    {line}")),
            );
            lines.push("    ;;".into());
        }
        lines.push("esac".into());
        lines.push("echo \"reagent: this array has no task $SLURM_ARRAY_TASK_ID\" >&2".into());
        lines.push("exit 1".into());
    }
    Ok(lines.join("\n") + "\n")
}

/// A task's `export` lines and its `exec` line.
fn task_lines(task: &Task) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for (key, value) in &task.env {
        let mut chars = key.chars();
        let first = chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
        if !first || !chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) {
            return Err(format!(
                "{key:?} is not a variable name the shell can export"
            ));
        }
        let value = no_nul(&format!("the value of {key}"), value)?;
        lines.push(format!("export {key}={}", quote(value)));
    }
    if task.command.is_empty() {
        return Err("no command to run".into());
    }
    let mut exec = "exec".to_string();
    for arg in &task.command {
        exec.push(' ');
        exec.push_str(&quote(no_nul("the command", arg)?));
    }
    lines.push(exec);
    Ok(lines)
}

/// `--output`'s value for a job writing to the file `path`, or (with `array`) for an array
/// whose task `i` writes to `path/i.log`: the path's own `%` doubled so Slurm reads it as
/// itself. A path with a backslash turns Slurm's patterns off, so it is written as is for one
/// job, and refused for an array, whose `%a` would then not be replaced.
pub fn output_pattern(path: &Path, array: bool) -> Result<String, String> {
    let text = path_text("output", path)?;
    match (text.contains('\\'), array) {
        (true, false) => Ok(text.to_string()),
        (true, true) => Err(format!(
            "{text} holds a backslash, which turns off Slurm's `%a` in output file names"
        )),
        (false, false) => Ok(text.replace('%', "%%")),
        (false, true) => Ok(format!("{}/%a.log", text.replace('%', "%%"))),
    }
}

/// `value` in single quotes for the shell (and for sbatch's `#SBATCH` reader, which quotes
/// the same way): a `'` inside closes the quote, adds an escaped `'` and reopens.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `value`, refused when it holds a NUL, which no shell script can carry.
fn no_nul<'a>(what: &str, value: &'a str) -> Result<&'a str, String> {
    if value.contains('\0') {
        return Err(format!("{what} holds a NUL byte"));
    }
    Ok(value)
}

/// `value`, refused when it would not stay on its `#SBATCH` line.
fn one_line<'a>(what: &str, value: &'a str) -> Result<&'a str, String> {
    if value.contains(['\n', '\r']) {
        return Err(format!("{what}: {value:?} holds a line break"));
    }
    no_nul(what, value)
}

/// The path as text: the script is text, and a path that is not UTF-8 would be changed by
/// writing it there.
fn path_text<'a>(what: &str, path: &'a Path) -> Result<&'a str, String> {
    path.to_str()
        .ok_or_else(|| format!("{what}: {} is not UTF-8", path.display()))
}

/// What `sbatch --parsable` says about the job it queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    /// The job id (an array's id for an array: its tasks are `ID_0`, `ID_1`, …).
    pub id: String,
    /// The cluster, which sbatch names only when it is one of several (federations,
    /// `--clusters`).
    pub cluster: Option<String>,
}

/// Reads `sbatch --parsable`'s stdout: `1234`, or `1234;cluster`.
pub fn parse_submitted(stdout: &str) -> Result<SubmittedJob, String> {
    let text = stdout.trim();
    let (id, cluster) = match text.split_once(';') {
        Some((id, cluster)) => (id, Some(cluster)),
        None => (text, None),
    };
    let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    if !digits || cluster.is_some_and(|c| c.is_empty() || c.contains(char::is_whitespace)) {
        return Err(format!("sbatch printed {text:?}, not a job id"));
    }
    Ok(SubmittedJob {
        id: id.to_string(),
        cluster: cluster.map(str::to_string),
    })
}

/// A job's state, in Slurm's words (`JOB_STATE_CODES` in squeue(1)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmState {
    /// Waiting for resources, its turn, a hold or a start time.
    Pending,
    /// Allocated, its nodes still booting.
    Configuring,
    /// Running.
    Running,
    /// Ended, some of its processes or epilogs still finishing.
    Completing,
    /// Ended with exit code 0.
    Completed,
    /// Ended with another exit code, or failed to launch.
    Failed,
    /// Cancelled (`scancel`, or an administrator).
    Cancelled,
    /// Killed at its time limit.
    Timeout,
    /// Killed for using more memory than it asked for.
    OutOfMemory,
    /// Ended because one of its nodes failed.
    NodeFail,
    /// Ended because a higher-priority job took its resources.
    Preempted,
    /// Its nodes failed to boot.
    BootFail,
    /// Ended at its deadline (`--deadline`).
    Deadline,
    /// Stopped for now, its resources released.
    Suspended,
    /// Put back in the queue to start again.
    Requeued,
    /// A state reagent does not tell apart (`REQUEUE_HOLD`, `SPECIAL_EXIT`, `STOPPED`, …),
    /// in Slurm's word.
    Other(String),
}

impl SlurmState {
    /// Reads a state as squeue, scontrol or sacct print it: the long word (`OUT_OF_MEMORY`),
    /// the short code (`OOM`), sacct's `CANCELLED by 1000` (who cancelled is dropped) or its
    /// truncated `CANCELLED+`.
    pub fn parse(text: &str) -> Self {
        let word = text.split_whitespace().next().unwrap_or_default();
        let word = word.trim_end_matches('+');
        match word.to_ascii_uppercase().as_str() {
            "PENDING" | "PD" => Self::Pending,
            "CONFIGURING" | "CF" => Self::Configuring,
            "RUNNING" | "R" => Self::Running,
            "COMPLETING" | "CG" => Self::Completing,
            "COMPLETED" | "CD" => Self::Completed,
            "FAILED" | "F" => Self::Failed,
            "CANCELLED" | "CA" => Self::Cancelled,
            "TIMEOUT" | "TO" => Self::Timeout,
            "OUT_OF_MEMORY" | "OOM" => Self::OutOfMemory,
            "NODE_FAIL" | "NF" => Self::NodeFail,
            "PREEMPTED" | "PR" => Self::Preempted,
            "BOOT_FAIL" | "BF" => Self::BootFail,
            "DEADLINE" | "DL" => Self::Deadline,
            "SUSPENDED" | "S" => Self::Suspended,
            "REQUEUED" | "RQ" => Self::Requeued,
            _ => Self::Other(word.to_string()),
        }
    }

    /// Whether the job is over for good: nothing of it runs and it will not start again.
    /// `COMPLETING` is not yet (its processes may still be stopping), and neither is a state
    /// reagent does not know: the caller keeps asking until Slurm says one it does.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::Timeout
                | Self::OutOfMemory
                | Self::NodeFail
                | Self::Preempted
                | Self::BootFail
                | Self::Deadline
        )
    }

    /// Slurm's own word for the state (`TIMEOUT`), which a run's reason quotes so the user
    /// reads what `squeue` and Slurm's documentation say.
    pub fn words(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Configuring => "CONFIGURING",
            Self::Running => "RUNNING",
            Self::Completing => "COMPLETING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Timeout => "TIMEOUT",
            Self::OutOfMemory => "OUT_OF_MEMORY",
            Self::NodeFail => "NODE_FAIL",
            Self::Preempted => "PREEMPTED",
            Self::BootFail => "BOOT_FAIL",
            Self::Deadline => "DEADLINE",
            Self::Suspended => "SUSPENDED",
            Self::Requeued => "REQUEUED",
            Self::Other(word) => word,
        }
    }
}

/// Slurm's reason, or `None` for its `None` (and `(null)`, and nothing).
fn reason(text: &str) -> Option<String> {
    let text = text.trim();
    (!matches!(text, "" | "None" | "(null)")).then(|| text.to_string())
}

/// The `squeue` fields [`parse_squeue`] reads: job id, long state, reason. `|` appears in
/// none of the ids or states, and the reason, which may hold spaces and commas
/// (`ReqNodeNotAvail, UnavailableNodes:…`), comes last so it is read whole.
const SQUEUE_FORMAT: &str = "%i|%T|%r";

/// `squeue`'s arguments for the jobs `ids` (all of this user's jobs when empty), in one call.
///
/// `--states=all` keeps jobs that ended in the list (until `MinJobAge`), so a poll sees
/// `COMPLETED` or `TIMEOUT` rather than a job gone missing. A job past that is not listed;
/// when it was the only one asked for, squeue fails instead (`slurm_load_jobs error: Invalid
/// job id specified`, exit 1), which means the same.
pub fn squeue_args(ids: &[String]) -> Vec<String> {
    let mut args = vec![
        "--noheader".to_string(),
        "--states=all".to_string(),
        format!("--format={SQUEUE_FORMAT}"),
    ];
    if ids.is_empty() {
        args.push("--me".into());
    } else {
        args.push(format!("--jobs={}", ids.join(",")));
    }
    args
}

/// One line of `squeue` with [`squeue_args`]'s format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    /// The job id: `12`, an array task `12_3`, or an array's tasks not started yet as one
    /// line, `12_[4-9%2]`.
    pub id: String,
    /// Its state.
    pub state: SlurmState,
    /// Why it waits or why it ended (`Resources`, `Priority`, `TimeLimit`, …).
    pub reason: Option<String>,
}

/// Reads `squeue`'s stdout as [`squeue_args`] asks for it; a line not in that format is
/// skipped.
pub fn parse_squeue(stdout: &str) -> Vec<QueueLine> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '|');
            let id = fields.next()?.trim();
            let state = fields.next()?.trim();
            if id.is_empty() || state.is_empty() {
                return None;
            }
            Some(QueueLine {
                id: id.to_string(),
                state: SlurmState::parse(state),
                reason: reason(fields.next().unwrap_or_default()),
            })
        })
        .collect()
}

/// The job ids one `squeue` line stands for: itself (`12`, `12_3`), or each task of an
/// array's tasks not started yet, which squeue folds into one line (`12_[4-9%2]`,
/// `12_[1,3,5-7]`). A range it cannot read stands for no task.
pub fn line_ids(id: &str) -> Vec<String> {
    let Some((array, rest)) = id.split_once("_[") else {
        return vec![id.to_string()];
    };
    let ranges = rest.trim_end_matches(']');
    // The `%N` after the ranges is the array's limit, not a task.
    let ranges = ranges.split('%').next().unwrap_or_default();
    let mut ids = Vec::new();
    for range in ranges.split(',') {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) else {
            continue;
        };
        // Bounded: no array is larger than the cluster's MaxArraySize, a few thousand.
        ids.extend((first..=last.min(first + 100_000)).map(|task| format!("{array}_{task}")));
    }
    ids
}

/// The job id `squeue` and `sbatch` use for the array (or plain job) a task belongs to:
/// `12` for `12_3`.
pub fn array_id(job: &str) -> &str {
    job.split('_').next().unwrap_or(job)
}

/// What reagent needs of `scontrol show config`: the cluster's name, for showing where a
/// run executes, and the largest array it takes, for sweeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `ClusterName`.
    pub name: Option<String>,
    /// `MaxArraySize`: an array's task indices stay below it.
    pub max_array_size: Option<usize>,
}

/// Reads `scontrol show config`: `Key = Value` lines; what is missing stays `None`.
pub fn parse_config(stdout: &str) -> ClusterConfig {
    let mut config = ClusterConfig::default();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "ClusterName" if !value.is_empty() => config.name = Some(value.to_string()),
            "MaxArraySize" => config.max_array_size = value.parse().ok(),
            _ => {}
        }
    }
    config
}

/// One job as `scontrol show job` or `sacct` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The id as squeue prints it: `12`, or `12_3` for an array's task.
    pub id: String,
    /// Its state.
    pub state: SlurmState,
    /// Why it waits or why it ended; sacct's lines carry none.
    pub reason: Option<String>,
    /// The exit code when the job exited (Slurm's `ExitCode=3:0`), as in a supervisor's exit
    /// record. Slurm says `0:0` for a job that has not ended or never ran, so it counts only
    /// with a terminal state.
    pub exit_code: Option<i32>,
    /// The signal that ended the job (`0:9` is SIGKILL, as after a time limit's grace).
    pub signal: Option<i32>,
}

/// The exit code and signal of Slurm's `CODE:SIGNAL`: one or the other, never both.
fn exit_status(text: &str) -> (Option<i32>, Option<i32>) {
    let Some((code, signal)) = text.split_once(':') else {
        return (None, None);
    };
    match (code.parse::<i32>(), signal.parse::<i32>()) {
        (_, Ok(signal)) if signal != 0 => (None, Some(signal)),
        (Ok(code), Ok(_)) => (Some(code), None),
        _ => (None, None),
    }
}

/// Reads `scontrol show job -o ID`: one line of `Key=Value` fields per job; the first job
/// when there are several (an array's id asked for lists every task: ask for `ID_TASK`).
/// `None` when no job is described (`Job 12_1 not found`, or an error).
///
/// A value runs to the next word that looks like `Key=`, so a reason with spaces is read
/// whole; the first of a key is kept. The job name is the one field before the state that a
/// user writes, and [`script`] keeps it to one word, so it cannot pose as another field.
pub fn parse_scontrol_job(stdout: &str) -> Option<JobRecord> {
    let line = stdout.lines().find(|line| line.starts_with("JobId="))?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    for word in line.split_whitespace() {
        let key = word.split_once('=').map(|(key, _)| key).filter(|key| {
            let mut chars = key.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '/'))
        });
        match (key, fields.last_mut()) {
            (Some(key), _) => fields.push((key, word[key.len() + 1..].to_string())),
            (None, Some((_, value))) => {
                value.push(' ');
                value.push_str(word);
            }
            (None, None) => {}
        }
    }
    let field = |key: &str| {
        fields
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
    };
    // An array's task has its own JobId; squeue and scancel name it `ARRAY_TASK`, and its
    // tasks not started yet `ARRAY_[RANGE]`.
    let id = match (field("ArrayJobId"), field("ArrayTaskId")) {
        (Some(array), Some(task)) if task.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{array}_{task}")
        }
        (Some(array), Some(tasks)) => format!("{array}_[{tasks}]"),
        _ => field("JobId")?.to_string(),
    };
    let (exit_code, signal) = exit_status(field("ExitCode").unwrap_or_default());
    Some(JobRecord {
        id,
        state: SlurmState::parse(field("JobState")?),
        reason: field("Reason").and_then(reason),
        exit_code,
        signal,
    })
}

/// `sacct`'s arguments for the jobs `ids`, in the format [`parse_sacct`] reads.
pub fn sacct_args(ids: &[String]) -> Vec<String> {
    vec![
        format!("--jobs={}", ids.join(",")),
        "--parsable2".into(),
        "--noheader".into(),
        "--format=JobID,State,ExitCode".into(),
    ]
}

/// Reads `sacct`'s stdout as [`sacct_args`] asks for it: `JobID|State|ExitCode` lines. A job
/// comes with a line per step (`12.batch`, `12.extern`, `12.0`); only the job's own line is
/// kept, as its state and exit code are the job's (a cancelled job's batch step says
/// `CANCELLED`, the job `CANCELLED by 1000`).
pub fn parse_sacct(stdout: &str) -> Vec<JobRecord> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            let (id, state, exit) = (fields.next()?, fields.next()?, fields.next()?);
            if id.is_empty() || id.contains('.') || state.is_empty() {
                return None;
            }
            let (exit_code, signal) = exit_status(exit);
            Some(JobRecord {
                id: id.to_string(),
                state: SlurmState::parse(state),
                reason: None,
                exit_code,
                signal,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> BatchJob {
        BatchJob {
            name: "reagent-ab12cd34".into(),
            cwd: "/home/me/proj".into(),
            output: "/home/me/.reagent/runs/ab12cd34/output.log".into(),
            partition: None,
            gpus: None,
            cpus: None,
            mem: None,
            time: None,
            account: None,
            extra: Vec::new(),
            tasks: vec![task(&["python", "train.py", "--lr", "3e-4"])],
            parallel: None,
        }
    }

    fn task(command: &[&str]) -> Task {
        Task {
            env: Vec::new(),
            command: command.iter().map(|arg| arg.to_string()).collect(),
        }
    }

    #[test]
    fn a_plain_job_is_its_name_output_folder_and_exec() {
        assert_eq!(
            script(&job()).unwrap(),
            "#!/bin/sh\n\
             #SBATCH --job-name='reagent-ab12cd34'\n\
             #SBATCH --output='/home/me/.reagent/runs/ab12cd34/output.log'\n\
             #SBATCH --open-mode='append'\n\
             #SBATCH --chdir='/home/me/proj'\n\
             exec 'python' 'train.py' '--lr' '3e-4'\n"
        );
    }

    #[test]
    fn every_option_has_its_line_and_extras_come_verbatim() {
        let full = with(|job| {
            job.partition = Some("gpu".into());
            job.gpus = Some(4);
            job.cpus = Some(16);
            job.mem = Some("64G".into());
            job.time = Some("2-00:00:00".into());
            job.account = Some("lab".into());
            job.extra = vec!["--qos=high".into(), "--constraint=\"a100|h100\"".into()];
            job.tasks = (0..8).map(|i| task(&["train", &i.to_string()])).collect();
            job.parallel = Some(2);
            job.output = "/runs/x/task-%a.log".into();
        });
        let text = script(&full).unwrap();
        let sbatch: Vec<&str> = text.lines().filter(|l| l.starts_with("#SBATCH")).collect();
        assert_eq!(
            sbatch,
            [
                "#SBATCH --job-name='reagent-ab12cd34'",
                "#SBATCH --output='/runs/x/task-%a.log'",
                "#SBATCH --open-mode='append'",
                "#SBATCH --chdir='/home/me/proj'",
                "#SBATCH --partition='gpu'",
                "#SBATCH --mem='64G'",
                "#SBATCH --time='2-00:00:00'",
                "#SBATCH --account='lab'",
                "#SBATCH --gpus='4'",
                "#SBATCH --cpus-per-task='16'",
                "#SBATCH --array='0-7%2'",
                "#SBATCH --qos=high",
                "#SBATCH --constraint=\"a100|h100\"",
            ]
        );
        // One task is a plain job: no array, no `case`.
        assert!(!script(&job()).unwrap().contains("--array"));
    }

    #[test]
    fn an_arrays_tasks_each_run_their_own_command_with_their_own_variables() {
        let array = with(|job| {
            job.tasks = vec![
                task(&["train", "--lr", "0.1"]),
                task(&["train", "--lr", "0.2"]),
            ];
            job.tasks[1].env = vec![("REAGENT_RUN_ID".into(), "cd34ef56".into())];
        });
        let text = script(&array).unwrap();
        assert!(text.contains("#SBATCH --array='0-1'\n"), "{text}");
        assert!(
            text.ends_with(
                "case \"$SLURM_ARRAY_TASK_ID\" in\n\
                 0)\n    exec 'train' '--lr' '0.1'\n    ;;\n\
                 1)\n    export REAGENT_RUN_ID='cd34ef56'\n    exec 'train' '--lr' '0.2'\n    ;;\n\
                 esac\n\
                 echo \"reagent: this array has no task $SLURM_ARRAY_TASK_ID\" >&2\n\
                 exit 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn output_paths_keep_their_percent_signs_and_arrays_get_one_file_per_task() {
        let path = Path::new("/runs/100%/x");
        assert_eq!(output_pattern(path, false).unwrap(), "/runs/100%%/x");
        assert_eq!(output_pattern(path, true).unwrap(), "/runs/100%%/x/%a.log");
        let odd = Path::new("/runs/a\\b%");
        assert_eq!(output_pattern(odd, false).unwrap(), "/runs/a\\b%");
        assert!(output_pattern(odd, true).unwrap_err().contains("backslash"));
    }

    /// [`job`] changed by `change`.
    fn with(change: impl FnOnce(&mut BatchJob)) -> BatchJob {
        let mut job = job();
        change(&mut job);
        job
    }

    #[test]
    fn values_with_quotes_and_spaces_stay_one_word() {
        let quoted = with(|job| {
            job.tasks = vec![task(&["sh", "-c", "echo \"$A\"; exit 3", "it's"])];
            job.cwd = "/data/my project".into();
            job.tasks[0].env = vec![
                ("A".into(), "it's $HOME `x` \"q\"".into()),
                ("MULTI_LINE".into(), "a\nb".into()),
                ("_EMPTY".into(), String::new()),
            ];
        });
        let text = script(&quoted).unwrap();
        assert!(text.contains("#SBATCH --chdir='/data/my project'\n"));
        assert!(text.ends_with(
            "export A='it'\\''s $HOME `x` \"q\"'\n\
             export MULTI_LINE='a\nb'\n\
             export _EMPTY=''\n\
             exec 'sh' '-c' 'echo \"$A\"; exit 3' 'it'\\''s'\n"
        ));
    }

    #[test]
    fn what_cannot_be_written_is_refused() {
        let refused = |change: fn(&mut BatchJob), why: &str| {
            let error = script(&with(change)).unwrap_err();
            assert!(error.contains(why), "{error}");
        };
        refused(|job| job.name = "my run".into(), "one word");
        refused(|job| job.name = String::new(), "one word");
        refused(
            |job| job.time = Some("1:00\n#SBATCH --qos=top".into()),
            "line break",
        );
        refused(|job| job.extra = vec!["--qos=a\r".into()], "line break");
        refused(|job| job.cwd = "/data/x\ny".into(), "line break");
        refused(
            |job| job.tasks[0].env = vec![("1A".into(), "v".into())],
            "variable name",
        );
        refused(
            |job| job.tasks[0].env = vec![("A-B".into(), "v".into())],
            "variable name",
        );
        refused(
            |job| job.tasks[0].env = vec![(String::new(), "v".into())],
            "variable name",
        );
        refused(
            |job| job.tasks[0].env = vec![("A".into(), "a\0b".into())],
            "NUL",
        );
        refused(|job| job.tasks[0].command = Vec::new(), "no command");
        refused(|job| job.tasks[0].command = vec!["a\0".into()], "NUL");
        refused(|job| job.tasks.clear(), "0 tasks");
        refused(
            |job| {
                job.tasks.push(job.tasks[0].clone());
                job.parallel = Some(0);
            },
            "Some(0) at once",
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_refused() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let output = PathBuf::from(OsStr::from_bytes(b"/runs/\xff.log"));
        assert!(
            output_pattern(&output, false)
                .unwrap_err()
                .contains("UTF-8")
        );
        let cwd = output;
        assert!(
            script(&BatchJob { cwd, ..job() })
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn sbatch_parsable_is_an_id_and_maybe_a_cluster() {
        // Slurm 22.05 printed `1\n`; the cluster form is sbatch(1)'s.
        assert_eq!(
            parse_submitted("1\n").unwrap(),
            SubmittedJob {
                id: "1".into(),
                cluster: None
            }
        );
        assert_eq!(
            parse_submitted("1234;tiger\n").unwrap(),
            SubmittedJob {
                id: "1234".into(),
                cluster: Some("tiger".into())
            }
        );
        for bad in [
            "",
            "\n",
            "Submitted batch job 12",
            "12;",
            "x;tiger",
            "12 13",
        ] {
            assert!(parse_submitted(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn states_read_from_long_words_short_codes_and_sacct() {
        use SlurmState::*;
        let cases = [
            ("PENDING", Pending),
            ("PD", Pending),
            ("CONFIGURING", Configuring),
            ("R", Running),
            ("COMPLETING", Completing),
            ("CG", Completing),
            ("CD", Completed),
            ("F", Failed),
            ("CANCELLED by 0", Cancelled),
            ("CANCELLED+", Cancelled),
            ("CA", Cancelled),
            ("TIMEOUT", Timeout),
            ("TO", Timeout),
            ("OUT_OF_MEMORY", OutOfMemory),
            ("OOM", OutOfMemory),
            ("NODE_FAIL", NodeFail),
            ("NF", NodeFail),
            ("PREEMPTED", Preempted),
            ("BOOT_FAIL", BootFail),
            ("DEADLINE", Deadline),
            ("SUSPENDED", Suspended),
            ("REQUEUED", Requeued),
            ("REQUEUE_HOLD", Other("REQUEUE_HOLD".into())),
        ];
        for (text, state) in cases {
            assert_eq!(SlurmState::parse(text), state, "{text}");
        }
        assert_eq!(SlurmState::parse("OOM").words(), "OUT_OF_MEMORY");
        assert_eq!(SlurmState::parse("CANCELLED by 0").words(), "CANCELLED");
        assert_eq!(SlurmState::parse("SPECIAL_EXIT").words(), "SPECIAL_EXIT");
        let ended = [Completed, Failed, Cancelled, Timeout, OutOfMemory, NodeFail];
        assert!(ended.iter().all(SlurmState::is_terminal));
        let ongoing = [
            Pending,
            Running,
            Completing,
            Suspended,
            Requeued,
            Other("X".into()),
        ];
        assert!(!ongoing.iter().any(SlurmState::is_terminal));
    }

    #[test]
    fn squeue_is_asked_once_for_every_job() {
        assert_eq!(
            squeue_args(&["22".into(), "29".into()]),
            [
                "--noheader",
                "--states=all",
                "--format=%i|%T|%r",
                "--jobs=22,29"
            ]
        );
        assert_eq!(squeue_args(&[]).last().unwrap(), "--me");
    }

    /// Lines Slurm 22.05 printed for `squeue --noheader --states=all --format=%i|%T|%r` over
    /// several polls: a finished job, a failed one, jobs waiting for different reasons, an
    /// array with tasks running and the rest waiting as one line, a job past its time limit
    /// being killed then ended, a job cancelled while it waited.
    const SQUEUE: &str = "\
1|COMPLETED|None
23|FAILED|NonZeroExitCode
24|PENDING|Resources
27|PENDING|BeginTime
28|PENDING|PartitionConfig
29_[2-5%2]|PENDING|Resources
26|PENDING|JobHeldUser
22|RUNNING|None
29_1|RUNNING|None
29_0|COMPLETED|None
39_3|PENDING|JobArrayTaskLimit
22|COMPLETING|TimeLimit
22|TIMEOUT|TimeLimit
27|CANCELLED|BeginTime
";

    #[test]
    fn squeue_lines_are_id_state_and_reason() {
        let lines = parse_squeue(SQUEUE);
        assert_eq!(lines.len(), 14);
        let line = |id: &str, state, reason: Option<&str>| QueueLine {
            id: id.into(),
            state,
            reason: reason.map(str::to_string),
        };
        assert_eq!(lines[0], line("1", SlurmState::Completed, None));
        assert_eq!(
            lines[1],
            line("23", SlurmState::Failed, Some("NonZeroExitCode"))
        );
        assert_eq!(
            lines[5],
            line("29_[2-5%2]", SlurmState::Pending, Some("Resources"))
        );
        assert_eq!(lines[8], line("29_1", SlurmState::Running, None));
        assert_eq!(
            lines[11],
            line("22", SlurmState::Completing, Some("TimeLimit"))
        );
        assert_eq!(
            lines[12],
            line("22", SlurmState::Timeout, Some("TimeLimit"))
        );
        // A reason with spaces and commas, and lines that are not squeue's.
        let odd = "7|PENDING|ReqNodeNotAvail, UnavailableNodes:node[1-2]\n\nnot squeue\n|R|x\n";
        assert_eq!(
            parse_squeue(odd),
            [line(
                "7",
                SlurmState::Pending,
                Some("ReqNodeNotAvail, UnavailableNodes:node[1-2]")
            )]
        );
    }

    #[test]
    fn an_arrays_folded_line_stands_for_each_of_its_tasks() {
        assert_eq!(line_ids("22"), ["22"]);
        assert_eq!(line_ids("29_1"), ["29_1"]);
        // As squeue printed them for `--array=0-3%2` and for tasks 2 and 3 asked for.
        assert_eq!(line_ids("2_[0-3%2]"), ["2_0", "2_1", "2_2", "2_3"]);
        assert_eq!(line_ids("2_[2-3]"), ["2_2", "2_3"]);
        assert_eq!(line_ids("7_[1,3,5-6]"), ["7_1", "7_3", "7_5", "7_6"]);
        assert!(line_ids("7_[x-y]").is_empty());
        assert_eq!(array_id("29_3"), "29");
        assert_eq!(array_id("29"), "29");
    }

    #[test]
    fn the_cluster_config_gives_its_name_and_largest_array() {
        // Lines of `scontrol show config` (Slurm 22.05), among some 300.
        let text = "Configuration data as of 2026-12-02T07:31:33\n\
                    AccountingStorageBackupHost = (null)\n\
                    ClusterName             = reagent-local\n\
                    MaxArraySize            = 1001\n\
                    MessageTimeout          = 10 sec\n";
        assert_eq!(
            parse_config(text),
            ClusterConfig {
                name: Some("reagent-local".into()),
                max_array_size: Some(1001)
            }
        );
        assert_eq!(parse_config("error"), ClusterConfig::default());
    }

    /// `scontrol show job -o 22` after a `--time 0:01` job ignored SIGTERM (Slurm 22.05).
    const TIMED_OUT: &str = "JobId=22 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901738 Nice=0 Account=(null) QOS=(null) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9 RunTime=00:01:24 TimeLimit=00:01:00 TimeMin=N/A SubmitTime=2026-12-02T07:10:49 EligibleTime=2026-12-02T07:10:49 AccrueTime=2026-12-02T07:10:49 StartTime=2026-12-02T07:10:50 EndTime=2026-12-02T07:12:14 Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-02T07:10:50 Scheduler=Backfill Partition=debug AllocNode:Sid=localhost:7710 ReqNodeList=(null) ExcNodeList=(null) NodeList=node1 BatchHost=node1 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/home/me/proj StdErr=/home/me/proj/to.out StdIn=/dev/null StdOut=/home/me/proj/to.out Power= \n";

    /// `scontrol show job -o 23` of `--wrap 'exit 3'`.
    const EXITED_3: &str = "JobId=23 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901737 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:01 TimeLimit=365-00:00:00 TimeMin=N/A\n";

    /// `scontrol show job -o 1` of `--wrap 'echo hi; sleep 2'`.
    const DONE: &str = "JobId=1 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:02\n";

    /// `scontrol show job -o 25`, cancelled while running `sleep 300`.
    const CANCELLED: &str = "JobId=25 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901735 Nice=0 Account=(null) QOS=(null) JobState=CANCELLED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15 RunTime=00:00:27\n";

    /// `scontrol show job -o 33` (array 29's task 3, done), and the array's tasks not
    /// started yet (`scontrol show job -o 39` while they waited).
    const ARRAY_TASK: &str = "JobId=33 ArrayJobId=29 ArrayTaskId=3 ArrayTaskThrottle=2 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901732 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n";
    const ARRAY_WAITING: &str = "JobId=39 ArrayJobId=39 ArrayTaskId=0-3%2 ArrayTaskThrottle=2 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901727 Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=Resources Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n";

    fn record(
        id: &str,
        state: SlurmState,
        reason: Option<&str>,
        exit: (Option<i32>, Option<i32>),
    ) -> JobRecord {
        JobRecord {
            id: id.into(),
            state,
            reason: reason.map(str::to_string),
            exit_code: exit.0,
            signal: exit.1,
        }
    }

    #[test]
    fn scontrol_gives_state_reason_and_how_the_job_ended() {
        use SlurmState::*;
        let cases = [
            (
                TIMED_OUT,
                record("22", Timeout, Some("TimeLimit"), (None, Some(9))),
            ),
            (
                EXITED_3,
                record("23", Failed, Some("NonZeroExitCode"), (Some(3), None)),
            ),
            (DONE, record("1", Completed, None, (Some(0), None))),
            (CANCELLED, record("25", Cancelled, None, (None, Some(15)))),
            (ARRAY_TASK, record("29_3", Completed, None, (Some(0), None))),
            (
                ARRAY_WAITING,
                record("39_[0-3%2]", Pending, Some("Resources"), (Some(0), None)),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_scontrol_job(text), Some(expected));
        }
    }

    #[test]
    fn scontrol_reads_values_with_spaces_and_nothing_from_errors() {
        // A one-word name cannot pose as a field, and a later field (a comment, a folder)
        // that holds `Key=` words does not replace the real one.
        let line = "JobId=7 JobName=JobState=COMPLETED UserId=me(1000) JobState=PENDING \
                    Reason=Priority ExitCode=0:0 Comment=see JobState=RUNNING\n";
        let job = parse_scontrol_job(line).unwrap();
        assert_eq!(job.state, SlurmState::Pending);
        let line =
            "JobId=7 JobName=wrap JobState=PENDING Reason=waiting for a node Dependency=(null)";
        assert_eq!(
            parse_scontrol_job(line).unwrap().reason.as_deref(),
            Some("waiting for a node")
        );
        // What scontrol printed on stdout for a cancelled task that never started.
        assert_eq!(parse_scontrol_job("Job 39_1 not found\n"), None);
        assert_eq!(parse_scontrol_job(""), None);
        assert_eq!(parse_scontrol_job("JobId=7 JobName=x\n"), None);
    }

    #[test]
    fn sacct_keeps_each_jobs_own_line() {
        use SlurmState::*;
        assert_eq!(
            sacct_args(&["22".into(), "29_3".into()]),
            [
                "--jobs=22,29_3",
                "--parsable2",
                "--noheader",
                "--format=JobID,State,ExitCode"
            ]
        );
        // sacct(1)'s format (the local cluster has no accounting to print it): a job, then
        // a line per step.
        let out = "\
22|TIMEOUT|0:15
22.batch|CANCELLED|0:15
22.extern|COMPLETED|0:0
25|CANCELLED by 1000|0:0
25.batch|CANCELLED|0:15
23|FAILED|3:0
23.batch|FAILED|3:0
29_3|COMPLETED|0:0
29_3.batch|COMPLETED|0:0
40|OUT_OF_MEMORY|0:125
40.batch|OUT_OF_MEMORY|0:125
39_[1-3%2]|PENDING|0:0
";
        assert_eq!(
            parse_sacct(out),
            [
                record("22", Timeout, None, (None, Some(15))),
                record("25", Cancelled, None, (Some(0), None)),
                record("23", Failed, None, (Some(3), None)),
                record("29_3", Completed, None, (Some(0), None)),
                record("40", OutOfMemory, None, (None, Some(125))),
                record("39_[1-3%2]", Pending, None, (Some(0), None)),
            ]
        );
        assert_eq!(parse_sacct("Slurm accounting storage is disabled\n"), []);
    }
}
