//! `metrics.*` requests: a run's series listed, and a chart's worth of them.

use reagent::metrics::{MetricsList, MetricsQueryReply};
use reagent::protocol::{ListMetrics, QueryMetrics, RpcError};

use super::Conn;

/// Every series of a run with its count and newest point.
pub fn list(conn: &Conn, list: ListMetrics) -> Result<MetricsList, RpcError> {
    let run = conn.daemon.state().resolve(&list.run)?.clone();
    crate::metrics::list(&conn.daemon, &run)
}

/// The series asked for, downsampled to the chart's columns.
pub fn query(conn: &Conn, query: QueryMetrics) -> Result<MetricsQueryReply, RpcError> {
    let run = conn.daemon.state().resolve(&query.run)?.clone();
    crate::metrics::query(&conn.daemon, &run, &query)
}
