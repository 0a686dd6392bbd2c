//! Tools over runs: list, inspect, read the log and screen of, start, stop and rerun runs,
//! and run a shell command as a run (so its output is a pane anyone can watch).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reagent::gpu::GpuRequest;
use reagent::protocol::{ListRuns, RerunRun, StopRun, SubmitRun};
use reagent::run::{RunInfo, RunSpec};
use reagent::slurm::SlurmSpec;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Builtin, Ctx, Outcome, Run, args, clip, json, refused};
use crate::runs::control;

/// `runs_list`.
pub const LIST: Builtin = Builtin {
    name: "runs_list",
    description: "List runs (jobs in terminals) oldest first, with status, exit code and \
                  command; filter by status, a name pattern (`*`, `?`) and a count of the newest.",
    schema: || {
        json!({"type": "object", "properties": {
            "status": {"type": "string", "enum": ["queued", "launching", "running", "finished", "failed", "stopped", "lost"]},
            "name": {"type": "string", "description": "name pattern, e.g. `lr-*`"},
            "limit": {"type": "integer", "minimum": 1, "description": "only the newest N"}
        }})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let list: ListRuns = args(value)?;
        json(&list.select(ctx.daemon.state().runs()))
    }),
};

/// Arguments naming one run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRef {
    run: String,
}

fn run_ref_schema() -> Value {
    json!({"type": "object", "properties": {
        "run": {"type": "string", "description": "the run's id, name or unique id prefix"}
    }, "required": ["run"]})
}

/// The run an argument names.
fn resolve(ctx: &Ctx<'_>, query: &str) -> Result<RunInfo, String> {
    ctx.daemon.state().resolve(query).cloned().map_err(refused)
}

/// `run_show`.
pub const SHOW: Builtin = Builtin {
    name: "run_show",
    description: "One run in full: command, cwd, status, exit code, reason, times, GPUs' env \
                  keys, its log file.",
    schema: run_ref_schema,
    action: None,
    run: Run::Now(|ctx, value| {
        let RunRef { run } = args(value)?;
        json(&resolve(ctx, &run)?)
    }),
};

/// `run_log` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogArgs {
    run: String,
    #[serde(default = "default_lines")]
    lines: u16,
}

fn default_lines() -> u16 {
    50
}

/// `run_log`.
pub const LOG: Builtin = Builtin {
    name: "run_log",
    description: "The last lines of a run's output as its terminal shows them (progress bars \
                  redrawn in place, colours dropped).",
    schema: || {
        json!({"type": "object", "properties": {
            "run": {"type": "string", "description": "the run's id, name or unique id prefix"},
            "lines": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
        }, "required": ["run"]})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let LogArgs { run, lines } = args(value)?;
        let run = resolve(ctx, &run)?;
        Ok(clip(control::screen_text(&run, lines.clamp(1, 1000))))
    }),
};

/// `run_screen`.
pub const SCREEN: Builtin = Builtin {
    name: "run_screen",
    description: "A run's terminal screen now, as text: what a person watching its pane sees.",
    schema: run_ref_schema,
    action: None,
    run: Run::Now(|ctx, value| {
        let RunRef { run } = args(value)?;
        let run = resolve(ctx, &run)?;
        Ok(control::screen_text(&run, control::SCREEN_ROWS))
    }),
};

/// A command as a model writes it: an argv, or one line for `sh -c`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    Argv(Vec<String>),
    Line(String),
}

impl Command {
    fn argv(self) -> Vec<String> {
        match self {
            Self::Argv(argv) => argv,
            Self::Line(line) => vec!["sh".into(), "-c".into(), line],
        }
    }
}

/// `run_start` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartArgs {
    command: Command,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    gpus: u32,
    #[serde(default)]
    metrics_file: Option<PathBuf>,
    #[serde(default)]
    alerts: Vec<String>,
    #[serde(default)]
    slurm: Option<SlurmSpec>,
}

impl StartArgs {
    /// The spec the CLI's `reagent run` would send, in the session's directory and handing
    /// the run's alerts to the session.
    fn spec(self, ctx: &Ctx<'_>) -> (RunSpec, u32) {
        let cwd = match self.cwd {
            Some(cwd) => ctx.session.cwd.join(cwd),
            None => ctx.session.cwd.clone(),
        };
        let spec = RunSpec {
            name: self.name,
            command: self.command.argv(),
            cwd: Some(cwd),
            env: self.env.into_iter().collect(),
            metrics: self.metrics_file,
            alerts: self.alerts,
            agent_session: Some(ctx.session.id.clone()),
            slurm: self.slurm,
            ..RunSpec::default()
        };
        (spec, self.gpus)
    }
}

/// Starts a run as `reagent run` does: through the local GPU queue when it needs GPUs here
/// (on Slurm, GPUs are Slurm's to give).
fn start(ctx: &Ctx<'_>, spec: RunSpec, gpus: u32) -> Result<RunInfo, String> {
    let started = if gpus > 0 && spec.slurm.is_none() {
        let submit = SubmitRun {
            spec,
            gpus: GpuRequest {
                count: gpus,
                ids: Vec::new(),
            },
            priority: 0,
            retry_gpu: 0,
        };
        crate::queue::submit(ctx.daemon, submit)
    } else {
        crate::runs::start(ctx.daemon, spec)
    };
    started.map_err(refused)
}

/// `run_start`.
pub const START: Builtin = Builtin {
    name: "run_start",
    description: "Start a run: a command in a terminal of its own that outlives the agent, \
                  with its output logged, metrics read from REAGENT_METRICS_FILE (JSON lines) \
                  and alerts raised to this session. With `gpus`, it waits in the GPU queue; \
                  with `slurm`, it is a Slurm job instead.",
    schema: || {
        json!({"type": "object", "properties": {
            "command": {"description": "argv, or one shell line", "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "string"}
            ]},
            "name": {"type": "string"},
            "cwd": {"type": "string", "description": "relative to the session's directory"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "gpus": {"type": "integer", "minimum": 0},
            "metrics_file": {"type": "string", "description": "the metrics file the job writes, relative to cwd"},
            "alerts": {"type": "array", "items": {"type": "string"}, "description": "rules like `loss > 5`"},
            "slurm": slurm_schema()
        }, "required": ["command"]})
    },
    action: Some(|ctx, value| {
        let (spec, gpus) = args::<StartArgs>(value.clone())?.spec(ctx);
        Ok(describe_start(&spec, gpus))
    }),
    run: Run::Now(|ctx, value| {
        let (spec, gpus) = args::<StartArgs>(value)?.spec(ctx);
        json(&start(ctx, spec, gpus)?)
    }),
};

/// The schema of a request to run on Slurm instead of here.
pub fn slurm_schema() -> Value {
    json!({"type": "object", "description": "run as a Slurm job instead of here (its GPUs in `gpus` here)", "properties": {
        "partition": {"type": "string"},
        "gpus": {"type": "integer", "minimum": 0},
        "cpus": {"type": "integer", "minimum": 1},
        "mem": {"type": "string", "description": "e.g. 32G"},
        "time": {"type": "string", "description": "e.g. 4:00:00"},
        "account": {"type": "string"},
        "sbatch_args": {"type": "array", "items": {"type": "string"}}
    }})
}

/// `$ CMD` in DIR, with what else the run gets: what a person approves.
fn describe_start(spec: &RunSpec, gpus: u32) -> String {
    let mut text = format!("$ {}", reagent::shell::line(&spec.command));
    if let Some(cwd) = &spec.cwd {
        text.push_str(&format!("\n  in {}", cwd.display()));
    }
    if let Some(name) = &spec.name {
        text.push_str(&format!("\n  named {name}"));
    }
    if let Some(slurm) = &spec.slurm {
        text.push_str("\n  on Slurm");
        let asks = [
            ("partition", slurm.partition.clone()),
            ("gpus", slurm.gpus.map(|n| n.to_string())),
            ("cpus", slurm.cpus.map(|n| n.to_string())),
            ("mem", slurm.mem.clone()),
            ("time", slurm.time.clone()),
            ("account", slurm.account.clone()),
        ];
        for (key, value) in asks.into_iter().filter_map(|(k, v)| Some((k, v?))) {
            text.push_str(&format!(" {key}={value}"));
        }
        for arg in &slurm.sbatch_args {
            text.push_str(&format!(" {arg}"));
        }
    } else if gpus > 0 {
        text.push_str(&format!("\n  on {gpus} GPU(s)"));
    }
    for (key, value) in &spec.env {
        text.push_str(&format!("\n  env {key}={value}"));
    }
    for rule in &spec.alerts {
        text.push_str(&format!("\n  alert when {rule}"));
    }
    text
}

/// `run_stop`.
pub const STOP: Builtin = Builtin {
    name: "run_stop",
    description: "Stop a run: SIGTERM to its processes, SIGKILL after the grace period. A \
                  queued run is cancelled.",
    schema: run_ref_schema,
    action: Some(|ctx, value| {
        let RunRef { run } = args(value.clone())?;
        let run = resolve(ctx, &run)?;
        Ok(format!(
            "stop run {} ({}): $ {}",
            run.label(),
            run.status,
            run.command_line()
        ))
    }),
    run: Run::Now(|ctx, value| {
        let RunRef { run } = args(value)?;
        let stop = StopRun {
            run,
            grace_secs: None,
        };
        let stopped = control::stop(
            ctx.daemon,
            &stop.run,
            stop.grace_secs,
            control::STOPPED_BEFORE_START,
        );
        json(&stopped.map_err(refused)?)
    }),
};

/// `run_rerun`.
pub const RERUN: Builtin = Builtin {
    name: "run_rerun",
    description: "Start a run again as a new run with the same cwd, env, GPUs, metrics file \
                  and alerts; with `command`, a changed command.",
    schema: || {
        json!({"type": "object", "properties": {
            "run": {"type": "string", "description": "the run's id, name or unique id prefix"},
            "command": {"type": "array", "items": {"type": "string"}, "description": "the new argv"}
        }, "required": ["run"]})
    },
    action: Some(|ctx, value| {
        let rerun: RerunRun = args(value.clone())?;
        let run = resolve(ctx, &rerun.run)?;
        let command = rerun.command.unwrap_or_else(|| run.command.clone());
        Ok(format!(
            "run {} again as a new run:\n$ {}",
            run.label(),
            reagent::shell::line(&command)
        ))
    }),
    run: Run::Now(|ctx, value| {
        let rerun: RerunRun = args(value)?;
        json(&crate::queue::rerun::rerun(ctx.daemon, rerun).map_err(refused)?)
    }),
};

/// `shell` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellArgs {
    command: String,
    #[serde(default = "default_timeout")]
    timeout_secs: f64,
}

fn default_timeout() -> f64 {
    120.0
}

/// The longest a shell command may be given.
const MAX_SHELL_SECS: f64 = 3600.0;
/// Lines of a shell command's output sent back.
const SHELL_TAIL_ROWS: u16 = 60;

/// `shell`.
pub const SHELL: Builtin = Builtin {
    name: "shell",
    description: "Run a shell command in the session's directory as a run (anyone can watch \
                  its pane) and wait for it: returns its exit code and the last lines of its \
                  output. It is stopped when it outlasts `timeout_secs`.",
    schema: || {
        json!({"type": "object", "properties": {
            "command": {"type": "string"},
            "timeout_secs": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SHELL_SECS, "default": 120}
        }, "required": ["command"]})
    },
    action: Some(|ctx, value| {
        let shell: ShellArgs = args(value.clone())?;
        check_timeout(shell.timeout_secs)?;
        Ok(format!(
            "$ {}\n  in {}",
            shell.command,
            ctx.session.cwd.display()
        ))
    }),
    run: Run::Later(|ctx, value| Box::pin(shell(ctx, value))),
};

fn check_timeout(secs: f64) -> Result<Duration, String> {
    if secs > 0.0 && secs <= MAX_SHELL_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "invalid arguments: `timeout_secs`: {secs} is outside 0 to {MAX_SHELL_SECS}"
        ))
    }
}

async fn shell(ctx: &Ctx<'_>, value: Value) -> Outcome {
    let ShellArgs {
        command,
        timeout_secs,
    } = args(value)?;
    let limit = check_timeout(timeout_secs)?;
    let spec = RunSpec {
        command: vec!["sh".into(), "-c".into(), command],
        cwd: Some(ctx.session.cwd.clone()),
        agent_session: Some(ctx.session.id.clone()),
        ..RunSpec::default()
    };
    let run = crate::runs::start(ctx.daemon, spec).map_err(refused)?;
    let ended = tokio::time::timeout(limit, control::ended(ctx.daemon, &run.id, || false)).await;
    let (run, note) = match ended {
        Ok(Some(Ok(run))) => (run, String::new()),
        Ok(Some(Err(err))) => return Err(refused(err)),
        Ok(None) => return Err("the daemon is stopping".into()),
        Err(_) => {
            let why = "timed out";
            control::stop(ctx.daemon, &run.id, None, why).map_err(refused)?;
            let stopped = control::ended(ctx.daemon, &run.id, || false).await;
            let run = match stopped {
                Some(Ok(run)) => run,
                _ => run,
            };
            let note = format!("timed out after {timeout_secs} s and was stopped; ");
            (run, note)
        }
    };
    let how = match (run.exit_code, run.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => format!("{}", run.status),
    };
    let tail = control::screen_text(&run, SHELL_TAIL_ROWS);
    Ok(clip(format!("run {}: {note}{how}\n{tail}", run.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_reads_as_a_person_would_type_it() {
        let spec = RunSpec {
            command: vec!["sh".into(), "-c".into(), "make -j2".into()],
            cwd: Some("/work".into()),
            env: vec![("LR".into(), "3e-4".into())],
            alerts: vec!["loss > 5".into()],
            ..RunSpec::default()
        };
        assert_eq!(
            describe_start(&spec, 1),
            "$ sh -c 'make -j2'\n  in /work\n  on 1 GPU(s)\n  env LR=3e-4\n  alert when loss > 5"
        );
        let slurm = RunSpec {
            command: vec!["python".into(), "train.py".into()],
            slurm: Some(SlurmSpec {
                partition: Some("debug".into()),
                time: Some("0:10".into()),
                sbatch_args: vec!["--qos=high".into()],
                ..SlurmSpec::default()
            }),
            ..RunSpec::default()
        };
        assert_eq!(
            describe_start(&slurm, 1),
            "$ python train.py\n  on Slurm partition=debug time=0:10 --qos=high"
        );
    }

    #[test]
    fn a_shell_timeout_must_be_sane() {
        assert!(check_timeout(0.0).is_err());
        assert!(check_timeout(f64::NAN).is_err());
        assert!(
            check_timeout(7200.0)
                .unwrap_err()
                .contains("`timeout_secs`")
        );
        assert_eq!(check_timeout(1.5).unwrap(), Duration::from_millis(1500));
    }
}
