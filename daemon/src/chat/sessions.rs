//! The chat service's operations: creating, reading, renaming, forking and deleting
//! sessions, sending or cancelling messages, the providers and the usage. Each is the one
//! function for it: protocol handlers, the alerts judge and the alert chat all call these.

use std::sync::Arc;

use reagent::chat::{MessageInfo, MessageStatus, MessageUsage, Part, Role, SessionInfo};
use reagent::chat::{ProviderInfo, UsageReport};
use reagent::protocol::{
    CreateSession, DeleteSession, ForkSession, RenameSession, RpcError, SendChat, SetSessionModel,
    codes,
};
use reagent::time::now_ms;
use tokio::sync::broadcast;

use super::titles;
use crate::daemon::{Daemon, State, short_id};

/// Creates a session on the named (or default) model (also for an alert answered `chat`).
pub fn create(daemon: &Daemon, create: CreateSession) -> Result<SessionInfo, RpcError> {
    let model = create
        .model
        .or_else(|| daemon.chat.providers.default_model(&daemon.config));
    let Some(model) = model else {
        let message = "`model`: none given and no default: pass PROVIDER/MODEL or set \
                       [chat] default_model";
        return Err(RpcError::new(codes::INVALID_PARAMS, message));
    };
    let model = daemon.chat.check_model(daemon, &model)?;
    let cwd = create
        .cwd
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| "/".into());
    let session = SessionInfo {
        id: short_id(),
        title: create.title.filter(|t| !t.trim().is_empty()),
        model,
        system: create.system.filter(|s| !s.trim().is_empty()),
        cwd,
        created_at: now_ms(),
        agent: reagent::agent::AgentPolicy {
            enabled: create.agent,
            ..Default::default()
        },
    };
    daemon.state().save_session(session)
}

/// A session's messages, answers streaming now included as they stand. Called under the
/// state lock by a caller that queues the reply under it too, so the deltas that follow
/// continue exactly where this history stops.
pub fn history(state: &State, session: &str) -> Result<Vec<MessageInfo>, RpcError> {
    let session = state.resolve_session(session)?;
    state.messages(&session.id).map_err(unreadable)
}

fn unreadable(err: anyhow::Error) -> RpcError {
    RpcError::new(
        codes::INTERNAL_ERROR,
        format!("cannot read the session: {err:#}"),
    )
}

/// Records the user's message and a queued answer, and hands the answer to the session (also
/// for the alerts judge).
pub fn send(daemon: &Arc<Daemon>, send: SendChat) -> Result<MessageInfo, RpcError> {
    if send.text.trim().is_empty() {
        return Err(RpcError::new(codes::INVALID_PARAMS, "`text` is empty"));
    }
    let (session, answer, untitled) = {
        let mut state = daemon.state();
        let info = state.resolve_session(&send.session)?.clone();
        let untitled = titles::wanted(&daemon.config.chat, &state, &info).then_some(info.clone());
        let session = info.id;
        let message = |role, status, parts| MessageInfo {
            id: short_id(),
            session: session.clone(),
            role,
            status,
            parts,
            error: None,
            usage: MessageUsage::default(),
            created_at: now_ms(),
        };
        state.save_message(message(
            Role::User,
            MessageStatus::Complete,
            vec![Part::text(send.text.clone())],
        ))?;
        let answer =
            state.save_message(message(Role::Assistant, MessageStatus::Queued, Vec::new()))?;
        (session, answer, untitled)
    };
    if let Some(info) = untitled {
        titles::give(daemon, &info, &send.text);
    }
    daemon.chat.enqueue(daemon, &session, answer.id.clone());
    Ok(answer)
}

/// Records the next answer of a turn whose last answer called tools: queued, with no user
/// message before it, since the tools' results (in the last answer) are what it reads.
pub fn follow_up(daemon: &Daemon, session: &str) -> Result<MessageInfo, RpcError> {
    daemon.state().save_message(MessageInfo {
        id: short_id(),
        session: session.to_string(),
        role: Role::Assistant,
        status: MessageStatus::Queued,
        parts: Vec::new(),
        error: None,
        usage: MessageUsage::default(),
        created_at: now_ms(),
    })
}

/// Sends a message and waits for its answer to end, for `limit` at most (then cancels it).
/// For callers inside the daemon that act on the answer (the alerts judge); `None` when it
/// did not end in time.
pub async fn ask(
    daemon: &Arc<Daemon>,
    send_it: SendChat,
    limit: std::time::Duration,
) -> Result<Option<MessageInfo>, RpcError> {
    let session = send_it.session.clone();
    let mut ended = daemon.state().answers_ended();
    let answer = send(daemon, send_it)?;
    let wait = async {
        loop {
            match ended.recv().await {
                Ok(message) if message.id == answer.id => return Some(message),
                Ok(_) => {}
                // Missed some: the answer may be among them.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let state = daemon.state();
                    if state.streaming(&answer.id).is_none() {
                        let messages = state.messages(&session).ok()?;
                        return messages.into_iter().find(|m| m.id == answer.id);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(answer) => Ok(answer),
        Err(_) => {
            daemon.chat.cancel(&session);
            Ok(None)
        }
    }
}

/// Stops the answer streaming in the session; what arrived is kept.
pub fn cancel(daemon: &Daemon, session: &str) -> Result<(), RpcError> {
    let session = daemon.state().resolve_session(session)?.id.clone();
    daemon.chat.cancel(&session);
    Ok(())
}

/// Titles (or untitles) a session.
pub fn rename(daemon: &Daemon, rename: RenameSession) -> Result<SessionInfo, RpcError> {
    let mut state = daemon.state();
    let mut session = state.resolve_session(&rename.session)?.clone();
    let title = rename.title.trim();
    session.title = (!title.is_empty()).then(|| title.to_string());
    state.save_session(session)
}

/// Moves a session to another model.
pub fn set_model(daemon: &Daemon, set: SetSessionModel) -> Result<SessionInfo, RpcError> {
    let model = daemon.chat.check_model(daemon, &set.model)?;
    let mut state = daemon.state();
    let mut session = state.resolve_session(&set.session)?.clone();
    session.model = model;
    state.save_session(session)
}

/// Deletes a session; an answer streaming in it is cancelled first.
pub fn delete(daemon: &Daemon, delete: DeleteSession) -> Result<(), RpcError> {
    let id = daemon.state().resolve_session(&delete.session)?.id.clone();
    daemon.chat.cancel(&id);
    daemon.state().delete_session(&id)
}

/// Copies a session's ended messages up to `at` into a new session.
pub fn fork(daemon: &Daemon, fork: ForkSession) -> Result<SessionInfo, RpcError> {
    let mut state = daemon.state();
    let original = state.resolve_session(&fork.session)?.clone();
    let messages = state.messages(&original.id).map_err(unreadable)?;
    let end = match &fork.at {
        None => messages.len(),
        Some(at) => {
            let found: Vec<usize> = (0..messages.len())
                .filter(|&i| messages[i].id.starts_with(at.as_str()))
                .collect();
            match found[..] {
                [index] => index + 1,
                [] => {
                    return Err(RpcError::new(
                        codes::NOT_FOUND,
                        format!("no message `{at}` in the session"),
                    ));
                }
                _ => {
                    return Err(RpcError::new(
                        codes::AMBIGUOUS,
                        format!("`{at}` matches several messages"),
                    ));
                }
            }
        }
    };
    let title = format!("fork of {}", original.label());
    let copy = SessionInfo {
        id: short_id(),
        title: Some(title),
        created_at: now_ms(),
        ..original
    };
    let copy = state.save_session(copy)?;
    for message in messages
        .into_iter()
        .take(end)
        .filter(|m| m.status.is_terminal())
    {
        let mut usage = message.usage.clone();
        usage.copied = true;
        state.save_message(MessageInfo {
            id: short_id(),
            session: copy.id.clone(),
            usage,
            ..message
        })?;
    }
    Ok(copy)
}

/// The providers; with `check`, each is asked (concurrently, a few seconds at most) whether
/// it answers.
pub async fn providers(daemon: &Daemon, check: bool) -> Vec<ProviderInfo> {
    let chat = &daemon.chat;
    let infos = chat.infos(daemon);
    if !check {
        return infos;
    }
    let checks = (chat.providers.all().iter()).map(|provider| provider.check(&chat.http));
    let mut answers = futures_util::future::join_all(checks).await;
    // The built-in `local` comes last: it answers when a model server is ready.
    if let Some(local) = infos.get(answers.len()) {
        answers.push(if local.models.is_empty() {
            "no model server is ready".into()
        } else {
            "ok".into()
        });
    }
    infos
        .into_iter()
        .zip(answers)
        .map(|(info, answer)| ProviderInfo {
            answers: Some(answer),
            ..info
        })
        .collect()
}

/// Tokens and cost per session and per day. The scan runs on a blocking thread with a
/// database connection of its own, never under the state lock.
pub async fn usage(daemon: &Daemon) -> Result<UsageReport, RpcError> {
    let db = daemon.paths.database();
    let report = tokio::task::spawn_blocking(move || crate::store::usage_report(&db)).await;
    let failed = |why: String| {
        RpcError::new(
            codes::INTERNAL_ERROR,
            format!("cannot total the usage: {why}"),
        )
    };
    match report {
        Ok(report) => report.map_err(|err| failed(format!("{err:#}"))),
        Err(err) => Err(failed(err.to_string())),
    }
}
