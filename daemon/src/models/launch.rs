//! The driver of a model's launch: one task per instance, from `requested` to `ready` (or
//! `failed`/`cancelled`), then watching the server until it ends. It does the IO — stopping
//! victims, starting the run, polling health — and asks [`machine`] what each step means.

use std::sync::Arc;
use std::time::Duration;

use reagent::model::{ModelInfo, ModelState, Recipe};
use reagent::protocol::{ReadLog, RpcError, codes};
use reagent::run::{RunInfo, RunSpec, RunStatus};
use reagent::time::now_ms;
use tokio::sync::watch;

use super::machine::{self, GpuFacts, Holder, Placement};
use super::{command, health};
use crate::daemon::{Daemon, State};

/// Lines of the server's log a failure at start carries.
const LOG_TAIL_LINES: usize = 100;

/// How a launch or a server ended, before it is recorded.
enum End {
    /// Did not come up, or died: why.
    Failed(String),
    /// Stopped on request (before ready: cancelled; after: stopped), with the reason given.
    Stopped(String),
}

/// Starts the driver for a new instance of `recipe`, recorded as `requested`.
pub(super) fn start(
    daemon: &Arc<Daemon>,
    state: &mut State,
    recipe: Recipe,
    preempt: bool,
) -> Result<(), RpcError> {
    let model = ModelInfo {
        served_name: recipe.served_name().to_string(),
        ..ModelInfo::new(&recipe.name, recipe.backend, now_ms())
    };
    state.save_model(model)?;
    let (cancel, cancelled) = watch::channel(None);
    state.models.cancels.insert(recipe.name.clone(), cancel);
    tokio::spawn(drive(daemon.clone(), recipe, preempt, cancelled));
    Ok(())
}

/// Picks the driver up again for an instance the daemon found unfinished at start: a ready
/// server keeps serving; a launch whose server runs goes back to waiting for health (its
/// deadline counted from when it was asked for); one whose server never started, or has
/// ended, fails with the reason.
pub(super) fn adopt(daemon: &Arc<Daemon>, model: ModelInfo, recipe: Option<Recipe>) {
    let run = {
        let state = daemon.state();
        model.run.as_ref().and_then(|id| state.run(id).cloned())
    };
    let (cancel, cancelled) = watch::channel(None);
    daemon
        .state()
        .models
        .cancels
        .insert(model.name.clone(), cancel);
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let name = model.name.clone();
        let Some(run) = run.filter(|run| !run.status.is_terminal()) else {
            let why = match model.state {
                ModelState::Ready => "its server ended while the daemon was down".to_string(),
                _ => "the daemon restarted before its server started; launch it again".to_string(),
            };
            finish(&daemon, &name, End::Failed(why)).await;
            return;
        };
        // Its GPUs are held again before anything else is placed.
        if let Err(err) = save(&daemon, model.clone()) {
            tracing::warn!(model = %name, "cannot hold the GPUs of a re-adopted model: {err}");
        }
        let end = if model.state == ModelState::Ready {
            serve(&daemon, &name, &run.id, cancelled).await
        } else {
            let resumed = async {
                let recipe = recipe.ok_or_else(|| End::Failed("its recipe was removed".into()))?;
                let port = model
                    .port
                    .ok_or_else(|| End::Failed("no port was recorded".into()))?;
                let elapsed = u64::try_from(now_ms() - model.requested_at).unwrap_or(0);
                let timeout = Duration::from_secs(recipe.ready_timeout_secs())
                    .saturating_sub(Duration::from_millis(elapsed));
                if model.state == ModelState::Launching {
                    move_to(&daemon, &name, ModelState::CheckingStability, None, |_| {})?;
                }
                if matches!(
                    model.state,
                    ModelState::Launching | ModelState::CheckingStability
                ) {
                    move_to(&daemon, &name, ModelState::WaitingHealth, None, |_| {})?;
                }
                wait_healthy(&daemon, &recipe, &run.id, port, timeout).await?;
                move_to(&daemon, &name, ModelState::Ready, None, |_| {})?;
                Ok(())
            };
            let mut cancel = cancelled.clone();
            let outcome = tokio::select! {
                outcome = resumed => outcome,
                why = requested_stop(&mut cancel) => Err(End::Stopped(why)),
            };
            match outcome {
                Ok(()) => serve(&daemon, &name, &run.id, cancelled).await,
                Err(end) => end,
            }
        };
        finish(&daemon, &name, end).await;
    });
}

/// The whole life of one instance.
async fn drive(
    daemon: Arc<Daemon>,
    recipe: Recipe,
    preempt: bool,
    cancelled: watch::Receiver<Option<String>>,
) {
    let name = recipe.name.clone();
    let mut cancel = cancelled.clone();
    let outcome = tokio::select! {
        outcome = bring_up(&daemon, &recipe, preempt) => outcome,
        why = requested_stop(&mut cancel) => Err(End::Stopped(why)),
    };
    let end = match outcome {
        Ok(run) => serve(&daemon, &name, &run, cancelled).await,
        Err(end) => end,
    };
    finish(&daemon, &name, end).await;
}

/// From `requested` to `ready`; returns the server's run.
async fn bring_up(daemon: &Arc<Daemon>, recipe: &Recipe, preempt: bool) -> Result<String, End> {
    let name = &recipe.name;
    let (gpus, victims, needs_mib) = place(daemon, recipe, preempt).await?;
    if !victims.is_empty() {
        move_to(
            daemon,
            name,
            ModelState::Evicting,
            Some(format!("stopping {}", victims.join(", "))),
            |m| {
                m.gpus = gpus.clone();
                m.needs_mib = needs_mib;
            },
        )?;
        for victim in &victims {
            let why = format!("evicted to make room for {name}");
            // A victim that ended meanwhile is fine: its memory is what matters.
            let _ = super::stop(daemon, victim, &why).await;
        }
        wait_for_memory(daemon, name, &gpus, needs_mib).await?;
    }
    let port = match recipe.port {
        Some(port) => port,
        None => {
            free_port().map_err(|err| End::Failed(format!("cannot find a free port: {err}")))?
        }
    };
    move_to(daemon, name, ModelState::Launching, None, |m| {
        m.gpus = gpus.clone();
        m.needs_mib = needs_mib;
        m.port = Some(port);
    })?;
    let spec = RunSpec {
        name: Some(format!("model-{name}")),
        command: command::argv(recipe, Some(port)),
        cwd: recipe.cwd.clone(),
        env: command::env(recipe, Some(&gpus)),
        ..RunSpec::default()
    };
    let run = crate::runs::start(daemon, spec)
        .map_err(|err| End::Failed(format!("cannot start its server: {}", err.message)))?;
    move_to(daemon, name, ModelState::CheckingStability, None, |m| {
        m.run = Some(run.id.clone());
        m.pid = run.pid;
    })?;
    let timeout = Duration::from_secs(recipe.ready_timeout_secs());
    let stability = super::secs(daemon.config.models.stability_secs);
    let run = run.id;
    {
        let healthy = wait_healthy(daemon, recipe, &run, port, timeout);
        tokio::pin!(healthy);
        tokio::select! {
            outcome = &mut healthy => {
                // Healthy before the stability window closed: it is up; say so at once.
                outcome?;
                move_to(daemon, name, ModelState::WaitingHealth, None, |_| {})?;
            }
            () = tokio::time::sleep(stability) => {
                let pid = current_pid(daemon, &run);
                move_to(daemon, name, ModelState::WaitingHealth, None, |m| m.pid = pid)?;
                healthy.await?;
            }
        }
    }
    let pid = current_pid(daemon, &run);
    move_to(daemon, name, ModelState::Ready, None, |m| m.pid = pid)?;
    Ok(run)
}

/// Decides where the launch goes, waiting while other launches hold what it needs (or
/// cancelling them, with `preempt`).
async fn place(
    daemon: &Arc<Daemon>,
    recipe: &Recipe,
    preempt: bool,
) -> Result<(Vec<u32>, Vec<String>, u64), End> {
    let name = &recipe.name;
    let _ = daemon.gpus_ready.subscribe().wait_for(|ready| *ready).await;
    loop {
        let (placement, needs_mib, mut changes) = {
            let state = daemon.state();
            let total = (state.gpus.report.gpus.iter())
                .map(|g| g.mem_total_mib)
                .max()
                .unwrap_or(0);
            let needs_mib = recipe.needs_mib(total);
            let facts = gpu_facts(&state, name);
            (
                machine::place(&recipe.gpus, needs_mib, &facts),
                needs_mib,
                state.bus.watch_changes(),
            )
        };
        match placement {
            Placement::Fits(gpus) => return Ok((gpus, Vec::new(), needs_mib)),
            Placement::Evict { gpus, victims } => return Ok((gpus, victims, needs_mib)),
            Placement::Impossible(why) => return Err(End::Failed(why)),
            Placement::Blocked { by } if preempt => {
                for other in &by {
                    let why = format!("preempted by the launch of {name}");
                    let _ = super::stop(daemon, other, &why).await;
                }
            }
            Placement::Blocked { by } => {
                let why = format!("waiting for the launch of {} to finish", by.join(", "));
                let waiting = daemon
                    .state()
                    .model(name)
                    .map(|m| {
                        m.state == ModelState::WaitingLock
                            && m.reason.as_deref() == Some(why.as_str())
                    })
                    .unwrap_or(false);
                if !waiting {
                    move_to(daemon, name, ModelState::WaitingLock, Some(why), |_| {})?;
                }
                let _ = changes.changed().await;
            }
        }
    }
}

/// The GPUs as placement sees them, leaving out the instance being placed.
fn gpu_facts(state: &State, placing: &str) -> Vec<GpuFacts> {
    let training = state.queue.assignments();
    let live_models: Vec<&ModelInfo> = (state.models.all().iter())
        .filter(|m| m.name != placing && !m.state.is_terminal())
        .collect();
    let model_runs: std::collections::HashSet<&str> = (live_models.iter())
        .filter_map(|m| m.run.as_deref())
        .collect();
    (state.gpus.report.gpus.iter())
        .map(|gpu| {
            let models_mib: u64 = (gpu.processes.iter())
                .filter(|p| p.run.as_deref().is_some_and(|run| model_runs.contains(run)))
                .filter_map(|p| p.used_mib)
                .sum();
            GpuFacts {
                index: gpu.index,
                total_mib: gpu.mem_total_mib,
                other_mib: gpu.mem_used_mib.saturating_sub(models_mib),
                training: training.get(&gpu.index).map(|run| {
                    state
                        .run(run)
                        .map_or(run.clone(), |r| r.label().to_string())
                }),
                models: (live_models.iter())
                    .filter(|m| m.gpus.contains(&gpu.index))
                    .map(|m| Holder {
                        name: m.name.clone(),
                        needs_mib: m.needs_mib,
                        last_used: m.last_used(),
                        launching: m.state.is_launching(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Waits until the GPUs a launch evicted for show room for it (the stopped servers' memory
/// freed, as the driver reports it), or fails after the config's eviction timeout.
async fn wait_for_memory(
    daemon: &Arc<Daemon>,
    name: &str,
    gpus: &[u32],
    needs_mib: u64,
) -> Result<(), End> {
    let deadline =
        tokio::time::Instant::now() + super::secs(daemon.config.models.evict_timeout_secs);
    loop {
        let short: Vec<String> = {
            let state = daemon.state();
            let facts = gpu_facts(&state, name);
            (facts.iter())
                .filter(|g| gpus.contains(&g.index))
                .filter_map(|g| {
                    let claimed: u64 = g.models.iter().map(|m| m.needs_mib).sum();
                    let free = g
                        .total_mib
                        .saturating_sub(g.other_mib)
                        .saturating_sub(claimed);
                    (free < needs_mib).then(|| format!("GPU {} has {free} MiB free", g.index))
                })
                .collect()
        };
        if short.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(End::Failed(format!(
                "the evicted models' memory was not freed in time ({}; {needs_mib} MiB needed)",
                short.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the health path until it answers 200, the server's run ends (a failure, with its
/// log's tail), or `timeout` passes.
async fn wait_healthy(
    daemon: &Arc<Daemon>,
    recipe: &Recipe,
    run: &str,
    port: u16,
    timeout: Duration,
) -> Result<(), End> {
    let url = format!("http://127.0.0.1:{port}{}", recipe.health_path());
    let interval = Duration::from_millis(daemon.config.models.health_interval_ms.max(1));
    let poll = health::until_healthy(&daemon.chat.http, &url, interval);
    let ended = crate::runs::control::ended(daemon, run, || false);
    tokio::select! {
        () = poll => Ok(()),
        ended = ended => Err(End::Failed(died(daemon, ended.and_then(Result::ok)))),
        () = tokio::time::sleep(timeout) => Err(End::Failed(format!(
            "not healthy after {} s (polled {url})",
            timeout.as_secs()
        ))),
    }
}

/// Serves until the server ends or a stop is asked for; says how it ended.
async fn serve(
    daemon: &Arc<Daemon>,
    name: &str,
    run: &str,
    mut cancelled: watch::Receiver<Option<String>>,
) -> End {
    tokio::select! {
        ended = crate::runs::control::ended(daemon, run, || false) => {
            match ended.and_then(Result::ok) {
                Some(run) if run.status == RunStatus::Stopped => {
                    End::Stopped(format!("its run {} was stopped", run.label()))
                }
                other => End::Failed(died(daemon, other)),
            }
        }
        why = requested_stop(&mut cancelled) => {
            tracing::info!(model = %name, "stopping: {why}");
            End::Stopped(why)
        }
    }
}

/// Records how the instance ended, stopping its server first (and waiting for it to end) so
/// nothing is left behind.
async fn finish(daemon: &Arc<Daemon>, name: &str, end: End) {
    let run = daemon.state().model(name).ok().and_then(|m| m.run.clone());
    if let Some(run) = run {
        let live = daemon
            .state()
            .run(&run)
            .is_some_and(|r| !r.status.is_terminal());
        if live {
            let why = match &end {
                End::Failed(why) | End::Stopped(why) => why.clone(),
            };
            if let Err(err) = crate::runs::control::stop(daemon, &run, None, &why) {
                tracing::warn!(model = %name, "cannot stop its server: {err}");
            }
            let _ = crate::runs::control::ended(daemon, &run, || false).await;
        }
    }
    let was_ready = daemon
        .state()
        .model(name)
        .is_ok_and(|m| m.state == ModelState::Ready);
    let (to, why) = match end {
        End::Failed(why) => (ModelState::Failed, why),
        End::Stopped(why) if was_ready => (ModelState::Stopped, why),
        End::Stopped(why) => (ModelState::Cancelled, why),
    };
    if let Err(End::Failed(err) | End::Stopped(err)) =
        move_to(daemon, name, to, Some(why), |m| m.serving = None)
    {
        tracing::warn!(model = %name, "cannot record how it ended: {err}");
    }
}

/// Why a server's run ended, with the end of its log.
fn died(daemon: &Daemon, run: Option<RunInfo>) -> String {
    let Some(run) = run else {
        return "its server's run is gone".into();
    };
    let how = match (run.exit_code, run.signal) {
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => format!("ended ({})", run.status),
    };
    let read = ReadLog {
        run: run.id.clone(),
        offset: None,
        tail_lines: Some(LOG_TAIL_LINES),
        max_bytes: None,
    };
    let tail = crate::runs::control::read_log(daemon, &read)
        // A terminal's log ends its lines with \r\n; the reason is read as plain text.
        .map(|chunk| {
            String::from_utf8_lossy(&chunk.data.0)
                .replace("\r\n", "\n")
                .trim_end()
                .to_string()
        })
        .unwrap_or_default();
    if tail.is_empty() {
        format!("its server {how}")
    } else {
        format!("its server {how}; the last lines of its log:\n{tail}")
    }
}

/// Waits for a stop request; never returns when no one can send one any more.
async fn requested_stop(cancelled: &mut watch::Receiver<Option<String>>) -> String {
    let asked =
        (cancelled.wait_for(Option::is_some).await).map(|why| why.clone().unwrap_or_default());
    match asked {
        Ok(why) => why,
        Err(_) => std::future::pending().await,
    }
}

/// Moves an instance to `to` (with `reason`, after `edit`), committing it.
fn move_to(
    daemon: &Daemon,
    name: &str,
    to: ModelState,
    reason: Option<String>,
    edit: impl FnOnce(&mut ModelInfo),
) -> Result<ModelInfo, End> {
    let mut state = daemon.state();
    let mut model = state
        .model(name)
        .map_err(|err| End::Failed(err.message))?
        .clone();
    machine::advance(&mut model, to, now_ms()).map_err(End::Failed)?;
    model.reason = reason;
    edit(&mut model);
    let released = state
        .save_model(model.clone())
        .map_err(|err| End::Failed(err.message))?;
    drop(state);
    if released {
        daemon.queue_wake.notify_one();
    }
    Ok(model)
}

/// Commits an instance as it is.
fn save(daemon: &Daemon, model: ModelInfo) -> Result<(), RpcError> {
    let released = daemon.state().save_model(model)?;
    if released {
        daemon.queue_wake.notify_one();
    }
    Ok(())
}

fn current_pid(daemon: &Daemon, run: &str) -> Option<u32> {
    daemon.state().run(run).and_then(|r| r.pid)
}

/// A port nothing listens on now, from the kernel. Another program could take it before
/// the server binds it; the server then fails at start and says so in its log.
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The launch's error for a client: the reason an instance failed or was cancelled.
pub(super) fn failure(model: &ModelInfo) -> RpcError {
    let why = model
        .reason
        .clone()
        .unwrap_or_else(|| model.state.to_string());
    let message = match model.state {
        ModelState::Cancelled => format!("the launch of {} was cancelled: {why}", model.name),
        _ => format!("{} failed: {why}", model.name),
    };
    RpcError::new(codes::MODEL_FAILED, message)
}
