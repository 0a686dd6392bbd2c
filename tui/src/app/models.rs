//! What the models view holds: the recipes and model instances the daemon told (from the
//! snapshot, then `recipe` and `model` events), and a short history of each ready model's
//! serving figures from `serving` events, for its sparklines.
//!
//! The daemon keeps no history of serving figures (they are stale within seconds, so they
//! are never committed): the sparklines show what this client saw since it connected.

use std::collections::{HashMap, VecDeque};

use reagent::model::{ModelInfo, ModelState, Recipe, ServingStats};

/// Serving samples kept per model: two minutes at the daemon's one scrape every 2 s, which
/// is as wide as a side panel's sparkline.
pub const SERVING_HISTORY: usize = 60;

/// One scrape's figures as the sparklines draw them; `None` where the server does not
/// report the figure (a gap in the line, not a zero that would read as idle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServingSample {
    /// When it was scraped, ms since the epoch: the same scrape is never drawn twice.
    pub ts: i64,
    /// Generated tokens per second.
    pub gen_tps: Option<f64>,
    /// KV-cache use, 0 to 1.
    pub kv_cache: Option<f64>,
}

/// The models view's state.
#[derive(Debug, Default)]
pub struct Models {
    /// Every recipe, by name: what the launch picker offers.
    pub recipes: Vec<Recipe>,
    /// Every model instance, oldest first (one per recipe, named after it).
    pub models: Vec<ModelInfo>,
    /// Recent serving samples per model name, oldest first.
    pub history: HashMap<String, VecDeque<ServingSample>>,
    /// Index into `models` of the highlighted model.
    pub selected: usize,
    /// A model this client launched that has no instance yet: highlighted when its first
    /// `model` event lists it, so the user sees the launch they asked for.
    pub follow: Option<String>,
}

impl Models {
    /// Takes the snapshot's recipes and models: everything is replaced, and the sparklines
    /// of models that no longer serve are forgotten. The rest keep their lines (a resync is
    /// the same servers, seen again), extended by the snapshot's latest figures.
    pub fn synced(&mut self, recipes: Vec<Recipe>, models: Vec<ModelInfo>) {
        let selected = self.current().map(|m| m.name.clone());
        self.listed(recipes);
        self.history.retain(|name, _| {
            models
                .iter()
                .any(|m| &m.name == name && m.state == ModelState::Ready)
        });
        for model in models.iter().filter(|m| m.state == ModelState::Ready) {
            if let Some(stats) = &model.serving {
                self.sample(&model.name, stats);
            }
        }
        self.models = models;
        self.reselect(selected.as_deref());
    }

    /// Every recipe, as `recipes.list` answered.
    pub fn listed(&mut self, mut recipes: Vec<Recipe>) {
        recipes.sort_by(|a, b| a.name.cmp(&b.name));
        self.recipes = recipes;
    }

    /// A recipe added or replaced.
    pub fn upsert_recipe(&mut self, recipe: Recipe) {
        match self.recipes.binary_search_by(|r| r.name.cmp(&recipe.name)) {
            Ok(at) => self.recipes[at] = recipe,
            Err(at) => self.recipes.insert(at, recipe),
        }
    }

    /// A recipe removed.
    pub fn remove_recipe(&mut self, name: &str) {
        self.recipes.retain(|r| r.name != name);
    }

    /// A model instance changed: its launch moved on, it became ready, it ended.
    pub fn upsert(&mut self, model: ModelInfo) {
        // A launch is a new server: the old one's figures say nothing about it.
        if model.state.is_launching() {
            self.history.remove(&model.name);
        }
        let name = model.name.clone();
        match self.models.iter_mut().find(|m| m.name == model.name) {
            Some(existing) => *existing = model,
            None => self.models.push(model),
        }
        if self.follow.as_deref() == Some(name.as_str()) {
            self.follow = None;
            self.reselect(Some(&name));
        }
    }

    /// Whether `model` starts or stops serving, compared with what is known of it: the
    /// moment the chat's `local/…` models change.
    pub fn serving_changes(&self, model: &ModelInfo) -> bool {
        let was = self
            .get(&model.name)
            .is_some_and(|m| m.state == ModelState::Ready);
        was != (model.state == ModelState::Ready)
    }

    /// A ready model's latest figures: they become its current ones, raise its peaks (the
    /// daemon commits peaks only now and then) and extend its sparklines.
    pub fn serving(&mut self, name: &str, stats: ServingStats) {
        let Some(model) = self
            .models
            .iter_mut()
            .find(|m| m.name == name && m.state == ModelState::Ready)
        else {
            return;
        };
        model.peaks.raise(&stats);
        model.serving = Some(stats.clone());
        self.sample(name, &stats);
    }

    /// Appends a sample to a model's history, once per scrape, keeping the newest
    /// [`SERVING_HISTORY`].
    fn sample(&mut self, name: &str, stats: &ServingStats) {
        let history = self.history.entry(name.to_string()).or_default();
        if history.back().is_some_and(|last| last.ts >= stats.ts) {
            return;
        }
        if history.len() >= SERVING_HISTORY {
            history.pop_front();
        }
        history.push_back(ServingSample {
            ts: stats.ts,
            gen_tps: stats.gen_tps.filter(|v| v.is_finite()),
            kv_cache: stats.kv_cache.filter(|v| v.is_finite()),
        });
    }

    /// The highlighted model.
    pub fn current(&self) -> Option<&ModelInfo> {
        self.models.get(self.selected)
    }

    /// A model by name.
    pub fn get(&self, name: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The model whose server is run `run`, if any: the GPU panel and the runs a GPU lists
    /// name the model rather than its server's run.
    pub fn by_run(&self, run: &str) -> Option<&ModelInfo> {
        self.models
            .iter()
            .find(|m| m.run.as_deref() == Some(run) && !m.state.is_terminal())
    }

    /// Moves the highlight by `step` rows, staying in the list.
    pub fn step(&mut self, step: isize) {
        let last = self.models.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(step).min(last);
    }

    /// Highlights the model called `name` when listed, else keeps the row in the list.
    fn reselect(&mut self, name: Option<&str>) {
        self.selected = name
            .and_then(|name| self.models.iter().position(|m| m.name == name))
            .unwrap_or(self.selected)
            .min(self.models.len().saturating_sub(1));
    }
}
