//! Params of the metrics methods (`metrics.list`, `metrics.query`); their replies are the
//! metric shapes in [`crate::metrics`].

use serde::{Deserialize, Serialize};

use crate::metrics::QueryWindow;

/// `metrics.list` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMetrics {
    /// Id, name or unique id prefix.
    pub run: String,
}

/// `metrics.query` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMetrics {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The series wanted; every series when empty.
    #[serde(default)]
    pub names: Vec<String>,
    /// Which steps.
    #[serde(default = "all_steps")]
    pub window: QueryWindow,
    /// The chart's width in columns (points come back as min and max per column).
    pub columns: usize,
}

fn all_steps() -> QueryWindow {
    QueryWindow::All
}
