//! One function per subcommand, each a thin layer over the protocol.

mod attach;
mod daemon;
mod logs;
mod runs;

use std::process::ExitCode;

use reagent::client::{Client, Notifications};
use reagent::paths::Paths;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; the exit code is what scripts see.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = cli.command else {
        return daemon::status_summary().await;
    };
    match command {
        Command::Daemon { action } => daemon::daemon(action).await,
        Command::Run(args) => runs::start(args).await,
        Command::Runs { json } => runs::list(json).await,
        Command::Logs { run, follow, tail } => logs::logs(&run, follow, tail).await,
        Command::Stop {
            run,
            grace,
            no_wait,
        } => runs::stop(&run, grace, no_wait).await,
        Command::Input {
            run,
            text,
            no_enter,
        } => runs::input(&run, &text, !no_enter).await,
        Command::Wait { run, json } => runs::wait(&run, json).await,
        Command::Attach { run } => attach::attach(&run).await,
        Command::Rename { run, name } => runs::rename(&run, &name).await,
        Command::Status { json } => daemon::status(json).await,
    }
}

/// Connects to the daemon, starting it when none runs.
pub async fn connect() -> anyhow::Result<(Client, Notifications)> {
    let paths = Paths::from_env()?;
    Ok(Client::connect_or_start(&paths).await?)
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
