//! What the daemon pushes without being asked: events (every state change, with a `seq`),
//! the output of attached runs, and the resync and shutdown notices.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Ack, Blob};
use crate::agent::{Approval, FileChange, WildInfo};
use crate::alert::AlertInfo;
use crate::chat::{MessageInfo, PartKind, SessionInfo};
use crate::gpu::{GpuInfo, GpuSourceKind};
use crate::metrics::{Latest, Trend};
use crate::model::{ModelInfo, Recipe, ServingStats};
use crate::run::RunInfo;
use crate::sweep::SweepInfo;

/// A state change, broadcast to every client that said `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic across daemon restarts: clients resync from it.
    pub seq: u64,
    /// When it happened (Unix ms).
    pub ts: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What changed.
// Events live only long enough to be encoded or applied; boxing the run would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A run was created or changed; the run as it is now.
    Run {
        /// The run.
        run: RunInfo,
    },
    /// The number of attached clients changed.
    Clients {
        /// Clients attached now.
        attached: u32,
    },
    /// A chat session was created or changed.
    Session {
        /// The session.
        session: SessionInfo,
    },
    /// A session was deleted.
    SessionDeleted {
        /// Its id.
        id: String,
    },
    /// An ended run was removed with its log, series and alerts: clients forget it.
    RunRemoved {
        /// Its id.
        id: String,
    },
    /// A message was created or changed state (its parts as they are now).
    Message {
        /// The message.
        message: MessageInfo,
    },
    /// Text streamed into a message part. Not kept for replay: a client that missed deltas
    /// reads the message from `session.history` (or its final `message` event).
    Delta {
        /// The session.
        session: String,
        /// The message.
        message: String,
        /// Index of the part in the message.
        part: usize,
        /// The part's kind (a new index starts a new part).
        kind: PartKind,
        /// Bytes of the part before this text: a client that already has them (from
        /// `session.history`) skips the delta, one that has fewer re-reads the history.
        offset: usize,
        /// The text to append.
        text: String,
    },
    /// The provider answered a request for an answer with a status worth retrying (429, 529,
    /// 5xx) before its first token, and the daemon will ask again after `delay_ms`: the user
    /// sees why nothing streams yet. Not kept for replay; text arriving or the answer ending
    /// makes it moot. Carries no header or key, only the status and the provider's name.
    ChatRetrying {
        /// The session.
        session: String,
        /// The answer being waited for.
        message: String,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// How long the daemon waits before asking again.
        delay_ms: u64,
        /// The HTTP status the provider answered.
        status: u16,
        /// The provider's configured name.
        provider: String,
    },
    /// A GPU sample that differs from the last. Not kept for replay (one a second).
    Gpus {
        /// Where readings come from.
        source: GpuSourceKind,
        /// Why there are no readings, if so.
        unavailable: Option<String>,
        /// Every GPU now.
        gpus: Vec<GpuInfo>,
    },
    /// A sweep was created or changed.
    Sweep {
        /// The sweep.
        sweep: SweepInfo,
    },
    /// New metrics arrived for a run (coalesced to a few a second). Not kept for replay: a
    /// client re-queries the charts it shows and takes the newest values from here.
    Metrics {
        /// The run's id.
        run: String,
        /// Points stored for the run so far, over all its series.
        points: u64,
        /// The newest step.
        last_step: f64,
        /// The newest value of each series that changed.
        latest: Vec<Latest>,
        /// The run's main-metric trend as it is now.
        #[serde(default)]
        trend: Option<Trend>,
    },
    /// An alert was raised or answered; the alert as it is now.
    Alert {
        /// The alert.
        alert: AlertInfo,
    },
    /// A recipe was added or replaced.
    Recipe {
        /// The recipe as stored.
        recipe: Recipe,
    },
    /// A recipe was removed.
    RecipeRemoved {
        /// Its name.
        name: String,
    },
    /// A model instance changed: its launch moved on, it became ready, it ended.
    Model {
        /// The instance as it is now.
        model: ModelInfo,
    },
    /// A ready model's latest serving figures. Ephemeral, like `gpus`: a client catching up
    /// reads them from the snapshot.
    Serving {
        /// The model's name.
        model: String,
        /// The figures.
        stats: ServingStats,
    },
    /// A request to run an acting tool was made or settled.
    Approval {
        /// The request as it is now.
        approval: Approval,
    },
    /// The agent wrote a file: clients follow what it changes.
    File {
        /// The file, its size and its diff stat.
        change: FileChange,
    },
    /// A wild-mode loop started, moved on or ended.
    Wild {
        /// The loop as it is now.
        wild: WildInfo,
    },
}

/// Daemon → client notifications.
// Like events, they live only long enough to be encoded or applied.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Notification {
    /// A state change.
    Event(Event),
    /// Bytes a run printed (only for runs this client attached to).
    Output(Output),
    /// The daemon dropped this client's queue; say `hello` with `since` and re-attach.
    Resync(Resync),
    /// The daemon is shutting down.
    Shutdown(Ack),
}

impl Notification {
    /// Reads a notification from its `method` and its `params` left unparsed, as a client
    /// does after reading a line's envelope once: only the params are parsed again, straight
    /// into their type. Agrees with the derived form (`tag = "method"`, `content = "params"`).
    pub fn from_parts(method: &str, params: &RawValue) -> serde_json::Result<Self> {
        let json = params.get();
        Ok(match method {
            "event" => Self::Event(serde_json::from_str(json)?),
            "output" => Self::Output(serde_json::from_str(json)?),
            "resync" => Self::Resync(serde_json::from_str(json)?),
            "shutdown" => Self::Shutdown(serde_json::from_str(json)?),
            other => {
                return Err(serde::de::Error::unknown_variant(
                    other,
                    &["event", "output", "resync", "shutdown"],
                ));
            }
        })
    }
}

/// `output` notification params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The run's id.
    pub run: String,
    /// Log offset of the first byte.
    pub offset: u64,
    /// The bytes.
    pub data: Blob,
}

/// `resync` notification params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    /// Why, for the client's log.
    pub reason: String,
}
