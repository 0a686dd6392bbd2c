//! The reagent daemon: it owns runs (through their supervisors), the store and the event bus,
//! and serves every client over one Unix socket. See `docs/architecture.md`.

// Public for the binaries and benchmarks only; everything else is the daemon's own, so the
// compiler reports what nothing uses.
mod agent;
pub mod alerts;
mod bus;
mod chat;
mod daemon;
pub mod gpu;
mod handlers;
mod http;
pub mod llm;
mod lock;
mod logging;
pub mod metrics;
mod models;
mod notify;
pub mod outbox;
mod process;
mod queue;
mod runs;
mod secret;
mod server;
pub mod store;
pub mod supervisor;
mod table;
mod tokens;
mod triage;

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::sync::Arc;

use anyhow::Context as _;
use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{Ack, Notification};

use crate::daemon::Daemon;
use crate::outbox::encode_notification;

/// How the daemon was started.
pub struct Options {
    /// Started by a client: detach from its session, report `ready` (or `error: …`) as one
    /// line on stdout, and log only to the file.
    pub background: bool,
    /// Extra verbosity (`-v`).
    pub verbose: u8,
}

/// Runs the daemon until SIGTERM, SIGINT or a `daemon.shutdown` request.
pub fn daemon_main(options: Options) -> anyhow::Result<()> {
    let result = run(&options);
    if options.background
        && let Err(err) = &result
    {
        // The client that started us is waiting for this line; it may be gone.
        let _ = writeln!(std::io::stdout(), "error: {err:#}");
    }
    result
}

fn run(options: &Options) -> anyhow::Result<()> {
    runs::launch::make_files_private();
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file)?;
    // Private: run commands, logs and output are nobody else's business.
    for dir in [paths.state_dir.clone(), paths.log_dir(), paths.runs_dir()] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let _lock = lock::acquire(&paths.lock_file())?;
    if options.background {
        // Leave the starting client's session, so its terminal closing does not reach us.
        let _ = rustix::process::setsid();
    }
    let _log = logging::init(&paths, &config, !options.background, options.verbose)?;
    // A panic is a bug; it ends one task, not the daemon, and it must leave a trace.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(paths, config, options.background));
    // A catch-up read of a flooding run's log may still be going in a blocking thread; the
    // next daemon resumes from the log, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

async fn serve(paths: Paths, config: Config, background: bool) -> anyhow::Result<()> {
    // A threshold that does not parse would otherwise only show when a run starts.
    alerts::rules::Rules::new(&config.alerts, &[]).map_err(|why| {
        anyhow::anyhow!(
            "{}: [alerts] thresholds: {why}",
            paths.config_file.display()
        )
    })?;
    let store = store::Store::open(&paths.database(), &paths.runs_dir())?;
    let socket = paths.socket();
    let daemon = Daemon::new(paths, config, store)?;
    let listener = server::bind(&socket)?;
    let http = http::bind(&daemon.config.http).await?;
    runs::adopt_all(&daemon);
    // After the runs: the queue's started jobs are checked against what was re-adopted.
    queue::adopt(&daemon);
    // After the runs too: a model whose server outlived the daemon is serving still.
    models::adopt_all(&daemon);
    tokio::spawn(queue::run(daemon.clone()));
    tokio::spawn(models::serving::run(daemon.clone()));
    tokio::spawn(triage::judge::watch(daemon.clone()));
    // Last: its tools reach every service above, and its wild-mode loops resume.
    agent::start(&daemon);
    tracing::info!(pid = daemon.info.pid, socket = %socket.display(), "reagentd ready");
    if background {
        let _ = writeln!(std::io::stdout(), "ready");
    }
    tokio::spawn(on_signals(daemon.clone()));
    tokio::spawn(gpu::sampler::run(daemon.clone()));
    if let Some(http) = http {
        tokio::spawn(http::serve(daemon.clone(), http));
    }
    server::serve(daemon.clone(), listener).await;
    tracing::info!("shutting down; runs keep going under their supervisors");
    say_goodbye(&daemon).await;
    // MCP servers are the daemon's children, not the runs': they go with it.
    daemon.agent.mcp.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

async fn on_signals(daemon: Arc<Daemon>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
    daemon.shutdown.notify_one();
}

/// Tells every client the daemon is going, and lets their writers send what is queued
/// (replies included, such as the answer to `daemon.shutdown`), for half a second at most.
async fn say_goodbye(daemon: &Daemon) {
    let outboxes = daemon.state().bus.drain_connections();
    let line = encode_notification(&Notification::Shutdown(Ack {}));
    for outbox in &outboxes {
        outbox.reply(line.clone());
        outbox.finish();
    }
    let all_flushed = futures_util::future::join_all(outboxes.iter().map(|o| o.flushed()));
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), all_flushed).await;
}
