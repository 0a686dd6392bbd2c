//! Recipes and model instances, each one JSON row keyed by name, written with their events.

use anyhow::Context as _;
use reagent::model::{ModelInfo, Recipe};
use rusqlite::params;
use serde::de::DeserializeOwned;

use super::Store;

impl Store {
    /// Every recipe, in the order they were first added.
    pub fn load_recipes(&self) -> anyhow::Result<Vec<Recipe>> {
        self.load_json("SELECT recipe FROM recipes ORDER BY rowid", "recipe")
    }

    /// Every model instance, oldest first.
    pub fn load_models(&self) -> anyhow::Result<Vec<ModelInfo>> {
        self.load_json("SELECT info FROM models ORDER BY rowid", "model")
    }

    /// Rows of one JSON column, in the query's order; `what` names a row that does not parse.
    pub(super) fn load_json<T: DeserializeOwned>(
        &self,
        sql: &str,
        what: &str,
    ) -> anyhow::Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(
                serde_json::from_str(&row?)
                    .with_context(|| format!("a {what} row does not parse"))?,
            );
        }
        Ok(out)
    }
}

/// Writes a recipe inside an event's transaction.
pub fn upsert_recipe(tx: &rusqlite::Transaction<'_>, recipe: &Recipe) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO recipes (name, recipe) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET recipe = excluded.recipe",
        params![recipe.name, serde_json::to_string(recipe)?],
    )?;
    Ok(())
}

/// Deletes a recipe inside an event's transaction.
pub fn delete_recipe(tx: &rusqlite::Transaction<'_>, name: &str) -> anyhow::Result<()> {
    tx.execute("DELETE FROM recipes WHERE name = ?1", [name])?;
    Ok(())
}

/// Writes a model instance inside an event's transaction. Its latest serving figures are
/// not kept: they are stale by the time anyone reads them back.
pub fn upsert_model(tx: &rusqlite::Transaction<'_>, model: &ModelInfo) -> anyhow::Result<()> {
    let stored = ModelInfo {
        serving: None,
        ..model.clone()
    };
    tx.execute(
        "INSERT INTO models (name, info) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET info = excluded.info",
        params![model.name, serde_json::to_string(&stored)?],
    )?;
    Ok(())
}
