//! The event bus: the store handle, the event sequence, and who hears of each change.
//!
//! **The rule for changing what the daemon owns:** the bus and every service's table (see
//! [`crate::daemon::State`]) sit behind one mutex, locked once per unit of work and never
//! held across an `.await`. A change is committed to SQLite, then applied in memory, then
//! broadcast, all under that one lock: every client sees events in `seq` order, and no
//! client hears of a change a restart could forget. The bus commits and broadcasts
//! ([`Bus::emit`]); each service applies the change to its own table once that succeeded.

use std::collections::HashMap;
use std::sync::Arc;

use reagent::protocol::{Event, EventKind, Notification, RpcError, codes};
use reagent::time::now_ms;
use tokio::sync::watch;

use crate::outbox::{Outbox, Pushed, encode_notification};
use crate::store::Store;

/// The store, the sequence, and the connections events go to.
pub struct Bus {
    store: Store,
    seq: u64,
    /// Every open connection's outbox, by connection id.
    connections: HashMap<u64, Arc<Outbox>>,
    /// Connections that said `hello`, by connection id.
    subscribers: HashMap<u64, Arc<Outbox>>,
    changed: watch::Sender<u64>,
    /// How many events the store keeps for clients catching up.
    history: u64,
}

impl Bus {
    /// A bus over an opened store, continuing its sequence.
    pub fn new(store: Store, history: u64) -> anyhow::Result<Self> {
        let seq = store.last_seq()?;
        Ok(Self {
            store,
            seq,
            connections: HashMap::new(),
            subscribers: HashMap::new(),
            changed: watch::channel(seq).0,
            history: history.max(1),
        })
    }

    /// The database, for rows that are not events (the queue's, metrics progress).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Assigns the next seq, commits the event, and pushes it to every subscriber. On error
    /// nothing was committed or sent, and the caller must leave its table as it was.
    pub fn emit(&mut self, kind: EventKind) -> Result<(), RpcError> {
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

    /// Broadcasts an event that is not kept for replay (deltas, metrics ticks, GPU samples):
    /// it gets a `seq`, so clients keep their order, but a client that missed it re-reads
    /// what it shows.
    pub fn broadcast_ephemeral(&mut self, kind: EventKind) {
        self.broadcast(Event {
            seq: self.seq + 1,
            ts: now_ms(),
            kind,
        });
    }

    /// Gives the event its place in the sequence and pushes it to every subscriber. One
    /// encoded line is shared by all of them.
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
