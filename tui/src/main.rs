//! `reagent`: the client. Every action is a subcommand (with `--json` where it lists
//! something); with no subcommand it opens the cockpit.

use reagent_tui::{cli, commands, exit, sanitize};

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
            // An error may quote a run's name or a provider's answer: make it safe to print.
            eprintln!("reagent: {}", sanitize::text(&format!("{err:#}")));
            exit::code_for(&err)
        }
    };
    // A read of stdin may still be blocked in the runtime's thread pool; do not wait for it.
    runtime.shutdown_background();
    code
}
