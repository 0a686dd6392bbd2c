//! The gateway's request log: a row per `/v1` request, written once when it ends.

use reagent::gateway::{GatewayOutcome, GatewayRequest, GatewayRoute};
use rusqlite::{Row, params};

use super::Store;

/// The most rows one read returns, whatever is asked: a reply must stay a reply.
pub const MAX_ROWS: usize = 100_000;

impl Store {
    /// Records a finished request; its `id` is assigned here (the one given is ignored).
    pub fn insert_gateway_request(&self, row: &GatewayRequest) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO gateway_log (ts, token, route, model, status, ttfb_ms, duration_ms,
                 tokens_in, tokens_out, cost, outcome, detail, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                row.ts,
                row.token,
                row.route.as_str(),
                row.model,
                row.status,
                row.ttfb_ms,
                row.duration_ms,
                row.tokens_in.and_then(|n| i64::try_from(n).ok()),
                row.tokens_out.and_then(|n| i64::try_from(n).ok()),
                row.cost,
                row.outcome.as_str(),
                row.detail,
                row.body,
            ],
        )?;
        Ok(())
    }

    /// The newest `limit` requests (of `token`, since `since_ms`, when given), oldest first.
    pub fn gateway_log(
        &self,
        token: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> anyhow::Result<Vec<GatewayRequest>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, ts, token, route, model, status, ttfb_ms, duration_ms, tokens_in,
                    tokens_out, cost, outcome, detail, body
             FROM gateway_log
             WHERE (?1 IS NULL OR token = ?1) AND (?2 IS NULL OR ts >= ?2)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit.min(MAX_ROWS)).unwrap_or(0);
        let rows = stmt.query_map(params![token, since_ms, limit], read_row)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<GatewayRequest> {
    let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
    Ok(GatewayRequest {
        id: row.get(0)?,
        ts: row.get(1)?,
        token: row.get(2)?,
        route: GatewayRoute::parse(&row.get::<_, String>(3)?),
        model: row.get(4)?,
        status: row.get(5)?,
        ttfb_ms: row.get(6)?,
        duration_ms: row.get(7)?,
        tokens_in: count(row.get(8)?),
        tokens_out: count(row.get(9)?),
        cost: row.get(10)?,
        outcome: GatewayOutcome::parse(&row.get::<_, String>(11)?),
        detail: row.get(12)?,
        body: row.get(13)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, token: &str) -> GatewayRequest {
        GatewayRequest {
            id: 0,
            ts,
            token: token.into(),
            route: GatewayRoute::Provider,
            model: "mock/m".into(),
            status: 200,
            ttfb_ms: Some(1.5),
            duration_ms: 3.0,
            tokens_in: Some(12),
            tokens_out: Some(5),
            cost: Some(0.25),
            outcome: GatewayOutcome::Ok,
            detail: None,
            body: None,
        }
    }

    #[test]
    fn rows_read_back_filtered_newest_kept_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), dir.path()).unwrap();
        for (ts, token) in [(10, "a"), (20, "b"), (30, "a"), (40, "a")] {
            store.insert_gateway_request(&row(ts, token)).unwrap();
        }
        let all = store.gateway_log(None, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|r| r.ts).collect::<Vec<_>>(),
            [10, 20, 30, 40]
        );
        assert_eq!(all[0].tokens_in, Some(12));
        assert_eq!(all[0].route, GatewayRoute::Provider);
        let a = store.gateway_log(Some("a"), Some(20), 10).unwrap();
        assert_eq!(a.iter().map(|r| r.ts).collect::<Vec<_>>(), [30, 40]);
        let newest = store.gateway_log(None, None, 1).unwrap();
        assert_eq!(newest.iter().map(|r| r.ts).collect::<Vec<_>>(), [40]);
    }
}
