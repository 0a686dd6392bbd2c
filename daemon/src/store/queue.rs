//! The queue's rows (one JSON job per waiting or GPU-holding run) and sweeps.

use anyhow::Context as _;
use reagent::sweep::SweepInfo;
use rusqlite::params;

use super::Store;
use crate::queue::Job;

impl Store {
    /// Every queued job, in the order they were queued.
    pub fn load_jobs(&self) -> anyhow::Result<Vec<Job>> {
        let mut stmt = self
            .conn
            .prepare("SELECT run, job FROM queue ORDER BY rowid")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut jobs = Vec::new();
        for row in rows {
            let (run, text) = row?;
            let job = serde_json::from_str(&text)
                .with_context(|| format!("the queue entry of run {run} does not parse"))?;
            jobs.push(job);
        }
        Ok(jobs)
    }

    /// Writes a job (new or changed).
    pub fn save_job(&self, job: &Job) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO queue (run, job) VALUES (?1, ?2)
             ON CONFLICT(run) DO UPDATE SET job = excluded.job",
            params![job.run, serde_json::to_string(job)?],
        )?;
        Ok(())
    }

    /// Forgets a run's job.
    pub fn delete_job(&self, run: &str) -> anyhow::Result<()> {
        self.conn
            .execute("DELETE FROM queue WHERE run = ?1", [run])?;
        Ok(())
    }

    /// Every sweep, oldest first.
    pub fn load_sweeps(&self) -> anyhow::Result<Vec<SweepInfo>> {
        self.load_json("SELECT info FROM sweeps ORDER BY rowid", "sweep")
    }
}

/// Writes a sweep inside an event's transaction.
pub fn upsert_sweep(tx: &rusqlite::Transaction<'_>, sweep: &SweepInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO sweeps (id, info) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET info = excluded.info",
        params![sweep.id, serde_json::to_string(sweep)?],
    )?;
    Ok(())
}
