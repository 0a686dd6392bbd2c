//! The chat service: sessions, and one task per session that answers its messages in order.
//!
//! `chat.send` records the user's message and a queued answer, then hands the answer to the
//! session's task; the task streams it from the provider ([`relay`]), so a message sent while
//! another answer streams simply waits its turn, and sessions stream side by side.
//!
//! In a session with tools on, an answer that calls tools is followed, in the same turn, by
//! the tools' results (recorded in the answer) and a new answer that reads them, until the
//! model answers without calling any. The tools themselves belong to the agent service,
//! above this one: it lends them through the [`Toolbox`] it registers at start, so chat
//! never imports it.

pub mod providers;
pub mod relay;
pub mod sessions;
pub mod table;
pub mod titles;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures_util::future::BoxFuture;
use reagent::chat::{MessageStatus, PartKind, SessionInfo};

use reagent::config::Config;
use reagent::protocol::{RpcError, codes};
use tokio::sync::{mpsc, watch};

use crate::daemon::Daemon;
use providers::{Provider, Providers};
use reagent::chat::ProviderInfo;

/// What the daemon keeps for chat beyond the state: providers, the HTTP client, and the
/// per-session answering tasks.
pub struct Chat {
    /// Every provider and its key.
    pub providers: Providers,
    /// One client for every request: connection reuse matters for time to first token.
    pub http: reqwest::Client,
    tasks: Mutex<HashMap<String, SessionTask>>,
    /// The agent's tools, once the agent service has registered them.
    toolbox: OnceLock<Arc<dyn Toolbox>>,
}

/// The tools a session's model may call, lent by the agent service (see the module's doc).
pub trait Toolbox: Send + Sync {
    /// The tools offered to `session`'s model (none while its tools are off).
    fn specs<'a>(
        &'a self,
        daemon: &'a Arc<Daemon>,
        session: &'a SessionInfo,
    ) -> BoxFuture<'a, Vec<crate::llm::ToolSpec>>;

    /// Runs the calls answer `answer` made, recording each result in it; returns once every
    /// call has a result (an approval denied, a cancel and a failure are results too).
    fn run<'a>(
        &'a self,
        daemon: &'a Arc<Daemon>,
        session: &'a SessionInfo,
        answer: &'a str,
        cancelled: &'a mut watch::Receiver<u64>,
    ) -> BoxFuture<'a, ()>;
}

/// The most answers one turn may take while the model keeps calling tools: a model that
/// never stops calling must not run forever.
pub const MAX_ROUNDS: usize = 25;

/// A session's answering task.
struct SessionTask {
    /// Answers to write, in order.
    answers: mpsc::UnboundedSender<String>,
    /// Bumped to cancel the answer streaming now.
    cancel: watch::Sender<u64>,
    /// Turns queued or going on (a turn is an answer and the answers after its tool calls).
    turns: watch::Sender<usize>,
}

impl Chat {
    /// Reads the providers (and their keys) and prepares the HTTP client.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        // reqwest is built without a default TLS provider; ring is the one compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        let providers = Providers::from_config(config);
        for info in providers.infos().iter().filter(|info| !info.has_key) {
            tracing::warn!("provider `{}` has no usable key", info.name);
        }
        Ok(Self {
            providers,
            http,
            tasks: Mutex::default(),
            toolbox: OnceLock::new(),
        })
    }

    /// The `PROVIDER/MODEL` a session is to talk to, checked before any session is created
    /// or moved to it: one a configured provider answers, with a model named, white space
    /// around it removed. Refused as invalid params naming `model`, so a typo (or
    /// `openai/` with nothing after) is told at once rather than on the first answer.
    pub fn check_model(&self, daemon: &Daemon, model: &str) -> Result<String, RpcError> {
        let model = model.trim();
        self.resolve(daemon, model)
            .map(|_| model.to_string())
            .map_err(|why| RpcError::new(codes::INVALID_PARAMS, format!("`model`: {why}")))
    }

    /// The provider answering `PROVIDER/MODEL`, and the model id to send it: a configured
    /// provider, or the built-in `local` (unless the config defines its own), whose models
    /// are the ready model servers, each spoken to with OpenAI chat completions on its port.
    pub fn resolve(&self, daemon: &Daemon, model: &str) -> Result<(Provider, String), String> {
        if let Some(name) = model
            .strip_prefix(providers::LOCAL)
            .and_then(|rest| rest.strip_prefix('/'))
            && !self.providers.has(providers::LOCAL)
        {
            let (port, served_name) = crate::models::endpoint(daemon, name)?;
            return Ok((Provider::local(port), served_name));
        }
        let (provider, id) = self.providers.resolve(model)?;
        Ok((provider.clone(), id.to_string()))
    }

    /// Every provider clients may pick from: the configured ones, then `local` with the
    /// ready model servers (when the config has no `local` of its own).
    pub fn infos(&self, daemon: &Daemon) -> Vec<ProviderInfo> {
        let mut infos = self.providers.infos();
        if !self.providers.has(providers::LOCAL) {
            let ready: Vec<String> = (crate::models::list(daemon).into_iter())
                .filter(|m| m.state == reagent::model::ModelState::Ready)
                .map(|m| m.name)
                .collect();
            infos.push(ProviderInfo {
                name: providers::LOCAL.into(),
                kind: "openai".into(),
                base_url: "http://127.0.0.1".into(),
                models: ready,
                has_key: true,
                answers: None,
            });
        }
        infos
    }

    /// Lends chat the agent's tools; the first registration holds.
    pub fn set_toolbox(&self, toolbox: Arc<dyn Toolbox>) {
        let _ = self.toolbox.set(toolbox);
    }

    /// The tools offered to a session's model: none while its tools are off.
    pub async fn tools(
        &self,
        daemon: &Arc<Daemon>,
        session: &SessionInfo,
    ) -> Vec<crate::llm::ToolSpec> {
        match self.toolbox.get() {
            Some(toolbox) if session.agent.enabled => toolbox.specs(daemon, session).await,
            _ => Vec::new(),
        }
    }

    /// Queues an answer in its session, starting the session's task when needed.
    pub fn enqueue(&self, daemon: &Arc<Daemon>, session: &str, answer: String) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.entry(session.to_string()).or_insert_with(|| {
            let (answers, queue) = mpsc::unbounded_channel();
            let (cancel, cancelled) = watch::channel(0);
            let turns = watch::channel(0).0;
            tokio::spawn(answer_in_turn(
                daemon.clone(),
                session.to_string(),
                queue,
                cancelled,
                turns.clone(),
            ));
            SessionTask {
                answers,
                cancel,
                turns,
            }
        });
        task.turns.send_modify(|turns| *turns += 1);
        // The task lives as long as the daemon; a send cannot fail while it does.
        let _ = task.answers.send(answer);
    }

    /// Returns once a session has no turn queued or going on: every answer it was sent has
    /// ended, and so have the answers that read their tools' results. For wild mode, which
    /// acts again only after the model's turn is over.
    pub async fn idle(&self, session: &str) {
        let turns = {
            let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.get(session).map(|task| task.turns.subscribe())
        };
        if let Some(mut turns) = turns {
            let _ = turns.wait_for(|turns| *turns == 0).await;
        }
    }

    /// Cancels the answer streaming in a session, if any.
    pub fn cancel(&self, session: &str) {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = tasks.get(session) {
            task.cancel.send_modify(|generation| *generation += 1);
        }
    }
}

async fn answer_in_turn(
    daemon: Arc<Daemon>,
    session: String,
    mut queue: mpsc::UnboundedReceiver<String>,
    mut cancelled: watch::Receiver<u64>,
    turns: watch::Sender<usize>,
) {
    while let Some(mut answer) = queue.recv().await {
        // A cancel sent before this answer started is not for it.
        cancelled.borrow_and_update();
        let mut rounds = 1;
        loop {
            relay::answer(&daemon, &session, &answer, &mut cancelled).await;
            // Let the connections send the answer's end before its tools run.
            tokio::task::yield_now().await;
            let Some(next) = call_tools(&daemon, &session, &answer, &mut cancelled).await else {
                break;
            };
            if rounds == MAX_ROUNDS {
                let why = format!(
                    "the turn reached its limit of {MAX_ROUNDS} answers; send a message to go on"
                );
                relay::fail(&daemon, &next, why);
                break;
            }
            rounds += 1;
            answer = next;
        }
        turns.send_modify(|turns| *turns = turns.saturating_sub(1));
    }
}

/// After an answer of a session with tools on: when it ended calling tools, runs them and
/// records the next answer of the turn, which reads their results; `None` when the turn is
/// over (no call, tools off, the answer failed or was cancelled, or the tools were).
async fn call_tools(
    daemon: &Arc<Daemon>,
    session: &str,
    answer: &str,
    cancelled: &mut watch::Receiver<u64>,
) -> Option<String> {
    let toolbox = daemon.chat.toolbox.get()?;
    let (info, calls) = {
        let state = daemon.state();
        let info = state.sessions().iter().find(|s| s.id == session)?.clone();
        let ended = state.message(answer).ok()??;
        let calls = ended.status == MessageStatus::Complete
            && ended.parts.iter().any(|p| p.kind == PartKind::ToolCall);
        (info, calls)
    };
    if !info.agent.enabled || !calls {
        return None;
    }
    cancelled.borrow_and_update();
    toolbox.run(daemon, &info, answer, cancelled).await;
    if cancelled.has_changed().unwrap_or(true) {
        return None;
    }
    match sessions::follow_up(daemon, session) {
        Ok(next) => Some(next.id),
        Err(err) => {
            tracing::error!("cannot record the next answer of session {session}: {err}");
            None
        }
    }
}
