//! `gpus.list` and `queue.list`: the GPU board, and what the queue holds, in the shape
//! clients show. (The other GPU and sweep requests are one-liners in the dispatch table.)

use std::time::Duration;

use reagent::gpu::QueueEntry;
use reagent::protocol::RequestId;

use super::{Conn, Reply};
use crate::state::State;

/// The longest a `gpus.list` right after start waits for the first reading.
const FIRST_SAMPLE_WAIT: Duration = Duration::from_secs(10);

/// The GPU board; right after the daemon starts, once the first reading is in, so the first
/// answer is not an empty board that only says "no sample yet".
pub fn list(conn: &Conn, id: Option<RequestId>) -> Reply {
    let mut ready = conn.daemon.gpus_ready.subscribe();
    if *ready.borrow() {
        let report = conn.daemon.state().gpus.full_report();
        return Reply::Now(serde_json::to_value(report).map_err(super::runs::internal_json));
    }
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(FIRST_SAMPLE_WAIT, ready.wait_for(|ready| *ready)).await;
        let report = daemon.state().gpus.full_report();
        reply.respond(Ok(report));
    });
    Reply::Sent
}

/// Every job: waiting ones with why, started ones with their GPUs.
pub fn queue(state: &State) -> Vec<QueueEntry> {
    state
        .queue
        .jobs()
        .iter()
        .map(|job| {
            let run = state.run(&job.run);
            QueueEntry {
                run: job.run.clone(),
                label: run.map_or_else(|| job.run.clone(), |r| r.label().to_string()),
                request: job.request.clone(),
                priority: job.priority,
                retries_left: job.retries_left,
                sweep: job.sweep.clone(),
                assigned: job.assigned.clone(),
                waiting: if job.started {
                    None
                } else {
                    Some(
                        run.and_then(|r| r.reason.clone())
                            .unwrap_or_else(|| "queued".into()),
                    )
                },
            }
        })
        .collect()
}
