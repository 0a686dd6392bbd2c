//! The handshake and the daemon's own methods: `hello` (with how a client catches up),
//! `daemon.status`, `daemon.shutdown`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Event;
use crate::gpu::{GpuReport, GpuSourceKind};
use crate::metrics::Trend;
use crate::run::RunInfo;
use crate::sweep::SweepInfo;

/// `hello` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Who is connecting, e.g. `reagent-tui 0.1.0`, for the daemon's log.
    #[serde(default)]
    pub client: String,
    /// The last `seq` this client saw, when it reconnects.
    #[serde(default)]
    pub since: Option<u64>,
}

/// `hello` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloReply {
    /// The daemon's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The daemon's identity.
    pub daemon: DaemonInfo,
    /// How the client catches up.
    pub sync: Sync,
}

/// How a client catches up after `hello`.
// Built once per handshake and moved straight into the reply: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sync {
    /// The whole state; replaces whatever the client had.
    Snapshot(Snapshot),
    /// The events after the client's `since`, in order; apply them to what it had.
    Events {
        /// The missed events.
        events: Vec<Event>,
    },
}

impl Sync {
    /// The seq this catch-up brings a client to, where its next `hello` resumes; `None` when
    /// it missed no event.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Snapshot(snapshot) => Some(snapshot.seq),
            Self::Events { events } => events.last().map(|event| event.seq),
        }
    }
}

/// The state a client renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The seq of the last event included in this state.
    pub seq: u64,
    /// Every run, oldest first.
    pub runs: Vec<RunInfo>,
    /// Clients attached (said `hello`) right now.
    pub clients: u32,
    /// The GPUs as last sampled.
    #[serde(default = "no_gpus")]
    pub gpus: GpuReport,
    /// Every sweep, oldest first.
    #[serde(default)]
    pub sweeps: Vec<SweepInfo>,
    /// Each run's main-metric trend, by run id, for runs that have metrics: the runs list
    /// draws it for ended runs too; `metrics` events bring it up to date.
    #[serde(default)]
    pub trends: HashMap<String, Trend>,
    /// Every recipe, by name.
    #[serde(default)]
    pub recipes: Vec<crate::model::Recipe>,
    /// Every model instance, oldest first, with its latest serving figures.
    #[serde(default)]
    pub models: Vec<crate::model::ModelInfo>,
}

fn no_gpus() -> GpuReport {
    GpuReport::empty(GpuSourceKind::None, None)
}

/// Who the daemon is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Crate version of `reagentd`.
    pub version: String,
    /// Its pid.
    pub pid: u32,
    /// When it started (Unix ms).
    pub started_at: i64,
    /// The state directory it owns.
    pub state_dir: String,
}

/// `daemon.status` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DaemonStatus {}

/// `daemon.status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// Who the daemon is.
    pub daemon: DaemonInfo,
    /// The latest event's seq.
    pub seq: u64,
    /// Clients attached right now.
    pub clients: u32,
    /// Runs by status, for runs that have any.
    pub runs: Vec<(crate::run::RunStatus, u32)>,
}

/// `daemon.shutdown` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Shutdown {}
