//! `reagent sweep` (here or on Slurm), `sweep stop`, `sweeps` (and `sweep show`, in
//! [`show`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use reagent::protocol::{ListRuns, StopSweep};
use reagent::run::{RunInfo, RunStatus};
use reagent::sweep::{ListSweeps, Parameter, SweepInfo, SweepSpec};

use reagent::slurm::SlurmSpec;

use super::{Ctx, aligned, print_json};
use crate::cli::{On, SweepAction, SweepCmd};
use crate::sanitize;

mod show;

/// `reagent sweep …`
pub async fn sweep(ctx: &Ctx, cmd: SweepCmd) -> anyhow::Result<ExitCode> {
    match cmd.action {
        Some(SweepAction::Show {
            sweep,
            rank,
            max,
            json,
        }) => show::show(ctx, &sweep, rank, max, json).await,
        Some(SweepAction::Stop { sweep }) => {
            let (client, _) = ctx.connect().await?;
            let info = client.call(&StopSweep { sweep }).await?;
            println!("stopped sweep {} ({})", sanitize::line(&info.name), info.id);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let json = cmd.json;
            let mut spec = spec_from(cmd)?;
            let on_slurm = spec.slurm.is_some();
            spec.client_env = ctx.transport.run_env();
            let (client, _) = ctx.connect().await?;
            let info = client.call(&spec).await?;
            if json {
                print_json(&info)?;
            } else {
                let limit = if info.parallel == 0 {
                    "no limit".into()
                } else {
                    format!("{} at once", info.parallel)
                };
                let limit = match on_slurm {
                    true => format!("{limit}, on Slurm"),
                    false => limit,
                };
                println!(
                    "sweep {} ({}): {} runs, {limit}",
                    sanitize::line(&info.name),
                    info.id,
                    info.runs.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The spec from a file and/or flags; flags win over the file.
fn spec_from(cmd: SweepCmd) -> anyhow::Result<SweepSpec> {
    let mut spec = match &cmd.file {
        Some(path) => read_file(path)?,
        None => SweepSpec::default(),
    };
    for grid in &cmd.grid {
        let Some((name, values)) = grid.split_once('=') else {
            bail!("--grid {grid}: expected NAME=V1,V2,…");
        };
        let values = values
            .split(',')
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        spec.parameters.insert(
            name.to_string(),
            Parameter {
                values,
                ..Default::default()
            },
        );
    }
    if !cmd.command.is_empty() {
        spec.command = cmd.command;
    }
    if spec.command.is_empty() {
        bail!("no command: give one after `--` (with {{NAME}} placeholders) or in the sweep file");
    }
    spec.slurm = match cmd.slurm.on {
        // The flags over the file's `[slurm]` table.
        Some(On::Slurm) => {
            let file = spec.slurm.take().unwrap_or_default();
            super::runs::slurm_spec(cmd.slurm)?.map(|flags| SlurmSpec {
                partition: flags.partition.or(file.partition),
                gpus: file.gpus,
                cpus: flags.cpus.or(file.cpus),
                mem: flags.mem.or(file.mem),
                time: flags.time.or(file.time),
                account: flags.account.or(file.account),
                sbatch_args: file
                    .sbatch_args
                    .into_iter()
                    .chain(flags.sbatch_args)
                    .collect(),
            })
        }
        Some(On::Local) => None,
        // As the file says; flags only Slurm reads are refused.
        None => super::runs::slurm_spec(cmd.slurm)?.or(spec.slurm),
    };
    spec.name = cmd.name.or(spec.name);
    spec.parallel = cmd.parallel.unwrap_or(spec.parallel);
    spec.gpus = cmd.gpus.unwrap_or(spec.gpus);
    spec.priority = cmd.priority.unwrap_or(spec.priority);
    spec.pass_env.extend(cmd.pass_env);
    if spec.cwd.is_none() {
        spec.cwd = Some(std::env::current_dir()?);
    }
    Ok(spec)
}

/// Reads a TOML sweep file; parameter values may be numbers or strings.
fn read_file(path: &Path) -> anyhow::Result<SweepSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_file(&text).with_context(|| format!("{} is not a usable sweep file", path.display()))
}

fn parse_file(text: &str) -> anyhow::Result<SweepSpec> {
    let mut value: toml::Table = toml::from_str(text)?;
    if let Some(toml::Value::Table(params)) = value.get_mut("parameters") {
        for (_, param) in params.iter_mut() {
            if let Some(toml::Value::Array(values)) = param.get_mut("values") {
                for v in values.iter_mut() {
                    if !v.is_str() {
                        *v = toml::Value::String(v.to_string());
                    }
                }
            }
        }
    }
    let spec: SweepSpec = toml::Value::Table(value).try_into()?;
    Ok(spec)
}

/// `reagent sweeps [--json]`
pub async fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let sweeps = client.call(&ListSweeps {}).await?;
    if json {
        print_json(&sweeps)?;
        return Ok(ExitCode::SUCCESS);
    }
    if sweeps.is_empty() {
        println!("no sweeps yet");
        return Ok(ExitCode::SUCCESS);
    }
    let runs = client.call(&ListRuns::default()).await?;
    let mut rows = vec![
        ["ID", "NAME", "PROGRESS", "STATE"]
            .map(String::from)
            .to_vec(),
    ];
    for sweep in &sweeps {
        rows.push(vec![
            sweep.id.clone(),
            sweep.name.clone(),
            progress(sweep, &runs),
            state(sweep, &runs),
        ]);
    }
    print!("{}", aligned(&rows));
    Ok(ExitCode::SUCCESS)
}

/// `2/4 done · 2 running · 0 queued · 0 failed`
pub fn progress(sweep: &SweepInfo, runs: &[RunInfo]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &sweep.runs {
        let status = runs
            .iter()
            .find(|r| &r.id == id)
            .map_or(RunStatus::Lost, |r| r.status);
        let bucket = match status {
            RunStatus::Finished => "done",
            RunStatus::Queued => "queued",
            RunStatus::Launching | RunStatus::Running => "running",
            _ => "failed",
        };
        *counts.entry(bucket).or_default() += 1;
    }
    let n = |k| counts.get(k).copied().unwrap_or(0);
    format!(
        "{}/{} done · {} running · {} queued · {} failed/stopped",
        n("done"),
        sweep.runs.len(),
        n("running"),
        n("queued"),
        n("failed")
    )
}

fn state(sweep: &SweepInfo, runs: &[RunInfo]) -> String {
    let live = sweep
        .runs
        .iter()
        .any(|id| runs.iter().any(|r| &r.id == id && !r.status.is_terminal()));
    match (sweep.stopped, live) {
        (true, true) => "stopping",
        (true, false) => "stopped",
        (false, true) => "active",
        (false, false) => "done",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use reagent::sweep::{Distribution, Method};

    use super::*;

    #[test]
    fn a_sweep_goes_to_slurm_from_its_file_or_its_flags() {
        use clap::Parser as _;
        let file = "command = [\"x\", \"{a}\"]\n[parameters.a]\nvalues = [1]\n\
                    [slurm]\npartition = \"gpu\"\ntime = \"1:00\"\n";
        let spec = parse_file(file).unwrap();
        let slurm = spec.slurm.unwrap();
        assert_eq!(
            (slurm.partition.as_deref(), slurm.time.as_deref()),
            (Some("gpu"), Some("1:00"))
        );
        let args = [
            "reagent",
            "sweep",
            "--grid",
            "a=1,2",
            "--parallel",
            "2",
            "--on",
            "slurm",
        ];
        let cli =
            crate::cli::Cli::try_parse_from(args.iter().chain(&["--time", "0:01", "--", "x"]))
                .unwrap();
        let Some(crate::cli::Command::Sweep(cmd)) = cli.command else {
            panic!("not a sweep")
        };
        let spec = spec_from(cmd).unwrap();
        assert_eq!(spec.slurm.unwrap().time.as_deref(), Some("0:01"));
        assert_eq!(spec.parallel, 2);
    }

    #[test]
    fn a_sweep_file_takes_numbers_and_ranges() {
        let spec = parse_file(
            r#"
            name = "lr"
            command = ["python", "train.py", "--lr", "{lr}", "--bs", "{bs}"]
            method = "random"
            count = 4
            parallel = 2
            [parameters.bs]
            values = [32, 64]
            [parameters.lr]
            min = 1e-5
            max = 1e-2
            distribution = "log_uniform"
            "#,
        )
        .unwrap();
        assert_eq!(spec.method, Method::Random);
        assert_eq!(spec.parameters["bs"].values, ["32", "64"]);
        assert_eq!(spec.parameters["lr"].distribution, Distribution::LogUniform);
        let err =
            parse_file("command = [\"x\"]\nparameters = {}\nmethod = \"bayes\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("bayes"), "{err:#}");
    }
}
