//! `hello`, `daemon.status`, `daemon.shutdown`.

use reagent::protocol::{
    Ack, Hello, HelloReply, PROTOCOL_VERSION, RpcError, StatusReply, Sync, codes,
};
use reagent::run::RunStatus;
use serde_json::Value;

use super::{Conn, Reply};

/// Checks the version, then — under the state lock, so no event slips in between — queues
/// the reply (missed events or a snapshot) and subscribes the connection to what follows.
pub fn hello(conn: &Conn, id: Value, hello: Hello) -> Reply {
    if hello.protocol != PROTOCOL_VERSION {
        let message = format!(
            "the daemon speaks protocol {PROTOCOL_VERSION} but this client speaks {}: restart \
             the daemon (`reagent daemon stop`, then run reagent again)",
            hello.protocol
        );
        return Reply::Now(Err(RpcError::new(codes::VERSION_MISMATCH, message)));
    }
    tracing::info!(conn = conn.id, client = %hello.client, since = ?hello.since, "hello");
    let mut state = conn.daemon.state();
    let sync = match hello.since.and_then(|since| state.events_since(since)) {
        Some(events) => Sync::Events { events },
        None => Sync::Snapshot(state.snapshot()),
    };
    let reply = HelloReply {
        protocol: PROTOCOL_VERSION,
        daemon: conn.daemon.info.clone(),
        sync,
    };
    conn.outbox.resume();
    conn.respond(
        id,
        serde_json::to_value(reply).map_err(super::runs::internal_json),
    );
    state.subscribe(conn.id, conn.outbox.clone());
    Reply::Sent
}

/// The daemon's identity and counts.
pub fn status(conn: &Conn) -> StatusReply {
    let state = conn.daemon.state();
    let mut counts: Vec<(RunStatus, u32)> = Vec::new();
    for run in state.runs() {
        match counts.iter_mut().find(|(status, _)| *status == run.status) {
            Some((_, count)) => *count += 1,
            None => counts.push((run.status, 1)),
        }
    }
    StatusReply {
        daemon: conn.daemon.info.clone(),
        seq: state.seq(),
        clients: state.clients(),
        runs: counts,
    }
}

/// Asks the daemon to exit; runs go on under their supervisors. The reply is queued before
/// the shutdown starts, so the asking client hears it before the connection closes.
pub fn shutdown(conn: &Conn, id: Value) -> Reply {
    tracing::info!(conn = conn.id, "shutdown requested");
    conn.respond(
        id,
        serde_json::to_value(Ack {}).map_err(super::runs::internal_json),
    );
    conn.daemon.shutdown.notify_one();
    Reply::Sent
}
