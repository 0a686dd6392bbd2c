//! What the daemon owns, put together: the [`Bus`] and each service's table under one lock
//! ([`State`]), and the parts that need no lock ([`Daemon`]).
//!
//! Each table lives in its service's module, with the locked methods that change it (an
//! `impl State` block there): runs in [`crate::runs::table`], sessions and streaming answers
//! in [`crate::chat::table`], alerts in [`crate::alerts::table`], sweeps in
//! [`crate::queue::sweeps`], trends in [`crate::metrics`], the GPU board in [`crate::gpu`],
//! recipes and model instances in [`crate::models::table`].
//! This file only composes them; see [`crate::bus`] for the locking rule.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{DaemonInfo, RpcError, Snapshot, codes};
use reagent::time::now_ms;

use crate::bus::Bus;
use crate::store::Store;
use crate::table::Table;

/// Everything the daemon owns, shared by every connection and run task.
pub struct Daemon {
    /// Where state lives.
    pub paths: Paths,
    /// The config file's content.
    pub config: Config,
    /// Who this daemon is.
    pub info: DaemonInfo,
    state: Mutex<State>,
    /// Chat: providers, the HTTP client, per-session answering tasks.
    pub chat: crate::chat::Chat,
    /// The agent: MCP servers and the wake-ups of wild-mode loops.
    pub agent: crate::agent::Agent,
    /// Word of alerts and run endings to Slack, Telegram, the desktop.
    pub notify: crate::notify::Notifier,
    /// Fires when the daemon should exit.
    pub shutdown: tokio::sync::Notify,
    /// Wakes the queue's task (`queue::run`): a run ended or was stopped before it started,
    /// or GPUs changed. Those who wake it need not know the queue.
    pub queue_wake: tokio::sync::Notify,
    /// Every run's metric series, and the tasks tailing live runs' metrics files.
    pub metrics: crate::metrics::Registry,
    /// True once the GPU sampler has its first reading (or knows there is none), so a
    /// `gpus.list` right after start waits for it instead of answering an empty board.
    pub gpus_ready: tokio::sync::watch::Sender<bool>,
}

/// The bus and every service's table; see [`crate::bus`] for the rule for touching it.
pub struct State {
    /// Commits and broadcasts every change.
    pub(crate) bus: Bus,
    /// Every run and how to reach the live ones.
    pub(crate) runs: crate::runs::table::Runs,
    /// Every chat session, and the answers being written now.
    pub(crate) chat: crate::chat::table::Sessions,
    /// Every alert, oldest first.
    pub(crate) alerts: Table<reagent::alert::AlertInfo>,
    /// Every sweep, oldest first.
    pub(crate) sweeps: Table<reagent::sweep::SweepInfo>,
    /// Runs waiting for (or holding) GPUs or a sweep slot.
    pub(crate) queue: crate::queue::Queue,
    /// The GPUs as last sampled, with their history.
    pub(crate) gpus: crate::gpu::GpuBoard,
    /// Each run's whole-run trend, as last saved.
    pub(crate) trends: crate::metrics::Trends,
    /// Recipes and model instances.
    pub(crate) models: crate::models::table::Models,
    /// Tokens of the HTTP face (their hashes).
    pub(crate) tokens: crate::tokens::Tokens,
    /// The agent's approvals and wild-mode loops.
    pub(crate) agent: crate::agent::table::AgentTable,
}

impl Daemon {
    /// Builds the daemon around an opened store.
    pub fn new(paths: Paths, config: Config, store: Store) -> anyhow::Result<Arc<Self>> {
        let interrupted = store.interrupt_unfinished()?;
        if interrupted > 0 {
            tracing::info!("{interrupted} answer(s) were cut off when the daemon last stopped");
        }
        let state = State {
            runs: crate::runs::table::Runs::new(store.load_runs()?),
            chat: crate::chat::table::Sessions::new(store.load_sessions()?),
            alerts: Table::new(store.load_alerts()?),
            sweeps: Table::new(store.load_sweeps()?),
            queue: crate::queue::Queue::load(&store)?,
            gpus: crate::gpu::GpuBoard::new(
                reagent::gpu::GpuSourceKind::None,
                None,
                config.gpus.history,
            ),
            trends: store.load_trends()?,
            models: crate::models::table::Models::new(store.load_recipes()?, store.load_models()?),
            tokens: store.load_tokens()?,
            agent: crate::agent::table::AgentTable::load(&store)?,
            bus: Bus::new(store, config.daemon.event_history)?,
        };
        let info = DaemonInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started_at: now_ms(),
            state_dir: paths.state_dir.display().to_string(),
        };
        Ok(Arc::new(Self {
            chat: crate::chat::Chat::new(&config)?,
            agent: crate::agent::Agent::new(&config),
            notify: crate::notify::Notifier::from_config(&config)?,
            paths,
            config,
            info,
            state: Mutex::new(state),
            shutdown: tokio::sync::Notify::new(),
            queue_wake: tokio::sync::Notify::new(),
            metrics: crate::metrics::Registry::default(),
            gpus_ready: tokio::sync::watch::channel(false).0,
        }))
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The state a client renders.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.bus.seq(),
            runs: self.runs.all().to_vec(),
            clients: self.bus.clients(),
            gpus: self.gpus.full_report(),
            sweeps: self.sweeps.all().to_vec(),
            trends: self.trends.clone(),
            recipes: self.models.recipes(),
            models: self.models.all().to_vec(),
        }
    }

    /// The database, for rows that are not events (the queue's, metrics progress).
    pub fn store(&self) -> &Store {
        self.bus.store()
    }

    /// The queue with the database its rows go to.
    pub fn queue_mut(&mut self) -> (&mut crate::queue::Queue, &Store) {
        (&mut self.queue, self.bus.store())
    }
}

/// An internal failure (disk, database) as a reply, logged: the client learns what failed,
/// and the log keeps it.
pub fn internal(err: impl std::fmt::Display) -> RpcError {
    tracing::error!("{err}");
    RpcError::new(codes::INTERNAL_ERROR, err.to_string())
}

/// A fresh 8-hex-digit id: short enough to type, random enough that a prefix usually names
/// one thing.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
