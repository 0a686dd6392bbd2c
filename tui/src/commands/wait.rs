//! `reagent wait RUN`: waits for a run to end and exits with its code, across daemon
//! restarts.
//!
//! The run is resolved to its id once, by the daemon's own rule ([`reagent::lookup`]), so a
//! rerun of the same name started while the daemon was away cannot take its place. When the
//! connection breaks, `wait` reconnects — starting the daemon, as any command does — and asks
//! again: the run outlives the daemon, so the wait does too. Only a daemon out of reach for
//! [`RECONNECT_FOR`] ends it, with [`exit::UNREACHABLE`](crate::exit::UNREACHABLE) rather than
//! a code a job could have exited with.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use reagent::client::Client;
use reagent::lookup::resolve;
use reagent::protocol::{ListRuns, WaitRun};
use reagent::run::RunInfo;

use super::runs::summary;
use super::{Ctx, print_json};
use crate::exit::{self, Unreachable};
use crate::sanitize;

/// How long `wait` keeps trying to reach a daemon it lost before giving up.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// The longest pause between two attempts to reconnect.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Waits, then exits with the run's exit code (128 + N for signal N).
pub async fn wait(ctx: &Ctx, query: &str, json: bool) -> anyhow::Result<ExitCode> {
    let ended = ended(ctx, query).await?;
    if json {
        print_json(&ended)?;
    } else {
        eprintln!("{}", summary(&ended));
    }
    Ok(crate::exit::of_run(&ended))
}

/// The run once it has ended, asking again after every broken connection.
async fn ended(ctx: &Ctx, query: &str) -> anyhow::Result<RunInfo> {
    let mut id: Option<String> = None;
    // Since when no daemon has answered, once one was lost.
    let mut lost: Option<Instant> = None;
    let mut pause = Duration::from_millis(50);
    loop {
        let err = match ctx.connect().await {
            Ok((client, _)) => match ask(&client, query, &mut id).await {
                Ok(run) => return Ok(run),
                Err(err) if err.chain().any(exit::is_disconnected) => {
                    // A daemon answered, then went away: a fresh loss.
                    let run = sanitize::line(id.as_deref().unwrap_or(query)).into_owned();
                    eprintln!("reagent: lost the daemon while waiting for {run}; reconnecting");
                    lost = Some(Instant::now());
                    tokio::time::sleep(pause).await;
                    continue;
                }
                Err(err) => return Err(err),
            },
            // A first connection that fails is the answer, as for every command.
            Err(err) if lost.is_none() => return Err(err),
            Err(err) => err,
        };
        // Whatever kept the daemon away (even one refusing to start), the run's end is still
        // unknown: never answer with a code a job could have exited with.
        if lost.is_some_and(|since| since.elapsed() >= RECONNECT_FOR) {
            let secs = RECONNECT_FOR.as_secs();
            return Err(Unreachable(format!("no daemon answered for {secs} s: {err:#}")).into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Resolves the run (the first time) and waits for it on this connection.
async fn ask(client: &Client, query: &str, id: &mut Option<String>) -> anyhow::Result<RunInfo> {
    let run = match id {
        Some(id) => id.clone(),
        None => {
            let runs = client.call(&ListRuns::default()).await?;
            let run = resolve(&runs, query, "run", |r| (&r.id, r.name.as_deref()))
                .map_err(reagent::Error::Rpc)?;
            id.insert(run.id.clone()).clone()
        }
    };
    Ok(client.call(&WaitRun { run }).await?)
}
