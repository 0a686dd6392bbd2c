//! The models service: recipes, and model servers launched from them.
//!
//! A model is a run with a lifecycle on top. [`launch`] drives each instance through the
//! launch state machine ([`machine`], IO-free): placing it on GPUs from what they hold and
//! how much memory is free (evicting the least recently used ready models when it must,
//! never a training run), starting its server as an ordinary run ([`command`] builds the
//! argv), and polling health ([`health`]) until it is ready. Once ready, [`serving`] scrapes
//! its Prometheus metrics ([`scrape`]) and unloads it when it idles, if its recipe asks.
//!
//! Each operation is the one function for it: [`recipes`] for recipes, and here [`launch`],
//! [`stop`], [`list`] and the `local` chat provider's [`endpoint`].

pub mod command;
mod health;
mod launch;
pub mod machine;
pub mod recipes;
pub mod scrape;
pub mod serving;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use reagent::model::{ModelInfo, ModelState};
use reagent::protocol::{LaunchModel, RpcError, codes};

use crate::daemon::Daemon;

/// Launches a recipe's model and answers once it is ready, or with why it failed. A launch
/// of a recipe whose model is launching joins that launch; of one that is ready, returns
/// it: the same model is never loaded twice.
pub async fn launch(daemon: &Arc<Daemon>, params: LaunchModel) -> Result<ModelInfo, RpcError> {
    let name = {
        let mut state = daemon.state();
        let recipe = state.recipe(&params.recipe)?.clone();
        let running = (state.models.get(&recipe.name)).is_some_and(|m| !m.state.is_terminal());
        if !running {
            launch::start(daemon, &mut state, recipe.clone(), params.preempt)?;
        }
        recipe.name
    };
    settled(daemon, &name).await
}

/// Waits until a model is ready (`Ok`) or has ended (`Err` with why).
async fn settled(daemon: &Daemon, name: &str) -> Result<ModelInfo, RpcError> {
    loop {
        let (model, mut changes) = {
            let state = daemon.state();
            (state.model(name)?.clone(), state.bus.watch_changes())
        };
        match model.state {
            ModelState::Ready => return Ok(model),
            state if state.is_terminal() => return Err(launch::failure(&model)),
            _ => {}
        }
        if changes.changed().await.is_err() {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "the daemon is stopping",
            ));
        }
    }
}

/// Stops a model (or cancels its launch) in any state, and answers once its server is gone
/// and the model is recorded as stopped or cancelled. Stopping one that already ended
/// returns it as it is.
pub async fn stop(daemon: &Arc<Daemon>, name: &str, why: &str) -> Result<ModelInfo, RpcError> {
    let (name, mut changes) = {
        let state = daemon.state();
        let model = state.model(name)?;
        if model.state.is_terminal() {
            return Ok(model.clone());
        }
        match state.models.cancels.get(&model.name) {
            Some(cancel) => {
                cancel.send_replace(Some(why.to_string()));
            }
            None => {
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("model {} has no driver to stop it", model.name),
                ));
            }
        }
        (model.name.clone(), state.bus.watch_changes())
    };
    loop {
        let model = daemon.state().model(&name)?.clone();
        if model.state.is_terminal() {
            return Ok(model);
        }
        if changes.changed().await.is_err() {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "the daemon is stopping",
            ));
        }
    }
}

/// Every model instance, oldest first.
pub fn list(daemon: &Daemon) -> Vec<ModelInfo> {
    daemon.state().models.all().to_vec()
}

/// Where the `local` chat provider sends a request for model `name` (its name or the name
/// it answers to): its port and the name it answers to. Only ready models answer.
pub fn endpoint(daemon: &Daemon, name: &str) -> Result<(u16, String), String> {
    let state = daemon.state();
    let ready: Vec<&str> = (state.models.all().iter())
        .filter(|m| m.state == ModelState::Ready)
        .map(|m| m.name.as_str())
        .collect();
    let known = if ready.is_empty() {
        "none is ready; launch one with `reagent model launch RECIPE`".to_string()
    } else {
        format!("ready: {}", ready.join(", "))
    };
    let model = (state.models.all().iter())
        .find(|m| m.name == name || m.served_name == name)
        .cloned()
        .ok_or_else(|| format!("no local model `{name}` ({known})"))?;
    let port = match (model.state, model.port) {
        (ModelState::Ready, Some(port)) => port,
        (state, _) => {
            return Err(format!(
                "local model `{}` is {state}, not ready ({known})",
                model.name
            ));
        }
    };
    Ok((port, model.served_name))
}

/// Counts a request reagent passes to model `name` (its name or the name it answers to):
/// requests served and the last request, which idle unload and eviction go by.
pub fn note_request(daemon: &Daemon, name: &str) {
    let mut state = daemon.state();
    let found = (state.models.all().iter())
        .find(|m| m.name == name || m.served_name == name)
        .map(|m| m.name.clone());
    if let Some(found) = found {
        state.note_model_request(&found, reagent::time::now_ms());
    }
}

/// Picks every unfinished instance up again after a daemon start (after runs are adopted,
/// so servers that outlived the daemon are known).
pub fn adopt_all(daemon: &Arc<Daemon>) {
    let pending: Vec<(ModelInfo, Option<reagent::model::Recipe>)> = {
        let state = daemon.state();
        (state.models.all().iter())
            .filter(|m| !m.state.is_terminal())
            .map(|m| (m.clone(), state.recipe(&m.name).ok().cloned()))
            .collect()
    };
    for (model, recipe) in pending {
        launch::adopt(daemon, model, recipe);
    }
}

/// Seconds from the config as a duration; nonsense (negative, NaN) counts as none.
fn secs(value: f64) -> Duration {
    if value.is_finite() && value > 0.0 {
        Duration::from_secs_f64(value.min(86_400.0 * 365.0))
    } else {
        Duration::ZERO
    }
}
