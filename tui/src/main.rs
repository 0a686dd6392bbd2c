//! `reagent`: the client. Every action is a subcommand (with `--json` where it lists
//! something); with no subcommand it opens the cockpit.

use reagent_tui::{cli, commands};

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("reagent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("reagent: {err:#}");
            ExitCode::FAILURE
        }
    };
    // A read of stdin may still be blocked in the runtime's thread pool; do not wait for it.
    runtime.shutdown_background();
    code
}
