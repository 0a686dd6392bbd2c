//! The runs service's table: every run, and how to reach the live ones. Status changes go
//! through [`State::advance_run`], which asks [`super::lifecycle`] whether they can happen;
//! other changes (a name, a size, a W&B link) through [`State::update_run`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reagent::protocol::{EventKind, RpcError, codes};
use reagent::run::RunInfo;
use tokio::sync::mpsc;

use super::lifecycle::{self, RunEvent};
use super::pane::Pane;
use crate::daemon::State;
use crate::supervisor::wire::ControlMsg;
use crate::table::Table;

/// Every run, oldest first, and the live ones' handles.
pub struct Runs {
    table: Table<RunInfo>,
    /// Runs with a supervisor (or about to get one), or a Slurm job: how to reach them.
    live: HashMap<String, LiveRun>,
    /// What the daemon knows of Slurm beyond the runs: the tracker and the cluster.
    pub(crate) slurm: super::slurm::Board,
}

impl Runs {
    /// The runs loaded from the store, none live yet.
    pub fn new(runs: Vec<RunInfo>) -> Self {
        Self {
            table: Table::new(runs),
            live: HashMap::new(),
            slurm: super::slurm::Board::default(),
        }
    }

    /// Every run, oldest first.
    pub fn all(&self) -> &[RunInfo] {
        self.table.all()
    }
}

/// A run whose job may still produce output.
#[derive(Clone)]
pub struct LiveRun {
    /// Messages for its supervisor; buffered until the supervisor is connected.
    pub control: mpsc::UnboundedSender<ControlMsg>,
    /// Its screen model and output subscribers.
    pub pane: Arc<Mutex<Pane>>,
}

impl State {
    /// Every run, oldest first.
    pub fn runs(&self) -> &[RunInfo] {
        self.runs.table.all()
    }

    /// A run by exact id.
    pub fn run(&self, id: &str) -> Option<&RunInfo> {
        self.runs.table.get(id)
    }

    /// Finds a run by id, name (the newest run of that name) or unique id prefix, in that order.
    pub fn resolve(&self, query: &str) -> Result<&RunInfo, RpcError> {
        self.runs.table.resolve(query)
    }

    /// The live handle of a run, if its job may still run.
    pub fn live(&self, id: &str) -> Option<&LiveRun> {
        self.runs.live.get(id)
    }

    /// Registers a live run's handle.
    pub fn set_live(&mut self, id: &str, live: LiveRun) {
        self.runs.live.insert(id.to_string(), live);
    }

    /// Forgets a live run's handle (its job ended).
    pub fn remove_live(&mut self, id: &str) -> Option<LiveRun> {
        self.runs.live.remove(id)
    }

    /// Whether an id is free, in memory and in the store.
    pub fn id_is_free(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self.run(id).is_none() && !self.store().run_exists(id)?)
    }

    /// Commits a new run (or a changed one), then broadcasts it. Memory changes only after
    /// the commit.
    pub fn save_run(&mut self, run: RunInfo) -> Result<RunInfo, RpcError> {
        self.bus.emit(EventKind::Run { run: run.clone() })?;
        self.runs.table.upsert(run.clone());
        Ok(run)
    }

    /// Changes what a run is called or how it is shown (never its status), then commits
    /// and broadcasts it.
    pub fn update_run(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut RunInfo),
    ) -> Result<RunInfo, RpcError> {
        let mut run = self.known(id)?.clone();
        let status = run.status;
        change(&mut run);
        debug_assert_eq!(run.status, status, "statuses change through advance_run");
        self.save_run(run)
    }

    /// Moves a run along its life, then commits and broadcasts it. An event the run's
    /// status does not allow is refused with [`codes::INVALID_STATE`] and changes nothing.
    pub fn advance_run(&mut self, id: &str, event: RunEvent) -> Result<RunInfo, RpcError> {
        let run = lifecycle::advance(self.known(id)?, event)
            .map_err(|refused| RpcError::new(codes::INVALID_STATE, refused.to_string()))?;
        self.save_run(run)
    }

    fn known(&self, id: &str) -> Result<&RunInfo, RpcError> {
        self.run(id)
            .ok_or_else(|| RpcError::new(codes::NOT_FOUND, format!("no run `{id}`")))
    }

    /// Deletes a run with its alerts, trend and any queue entry, then broadcasts that. Its
    /// folder is the caller's to delete, outside the lock.
    pub fn remove_run(&mut self, id: &str) -> Result<(), RpcError> {
        self.bus
            .emit(EventKind::RunRemoved { id: id.to_string() })?;
        self.runs.table.retain(|run| run.id != id);
        self.runs.live.remove(id);
        self.alerts.retain(|alert| alert.run != id);
        self.trends.remove(id);
        // The row went with the event; this drops the job from memory.
        let (queue, store) = self.queue_mut();
        if let Err(err) = queue.remove(store, id) {
            tracing::warn!(run = %id, "cannot forget the removed run's queue entry: {err:#}");
        }
        Ok(())
    }
}
