//! Metrics files and alerts in the store.
//!
//! The points themselves live in per-run binary series files (see `crate::metrics::series`):
//! SQLite keeps only where each run's metrics file is, its per-run alert rules, and how far
//! the daemon has read it (inode, byte offset, line and malformed counts), so a restart
//! resumes where the last daemon stopped. Alerts are rows with the alert as JSON.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use reagent::alert::AlertInfo;
use reagent::metrics::Trend;
use rusqlite::{OptionalExtension as _, params};

use super::Store;

/// Where a run's metrics come from and how far they were read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestRecord {
    /// The metrics file.
    pub path: PathBuf,
    /// The run's own alert rules (`loss > 5`).
    pub rules: Vec<String>,
    /// The file's inode when last read: another one means it was rotated.
    pub inode: u64,
    /// Bytes read and stored (always at a line boundary).
    pub offset: u64,
    /// Lines read so far.
    pub lines: u64,
    /// Lines skipped as malformed.
    pub malformed: u64,
    /// Points stored per series when `offset` was saved; loading cuts the files back to it.
    pub lengths: BTreeMap<String, u64>,
}

/// Inserts or replaces an alert.
pub fn upsert_alert(tx: &rusqlite::Connection, alert: &AlertInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO alerts (id, run, status, created_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, payload = excluded.payload",
        params![
            alert.id,
            alert.run,
            alert.status.to_string(),
            alert.created_at,
            serde_json::to_string(alert)?
        ],
    )?;
    Ok(())
}

impl Store {
    /// Records a run's metrics file and rules when it starts (progress starts at zero).
    pub fn create_ingest(
        &self,
        run: &str,
        path: &std::path::Path,
        rules: &[String],
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO metric_files (run, path, rules) VALUES (?1, ?2, ?3)",
            params![run, path.to_string_lossy(), serde_json::to_string(rules)?],
        )?;
        Ok(())
    }

    /// A run's metrics file and progress; `None` for runs from before metrics existed.
    pub fn ingest(&self, run: &str) -> anyhow::Result<Option<IngestRecord>> {
        let record = self
            .conn
            .query_row(
                "SELECT path, rules, inode, offset, lines, malformed, series FROM metric_files
                 WHERE run = ?1",
                [run],
                |row| {
                    let rules: String = row.get(1)?;
                    let lengths: String = row.get(6)?;
                    Ok(IngestRecord {
                        path: PathBuf::from(row.get::<_, String>(0)?),
                        rules: serde_json::from_str(&rules).unwrap_or_default(),
                        inode: row.get::<_, i64>(2)?.cast_unsigned(),
                        offset: row.get::<_, i64>(3)?.cast_unsigned(),
                        lines: row.get::<_, i64>(4)?.cast_unsigned(),
                        malformed: row.get::<_, i64>(5)?.cast_unsigned(),
                        lengths: serde_json::from_str(&lengths).unwrap_or_default(),
                    })
                },
            )
            .optional()?;
        Ok(record)
    }

    /// Saves how far a run's metrics file was read, with the run's trend as of then.
    pub fn save_progress(
        &self,
        run: &str,
        record: &IngestRecord,
        trend: Option<&Trend>,
    ) -> anyhow::Result<()> {
        let trend = trend.map(serde_json::to_string).transpose()?;
        self.conn.execute(
            "UPDATE metric_files SET inode = ?2, offset = ?3, lines = ?4, malformed = ?5,
                 series = ?6, trend = ?7
             WHERE run = ?1",
            params![
                run,
                record.inode.cast_signed(),
                record.offset.cast_signed(),
                record.lines.cast_signed(),
                record.malformed.cast_signed(),
                serde_json::to_string(&record.lengths)?,
                trend
            ],
        )?;
        Ok(())
    }

    /// Every run's saved trend, by run id: the runs list shows them without loading any
    /// series. An unreadable one is left out (the run's next save rewrites it).
    pub fn load_trends(&self) -> anyhow::Result<HashMap<String, Trend>> {
        let mut stmt = self
            .conn
            .prepare("SELECT run, trend FROM metric_files WHERE trend IS NOT NULL")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut trends = HashMap::new();
        for row in rows {
            let (run, trend) = row?;
            match serde_json::from_str(&trend) {
                Ok(trend) => {
                    trends.insert(run, trend);
                }
                Err(err) => tracing::warn!(run = %run, "ignoring a saved trend: {err}"),
            }
        }
        Ok(trends)
    }

    /// Every alert, oldest first.
    pub fn load_alerts(&self) -> anyhow::Result<Vec<AlertInfo>> {
        let mut stmt = self
            .conn
            .prepare("SELECT payload FROM alerts ORDER BY created_at, rowid")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut alerts = Vec::new();
        for payload in rows {
            match serde_json::from_str::<AlertInfo>(&payload?) {
                Ok(alert) => alerts.push(alert),
                Err(err) => tracing::warn!("an alert in the database does not parse: {err}"),
            }
        }
        Ok(alerts)
    }
}
