//! The daemon's state, and the rule for touching it.
//!
//! **The rule:** all of it sits in one `Mutex<State>`, locked once per unit of work and never
//! held across an `.await`. A change is committed to SQLite, then applied in memory, then
//! broadcast, all under that one lock: every client sees events in `seq` order, and no client
//! hears of a change a restart could forget. Per-run screens ([`Pane`]) have their own locks
//! so that a job flooding output never holds up requests about other runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reagent::alert::AlertInfo;
use reagent::chat::{MessageInfo, Part, PartKind, SessionInfo};
use reagent::config::Config;
use reagent::lookup::resolve;
use reagent::metrics::Trend;
use reagent::paths::Paths;
use reagent::protocol::{DaemonInfo, Event, EventKind, Notification, RpcError, Snapshot, codes};
use reagent::run::RunInfo;
use reagent::sweep::SweepInfo;
use reagent::time::now_ms;
use tokio::sync::{mpsc, watch};

use crate::outbox::{Outbox, Pushed, encode_notification};
use crate::runs::pane::Pane;
use crate::store::{IngestRecord, Store};
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
    /// Chat: providers, the HTTP client, per-session answering tasks.
    pub chat: crate::chat::Chat,
    /// Word of alerts and run endings to Slack, Telegram, the desktop.
    pub notify: crate::notify::Notifier,
    /// Fires when the daemon should exit.
    pub shutdown: tokio::sync::Notify,
    /// Every run's metric series, and the tasks tailing live runs' metrics files.
    pub metrics: crate::metrics::Registry,
    /// True once the GPU sampler has its first reading (or knows there is none), so a
    /// `gpus.list` right after start waits for it instead of answering an empty board.
    pub gpus_ready: tokio::sync::watch::Sender<bool>,
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
    /// Every chat session, oldest first.
    sessions: Vec<SessionInfo>,
    /// Answers being written right now, by message id: the truth until they end.
    streaming: HashMap<String, MessageInfo>,
    /// The GPUs as last sampled, with their history.
    pub gpus: crate::gpu::GpuBoard,
    /// Runs waiting for (or holding) GPUs or a sweep slot.
    pub queue: crate::queue::Queue,
    /// Every sweep, oldest first.
    sweeps: Vec<SweepInfo>,
    /// Every alert, oldest first.
    alerts: Vec<AlertInfo>,
    /// Each run's main-metric trend as last saved with its metrics progress, by run id, for
    /// snapshots.
    trends: HashMap<String, Trend>,
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
        let interrupted = store.interrupt_unfinished()?;
        if interrupted > 0 {
            tracing::info!("{interrupted} answer(s) were cut off when the daemon last stopped");
        }
        let sessions = store.load_sessions()?;
        let queue = crate::queue::Queue::load(&store)?;
        let sweeps = store.load_sweeps()?;
        let alerts = store.load_alerts()?;
        let trends = store.load_trends()?;
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
            sessions,
            streaming: HashMap::new(),
            gpus: crate::gpu::GpuBoard::new(
                reagent::gpu::GpuSourceKind::None,
                None,
                config.gpus.history,
            ),
            queue,
            sweeps,
            alerts,
            trends,
        };
        let chat = crate::chat::Chat::new(&config)?;
        let notify = crate::notify::Notifier::from_config(&config)?;
        Ok(Arc::new(Self {
            chat,
            notify,
            paths,
            config,
            info,
            state: Mutex::new(state),
            shutdown: tokio::sync::Notify::new(),
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
        resolve(&self.runs, query, "run", |r| (&r.id, r.name.as_deref()))
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

    /// Deletes a run with its alerts and any queue entry, then broadcasts that. Its folder is
    /// the caller's to delete, outside the lock.
    pub fn remove_run(&mut self, id: &str) -> Result<(), RpcError> {
        self.emit(EventKind::RunRemoved { id: id.to_string() })?;
        self.runs.retain(|run| run.id != id);
        self.index = (self.runs.iter().enumerate())
            .map(|(i, run)| (run.id.clone(), i))
            .collect();
        self.alerts.retain(|alert| alert.run != id);
        self.trends.remove(id);
        self.live.remove(id);
        // The row went with the event; this drops the job from memory.
        if let Err(err) = self.queue.remove(&self.store, id) {
            tracing::warn!(run = %id, "cannot forget the removed run's queue entry: {err:#}");
        }
        Ok(())
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
        if event.seq.is_multiple_of(1000)
            && let Err(err) = self.store.prune_events(self.history)
        {
            tracing::warn!("cannot prune old events: {err:#}");
        }
        self.broadcast(event);
        Ok(())
    }

    /// Gives the event its place in the sequence and pushes it to every subscriber.
    fn broadcast(&mut self, event: Event) {
        self.seq = event.seq;
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
    }

    /// Saves how far a run's metrics were read with its trend, then keeps the trend for
    /// snapshots: a new client sees what a restarted daemon would (at most a second behind
    /// the `metrics` events, which carry the live one).
    pub fn save_metrics_progress(
        &mut self,
        run: &str,
        record: &IngestRecord,
        trend: Option<Trend>,
    ) -> anyhow::Result<()> {
        self.store.save_progress(run, record, trend.as_ref())?;
        if let Some(trend) = trend {
            self.trends.insert(run.to_string(), trend);
        }
        Ok(())
    }

    /// Broadcasts an event that is not kept for replay (metrics ticks): it gets a `seq`, so
    /// clients keep their order, but a client that missed it re-reads what it shows.
    pub fn broadcast_ephemeral(&mut self, kind: EventKind) {
        self.broadcast(Event {
            seq: self.seq + 1,
            ts: now_ms(),
            kind,
        });
    }

    /// Every alert, oldest first.
    pub fn alerts(&self) -> &[AlertInfo] {
        &self.alerts
    }

    /// Finds an alert by id or unique id prefix.
    pub fn resolve_alert(&self, query: &str) -> Result<&AlertInfo, RpcError> {
        resolve(&self.alerts, query, "alert", |a| (&a.id, None))
    }

    /// Commits a new or answered alert, then broadcasts it.
    pub fn save_alert(&mut self, alert: AlertInfo) -> Result<AlertInfo, RpcError> {
        self.emit(EventKind::Alert {
            alert: alert.clone(),
        })?;
        match self.alerts.iter_mut().find(|a| a.id == alert.id) {
            Some(existing) => *existing = alert.clone(),
            None => self.alerts.push(alert.clone()),
        }
        Ok(alert)
    }

    /// Every chat session, oldest first.
    pub fn sessions(&self) -> &[SessionInfo] {
        &self.sessions
    }

    /// Finds a session by id, title or unique id prefix.
    pub fn resolve_session(&self, query: &str) -> Result<&SessionInfo, RpcError> {
        resolve(&self.sessions, query, "session", |s| {
            (&s.id, s.title.as_deref())
        })
    }

    /// Commits a new or changed session, then broadcasts it.
    pub fn save_session(&mut self, session: SessionInfo) -> Result<SessionInfo, RpcError> {
        self.emit(EventKind::Session {
            session: session.clone(),
        })?;
        match self.sessions.iter_mut().find(|s| s.id == session.id) {
            Some(existing) => *existing = session.clone(),
            None => self.sessions.push(session.clone()),
        }
        Ok(session)
    }

    /// Deletes a session and its messages, then broadcasts that.
    pub fn delete_session(&mut self, id: &str) -> Result<(), RpcError> {
        self.emit(EventKind::SessionDeleted { id: id.to_string() })?;
        self.sessions.retain(|s| s.id != id);
        self.streaming.retain(|_, message| message.session != id);
        Ok(())
    }

    /// Commits a message's new state and broadcasts it; a streaming one is also kept in memory
    /// as the truth clients attach to.
    pub fn save_message(&mut self, message: MessageInfo) -> Result<MessageInfo, RpcError> {
        self.emit(EventKind::Message {
            message: message.clone(),
        })?;
        if message.status.is_terminal() {
            self.streaming.remove(&message.id);
        } else {
            self.streaming.insert(message.id.clone(), message.clone());
        }
        Ok(message)
    }

    /// A streaming answer as it stands.
    pub fn streaming(&self, id: &str) -> Option<&MessageInfo> {
        self.streaming.get(id)
    }

    /// Appends streamed text to part `part` of an answer (by default the last part, or a new
    /// one when the kind changes) and broadcasts the delta. Deltas get a `seq` but are not
    /// kept for replay (thousands a second); the message's own rows are.
    pub fn append(&mut self, id: &str, part: Option<usize>, kind: PartKind, text: &str) {
        let Some(message) = self.streaming.get_mut(id) else {
            return;
        };
        let index = match part {
            Some(index) if index < message.parts.len() => index,
            _ => {
                if message.parts.last().is_none_or(|p| p.kind != kind) {
                    message.parts.push(Part {
                        kind,
                        text: String::new(),
                        name: None,
                        call_id: None,
                    });
                }
                message.parts.len() - 1
            }
        };
        let offset = message.parts[index].text.len();
        message.parts[index].text.push_str(text);
        let (session, message) = (message.session.clone(), message.id.clone());
        let kind = EventKind::Delta {
            session,
            message,
            part: index,
            kind,
            offset,
            text: text.to_string(),
        };
        self.broadcast(Event {
            seq: self.seq + 1,
            ts: now_ms(),
            kind,
        });
    }

    /// Starts a tool-call part in an answer; returns its index.
    pub fn start_tool_call(&mut self, id: &str, call_id: &str, name: &str) -> Option<usize> {
        let message = self.streaming.get_mut(id)?;
        message.parts.push(Part {
            kind: PartKind::ToolCall,
            text: String::new(),
            name: Some(name.to_string()),
            call_id: Some(call_id.to_string()),
        });
        let index = message.parts.len() - 1;
        self.append(id, Some(index), PartKind::ToolCall, "");
        Some(index)
    }

    /// Rewrites a streaming answer's row without an event.
    pub fn persist_streaming(&self, id: &str) {
        if let Some(message) = self.streaming.get(id)
            && let Err(err) = self.store.save_message(message)
        {
            tracing::warn!("cannot save the streaming answer {id}: {err:#}");
        }
    }

    /// Tokens and cost per session and per day, from the store.
    pub fn usage_report(&self) -> anyhow::Result<reagent::chat::UsageReport> {
        self.store.usage_report()
    }

    /// A session's messages from the store, with answers still streaming as they stand now.
    pub fn messages(&self, session: &str) -> anyhow::Result<Vec<MessageInfo>> {
        let mut messages = self.store.load_messages(session)?;
        for message in &mut messages {
            if let Some(live) = self.streaming.get(&message.id) {
                *message = live.clone();
            }
        }
        Ok(messages)
    }

    /// The state a client renders.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            runs: self.runs.clone(),
            clients: self.clients(),
            gpus: self.gpus.full_report(),
            sweeps: self.sweeps.clone(),
            trends: self.trends.clone(),
        }
    }

    /// The queue with the database its rows go to.
    pub fn queue_mut(&mut self) -> (&mut crate::queue::Queue, &Store) {
        (&mut self.queue, &self.store)
    }

    /// The database, for rows that are not events (the queue's, metrics progress).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every sweep, oldest first.
    pub fn sweeps(&self) -> &[SweepInfo] {
        &self.sweeps
    }

    /// Finds a sweep by id, name or unique id prefix.
    pub fn resolve_sweep(&self, query: &str) -> Result<&SweepInfo, RpcError> {
        resolve(&self.sweeps, query, "sweep", |s| (&s.id, Some(&s.name)))
    }

    /// Commits a new or changed sweep, then broadcasts it.
    pub fn save_sweep(&mut self, sweep: SweepInfo) -> Result<SweepInfo, RpcError> {
        self.emit(EventKind::Sweep {
            sweep: sweep.clone(),
        })?;
        match self.sweeps.iter_mut().find(|s| s.id == sweep.id) {
            Some(existing) => *existing = sweep.clone(),
            None => self.sweeps.push(sweep.clone()),
        }
        Ok(sweep)
    }

    /// Broadcasts the last GPU sample; like deltas, it is not kept for replay.
    pub fn broadcast_gpus(&mut self) {
        let report = &self.gpus.report;
        let kind = EventKind::Gpus {
            source: report.source,
            unavailable: report.unavailable.clone(),
            gpus: report.gpus.clone(),
        };
        self.broadcast(Event {
            seq: self.seq + 1,
            ts: now_ms(),
            kind,
        });
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

/// A fresh 8-hex-digit id: short enough to type, random enough that a prefix usually names
/// one thing.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
