//! `reagentd`: the reagent daemon, and the per-run supervisor mode it re-executes itself in.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The reagent daemon. Runs in the foreground unless `--background` is given.
#[derive(Parser)]
#[command(name = "reagentd", version, about)]
struct Cli {
    /// Started by a client: report readiness on stdout, log only to the log file.
    #[arg(long, hide = true)]
    background: bool,
    /// More logging on stderr (`-v` debug, `-vv` trace); `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// Internal: own one run's PTY and child (started by the daemon, never by hand).
    #[command(hide = true)]
    Supervise {
        /// The run's folder, holding `spec.json`; the log, socket and exit record go there too.
        run_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Some(Mode::Supervise { run_dir }) => reagentd::supervisor::main(&run_dir),
        None => reagentd::daemon_main(reagentd::Options {
            background: cli.background,
            verbose: cli.verbose,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("reagentd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
