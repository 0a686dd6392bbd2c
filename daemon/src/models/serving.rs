//! While models serve: scrape each ready server's Prometheus `/metrics` every few seconds
//! (into [`ServingStats`](reagent::model::ServingStats), broadcast as ephemeral `serving`
//! events, peaks committed with the model), and stop the ones idle longer than their recipe
//! allows. One task for every model: a tick costs a GET and a parse per ready model.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reagent::model::{ModelInfo, ModelState, ServingPeaks};
use reagent::time::now_ms;

use super::scrape::{self, Reading};
use crate::daemon::Daemon;

/// How long one scrape may take before it is skipped for this tick.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Commit a model's peaks and request count at most this often (ms): they are figures, not
/// state a restart must not lose to the second.
const SAVE_EVERY_MS: i64 = 10_000;

/// What the loop remembers of each model between ticks.
struct Seen {
    /// The last reading, for rates.
    reading: Option<Reading>,
    /// When the model was last committed, and with what figures.
    saved_at: i64,
    saved_requests: u64,
    saved_peaks: ServingPeaks,
}

/// Scrapes and unloads until the daemon exits.
pub async fn run(daemon: Arc<Daemon>) {
    let period = super::secs(daemon.config.models.scrape_secs).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: HashMap<String, Seen> = HashMap::new();
    loop {
        ticks.tick().await;
        let ready: Vec<ModelInfo> = (daemon.state().models.all().iter())
            .filter(|m| m.state == ModelState::Ready && m.port.is_some())
            .cloned()
            .collect();
        seen.retain(|name, _| ready.iter().any(|m| &m.name == name));
        let scrapes = ready.iter().map(|model| scrape_one(&daemon, model));
        let readings = futures_util::future::join_all(scrapes).await;
        let now = now_ms();
        for (model, reading) in ready.iter().zip(readings) {
            let seen = seen.entry(model.name.clone()).or_insert_with(|| Seen {
                reading: None,
                saved_at: now,
                saved_requests: model.requests,
                saved_peaks: model.peaks.clone(),
            });
            if let Some(reading) = reading {
                let stats = scrape::derive(seen.reading.as_ref(), &reading);
                seen.reading = Some(reading);
                daemon.state().model_serving(&model.name, stats);
            }
            save_figures(&daemon, &model.name, seen, now);
            unload_if_idle(&daemon, model, now);
        }
    }
}

/// One scrape, or `None` when the server did not answer (a busy server skips a tick; its
/// health is the driver's business).
async fn scrape_one(daemon: &Daemon, model: &ModelInfo) -> Option<Reading> {
    let url = format!("http://127.0.0.1:{}/metrics", model.port?);
    let response = (daemon
        .chat
        .http
        .get(&url)
        .timeout(SCRAPE_TIMEOUT)
        .send()
        .await)
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response.text().await.ok()?;
    scrape::read(&text, now_ms())
        .map_err(|err| tracing::debug!(model = %model.name, "cannot read its metrics: {err}"))
        .ok()
}

/// Commits the model (its peaks, its request count) when either moved and the last commit
/// is old enough.
fn save_figures(daemon: &Daemon, name: &str, seen: &mut Seen, now: i64) {
    if now - seen.saved_at < SAVE_EVERY_MS {
        return;
    }
    let mut state = daemon.state();
    let Ok(model) = state.model(name).cloned() else {
        return;
    };
    if model.state != ModelState::Ready {
        return;
    }
    let moved = seen.saved_requests != model.requests || seen.saved_peaks != model.peaks;
    seen.saved_at = now;
    if moved {
        seen.saved_requests = model.requests;
        seen.saved_peaks = model.peaks.clone();
        if let Err(err) = state.save_model(model) {
            tracing::warn!(model = %name, "cannot save its serving figures: {err}");
        }
    }
}

/// Stops a ready model whose recipe sets `idle_unload_secs` once no request has come
/// through reagent for that long.
fn unload_if_idle(daemon: &Arc<Daemon>, model: &ModelInfo, now: i64) {
    let idle_secs = {
        let state = daemon.state();
        state
            .recipe(&model.name)
            .ok()
            .and_then(|r| r.idle_unload_secs)
    };
    let Some(idle_secs) = idle_secs else {
        return;
    };
    let idle_ms = now - model.last_used();
    if idle_ms < i64::try_from(idle_secs.saturating_mul(1000)).unwrap_or(i64::MAX) {
        return;
    }
    let daemon = daemon.clone();
    let name = model.name.clone();
    tokio::spawn(async move {
        let why = format!("idle for {idle_secs} s (idle_unload_secs)");
        if let Err(err) = super::stop(&daemon, &name, &why).await {
            tracing::warn!(model = %name, "cannot unload it: {err}");
        }
    });
}
