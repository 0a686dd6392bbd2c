//! The SQLite store: runs and the event log, the only state a restart needs.
//!
//! WAL mode with `synchronous = NORMAL`: a commit survives the daemon being killed (the
//! question reagent cares about); only a power loss can take back the last transactions.
//! Every change is committed before any client hears of it, together with its event, so the
//! event log and the runs never disagree. Migrations are numbered by `PRAGMA user_version`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use reagent::protocol::{Event, EventKind};
use reagent::run::{RunInfo, RunStatus};
use rusqlite::{Connection, OptionalExtension, Row, params};

mod agent;
mod chat;
mod gateway;
mod metrics;
mod models;
mod queue;
mod tokens;

pub use chat::usage_report;
pub use metrics::IngestRecord;
pub use tokens::StoredToken;

/// Schema changes, in order; entry N brings the schema to `user_version` N + 1.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        name TEXT,
        command TEXT NOT NULL,
        cwd TEXT NOT NULL,
        env_keys TEXT NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        reason TEXT,
        pid INTEGER,
        cols INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
"#,
    r#"
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT,
        model TEXT NOT NULL,
        system TEXT,
        cwd TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        status TEXT NOT NULL,
        parts TEXT NOT NULL,
        error TEXT,
        usage TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_session ON messages (session, created_at);
"#,
    r#"
    CREATE TABLE queue (
        run TEXT PRIMARY KEY,
        job TEXT NOT NULL
    );
    CREATE TABLE sweeps (
        id TEXT PRIMARY KEY,
        info TEXT NOT NULL
    );
"#,
    r#"
    ALTER TABLE runs ADD COLUMN wandb TEXT;
    CREATE TABLE metric_files (
        run TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        rules TEXT NOT NULL,
        inode INTEGER NOT NULL DEFAULT 0,
        offset INTEGER NOT NULL DEFAULT 0,
        lines INTEGER NOT NULL DEFAULT 0,
        malformed INTEGER NOT NULL DEFAULT 0,
        series TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX alerts_by_run ON alerts (run, created_at);
"#,
    r#"
    ALTER TABLE runs ADD COLUMN lost_output TEXT;
"#,
    r#"
    ALTER TABLE metric_files ADD COLUMN trend TEXT;
"#,
    r#"
    CREATE TABLE recipes (
        name TEXT PRIMARY KEY,
        recipe TEXT NOT NULL
    );
    CREATE TABLE models (
        name TEXT PRIMARY KEY,
        info TEXT NOT NULL
    );
"#,
    r#"
    CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE gateway_log (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        token TEXT NOT NULL,
        route TEXT NOT NULL,
        model TEXT NOT NULL,
        status INTEGER NOT NULL,
        ttfb_ms REAL,
        duration_ms REAL NOT NULL,
        tokens_in INTEGER,
        tokens_out INTEGER,
        cost REAL,
        outcome TEXT NOT NULL,
        detail TEXT,
        body TEXT
    );
    CREATE INDEX gateway_log_by_ts ON gateway_log (ts);
"#,
    r#"
    ALTER TABLE runs ADD COLUMN agent_session TEXT;
    ALTER TABLE sessions ADD COLUMN agent TEXT;
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL,
        approval TEXT NOT NULL
    );
    CREATE TABLE wild (
        session TEXT PRIMARY KEY,
        wild TEXT NOT NULL
    );
"#,
    r#"
    ALTER TABLE runs ADD COLUMN executor TEXT;
"#,
];

/// The open database.
pub struct Store {
    conn: Connection,
    runs_dir: PathBuf,
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path, runs_dir: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Self {
            conn,
            runs_dir: runs_dir.to_path_buf(),
        };
        store
            .migrate()
            .with_context(|| format!("cannot migrate {}", path.display()))?;
        Ok(store)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            anyhow::bail!(
                "the database is at schema {version}, newer than this reagentd knows ({}); \
                 upgrade reagent",
                MIGRATIONS.len()
            );
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i64::try_from(index + 1)?)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Every run, oldest first.
    pub fn load_runs(&self) -> anyhow::Result<Vec<RunInfo>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM runs ORDER BY created_at, rowid")?;
        let runs = stmt.query_map([], |row| self.run_from_row(row))?;
        Ok(runs.collect::<Result<_, _>>()?)
    }

    fn run_from_row(&self, row: &Row<'_>) -> rusqlite::Result<RunInfo> {
        let id: String = row.get("id")?;
        let json = |column: &str| -> rusqlite::Result<Vec<String>> {
            let text: String = row.get(column)?;
            Ok(serde_json::from_str(&text).unwrap_or_default())
        };
        let status: String = row.get("status")?;
        Ok(RunInfo {
            name: row.get("name")?,
            command: json("command")?,
            cwd: PathBuf::from(row.get::<_, String>("cwd")?),
            env_keys: json("env_keys")?,
            // An unknown status can only come from a newer reagentd; treat the run as lost.
            status: RunStatus::parse(&status).unwrap_or(RunStatus::Lost),
            exit_code: row.get("exit_code")?,
            signal: row.get("signal")?,
            reason: row.get("reason")?,
            pid: row.get("pid")?,
            cols: row.get("cols")?,
            rows: row.get("rows")?,
            created_at: row.get("created_at")?,
            started_at: row.get("started_at")?,
            ended_at: row.get("ended_at")?,
            log_path: self
                .runs_dir
                .join(&id)
                .join(crate::supervisor::wire::files::LOG),
            wandb: row
                .get::<_, Option<String>>("wandb")?
                .and_then(|text| serde_json::from_str(&text).ok()),
            lost_output: row
                .get::<_, Option<String>>("lost_output")?
                .and_then(|text| serde_json::from_str(&text).ok()),
            agent_session: row.get("agent_session")?,
            // NULL for runs from before executors: they ran here.
            executor: row
                .get::<_, Option<String>>("executor")?
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default(),
            id,
        })
    }

    /// The last event's seq (0 for a new database).
    pub fn last_seq(&self) -> anyhow::Result<u64> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))?;
        Ok(seq.map_or(0, |s| s.max(0).cast_unsigned()))
    }

    /// The oldest seq still kept, if any.
    pub fn first_seq(&self) -> anyhow::Result<Option<u64>> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM events", [], |r| r.get(0))?;
        Ok(seq.map(|s| s.max(0).cast_unsigned()))
    }

    /// Commits an event and, when it is about a run, the run's new state, in one transaction.
    pub fn commit(&mut self, event: &Event) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        match &event.kind {
            EventKind::Run { run } => upsert_run(&tx, run)?,
            EventKind::Session { session } => chat::upsert_session(&tx, session)?,
            EventKind::Message { message } => chat::upsert_message(&tx, message)?,
            EventKind::SessionDeleted { id } => chat::delete_session(&tx, id)?,
            EventKind::RunRemoved { id } => delete_run(&tx, id)?,
            EventKind::Sweep { sweep } => queue::upsert_sweep(&tx, sweep)?,
            EventKind::Alert { alert } => metrics::upsert_alert(&tx, alert)?,
            EventKind::Recipe { recipe } => models::upsert_recipe(&tx, recipe)?,
            EventKind::RecipeRemoved { name } => models::delete_recipe(&tx, name)?,
            EventKind::Model { model } => models::upsert_model(&tx, model)?,
            EventKind::Approval { approval } => agent::upsert_approval(&tx, approval)?,
            EventKind::Wild { wild } => agent::upsert_wild(&tx, wild)?,
            EventKind::Clients { .. }
            | EventKind::Delta { .. }
            | EventKind::ChatRetrying { .. }
            | EventKind::Gpus { .. }
            | EventKind::Metrics { .. }
            | EventKind::Serving { .. }
            | EventKind::File { .. } => {}
        }
        tx.execute(
            "INSERT INTO events (seq, ts, payload) VALUES (?1, ?2, ?3)",
            params![
                event.seq.cast_signed(),
                event.ts,
                serde_json::to_string(&event.kind)?
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets events older than the newest `keep`.
    pub fn prune_events(&self, keep: u64) -> anyhow::Result<()> {
        let last = self.last_seq()?;
        let cutoff = last.saturating_sub(keep).cast_signed();
        self.conn
            .execute("DELETE FROM events WHERE seq <= ?1", [cutoff])?;
        Ok(())
    }

    /// The events after `since`, oldest first.
    pub fn events_since(&self, since: u64) -> anyhow::Result<Vec<Event>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, ts, payload FROM events WHERE seq > ?1 ORDER BY seq")?;
        let rows = stmt.query_map([since.cast_signed()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (seq, ts, payload) = row?;
            let kind: EventKind = serde_json::from_str(&payload)
                .with_context(|| format!("event {seq} in the database does not parse"))?;
            events.push(Event {
                seq: seq.cast_unsigned(),
                ts,
                kind,
            });
        }
        Ok(events)
    }

    /// Whether a run id is taken (ids are random; this guards the unlikely collision).
    pub fn run_exists(&self, id: &str) -> anyhow::Result<bool> {
        let found = self
            .conn
            .query_row("SELECT 1 FROM runs WHERE id = ?1", [id], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }
}

fn upsert_run(tx: &rusqlite::Transaction<'_>, run: &RunInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO runs (id, name, command, cwd, env_keys, status, exit_code, signal, reason,
                           pid, cols, rows, created_at, started_at, ended_at, wandb,
                           lost_output, agent_session, executor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)
         ON CONFLICT(id) DO UPDATE SET
             name = excluded.name, status = excluded.status, exit_code = excluded.exit_code,
             signal = excluded.signal, reason = excluded.reason, pid = excluded.pid,
             cols = excluded.cols, rows = excluded.rows, started_at = excluded.started_at,
             ended_at = excluded.ended_at, wandb = excluded.wandb,
             lost_output = excluded.lost_output, executor = excluded.executor",
        params![
            run.id,
            run.name,
            serde_json::to_string(&run.command)?,
            run.cwd.to_string_lossy(),
            serde_json::to_string(&run.env_keys)?,
            run.status.as_str(),
            run.exit_code,
            run.signal,
            run.reason,
            run.pid,
            run.cols,
            run.rows,
            run.created_at,
            run.started_at,
            run.ended_at,
            run.wandb.as_ref().map(serde_json::to_string).transpose()?,
            run.lost_output
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
            run.agent_session,
            serde_json::to_string(&run.executor)?,
        ],
    )?;
    Ok(())
}

/// Deletes a run's row and every row about it (metrics progress, alerts, a queue entry).
fn delete_run(tx: &rusqlite::Transaction<'_>, id: &str) -> anyhow::Result<()> {
    for table in ["metric_files", "alerts", "queue"] {
        tx.execute(&format!("DELETE FROM {table} WHERE run = ?1"), [id])?;
    }
    tx.execute("DELETE FROM runs WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_run(id: &str) -> RunInfo {
        RunInfo {
            id: id.into(),
            name: Some("train".into()),
            command: vec!["python".into(), "train.py".into()],
            cwd: "/tmp".into(),
            env_keys: vec!["SEED".into()],
            status: RunStatus::Running,
            exit_code: None,
            signal: None,
            reason: None,
            pid: Some(42),
            cols: 200,
            rows: 50,
            created_at: 1,
            started_at: Some(2),
            ended_at: None,
            log_path: PathBuf::new(),
            wandb: None,
            lost_output: None,
            agent_session: None,
            executor: Default::default(),
        }
    }

    #[test]
    fn runs_and_events_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let mut run = sample_run("ab12cd34");
        {
            let mut store = Store::open(&db, dir.path()).unwrap();
            let kind = EventKind::Run { run: run.clone() };
            store
                .commit(&Event {
                    seq: 1,
                    ts: 10,
                    kind,
                })
                .unwrap();
            run.status = RunStatus::Failed;
            run.exit_code = Some(3);
            run.executor = reagent::slurm::Executor::Slurm(reagent::slurm::SlurmJob {
                job: Some("12".into()),
                ..Default::default()
            });
            store
                .commit(&Event {
                    seq: 2,
                    ts: 11,
                    kind: EventKind::Run { run: run.clone() },
                })
                .unwrap();
        }
        let store = Store::open(&db, dir.path()).unwrap();
        let runs = store.load_runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunStatus::Failed);
        assert_eq!(runs[0].exit_code, Some(3));
        assert_eq!(runs[0].executor.describe(), "slurm:12");
        assert_eq!(runs[0].log_path, dir.path().join("ab12cd34/output.log"));
        assert_eq!(store.last_seq().unwrap(), 2);
        let events = store.events_since(1).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 2);
    }

    #[test]
    fn removing_a_run_deletes_its_rows_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.db"), dir.path()).unwrap();
        let (gone, kept) = (sample_run("ab12cd34"), sample_run("ef56ab78"));
        for (seq, run) in [(1, &gone), (2, &kept)] {
            let kind = EventKind::Run { run: run.clone() };
            store.commit(&Event { seq, ts: 0, kind }).unwrap();
            let ingest = Path::new("m.jsonl");
            store.create_ingest(&run.id, ingest, &[]).unwrap();
        }
        let kind = EventKind::RunRemoved {
            id: gone.id.clone(),
        };
        let seq = 3;
        store.commit(&Event { seq, ts: 0, kind }).unwrap();
        let runs = store.load_runs().unwrap();
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [kept.id.as_str()]);
        assert!(store.ingest(&gone.id).unwrap().is_none());
        assert!(store.ingest(&kept.id).unwrap().is_some());
        assert!(!store.run_exists(&gone.id).unwrap());
    }

    #[test]
    fn pruning_keeps_the_newest_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.db"), dir.path()).unwrap();
        for seq in 1..=10 {
            let kind = EventKind::Clients { attached: 1 };
            store.commit(&Event { seq, ts: 0, kind }).unwrap();
        }
        store.prune_events(3).unwrap();
        assert_eq!(store.first_seq().unwrap(), Some(8));
        assert_eq!(store.last_seq().unwrap(), 10);
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&db, dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("newer"), "{err:#}");
    }
}
