//! A service's rows in memory: oldest first, found by id in constant time.
//!
//! Runs, sessions, alerts and sweeps are each kept in one, inside the service that owns
//! them. The table only stores; the service commits through the bus first (see
//! [`crate::bus`]) and applies the change here once that succeeded.

use std::collections::HashMap;

use reagent::alert::AlertInfo;
use reagent::chat::SessionInfo;
use reagent::lookup::resolve;
use reagent::protocol::RpcError;
use reagent::run::RunInfo;
use reagent::sweep::SweepInfo;

/// A row with an id and, for some, a name a user may call it by.
pub trait Row: Clone {
    /// What the rows are called in errors ("run", "session").
    const KIND: &'static str;
    /// Its unique id.
    fn id(&self) -> &str;
    /// The name `resolve` also accepts, if any.
    fn name(&self) -> Option<&str> {
        None
    }
}

/// Rows oldest first, with an index by id.
pub struct Table<T> {
    rows: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T: Row> Table<T> {
    /// A table of rows loaded oldest first.
    pub fn new(rows: Vec<T>) -> Self {
        let mut table = Self {
            rows,
            index: HashMap::new(),
        };
        table.reindex();
        table
    }

    fn reindex(&mut self) {
        self.index = (self.rows.iter().enumerate())
            .map(|(i, row)| (row.id().to_string(), i))
            .collect();
    }

    /// Every row, oldest first.
    pub fn all(&self) -> &[T] {
        &self.rows
    }

    /// A row by exact id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&i| &self.rows[i])
    }

    /// Finds a row by id, name (the newest of that name) or unique id prefix, in that order.
    pub fn resolve(&self, query: &str) -> Result<&T, RpcError> {
        if let Some(row) = self.get(query) {
            return Ok(row);
        }
        resolve(&self.rows, query, T::KIND, |row| (row.id(), row.name()))
    }

    /// Replaces the row with the same id, or adds it as the newest.
    pub fn upsert(&mut self, row: T) {
        match self.index.get(row.id()) {
            Some(&i) => self.rows[i] = row,
            None => {
                self.index.insert(row.id().to_string(), self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// Keeps only the rows `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let before = self.rows.len();
        self.rows.retain(keep);
        if self.rows.len() != before {
            self.reindex();
        }
    }
}

impl Row for RunInfo {
    const KIND: &'static str = "run";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Row for SessionInfo {
    const KIND: &'static str = "session";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> Option<&str> {
        self.title.as_deref()
    }
}

impl Row for AlertInfo {
    const KIND: &'static str = "alert";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Row for SweepInfo {
    const KIND: &'static str = "sweep";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}
