//! Recipes: adding, listing, showing (with the argv a launch runs) and removing them.

use reagent::model::Recipe;
use reagent::protocol::{RecipeView, RpcError, codes};

use super::command;
use crate::daemon::Daemon;

/// Stores recipes, each replacing any of the same name, after checking every one: a bad
/// recipe stores none of them.
pub fn add(daemon: &Daemon, recipes: Vec<Recipe>) -> Result<Vec<Recipe>, RpcError> {
    if recipes.is_empty() {
        return Err(RpcError::new(codes::INVALID_PARAMS, "`recipes` is empty"));
    }
    for recipe in &recipes {
        recipe
            .check()
            .map_err(|why| RpcError::new(codes::INVALID_PARAMS, why))?;
    }
    let mut state = daemon.state();
    for recipe in &recipes {
        state.save_recipe(recipe.clone())?;
    }
    Ok(recipes)
}

/// Every recipe, by name.
pub fn list(daemon: &Daemon) -> Vec<Recipe> {
    daemon.state().models.recipes()
}

/// A recipe with exactly what a launch of it runs.
pub fn show(daemon: &Daemon, name: &str) -> Result<RecipeView, RpcError> {
    let recipe = daemon.state().recipe(name)?.clone();
    Ok(RecipeView {
        argv: command::argv(&recipe, recipe.port),
        env: command::env(&recipe, None),
        health_path: recipe.health_path().to_string(),
        recipe,
    })
}

/// Forgets a recipe; refused while its model is launching or serving (stop it first).
pub fn remove(daemon: &Daemon, name: &str) -> Result<(), RpcError> {
    let mut state = daemon.state();
    if let Some(model) = state.models.get(name)
        && !model.state.is_terminal()
    {
        return Err(RpcError::new(
            codes::INVALID_STATE,
            format!(
                "model {name} is {}: stop it first (`reagent model stop {name}`)",
                model.state
            ),
        ));
    }
    state.remove_recipe(name)
}
