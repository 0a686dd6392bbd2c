//! Logging: a daily-rotated file in the state directory always, stderr too in the foreground.

use reagent::config::Config;
use reagent::paths::Paths;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the subscriber. Keep the guard alive: dropping it flushes and stops the writer.
pub fn init(
    paths: &Paths,
    config: &Config,
    stderr: bool,
    verbose: u8,
) -> anyhow::Result<WorkerGuard> {
    let level = match verbose {
        0 => config.daemon.log_level.as_str(),
        1 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => EnvFilter::try_new(&directive)
            .map_err(|err| anyhow::anyhow!("RUST_LOG `{directive}` is not a log filter: {err}"))?,
        _ => EnvFilter::try_new(level).map_err(|err| {
            anyhow::anyhow!(
                "{}: key `daemon.log_level`: `{level}` is not a log filter: {err}",
                paths.config_file.display()
            )
        })?,
    };
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("reagentd")
        .filename_suffix("log")
        .max_log_files(config.daemon.log_files.max(1))
        .build(paths.log_dir())?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(file)
        .with_ansi(false);
    let stderr_layer =
        stderr.then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init()?;
    Ok(guard)
}
