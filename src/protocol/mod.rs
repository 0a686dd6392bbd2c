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
//!
//! Where the rest is:
//! - `envelope`: what wraps every message (responses, error objects and [`codes`], [`Blob`]);
//! - `incoming`: how the daemon reads a line into a [`Request`] and where its answer goes;
//! - `events`: what the daemon pushes unasked ([`Notification`], [`Event`]);
//! - the params and replies of each family of methods, one file per family: `daemon`
//!   (`hello`, status, shutdown), `runs`, `chat`, `alerts`, `metrics` and `queue` (GPUs,
//!   the queue and sweeps). A method whose params or reply is a domain value (a [`RunSpec`],
//!   a [`RunInfo`]) uses that type from its domain module.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::agent::{Approval, McpServerInfo, ToolInfo, WildInfo};
use crate::alert::AlertInfo;
use crate::chat::{MessageInfo, ProviderInfo, SessionInfo, UsageReport};
use crate::gateway::GatewayRequest;
use crate::gpu::{GpuReport, QueueEntry};
use crate::metrics::{MetricsList, MetricsQueryReply};
use crate::model::{ModelInfo, Recipe};
use crate::run::{RunInfo, RunSpec};
use crate::sweep::{SweepInfo, SweepSpec};
use crate::token::TokenInfo;

mod agent;
mod alerts;
mod chat;
mod daemon;
mod envelope;
mod events;
mod http;
mod incoming;
mod metrics;
mod models;
mod queue;
mod runs;

pub use agent::{
    AnswerApproval, ListApprovals, ListMcp, ListTools, SetSessionAgent, StartWild, StopWild,
    WildStatus,
};
pub use alerts::{AlertResponse, IgnoreAlertsLike, IgnoredAlerts, ListAlerts, RespondAlert};
pub use chat::{
    CancelChat, CreateSession, DeleteSession, ForkSession, ListProviders, ListSessions,
    RenameSession, SendChat, SessionHistory, SetSessionModel, UsageQuery,
};
pub use daemon::{
    DaemonInfo, DaemonStatus, Hello, HelloReply, Shutdown, Snapshot, StatusReply, Sync,
};
pub use envelope::{
    Ack, Base64Text, Blob, OutgoingNotification, OutgoingRequest, Response, RpcError, codes,
};
pub use events::{Event, EventKind, Notification, Output, Resync};
pub use http::{CreateToken, GatewayLog, ListTokens, RevokeToken, TokenCreated};
pub use incoming::{Incoming, RequestId, parse_request};
pub use metrics::{ListMetrics, QueryMetrics};
pub use models::{
    AddRecipes, LaunchModel, ListModels, ListRecipes, RecipeView, RemoveRecipe, ShowRecipe,
    StopModel,
};
pub use queue::{ListGpus, ListQueue, ListSweeps, StopSweep, SubmitRun, SweepRef};
pub use runs::{
    Attach, Attached, CleanRuns, CleanScope, Detach, ListRuns, LogChunk, ReadLog, RemoveRuns,
    RenameRun, RerunRun, ResizeRun, SendInput, StopRun, WaitRun,
};

/// Bumped on every incompatible change; `hello` refuses a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line either side accepts. A longer one is refused and its connection closed,
/// because the only way to skip it would be to read it all.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// A method: its params type, wire name and reply type.
pub trait Method: Serialize + DeserializeOwned {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// What the daemon answers. `Send + 'static`, so a client's reader task can decode it and
    /// hand it over.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
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
    /// Stores recipes, each replacing any of the same name.
    "recipe.add" => AddRecipes(AddRecipes) -> Vec<Recipe>;
    /// Every recipe, by name.
    "recipes.list" => ListRecipes(ListRecipes) -> Vec<Recipe>;
    /// A recipe and the argv a launch of it runs.
    "recipe.show" => ShowRecipe(ShowRecipe) -> RecipeView;
    /// Forgets a recipe.
    "recipe.remove" => RemoveRecipe(RemoveRecipe) -> Ack;
    /// Launches a recipe's model server; answers once it is ready (or failed).
    "model.launch" => LaunchModel(LaunchModel) -> ModelInfo;
    /// Stops a model, or cancels its launch.
    "model.stop" => StopModel(StopModel) -> ModelInfo;
    /// Every model instance, oldest first.
    "models.list" => ListModels(ListModels) -> Vec<ModelInfo>;
    /// Creates a token for the HTTP face; the reply is the only time it is shown.
    "token.create" => CreateToken(CreateToken) -> TokenCreated;
    /// Every token's name and scopes (never the tokens).
    "tokens.list" => ListTokens(ListTokens) -> Vec<TokenInfo>;
    /// Revokes a token at once.
    "token.revoke" => RevokeToken(RevokeToken) -> Ack;
    /// The gateway's request log (`/v1`), oldest first: who asked which model, how it went.
    "gateway.log" => GatewayLog(GatewayLog) -> Vec<GatewayRequest>;
    /// Every tool a session's model may call: built-in, then each MCP server's.
    "tools.list" => ListTools(ListTools) -> Vec<ToolInfo>;
    /// The MCP servers, their state and tools (starting those not started yet).
    "mcp.list" => ListMcp(ListMcp) -> Vec<McpServerInfo>;
    /// Turn a session's tools on or off, and set how its acting tools are let run.
    "session.agent" => SetSessionAgent(SetSessionAgent) -> SessionInfo;
    /// Requests to run acting tools: those waiting, or all.
    "approvals.list" => ListApprovals(ListApprovals) -> Vec<Approval>;
    /// Approve or deny a request; the first answer from any client settles it.
    "approval.answer" => AnswerApproval(AnswerApproval) -> Approval;
    /// Start a wild-mode loop toward a goal.
    "wild.start" => StartWild(StartWild) -> WildInfo;
    /// Every wild-mode loop, oldest first.
    "wild.status" => WildStatus(WildStatus) -> Vec<WildInfo>;
    /// Stop a wild-mode loop; the reason recorded is `stopped`.
    "wild.stop" => StopWild(StopWild) -> WildInfo;
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
    fn keystrokes_keep_their_text_and_bad_base64_names_the_field() {
        let input = Base64Text::encode(b"\x1b[A\r");
        let json = serde_json::json!({"run": "r", "data": input.as_str()});
        let parsed = Request::parse("run.input", json).unwrap();
        let Request::SendInput(parsed) = parsed else {
            panic!("not run.input: {parsed:?}");
        };
        assert_eq!(parsed.data, input, "passed on as it came");
        let bad = serde_json::json!({"run": "r", "data": "not base64!"});
        let err = Request::parse("run.input", bad).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert!(err.message.contains("`data`"), "{}", err.message);
        assert!(err.message.contains("invalid base64"), "{}", err.message);
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
    fn notifications_read_from_their_parts_as_from_the_whole_line() {
        let notes = [
            Notification::Event(Event {
                seq: 3,
                ts: 4,
                kind: EventKind::Clients { attached: 2 },
            }),
            Notification::Output(Output {
                run: "ab".into(),
                offset: 9,
                data: Blob(vec![0, 0xff, b'\n']),
            }),
            Notification::Resync(Resync {
                reason: "slow".into(),
            }),
            Notification::Shutdown(Ack {}),
        ];
        for note in notes {
            let json = serde_json::to_value(&note).unwrap();
            let method = json["method"].as_str().unwrap();
            let params = serde_json::value::to_raw_value(&json["params"]).unwrap();
            assert_eq!(Notification::from_parts(method, &params).unwrap(), note);
        }
        let params = serde_json::value::to_raw_value(&serde_json::json!({})).unwrap();
        assert!(Notification::from_parts("nope", &params).is_err());
    }

    #[test]
    fn every_method_is_listed_once() {
        let mut names = Request::METHODS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Request::METHODS.len());
    }
}
