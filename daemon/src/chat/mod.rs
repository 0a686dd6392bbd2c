//! The chat service: sessions, and one task per session that answers its messages in order.
//!
//! `chat.send` records the user's message and a queued answer, then hands the answer to the
//! session's task; the task streams it from the provider ([`relay`]), so a message sent while
//! another answer streams simply waits its turn, and sessions stream side by side.

pub mod providers;
pub mod relay;
pub mod sessions;
pub mod table;
pub mod titles;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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
}

/// A session's answering task.
struct SessionTask {
    /// Answers to write, in order.
    answers: mpsc::UnboundedSender<String>,
    /// Bumped to cancel the answer streaming now.
    cancel: watch::Sender<u64>,
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

    /// Queues an answer in its session, starting the session's task when needed.
    pub fn enqueue(&self, daemon: &Arc<Daemon>, session: &str, answer: String) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.entry(session.to_string()).or_insert_with(|| {
            let (answers, queue) = mpsc::unbounded_channel();
            let (cancel, cancelled) = watch::channel(0);
            tokio::spawn(answer_in_turn(
                daemon.clone(),
                session.to_string(),
                queue,
                cancelled,
            ));
            SessionTask { answers, cancel }
        });
        // The task lives as long as the daemon; a send cannot fail while it does.
        let _ = task.answers.send(answer);
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
) {
    while let Some(answer) = queue.recv().await {
        // A cancel sent before this answer started is not for it.
        cancelled.borrow_and_update();
        relay::answer(&daemon, &session, &answer, &mut cancelled).await;
    }
}
