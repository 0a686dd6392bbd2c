//! The agent's rows: approvals and wild-mode loops, one JSON row each, written with their
//! events. A session's agent settings ride on its own row (`sessions.agent`).

use reagent::agent::{Approval, WildInfo};
use rusqlite::params;

use super::Store;

impl Store {
    /// Every approval, oldest first.
    pub fn load_approvals(&self) -> anyhow::Result<Vec<Approval>> {
        self.load_json("SELECT approval FROM approvals ORDER BY rowid", "approval")
    }

    /// Every wild-mode loop, oldest first.
    pub fn load_wilds(&self) -> anyhow::Result<Vec<WildInfo>> {
        self.load_json("SELECT wild FROM wild ORDER BY rowid", "wild-mode")
    }
}

/// Writes an approval inside an event's transaction.
pub fn upsert_approval(tx: &rusqlite::Transaction<'_>, approval: &Approval) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO approvals (id, session, approval) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET approval = excluded.approval",
        params![
            approval.id,
            approval.session,
            serde_json::to_string(approval)?
        ],
    )?;
    Ok(())
}

/// Writes a wild-mode loop inside an event's transaction.
pub fn upsert_wild(tx: &rusqlite::Transaction<'_>, wild: &WildInfo) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO wild (session, wild) VALUES (?1, ?2)
         ON CONFLICT(session) DO UPDATE SET wild = excluded.wild",
        params![wild.session, serde_json::to_string(wild)?],
    )?;
    Ok(())
}
