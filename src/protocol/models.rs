//! Params and replies of the recipe and model methods: adding, listing, showing and removing
//! recipes; launching, stopping and listing model servers.

use serde::{Deserialize, Serialize};

use crate::model::Recipe;

/// `recipe.add` params: recipes to store, each replacing any recipe of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddRecipes {
    /// The recipes, as read from a file.
    pub recipes: Vec<Recipe>,
}

/// `recipes.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListRecipes {}

/// `recipe.show` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowRecipe {
    /// The recipe's name.
    pub name: String,
}

/// `recipe.remove` params. A recipe whose model is launching or serving stays until it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRecipe {
    /// The recipe's name.
    pub name: String,
}

/// `recipe.show` reply: the recipe and exactly what a launch would run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeView {
    /// The recipe as stored.
    pub recipe: Recipe,
    /// The argv a launch runs; `{port}` stands for the port when the recipe names none
    /// (a free one is picked at launch).
    pub argv: Vec<String>,
    /// The environment the server gets on top of the usual (`CUDA_VISIBLE_DEVICES` is set
    /// at launch, to the GPUs picked).
    pub env: Vec<(String, String)>,
    /// The path polled for health.
    pub health_path: String,
}

/// `model.launch` params. The reply comes when the model is ready, or as an error saying
/// why it failed; `model` events tell the progress meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchModel {
    /// The recipe to launch. A launch of a recipe already launching joins it; of one
    /// already ready, returns it.
    pub recipe: String,
    /// Cancel other launches holding the GPUs this one needs, instead of waiting for them.
    #[serde(default)]
    pub preempt: bool,
}

/// `model.stop` params: stops (or cancels the launch of) a model, in any state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopModel {
    /// The model's name (its recipe's).
    pub name: String,
}

/// `models.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListModels {}
