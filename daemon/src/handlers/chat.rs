//! `session.*` and `chat.*`: creating, reading, renaming, forking and deleting sessions, and
//! sending or cancelling messages.

use std::sync::Arc;

use reagent::chat::{MessageInfo, MessageStatus, MessageUsage, Part, Role, SessionInfo};
use reagent::protocol::{
    Ack, CancelChat, CreateSession, DeleteSession, ForkSession, ListProviders, RenameSession,
    RequestId, RpcError, SendChat, SessionHistory, SetSessionModel, codes,
};
use reagent::time::now_ms;

use super::runs::internal_json;
use super::{Conn, Reply};
use crate::chat::titles;
use crate::state::{Daemon, short_id};

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
    let model = daemon.chat.check_model(&model)?;
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
    };
    daemon.state().save_session(session)
}

/// The session's messages; queued under the state lock, so the deltas that follow the reply
/// continue exactly where the history it carries stops.
pub fn history(conn: &Conn, id: Option<RequestId>, history: SessionHistory) -> Reply {
    let state = conn.daemon.state();
    let messages = state
        .resolve_session(&history.session)
        .and_then(|session| {
            state.messages(&session.id).map_err(|err| {
                RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("cannot read the session: {err:#}"),
                )
            })
        })
        .and_then(|messages| serde_json::to_value(messages).map_err(internal_json));
    conn.respond(id, messages);
    Reply::Sent
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

/// Stops the answer streaming in the session; what arrived is kept.
pub fn cancel(conn: &Conn, cancel: CancelChat) -> Result<Ack, RpcError> {
    let session = conn
        .daemon
        .state()
        .resolve_session(&cancel.session)?
        .id
        .clone();
    conn.daemon.chat.cancel(&session);
    Ok(Ack {})
}

/// Titles (or untitles) a session.
pub fn rename(conn: &Conn, rename: RenameSession) -> Result<SessionInfo, RpcError> {
    let mut state = conn.daemon.state();
    let mut session = state.resolve_session(&rename.session)?.clone();
    let title = rename.title.trim();
    session.title = (!title.is_empty()).then(|| title.to_string());
    state.save_session(session)
}

/// Moves a session to another model.
pub fn set_model(conn: &Conn, set: SetSessionModel) -> Result<SessionInfo, RpcError> {
    let model = conn.daemon.chat.check_model(&set.model)?;
    let mut state = conn.daemon.state();
    let mut session = state.resolve_session(&set.session)?.clone();
    session.model = model;
    state.save_session(session)
}

/// Deletes a session; an answer streaming in it is cancelled first.
pub fn delete(conn: &Conn, delete: DeleteSession) -> Result<Ack, RpcError> {
    let id = conn
        .daemon
        .state()
        .resolve_session(&delete.session)?
        .id
        .clone();
    conn.daemon.chat.cancel(&id);
    conn.daemon.state().delete_session(&id)?;
    Ok(Ack {})
}

/// Copies a session's ended messages up to `at` into a new session.
pub fn fork(conn: &Conn, fork: ForkSession) -> Result<SessionInfo, RpcError> {
    let mut state = conn.daemon.state();
    let original = state.resolve_session(&fork.session)?.clone();
    let messages = state.messages(&original.id).map_err(|err| {
        RpcError::new(
            codes::INTERNAL_ERROR,
            format!("cannot read the session: {err:#}"),
        )
    })?;
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
/// it answers, and the reply comes when all have.
pub fn providers(conn: &Conn, id: Option<RequestId>, list: ListProviders) -> Reply {
    let infos = conn.daemon.chat.providers.infos();
    if !list.check {
        return Reply::Now(serde_json::to_value(infos).map_err(internal_json));
    }
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id);
    tokio::spawn(async move {
        let chat = &daemon.chat;
        let checks = chat
            .providers
            .all()
            .iter()
            .map(|provider| provider.check(&chat.http));
        let answers = futures_util::future::join_all(checks).await;
        let infos: Vec<_> = infos
            .into_iter()
            .zip(answers)
            .map(|(info, answer)| reagent::chat::ProviderInfo {
                answers: Some(answer),
                ..info
            })
            .collect();
        reply.respond(Ok(infos));
    });
    Reply::Sent
}
