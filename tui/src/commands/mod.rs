//! One function per subcommand, each a thin layer over the protocol.

mod agent;
mod alerts;
mod attach;
mod chat;
mod daemon;
mod gateway;
mod gpus;
mod logs;
mod metrics;
mod models;
mod proxy;
mod runs;
mod sweeps;
pub mod table;
mod tidy;
mod wait;

use std::process::ExitCode;

use reagent::client::{Client, Notifications};
use reagent::transport::Transport;

use crate::cli::{Cli, Command};
use crate::exit::Unreachable;

pub use table::aligned;

/// Runs the parsed command line; the exit code is what scripts see.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let transport = Transport::new(cli.remote)?;
    let Some(command) = cli.command else {
        return crate::cockpit::run(transport).await;
    };
    let ctx = Ctx { transport };
    match command {
        Command::Daemon { action } => daemon::daemon(&ctx, action).await,
        Command::Run(args) => runs::start(&ctx, args).await,
        Command::Runs(args) => runs::list(&ctx, args).await,
        Command::Rm { runs, json } => tidy::remove(&ctx, runs, json).await,
        Command::Clean {
            failed,
            all_ended,
            older_than,
            json,
        } => {
            let which = match (failed, all_ended) {
                (true, _) => reagent::protocol::CleanScope::Failed,
                (false, true) => reagent::protocol::CleanScope::Ended,
                (false, false) => reagent::protocol::CleanScope::Finished,
            };
            tidy::clean(&ctx, which, older_than, json).await
        }
        Command::Rerun { run, json, command } => tidy::rerun(&ctx, run, command, json).await,
        Command::Logs {
            run,
            follow,
            tail,
            plain,
        } => logs::logs(&ctx, &run, follow, tail, plain).await,
        Command::Stop {
            run,
            grace,
            no_wait,
        } => runs::stop(&ctx, &run, grace, no_wait).await,
        Command::Input {
            run,
            text,
            no_enter,
        } => runs::input(&ctx, &run, &text, !no_enter).await,
        Command::Wait { run, json } => wait::wait(&ctx, &run, json).await,
        Command::Attach { run, watch } => attach::attach(&ctx, &run, watch).await,
        Command::Rename { run, name } => runs::rename(&ctx, &run, &name).await,
        Command::Status { json } => daemon::status(&ctx, json).await,
        Command::Proxy => proxy::proxy().await,
        Command::Chat(args) => chat::chat(&ctx, args).await,
        Command::Sessions { json } => chat::sessions(&ctx, json).await,
        Command::History { session, json } => chat::history(&ctx, &session, json).await,
        Command::Providers { check, json } => chat::providers(&ctx, check, json).await,
        Command::Usage { json } => chat::usage(&ctx, json).await,
        Command::Session { action } => chat::session(&ctx, action).await,
        Command::Gpus { json } => gpus::gpus(&ctx, json).await,
        Command::Queue { json } => gpus::queue(&ctx, json).await,
        Command::Sweep(sweep) => sweeps::sweep(&ctx, sweep).await,
        Command::Sweeps { json } => sweeps::list(&ctx, json).await,
        Command::Metrics { run, json, follow } => metrics::metrics(&ctx, &run, json, follow).await,
        Command::Alerts { json, all } => alerts::list(&ctx, json, all).await,
        Command::Alert { action } => alerts::alert(&ctx, action).await,
        Command::Recipe { action } => models::recipe(&ctx, action).await,
        Command::Recipes { json } => models::recipes(&ctx, json).await,
        Command::Model { action } => models::model(&ctx, action).await,
        Command::Models { json } => models::list(&ctx, json).await,
        Command::Token { action } => gateway::token(&ctx, action).await,
        Command::Tokens { json } => gateway::tokens(&ctx, json).await,
        Command::Gateway { action } => gateway::gateway(&ctx, action).await,
        Command::Tools { json } => agent::tools(&ctx, json).await,
        Command::Mcp { json } => agent::mcp(&ctx, json).await,
        Command::Approvals { json, all } => agent::approvals(&ctx, json, all).await,
        Command::Approve { id, always } => agent::answer(&ctx, id, true, always, None).await,
        Command::Deny { id, reason } => agent::answer(&ctx, id, false, false, reason).await,
        Command::Wild { action } => agent::wild(&ctx, action).await,
    }
}

/// What every command needs: where the daemon is.
pub struct Ctx {
    /// Local socket or `ssh HOST reagent proxy`.
    pub transport: Transport,
}

impl Ctx {
    /// Connects to the daemon, starting it when none runs. A failure is [`Unreachable`], so
    /// the command exits with [`crate::exit::UNREACHABLE`].
    pub async fn connect(&self) -> anyhow::Result<(Client, Notifications)> {
        self.transport.connect().await.map_err(unreachable)
    }
}

/// A failure to connect to (or start) the daemon, as the error that exits with
/// [`crate::exit::UNREACHABLE`]; a daemon that would not start and said why (a broken config)
/// stays an ordinary error, as its cause is for the user to fix.
pub fn unreachable(err: reagent::Error) -> anyhow::Error {
    match err {
        reagent::Error::DaemonRefused(_) => err.into(),
        err => Unreachable(format!("cannot reach the daemon: {err}")).into(),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
