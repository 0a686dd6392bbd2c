//! The `reagent` CLI's exit codes, and telling "could not reach the daemon" apart from every
//! other failure.
//!
//! - 0: success.
//! - 1: an error the daemon or the command itself reports (no such run, a refused request, a
//!   daemon that will not start and says why, such as a broken config).
//! - [`UNREACHABLE`] (125): the daemon could not be reached — it could not be connected to or
//!   started, or the connection broke mid-command — whatever the command.
//! - `reagent wait` alone exits with the run's own code instead (128 + N for signal N).
//!
//! `wait` is why "unreachable" needs a code of its own: a job that exits 1 must not look like
//! a daemon that died. 125 is what `docker run` returns when the fault is Docker's own rather
//! than the container's; it is below the 128 + N of signals and is neither of the codes shells
//! give a command that cannot run (126, 127). A job may still exit 125 by itself: `wait
//! --json` tells the two apart, as it prints the run only when the run ended.

use std::process::ExitCode;

/// The exit code for "could not reach the daemon".
pub const UNREACHABLE: u8 = 125;

/// An error meaning the daemon could not be reached. Commands return it (inside an
/// `anyhow::Error`) so `main` can exit with [`UNREACHABLE`].
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Whether an error (or anything it wraps) says the daemon is out of reach: an
/// [`Unreachable`], or a connection that broke before its reply.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.is::<Unreachable>() || is_disconnected(cause))
}

/// Whether this is a connection that broke before its reply ([`reagent::Error::Disconnected`]).
pub fn is_disconnected(cause: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        cause.downcast_ref::<reagent::Error>(),
        Some(reagent::Error::Disconnected(_))
    )
}

/// The code a command that followed a run to its end exits with: the run's own (`wait`,
/// `logs -f`, `attach`), 128 + N for signal N, 1 for other failures.
pub fn of_run(run: &reagent::run::RunInfo) -> ExitCode {
    ExitCode::from(u8::try_from(run.exit_status()).unwrap_or(1))
}

/// The exit code for a failed command.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if is_unreachable(err) {
        ExitCode::from(UNREACHABLE)
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_and_disconnected_errors_get_the_reserved_code() {
        let unreachable = anyhow::Error::new(Unreachable("no daemon".into())).context("runs");
        assert!(is_unreachable(&unreachable));
        let broke = anyhow::Error::from(reagent::Error::Disconnected("closed".into()));
        assert!(is_unreachable(&broke));
        let refused = anyhow::Error::from(reagent::Error::Protocol("not JSON".into()));
        assert!(!is_unreachable(&refused));
        assert_eq!(code_for(&broke), ExitCode::from(UNREACHABLE));
        assert_eq!(code_for(&refused), ExitCode::FAILURE);
    }
}
