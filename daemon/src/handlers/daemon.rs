//! `hello`, `daemon.status`, `daemon.shutdown`.

use reagent::protocol::{
    Ack, Hello, HelloReply, PROTOCOL_VERSION, RequestId, RpcError, StatusReply, Sync, codes,
};
use reagent::run::RunStatus;
use tokio::sync::Semaphore;

use super::{Conn, Reply};

/// Checks the version, then, under the state lock so no event slips in between, takes the
/// snapshot (or the missed events), holds the reply's place in the queue and subscribes the
/// connection to what follows. The reply, which can be large, is encoded after the lock is
/// released, on a blocking thread, one reply at a time: a crowd of clients saying `hello` at
/// once holds up neither the state nor the async workers that answer everyone else.
pub fn hello(conn: &Conn, id: Option<RequestId>, hello: Hello) -> Reply {
    if hello.protocol != PROTOCOL_VERSION {
        let message = format!(
            "the daemon speaks protocol {PROTOCOL_VERSION} but this client speaks {}: restart \
             the daemon (`reagent daemon stop`, then run reagent again)",
            hello.protocol
        );
        return Reply::Now(Err(RpcError::new(codes::VERSION_MISMATCH, message)));
    }
    // Debug-formatted: the name is the client's to choose, and a newline in it must not
    // forge a line of the log.
    tracing::info!(conn = conn.id, client = ?hello.client, since = ?hello.since, "hello");
    let mut state = conn.daemon.state();
    let sync = match hello.since.and_then(|since| state.bus.events_since(since)) {
        Some(events) => Sync::Events { events },
        None => Sync::Snapshot(state.snapshot()),
    };
    conn.outbox.resume();
    let reply = conn.hold_place(id, &hello);
    state.bus.subscribe(conn.id, conn.outbox.clone());
    drop(state);
    let hello = HelloReply {
        protocol: PROTOCOL_VERSION,
        daemon: conn.daemon.info.clone(),
        sync,
    };
    tokio::spawn(async move {
        // One encoding at a time: a crowd saying `hello` takes one core, not every core.
        let _turn = ENCODING.acquire().await;
        let _ = tokio::task::spawn_blocking(move || reply.respond(Ok(hello))).await;
    });
    Reply::Sent
}

/// Turns to encode a `hello` reply; see [`hello`].
static ENCODING: Semaphore = Semaphore::const_new(1);

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
        seq: state.bus.seq(),
        clients: state.bus.clients(),
        runs: counts,
    }
}

/// Asks the daemon to exit; runs go on under their supervisors. The reply is queued before
/// the shutdown starts, so the asking client hears it before the connection closes.
pub fn shutdown(conn: &Conn, id: Option<RequestId>) -> Reply {
    tracing::info!(conn = conn.id, "shutdown requested");
    conn.respond(
        id,
        serde_json::to_value(Ack {}).map_err(super::internal_json),
    );
    conn.daemon.shutdown.notify_one();
    Reply::Sent
}
