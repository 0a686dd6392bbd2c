//! `gpus.list`: the GPU board, once the first reading is in. (The queue and sweep requests
//! are one-liners in the dispatch table.)

use std::time::Duration;

use reagent::gpu::ListGpus;
use reagent::protocol::RequestId;

use super::{Conn, Reply};

/// The longest a `gpus.list` right after start waits for the first reading.
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(10);

/// The GPU board; right after the daemon starts, once the first reading is in, so the first
/// answer is not an empty board that only says "no sample yet".
pub fn list(conn: &Conn, id: Option<RequestId>, list: ListGpus) -> Reply {
    let mut ready = conn.daemon.gpus_ready.subscribe();
    if *ready.borrow() {
        let report = conn.daemon.state().gpus.full_report();
        return Reply::Now(serde_json::to_value(report).map_err(super::internal_json));
    }
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &list);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(FIRST_SAMPLE_WAIT, ready.wait_for(|ready| *ready)).await;
        let report = daemon.state().gpus.full_report();
        reply.respond(Ok(report));
    });
    Reply::Sent
}
