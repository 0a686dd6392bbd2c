//! `session.*` and `chat.*`: adapters from params to the chat service
//! ([`crate::chat::sessions`]).

use reagent::protocol::{ListProviders, RequestId, SessionHistory, UsageQuery};

use super::{Conn, Reply, internal_json};
use crate::chat::sessions;

/// The session's messages, queued under the state lock: the deltas that follow the reply
/// continue exactly where the history it carries stops.
pub fn history(conn: &Conn, id: Option<RequestId>, history: SessionHistory) -> Reply {
    let state = conn.daemon.state();
    let messages = sessions::history(&state, &history.session)
        .and_then(|messages| serde_json::to_value(messages).map_err(internal_json));
    conn.respond(id, messages);
    Reply::Sent
}

/// The providers; with `check`, the reply comes once every provider has answered.
pub fn providers(conn: &Conn, id: Option<RequestId>, list: ListProviders) -> Reply {
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &list);
    tokio::spawn(async move {
        reply.respond(Ok(sessions::providers(&daemon, list.check).await));
    });
    Reply::Sent
}

/// Tokens and cost, totalled away from the state lock.
pub fn usage(conn: &Conn, id: Option<RequestId>, usage: UsageQuery) -> Reply {
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &usage);
    tokio::spawn(async move {
        reply.respond(sessions::usage(&daemon).await);
    });
    Reply::Sent
}
