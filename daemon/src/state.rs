//! The daemon's state, and the rule for touching it.
//!
//! **The rule:** all of it sits in one `Mutex<State>`, locked once per unit of work and never
//! held across an `.await`. A change is committed to SQLite, then applied in memory, then
//! broadcast, all under that one lock: every client sees events in `seq` order, and no client
//! hears of a change a restart could forget. Per-run screens ([`Pane`]) have their own locks
//! so that a job flooding output never holds up requests about other runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{DaemonInfo, Event, EventKind, Notification, RpcError, Snapshot, codes};
use reagent::run::RunInfo;
use reagent::time::now_ms;
use tokio::sync::{mpsc, watch};

use crate::outbox::{Outbox, Pushed, encode_notification};
use crate::runs::pane::Pane;
use crate::store::Store;
use crate::supervisor::wire::ControlMsg;

/// Everything the daemon owns, shared by every connection and run task.
pub struct Daemon {
    /// Where state lives.
    pub paths: Paths,
    /// The config file's content.
    pub config: Config,
    /// Who this daemon is.
    pub info: DaemonInfo,
    state: Mutex<State>,
    /// Fires when the daemon should exit.
    pub shutdown: tokio::sync::Notify,
}

/// The mutable part; see the module docs for the locking rule.
pub struct State {
    store: Store,
    seq: u64,
    /// Every run, oldest first.
    runs: Vec<RunInfo>,
    index: HashMap<String, usize>,
    /// Runs with a supervisor (or about to get one): how to reach them.
    live: HashMap<String, LiveRun>,
    /// Every open connection's outbox, by connection id.
    connections: HashMap<u64, Arc<Outbox>>,
    /// Connections that said `hello`, by connection id.
    subscribers: HashMap<u64, Arc<Outbox>>,
    changed: watch::Sender<u64>,
    history: u64,
}

/// A run whose job may still produce output.
#[derive(Clone)]
pub struct LiveRun {
    /// Messages for its supervisor; buffered until the supervisor is connected.
    pub control: mpsc::UnboundedSender<ControlMsg>,
    /// Its screen model and output subscribers.
    pub pane: Arc<Mutex<Pane>>,
}

impl Daemon {
    /// Builds the daemon around an opened store.
    pub fn new(paths: Paths, config: Config, store: Store) -> anyhow::Result<Arc<Self>> {
        let runs = store.load_runs()?;
        let seq = store.last_seq()?;
        let index = runs
            .iter()
            .enumerate()
            .map(|(i, run)| (run.id.clone(), i))
            .collect();
        let info = DaemonInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started_at: now_ms(),
            state_dir: paths.state_dir.display().to_string(),
        };
        let state = State {
            store,
            seq,
            runs,
            index,
            live: HashMap::new(),
            connections: HashMap::new(),
            subscribers: HashMap::new(),
            changed: watch::channel(seq).0,
            history: config.daemon.event_history.max(1),
        };
        Ok(Arc::new(Self {
            paths,
            config,
            info,
            state: Mutex::new(state),
            shutdown: tokio::sync::Notify::new(),
        }))
    }

    /// Locks the state. Never hold the guard across an `.await`.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Every run, oldest first.
    pub fn runs(&self) -> &[RunInfo] {
        &self.runs
    }

    /// A run by exact id.
    pub fn run(&self, id: &str) -> Option<&RunInfo> {
        self.index.get(id).map(|&i| &self.runs[i])
    }

    /// Finds a run by id, name (the newest run of that name) or unique id prefix, in that order.
    pub fn resolve(&self, query: &str) -> Result<&RunInfo, RpcError> {
        if let Some(run) = self.run(query) {
            return Ok(run);
        }
        // Names may repeat across reruns: the newest run with the name is the one meant.
        if let Some(run) = self
            .runs
            .iter()
            .rev()
            .find(|r| r.name.as_deref() == Some(query))
        {
            return Ok(run);
        }
        let candidates: Vec<_> = if query.is_empty() {
            Vec::new()
        } else {
            self.runs
                .iter()
                .filter(|r| r.id.starts_with(query))
                .collect()
        };
        match candidates[..] {
            [run] => Ok(run),
            [] => Err(RpcError::new(
                codes::NOT_FOUND,
                format!("no run matches `{query}`"),
            )),
            _ => {
                let ids: Vec<_> = candidates.iter().map(|r| r.id.as_str()).collect();
                let message = format!("`{query}` matches several runs: {}", ids.join(", "));
                Err(RpcError::new(codes::AMBIGUOUS, message))
            }
        }
    }

    /// The live handle of a run, if its job may still run.
    pub fn live(&self, id: &str) -> Option<&LiveRun> {
        self.live.get(id)
    }

    /// Registers a live run's handle.
    pub fn set_live(&mut self, id: &str, live: LiveRun) {
        self.live.insert(id.to_string(), live);
    }

    /// Forgets a live run's handle (its job ended).
    pub fn remove_live(&mut self, id: &str) -> Option<LiveRun> {
        self.live.remove(id)
    }

    /// Whether an id is free, in memory and in the store.
    pub fn id_is_free(&self, id: &str) -> anyhow::Result<bool> {
        Ok(!self.index.contains_key(id) && !self.store.run_exists(id)?)
    }

    /// Commits a new or changed run, then broadcasts it. Memory changes only after the commit.
    pub fn save_run(&mut self, run: RunInfo) -> Result<RunInfo, RpcError> {
        self.emit(EventKind::Run { run: run.clone() })?;
        match self.index.get(&run.id) {
            Some(&i) => self.runs[i] = run.clone(),
            None => {
                self.index.insert(run.id.clone(), self.runs.len());
                self.runs.push(run.clone());
            }
        }
        Ok(run)
    }

    /// Changes a run through `change`, then commits and broadcasts it.
    pub fn update_run(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut RunInfo),
    ) -> Result<RunInfo, RpcError> {
        let mut run = self
            .run(id)
            .cloned()
            .ok_or_else(|| RpcError::new(codes::NOT_FOUND, format!("no run `{id}`")))?;
        change(&mut run);
        self.save_run(run)
    }

    /// Assigns the next seq, commits the event, and pushes it to every subscriber.
    fn emit(&mut self, kind: EventKind) -> Result<(), RpcError> {
        let event = Event {
            seq: self.seq + 1,
            ts: now_ms(),
            kind,
        };
        self.store.commit(&event).map_err(|err| {
            tracing::error!("cannot save event {}: {err:#}", event.seq);
            RpcError::new(
                codes::INTERNAL_ERROR,
                format!("cannot save to the database: {err:#}"),
            )
        })?;
        self.seq = event.seq;
        if self.seq.is_multiple_of(1000)
            && let Err(err) = self.store.prune_events(self.history)
        {
            tracing::warn!("cannot prune old events: {err:#}");
        }
        let line = encode_notification(&Notification::Event(event));
        let before = self.subscribers.len();
        self.subscribers
            .retain(|_, outbox| outbox.push(&line) == Pushed::Queued);
        if self.subscribers.len() != before {
            tracing::info!(
                "{} client(s) fell behind and must resync",
                before - self.subscribers.len()
            );
        }
        self.changed.send_replace(self.seq);
        Ok(())
    }

    /// The state a client renders.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            runs: self.runs.clone(),
            clients: self.clients(),
        }
    }

    /// The latest seq.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The events after `since`, or `None` when they are no longer all kept (or `since` is
    /// from the future, e.g. a database that was reset): the client then needs a snapshot.
    pub fn events_since(&self, since: u64) -> Option<Vec<Event>> {
        if since > self.seq {
            return None;
        }
        if since == self.seq {
            return Some(Vec::new());
        }
        let first = self.store.first_seq().ok()??;
        if since + 1 < first {
            return None;
        }
        self.store.events_since(since).ok()
    }

    /// Clients attached (said `hello`) now.
    pub fn clients(&self) -> u32 {
        u32::try_from(self.subscribers.len()).unwrap_or(u32::MAX)
    }

    /// Subscribes a connection to events (after `hello`) and tells everyone the new count.
    pub fn subscribe(&mut self, conn: u64, outbox: Arc<Outbox>) {
        let fresh = self.subscribers.insert(conn, outbox).is_none();
        if fresh {
            self.announce_clients();
        }
    }

    /// Registers a new connection.
    pub fn connect(&mut self, conn: u64, outbox: Arc<Outbox>) {
        self.connections.insert(conn, outbox);
    }

    /// Forgets a closed connection and its subscription.
    pub fn disconnect(&mut self, conn: u64) {
        self.connections.remove(&conn);
        if self.subscribers.remove(&conn).is_some() {
            self.announce_clients();
        }
    }

    fn announce_clients(&mut self) {
        let attached = self.clients();
        if let Err(err) = self.emit(EventKind::Clients { attached }) {
            tracing::warn!("cannot record the client count: {err}");
        }
    }

    /// Forgets every connection (the daemon is going away), without announcing it.
    pub fn drain_connections(&mut self) -> Vec<Arc<Outbox>> {
        self.subscribers.clear();
        self.connections.drain().map(|(_, outbox)| outbox).collect()
    }

    /// A receiver that wakes on every new seq, for requests that wait for a change.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
