//! `reagent rm`, `clean` and `rerun`: tidying runs away, and starting one again.

use std::process::ExitCode;

use reagent::protocol::{CleanRuns, CleanScope, RemoveRuns, RerunRun};
use reagent::run::RunInfo;

use super::{Ctx, print_json};
use crate::sanitize;

/// `reagent rm RUN... [--json]`
pub async fn remove(ctx: &Ctx, runs: Vec<String>, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let removed = client.call(&RemoveRuns { runs }).await?;
    report(&removed, json, "")
}

/// `reagent clean [--failed|--all-ended] [--older-than DUR] [--json]`
pub async fn clean(
    ctx: &Ctx,
    which: CleanScope,
    older_than_ms: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let clean = CleanRuns {
        which,
        older_than_ms,
    };
    let removed = client.call(&clean).await?;
    let what = match which {
        CleanScope::Finished => "finished ",
        CleanScope::Failed => "failed ",
        CleanScope::Ended => "ended ",
    };
    report(&removed, json, what)
}

/// `reagent rerun RUN [--json] [-- NEW CMD]`: prints the new run's id, as `reagent run` does.
pub async fn rerun(
    ctx: &Ctx,
    run: String,
    command: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let rerun = RerunRun {
        run,
        command: (!command.is_empty()).then_some(command),
    };
    let started = client.call(&rerun).await?;
    super::runs::print_started(&started, json)
}

/// One line per removed run, or that there was none (`what` says of which kind).
fn report(removed: &[RunInfo], json: bool, what: &str) -> anyhow::Result<ExitCode> {
    if json {
        print_json(&removed)?;
    } else if removed.is_empty() {
        println!("no {what}runs to remove");
    } else {
        for run in removed {
            match &run.name {
                Some(name) => println!("removed {} ({})", sanitize::line(name), run.id),
                None => println!("removed {}", run.id),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
