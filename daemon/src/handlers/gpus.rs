//! `queue.list`: what the queue holds, in the shape clients show. (The other GPU and sweep
//! requests are one-liners in the dispatch table.)

use reagent::gpu::QueueEntry;

use crate::state::State;

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
