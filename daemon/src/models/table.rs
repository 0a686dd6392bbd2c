//! The models service's table: recipes by name, model instances oldest first, and the cancel
//! switch of each instance whose driver still runs. Its locked methods follow the bus rule:
//! commit the event, then change the table.

use std::collections::{BTreeMap, HashMap};

use reagent::model::{ModelInfo, ModelState, Recipe, ServingStats};
use reagent::protocol::{EventKind, RpcError, codes};
use tokio::sync::watch;

use crate::daemon::State;
use crate::queue::Hold;
use crate::table::{Row, Table};

impl Row for ModelInfo {
    const KIND: &'static str = "model";
    fn id(&self) -> &str {
        &self.name
    }
}

/// Recipes and model instances.
pub struct Models {
    recipes: BTreeMap<String, Recipe>,
    instances: Table<ModelInfo>,
    /// Per instance whose driver runs: send a reason to stop it (or cancel its launch).
    pub(super) cancels: HashMap<String, watch::Sender<Option<String>>>,
}

impl Models {
    /// The rows the store kept.
    pub fn new(recipes: Vec<Recipe>, instances: Vec<ModelInfo>) -> Self {
        Self {
            recipes: recipes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            instances: Table::new(instances),
            cancels: HashMap::new(),
        }
    }

    /// Every recipe, by name.
    pub fn recipes(&self) -> Vec<Recipe> {
        self.recipes.values().cloned().collect()
    }

    /// Every instance, oldest first.
    pub fn all(&self) -> &[ModelInfo] {
        self.instances.all()
    }

    /// An instance by name.
    pub fn get(&self, name: &str) -> Option<&ModelInfo> {
        self.instances.get(name)
    }
}

impl State {
    /// A recipe by name, or an error listing the known ones.
    pub fn recipe(&self, name: &str) -> Result<&Recipe, RpcError> {
        self.models.recipes.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.models.recipes.keys().map(String::as_str).collect();
            RpcError::new(
                codes::NOT_FOUND,
                format!(
                    "no recipe `{name}` (known: {}); add one with `reagent recipe add FILE`",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
    }

    /// Commits a new or changed recipe, then broadcasts it.
    pub fn save_recipe(&mut self, recipe: Recipe) -> Result<(), RpcError> {
        self.bus.emit(EventKind::Recipe {
            recipe: recipe.clone(),
        })?;
        self.models.recipes.insert(recipe.name.clone(), recipe);
        Ok(())
    }

    /// Commits a recipe's removal, then broadcasts it.
    pub fn remove_recipe(&mut self, name: &str) -> Result<(), RpcError> {
        self.recipe(name)?;
        self.bus.emit(EventKind::RecipeRemoved {
            name: name.to_string(),
        })?;
        self.models.recipes.remove(name);
        Ok(())
    }

    /// A model instance by name, or an error naming the known ones.
    pub fn model(&self, name: &str) -> Result<&ModelInfo, RpcError> {
        self.models.instances.resolve(name)
    }

    /// Commits a new or changed instance, then broadcasts it, and keeps the queue's hold of
    /// its GPUs in step: held from placement until it ends. Says whether GPUs were let go
    /// (the caller then wakes the queue).
    pub fn save_model(&mut self, mut model: ModelInfo) -> Result<bool, RpcError> {
        // The latest figures stay with the instance; only the driver's fields change here.
        if model.serving.is_none()
            && let Some(old) = self.models.instances.get(&model.name)
            && !model.state.is_terminal()
        {
            model.serving = old.serving.clone();
        }
        self.bus.emit(EventKind::Model {
            model: model.clone(),
        })?;
        let released = if model.state.is_terminal() {
            self.models.cancels.remove(&model.name);
            self.queue.release(&model.name)
        } else {
            if !model.gpus.is_empty() {
                let hold = Hold {
                    gpus: model.gpus.clone(),
                    mib: model.needs_mib,
                    run: model.run.clone(),
                };
                self.queue.hold(&model.name, hold);
            }
            false
        };
        self.models.instances.upsert(model);
        Ok(released)
    }

    /// Records a ready model's latest serving figures in memory and tells every client,
    /// without a commit: they are stale within seconds. Returns the instance when its
    /// peaks rose (the caller decides when to commit them).
    pub fn model_serving(&mut self, name: &str, stats: ServingStats) -> Option<ModelInfo> {
        let model = self.models.instances.get(name)?.clone();
        if model.state != ModelState::Ready {
            return None;
        }
        let mut updated = model;
        let rose = updated.peaks.raise(&stats);
        updated.serving = Some(stats.clone());
        self.models.instances.upsert(updated.clone());
        self.bus.broadcast_ephemeral(EventKind::Serving {
            model: name.to_string(),
            stats,
        });
        rose.then_some(updated)
    }

    /// Counts a request reagent passed to a model (in memory; the serving loop commits the
    /// count with the model's next save).
    pub fn note_model_request(&mut self, name: &str, now: i64) {
        if let Some(model) = self.models.instances.get(name) {
            let mut model = model.clone();
            model.requests += 1;
            model.last_request_at = Some(now);
            self.models.instances.upsert(model);
        }
    }
}
