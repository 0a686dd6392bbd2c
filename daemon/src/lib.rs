//! The reagent daemon library: services behind `reagentd`.

pub mod supervisor;

/// How the daemon was started.
pub struct Options {
    /// Started by a client in the background.
    pub background: bool,
    /// Verbosity on stderr.
    pub verbose: u8,
}

/// Runs the daemon until SIGTERM or a shutdown request.
pub fn daemon_main(_options: Options) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
