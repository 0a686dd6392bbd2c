//! Chat sessions and messages in the store. Messages are rows with their parts as JSON:
//! they are read and written whole, and a streaming answer is rewritten as it grows.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use reagent::chat::{MessageInfo, MessageStatus, Role, SessionInfo, UsageReport, UsageTotals};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row, params};

use super::Store;

/// Inserts or replaces a session.
pub fn upsert_session(tx: &rusqlite::Connection, session: &SessionInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, title, model, system, cwd, created_at, agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title, model = excluded.model,
             system = excluded.system, agent = excluded.agent",
        params![
            session.id,
            session.title,
            session.model,
            session.system,
            session.cwd.to_string_lossy(),
            session.created_at,
            serde_json::to_string(&session.agent)?
        ],
    )?;
    Ok(())
}

/// Deletes a session with its messages, its agent's approvals and its wild-mode loop.
pub fn delete_session(tx: &rusqlite::Connection, id: &str) -> anyhow::Result<()> {
    for table in ["messages", "approvals", "wild"] {
        tx.execute(&format!("DELETE FROM {table} WHERE session = ?1"), [id])?;
    }
    tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
    Ok(())
}

/// Inserts or replaces a message.
pub fn upsert_message(tx: &rusqlite::Connection, message: &MessageInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO messages (id, session, role, status, parts, error, usage, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, parts = excluded.parts,
             error = excluded.error, usage = excluded.usage",
        params![
            message.id,
            message.session,
            name(&message.role)?,
            name(&message.status)?,
            serde_json::to_string(&message.parts)?,
            message.error,
            serde_json::to_string(&message.usage)?,
            message.created_at
        ],
    )?;
    Ok(())
}

/// The snake_case name serde gives a unit enum variant.
fn name<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value)? {
        serde_json::Value::String(name) => Ok(name),
        other => anyhow::bail!("{other} is not a name"),
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

impl Store {
    /// Every session, oldest first.
    pub fn load_sessions(&self) -> anyhow::Result<Vec<SessionInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, title, model, system, cwd, created_at, agent FROM sessions
             ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(SessionInfo {
                id: row.get(0)?,
                title: row.get(1)?,
                model: row.get(2)?,
                system: row.get(3)?,
                cwd: PathBuf::from(row.get::<_, String>(4)?),
                created_at: row.get(5)?,
                // Sessions from before the agent have none: tools off.
                agent: (row.get::<_, Option<String>>(6)?)
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's messages, oldest first.
    pub fn load_messages(&self, session: &str) -> anyhow::Result<Vec<MessageInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, session, role, status, parts, error, usage, created_at FROM messages
             WHERE session = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([session], message_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One message by id, if it is stored: what the agent reads of an answer that ended,
    /// without reading its whole session.
    pub fn load_message(&self, id: &str) -> anyhow::Result<Option<MessageInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, session, role, status, parts, error, usage, created_at FROM messages
             WHERE id = ?1",
        )?;
        Ok(stmt.query_row([id], message_from_row).optional()?)
    }

    /// Writes a streaming answer as it stands, without an event: so a daemon killed
    /// mid-answer keeps what arrived.
    pub fn save_message(&self, message: &MessageInfo) -> anyhow::Result<()> {
        upsert_message(&self.conn, message)
    }

    /// Marks answers that were streaming or waiting when the daemon last stopped.
    pub fn interrupt_unfinished(&self) -> anyhow::Result<usize> {
        Ok(self.conn.execute(
            "UPDATE messages SET status = 'interrupted' WHERE status IN ('streaming', 'queued')",
            [],
        )?)
    }
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<MessageInfo> {
    let text = |i: usize| row.get::<_, String>(i);
    Ok(MessageInfo {
        id: row.get(0)?,
        session: row.get(1)?,
        role: parse(&text(2)?).unwrap_or(Role::Assistant),
        status: parse(&text(3)?).unwrap_or(MessageStatus::Interrupted),
        parts: serde_json::from_str(&text(4)?).unwrap_or_default(),
        error: row.get(5)?,
        usage: serde_json::from_str(&text(6)?).unwrap_or_default(),
        created_at: row.get(7)?,
    })
}

/// Token and cost totals of answers, per session and per UTC day, read on a connection of
/// its own: the scan runs outside the daemon's state lock, and WAL lets it read while the
/// daemon writes.
pub fn usage_report(db: &Path) -> anyhow::Result<UsageReport> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open the database {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let totals = |group: &str| -> anyhow::Result<Vec<UsageTotals>> {
        let sql = format!(
            "SELECT {group} AS key, COUNT(*),
                    COALESCE(SUM(json_extract(usage, '$.input')), 0),
                    COALESCE(SUM(json_extract(usage, '$.output')), 0),
                    COALESCE(SUM(json_extract(usage, '$.cached')), 0),
                    COALESCE(SUM(json_extract(usage, '$.cost_usd')), 0.0)
             FROM messages
             WHERE role = 'assistant' AND COALESCE(json_extract(usage, '$.copied'), 0) = 0
             GROUP BY key ORDER BY MIN(created_at)"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |row| {
            let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0).cast_unsigned());
            Ok(UsageTotals {
                key: row.get(0)?,
                answers: count(1)?,
                input: count(2)?,
                output: count(3)?,
                cached: count(4)?,
                cost_usd: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok(UsageReport {
        sessions: totals("session")?,
        days: totals("date(created_at / 1000, 'unixepoch')")?,
    })
}

#[cfg(test)]
mod tests {
    use reagent::chat::{MessageUsage, Part};
    use reagent::protocol::{Event, EventKind};

    use super::*;

    #[test]
    fn sessions_and_messages_round_trip_and_unfinished_answers_are_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.db"), dir.path()).unwrap();
        let session = SessionInfo {
            id: "s1".into(),
            title: None,
            model: "mock/m".into(),
            system: Some("be brief".into()),
            cwd: "/".into(),
            created_at: 1,
            agent: reagent::agent::AgentPolicy {
                enabled: true,
                ..Default::default()
            },
        };
        store
            .commit(&Event {
                seq: 1,
                ts: 1,
                kind: EventKind::Session {
                    session: session.clone(),
                },
            })
            .unwrap();
        let mut answer = MessageInfo {
            id: "m1".into(),
            session: "s1".into(),
            role: Role::Assistant,
            status: MessageStatus::Streaming,
            parts: vec![Part::text("Hel")],
            error: None,
            usage: MessageUsage::default(),
            created_at: 2,
        };
        store.save_message(&answer).unwrap();
        answer.parts[0].text.push_str("lo");
        store.save_message(&answer).unwrap();
        assert_eq!(store.interrupt_unfinished().unwrap(), 1);
        assert_eq!(store.load_sessions().unwrap(), [session]);
        let messages = store.load_messages("s1").unwrap();
        assert_eq!(messages[0].text(), "Hello");
        assert_eq!(messages[0].status, MessageStatus::Interrupted);
    }
}
