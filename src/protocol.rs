//! The one protocol every client speaks: JSON-RPC 2.0, one message per line.
//!
//! Clients send requests (`{"jsonrpc":"2.0","id":1,"method":"runs.list","params":{}}`) and get
//! one response each. The daemon also sends notifications: `event` for every state change, with
//! a monotonic `seq`; `output` for the bytes of runs a client attached to; `resync` when it had
//! to drop what it queued for a client that fell behind.
//!
//! Each method is a params type implementing [`Method`], which names its reply type, so
//! clients call `client.call(StopRun { .. })` and get a typed answer; the daemon matches on
//! [`Request`], which lists every method once. Both come from the `methods!` table below.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::alert::{AlertInfo, AlertStatus, Choice};
use crate::chat::{MessageInfo, PartKind, ProviderInfo, SessionInfo, UsageReport};
use crate::gpu::{GpuInfo, GpuReport, GpuSourceKind, ListGpus, ListQueue, QueueEntry, SubmitRun};
use crate::metrics::{Latest, MetricsList, MetricsQueryReply, QueryWindow, Trend};
use crate::run::{RunInfo, RunSpec, RunStatus};
use crate::sweep::{ListSweeps, SweepInfo, SweepRef, SweepSpec};

mod incoming;

pub use incoming::{Incoming, RequestId, parse_request};

/// Bumped on every incompatible change; `hello` refuses a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line either side accepts. A longer one is refused and its connection closed,
/// because the only way to skip it would be to read it all.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A method: its params type, wire name and reply type.
pub trait Method: Serialize + DeserializeOwned {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// What the daemon answers.
    type Reply: Serialize + DeserializeOwned;
}

macro_rules! methods {
    ($( $(#[$doc:meta])* $name:literal => $variant:ident($params:ty) -> $reply:ty; )*) => {
        /// Every request a client can make, parsed by the daemon.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $( $(#[$doc])* $variant($params), )*
        }

        impl Request {
            /// Every method name the daemon knows.
            pub const METHODS: &'static [&'static str] = &[$($name),*];

            /// Parses a method's params. An unknown method is -32601; params that do not fit
            /// are -32602 with the offending field's path in the message.
            pub fn parse(method: &str, params: Value) -> Result<Self, RpcError> {
                match method {
                    $( $name => decode_params(params).map(Request::$variant), )*
                    other => Err(RpcError::new(
                        codes::METHOD_NOT_FOUND,
                        format!("unknown method `{other}`"),
                    )),
                }
            }

            /// This request's method name.
            pub fn method(&self) -> &'static str {
                match self {
                    $( Request::$variant(_) => $name, )*
                }
            }
        }

        $( impl Method for $params {
            const NAME: &'static str = $name;
            type Reply = $reply;
        } )*
    };
}

methods! {
    /// Handshake: check versions, subscribe to events, get a snapshot or the missed events.
    "hello" => Hello(Hello) -> HelloReply;
    /// The daemon's identity and counts; needs no handshake.
    "daemon.status" => DaemonStatus(DaemonStatus) -> StatusReply;
    /// Ask the daemon to exit cleanly. Runs keep going under their supervisors.
    "daemon.shutdown" => Shutdown(Shutdown) -> Ack;
    /// Every run, oldest first; or those a status, a name pattern and a limit pick.
    "runs.list" => ListRuns(ListRuns) -> Vec<RunInfo>;
    /// Start a run.
    "run.start" => StartRun(RunSpec) -> RunInfo;
    /// Stop a run: SIGTERM to its process group, SIGKILL after the grace period.
    "run.stop" => StopRun(StopRun) -> RunInfo;
    /// Type into a run's terminal.
    "run.input" => SendInput(SendInput) -> Ack;
    /// Resize a run's terminal.
    "run.resize" => ResizeRun(ResizeRun) -> Ack;
    /// Give a run a (new) name.
    "run.rename" => RenameRun(RenameRun) -> RunInfo;
    /// Read a slice of a run's log.
    "run.log" => ReadLog(ReadLog) -> LogChunk;
    /// Subscribe to a run's output: returns its current screen, then `output` notifications.
    "run.attach" => Attach(Attach) -> Attached;
    /// Stop receiving a run's output.
    "run.detach" => Detach(Detach) -> Ack;
    /// Answer once the run has ended.
    "run.wait" => WaitRun(WaitRun) -> RunInfo;
    /// Start a run again as a new run: the same cwd, env, GPUs, metrics file and alert rules,
    /// and the same command unless a new one is given.
    "run.rerun" => RerunRun(RerunRun) -> RunInfo;
    /// Remove ended runs with their logs, series and alerts; a live run is refused.
    "runs.remove" => RemoveRuns(RemoveRuns) -> Vec<RunInfo>;
    /// Remove every ended run of a kind (finished by default), optionally only old ones.
    "runs.clean" => CleanRuns(CleanRuns) -> Vec<RunInfo>;
    /// Every chat session, oldest first.
    "sessions.list" => ListSessions(ListSessions) -> Vec<SessionInfo>;
    /// Start a chat session.
    "session.create" => CreateSession(CreateSession) -> SessionInfo;
    /// A session's messages, oldest first (a streaming answer as far as it got).
    "session.history" => SessionHistory(SessionHistory) -> Vec<MessageInfo>;
    /// Send a user message; returns the answer's message, which then streams as events.
    "chat.send" => SendChat(SendChat) -> MessageInfo;
    /// Stop the answer streaming in a session, keeping what arrived.
    "chat.cancel" => CancelChat(CancelChat) -> Ack;
    /// The configured LLM providers (never their keys).
    "providers.list" => ListProviders(ListProviders) -> Vec<ProviderInfo>;
    /// Give a session a (new) title.
    "session.rename" => RenameSession(RenameSession) -> SessionInfo;
    /// Switch a session to another model; the next answer comes from it.
    "session.model" => SetSessionModel(SetSessionModel) -> SessionInfo;
    /// Delete a session and its messages (an answer streaming in it is cancelled).
    "session.delete" => DeleteSession(DeleteSession) -> Ack;
    /// Copy a session's history up to a message into a new session; both go on independently.
    "session.fork" => ForkSession(ForkSession) -> SessionInfo;
    /// Tokens and cost per session and per day.
    "usage.report" => UsageQuery(UsageQuery) -> UsageReport;
    /// The GPUs now, their recent utilisation, and why there are none when there are none.
    "gpus.list" => ListGpus(ListGpus) -> GpuReport;
    /// Start a run that needs GPUs (or has a priority): it waits in the queue for them.
    "run.submit" => SubmitRun(SubmitRun) -> RunInfo;
    /// Runs waiting for GPUs (and why) and runs holding GPUs.
    "queue.list" => ListQueue(ListQueue) -> Vec<QueueEntry>;
    /// Expand a sweep into queued runs.
    "sweep.start" => StartSweep(SweepSpec) -> SweepInfo;
    /// Every sweep, oldest first.
    "sweeps.list" => ListSweeps(ListSweeps) -> Vec<SweepInfo>;
    /// One sweep.
    "sweep.show" => ShowSweep(SweepRef) -> SweepInfo;
    /// Stop a sweep's running runs and drop its queued ones.
    "sweep.stop" => StopSweep(StopSweep) -> SweepInfo;
    /// A run's metric series with their counts and newest values, and its metrics file.
    "metrics.list" => ListMetrics(ListMetrics) -> MetricsList;
    /// A chart's worth of a run's series: downsampled to the columns asked for.
    "metrics.query" => QueryMetrics(QueryMetrics) -> MetricsQueryReply;
    /// Alerts, oldest first, optionally only open ones or one run's.
    "alerts.list" => ListAlerts(ListAlerts) -> Vec<AlertInfo>;
    /// Answer an alert: ignore it, stop its run, or open a chat about it.
    "alert.respond" => RespondAlert(RespondAlert) -> AlertResponse;
    /// Ignore every open alert like one (same rule and subject) on the runs of its sweep, or
    /// on every run when its run is in no sweep: a sweep raises the same alert on each run.
    "alerts.ignore_like" => IgnoreAlertsLike(IgnoreAlertsLike) -> IgnoredAlerts;
}

/// `metrics.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMetrics {
    /// Id, name or unique id prefix.
    pub run: String,
}

/// `metrics.query` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMetrics {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The series wanted; every series when empty.
    #[serde(default)]
    pub names: Vec<String>,
    /// Which steps.
    #[serde(default = "all_steps")]
    pub window: QueryWindow,
    /// The chart's width in columns (points come back as min and max per column).
    pub columns: usize,
}

fn all_steps() -> QueryWindow {
    QueryWindow::All
}

/// `alerts.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListAlerts {
    /// Only alerts in this status.
    #[serde(default)]
    pub status: Option<AlertStatus>,
    /// Only this run's (id, name or unique id prefix).
    #[serde(default)]
    pub run: Option<String>,
}

/// `alert.respond` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RespondAlert {
    /// The alert's id or unique id prefix.
    pub id: String,
    /// The answer; must be one of the alert's choices.
    pub choice: Choice,
}

/// `alert.respond` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertResponse {
    /// The alert, answered.
    pub alert: AlertInfo,
    /// The chat session opened by `chat`.
    pub session: Option<String>,
}

/// `alerts.ignore_like` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreAlertsLike {
    /// The id or unique id prefix of the alert whose like are ignored (it may be answered
    /// already; its open likes are still ignored).
    pub id: String,
}

/// `alerts.ignore_like` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredAlerts {
    /// Where its likes were looked for: `sweep NAME` or `every run`.
    pub scope: String,
    /// The alerts ignored now, answered; empty when none was open.
    pub alerts: Vec<AlertInfo>,
}

impl IgnoredAlerts {
    /// What was done, in words the CLI and the cockpit both show:
    /// `ignored 3 alerts (threshold on loss) across sweep lr`.
    pub fn summary(&self) -> String {
        let Some(first) = self.alerts.first() else {
            return format!("no open alert like it across {}", self.scope);
        };
        let kind = match &first.subject {
            Some(subject) => format!("{} on {subject}", first.rule),
            None => first.rule.to_string(),
        };
        let count = self.alerts.len();
        let plural = if count == 1 { "" } else { "s" };
        format!(
            "ignored {count} alert{plural} ({kind}) across {}",
            self.scope
        )
    }
}

/// `sweep.stop` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSweep {
    /// Sweep id, name or unique id prefix.
    pub sweep: String,
}

/// `usage.report` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageQuery {}

/// `session.rename` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameSession {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The new title; empty clears it.
    pub title: String,
}

/// `session.model` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSessionModel {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// `PROVIDER/MODEL`.
    pub model: String,
}

/// `session.delete` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSession {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `session.fork` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkSession {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The last message to copy (id or unique prefix); the whole history when absent.
    #[serde(default)]
    pub at: Option<String>,
}

/// `sessions.list` params (none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListSessions {}

/// `session.create` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateSession {
    /// `PROVIDER/MODEL`; the daemon's default model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// The system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// Working directory; the daemon's when absent.
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
    /// A title.
    #[serde(default)]
    pub title: Option<String>,
}

/// `session.history` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHistory {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `chat.send` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendChat {
    /// Session id, title or unique id prefix.
    pub session: String,
    /// The user's message.
    pub text: String,
}

/// `chat.cancel` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelChat {
    /// Session id, title or unique id prefix.
    pub session: String,
}

/// `providers.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListProviders {
    /// Ask each provider whether it answers (its model list), within a few seconds.
    #[serde(default)]
    pub check: bool,
}

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

/// `runs.list` params: every run by default; each filter given narrows the list, which stays
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListRuns {
    /// Only runs in this status.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Only runs whose name matches this pattern (`*` any text, `?` one character); runs
    /// without a name never match.
    #[serde(default)]
    pub name: Option<String>,
    /// Only the newest this many of the runs the other filters pick.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl ListRuns {
    /// Of `runs` (oldest first), those these filters pick, oldest first: the one rule every
    /// client and the daemon share.
    pub fn select(&self, runs: &[RunInfo]) -> Vec<RunInfo> {
        let picked: Vec<&RunInfo> = runs
            .iter()
            .filter(|run| self.status.is_none_or(|status| run.status == status))
            .filter(|run| {
                self.name.as_deref().is_none_or(|pattern| {
                    run.name
                        .as_deref()
                        .is_some_and(|name| crate::names::glob_match(pattern, name))
                })
            })
            .collect();
        let skip = self
            .limit
            .map_or(0, |limit| picked.len().saturating_sub(limit));
        picked.into_iter().skip(skip).cloned().collect()
    }
}

/// `run.rerun` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunRun {
    /// Id, name or unique id prefix of the run to start again.
    pub run: String,
    /// The new run's program and arguments; the old run's when absent.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

/// `runs.remove` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRuns {
    /// Ids, names or unique id prefixes; every one must name an ended run, or none is removed.
    pub runs: Vec<String>,
}

/// `runs.clean` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanRuns {
    /// Which ended runs go.
    #[serde(default)]
    pub which: CleanScope,
    /// Only runs that ended at least this many milliseconds ago.
    #[serde(default)]
    pub older_than_ms: Option<u64>,
}

/// Which ended runs `runs.clean` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanScope {
    /// Runs that exited with code 0: done with, their results elsewhere.
    #[default]
    Finished,
    /// Runs that failed.
    Failed,
    /// Every ended run: finished, failed, stopped or lost.
    Ended,
}

impl CleanScope {
    /// Whether a run in `status` is one this scope removes (never a live one).
    pub fn covers(self, status: RunStatus) -> bool {
        match self {
            Self::Finished => status == RunStatus::Finished,
            Self::Failed => status == RunStatus::Failed,
            Self::Ended => status.is_terminal(),
        }
    }
}

/// `run.stop` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Seconds between SIGTERM and SIGKILL; the config's default when absent.
    #[serde(default)]
    pub grace_secs: Option<f64>,
}

/// `run.input` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInput {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The bytes to type.
    pub data: Blob,
}

/// `run.resize` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// New width.
    pub cols: u16,
    /// New height.
    pub rows: u16,
}

/// `run.rename` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The new name; empty clears it.
    pub name: String,
}

/// `run.log` params: either from `offset` or the last `tail_lines` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadLog {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Byte offset to read from (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Start this many lines before the end instead.
    #[serde(default)]
    pub tail_lines: Option<usize>,
    /// At most this many bytes (the daemon caps it at 4 MiB).
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

/// `run.log` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// Offset of the first byte of `data`.
    pub offset: u64,
    /// The bytes.
    pub data: Blob,
    /// The log's size when read; `offset + data.len() == size` means nothing more, for now.
    pub size: u64,
}

/// `run.attach` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Resize the run's terminal to this (cols, rows) first, as `reagent attach` does.
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// `run.attach` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attached {
    /// The run.
    pub run: RunInfo,
    /// Log offset the screen reflects; `output` notifications continue from here.
    pub offset: u64,
    /// Escape sequences that paint the current screen (and cursor and modes) on a blank
    /// terminal of the run's size.
    pub screen: Blob,
}

/// `run.detach` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detach {
    /// Id, name or unique id prefix.
    pub run: String,
}

/// `run.wait` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRun {
    /// Id, name or unique id prefix.
    pub run: String,
}

/// An empty success reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {}

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

/// Bytes, carried as base64 in JSON: terminal output is not always UTF-8.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Blob)
            .map_err(|err| serde::de::Error::custom(format!("invalid base64: {err}")))
    }
}

/// JSON-RPC error codes: the standard ones and reagent's own.
pub mod codes {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC request (or a line over [`super::MAX_LINE_BYTES`]).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The daemon failed (disk, database …).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// No run matches.
    pub const NOT_FOUND: i64 = -32001;
    /// Several runs match a prefix or name.
    pub const AMBIGUOUS: i64 = -32002;
    /// `hello` with another protocol version.
    pub const VERSION_MISMATCH: i64 = -32003;
    /// The request does not fit the run's state (input to a finished run …).
    pub const INVALID_STATE: i64 = -32004;
    /// The daemon already serves as many connections as it takes (`max_clients`); sent with
    /// a null id to a connection it then closes.
    pub const TOO_MANY_CLIENTS: i64 = -32005;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// One of [`codes`].
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn decode_params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize(params).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if path == "." {
            format!("invalid params: {inner}")
        } else {
            format!("invalid params: `{path}`: {inner}")
        };
        RpcError::new(codes::INVALID_PARAMS, message)
    })
}

/// A request as sent by a client.
#[derive(Debug, Serialize)]
pub struct OutgoingRequest<'a, P> {
    /// Always "2.0".
    pub jsonrpc: &'static str,
    /// The client's id for matching the response.
    pub id: u64,
    /// The method name.
    pub method: &'static str,
    /// The params.
    pub params: &'a P,
}

/// A response. The daemon sends it with the [`RequestId`] it read and its typed result;
/// clients read both back as [`Value`]s (the defaults), since they only match ids they chose.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response<Id = Value, R = Value> {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The request's id (null when it could not be read).
    pub id: Id,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl<Id, R> Response<Id, R> {
    /// A success response.
    pub fn ok(id: Id, result: R) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }
}

impl<Id> Response<Id> {
    /// An error response.
    pub fn err(id: Id, error: RpcError) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A notification as sent by the daemon: the [`Notification`] plus the `jsonrpc` tag.
#[derive(Debug, Serialize)]
pub struct OutgoingNotification<'a> {
    /// Always "2.0".
    pub jsonrpc: &'static str,
    /// `method` and `params`.
    #[serde(flatten)]
    pub notification: &'a Notification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_method_parses_typed_params() {
        let line =
            br#"{"jsonrpc":"2.0","id":7,"method":"run.stop","params":{"run":"ab","grace_secs":2}}"#;
        let Incoming { reply_to, request } = parse_request(line);
        assert_eq!(reply_to.unwrap().as_json(), "7");
        let expected = StopRun {
            run: "ab".into(),
            grace_secs: Some(2.0),
        };
        assert_eq!(request.unwrap(), Request::StopRun(expected));
    }

    #[test]
    fn missing_params_mean_empty_object() {
        let request = parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"runs.list"}"#).request;
        assert_eq!(request.unwrap(), Request::ListRuns(ListRuns::default()));
    }

    #[test]
    fn errors_carry_the_right_codes() {
        let code = |line: &[u8]| parse_request(line).request.unwrap_err().code;
        assert_eq!(code(b"not json"), codes::PARSE_ERROR);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"runs.li"#),
            codes::PARSE_ERROR
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#),
            codes::METHOD_NOT_FOUND
        );
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":1,"method":"runs.list"}"#),
            codes::INVALID_REQUEST
        );
        assert_eq!(code(br#"[1,2]"#), codes::INVALID_REQUEST);
    }

    #[test]
    fn wrong_param_type_names_the_field() {
        let line = br#"{"jsonrpc":"2.0","id":1,"method":"run.resize","params":{"run":"a","cols":"wide","rows":5}}"#;
        let err = parse_request(line).request.unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(err.message.contains("`cols`"), "{}", err.message);
    }

    #[test]
    fn blobs_round_trip_arbitrary_bytes() {
        let blob = Blob(vec![0, 0xff, b'\n', 0x1b]);
        let json = serde_json::to_string(&blob).unwrap();
        assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), blob);
    }

    #[test]
    fn notifications_are_tagged_by_method() {
        let note = Notification::Resync(Resync {
            reason: "slow".into(),
        });
        let json = serde_json::to_value(OutgoingNotification {
            jsonrpc: "2.0",
            notification: &note,
        })
        .unwrap();
        assert_eq!(json["method"], "resync");
        assert_eq!(json["params"]["reason"], "slow");
        assert_eq!(json["jsonrpc"], "2.0");
    }

    #[test]
    fn every_method_is_listed_once() {
        let mut names = Request::METHODS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Request::METHODS.len());
    }
}
