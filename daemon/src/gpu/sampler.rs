//! The sampling loop: read the source off the async workers, map processes to runs, record
//! the sample, broadcast it when it changed, and let the queue look again when GPUs appeared
//! or their memory moved (both can free a GPU for a waiting run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reagent::gpu::{GpuInfo, GpuProcess, GpuSourceKind};
use reagent::protocol::EventKind;
use reagent::time::now_ms;

use super::{GpuBoard, procs};
use crate::daemon::Daemon;

/// Opens the source, records why there is none, and samples until the daemon exits.
pub async fn run(daemon: Arc<Daemon>) {
    let (source, unavailable) = tokio::task::spawn_blocking(super::open_source)
        .await
        .unwrap_or_else(|_| (None, Some("the GPU probe panicked".into())));
    let kind = source.as_ref().map_or(GpuSourceKind::None, |s| s.kind());
    match &unavailable {
        Some(reason) => tracing::warn!("GPUs unavailable: {reason}"),
        None => tracing::info!(source = ?kind, "sampling GPUs"),
    }
    let capacity = daemon.config.gpus.history;
    daemon.state().gpus = GpuBoard::new(kind, unavailable, capacity);
    let Some(source) = source else {
        daemon.gpus_ready.send_replace(true);
        // Runs queued for GPUs (from before a restart, say) now say why none come.
        daemon.queue_wake.notify_one();
        return;
    };
    let source = Arc::new(Mutex::new(source));
    let period = Duration::from_secs_f64(daemon.config.gpus.sample_secs.clamp(0.05, 3600.0));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let reader = source.clone();
        let read = tokio::task::spawn_blocking(move || {
            reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sample()
        })
        .await;
        match read {
            Ok(Ok(gpus)) => {
                failing = false;
                sampled(&daemon, gpus);
            }
            Ok(Err(err)) if !failing => {
                failing = true;
                tracing::warn!("cannot read the GPUs: {err:#}");
            }
            _ => {}
        }
        // The first reading (or the first failure, said in the log) is in: answer queries.
        daemon.gpus_ready.send_replace(true);
    }
}

/// Maps processes to runs, marks assignments, records and broadcasts one sample.
pub fn sampled(daemon: &Arc<Daemon>, mut gpus: Vec<GpuInfo>) {
    let (pids, assigned, models, fake_load) = {
        let state = daemon.state();
        let pids: HashMap<u32, String> = state
            .runs()
            .iter()
            .filter(|r| !r.status.is_terminal())
            .filter_map(|r| Some((r.pid?, r.id.clone())))
            .collect();
        let live = |run: &Option<String>| {
            (run.as_ref())
                .and_then(|id| state.run(id))
                .filter(|r| !r.status.is_terminal())
        };
        // Fake GPUs have no driver to see a server's memory: they show what the models
        // service placed on them, for as long as the server's run lives.
        let fake_load: Vec<(u32, GpuProcess)> = (state.queue.holds().values())
            .filter_map(|hold| {
                let run = live(&hold.run)?;
                let process = GpuProcess {
                    pid: run.pid.unwrap_or(0),
                    used_mib: Some(hold.mib),
                    run: Some(run.id.clone()),
                };
                Some(hold.gpus.iter().map(move |&gpu| (gpu, process.clone())))
            })
            .flatten()
            .collect();
        (
            pids,
            state.queue.assignments(),
            state.queue.model_gpus(),
            fake_load,
        )
    };
    add_fake_load(&mut gpus, fake_load);
    if !pids.is_empty() {
        for process in gpus.iter_mut().flat_map(|g| g.processes.iter_mut()) {
            process.run = procs::owner(process.pid, &pids, procs::parent_of).cloned();
        }
    }
    for gpu in &mut gpus {
        gpu.assigned_to = assigned.get(&gpu.index).cloned();
        gpu.model = models.get(&gpu.index).cloned();
    }
    let waiting = {
        let mut state = daemon.state();
        let before: Vec<u32> = state.gpus.report.gpus.iter().map(|g| g.index).collect();
        let appeared = before.len() != gpus.len();
        if state.gpus.record(now_ms(), gpus) {
            // Like deltas, samples are not kept for replay: a client catching up re-reads them.
            let report = &state.gpus.report;
            let kind = EventKind::Gpus {
                source: report.source,
                unavailable: report.unavailable.clone(),
                gpus: report.gpus.clone(),
            };
            state.bus.broadcast_ephemeral(kind);
        }
        let waits = state.queue.has_waiting();
        waits && (appeared || daemon.config.gpus.free_below_mib.is_some())
    };
    if waiting {
        daemon.queue_wake.notify_one();
    }
}

/// Adds the fake load (a process on each GPU a live model server holds) to fake GPUs'
/// memory, so eviction on a machine without GPUs waits for memory to free as it would on a
/// real one.
fn add_fake_load(gpus: &mut [GpuInfo], load: Vec<(u32, GpuProcess)>) {
    for (index, process) in load {
        if let Some(gpu) = gpus.iter_mut().find(|g| g.fake && g.index == index) {
            let mib = process.used_mib.unwrap_or(0);
            gpu.mem_used_mib = (gpu.mem_used_mib + mib).min(gpu.mem_total_mib);
            gpu.processes.push(process);
        }
    }
}
