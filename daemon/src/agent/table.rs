//! The agent service's table: approvals oldest first with the waiting tool call of each
//! pending one, and wild-mode loops by session. Its locked methods follow the bus rule:
//! commit the event, then change the table.

use std::collections::HashMap;

use reagent::agent::{Approval, ApprovalState, WildInfo, WildState};
use reagent::protocol::{EventKind, RpcError};
use reagent::time::now_ms;
use tokio::sync::oneshot;

use crate::daemon::State;
use crate::store::Store;
use crate::table::{Row, Table};

impl Row for Approval {
    const KIND: &'static str = "approval";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Row for WildInfo {
    const KIND: &'static str = "wild-mode loop";
    fn id(&self) -> &str {
        &self.session
    }
}

/// Approvals and wild-mode loops.
pub struct AgentTable {
    approvals: Table<Approval>,
    /// Per pending approval: where its answer goes (the tool call waiting for it).
    pub(super) waiting: HashMap<String, oneshot::Sender<Approval>>,
    wilds: Table<WildInfo>,
}

impl AgentTable {
    /// The rows the store kept. An approval still pending belonged to an answer the last
    /// daemon was running, which is over: it expires (its call was told so). A loop that was
    /// acting resumes waiting, where it picks up again.
    pub fn load(store: &Store) -> anyhow::Result<Self> {
        let mut approvals = store.load_approvals()?;
        for approval in &mut approvals {
            if approval.state == ApprovalState::Pending {
                approval.state = ApprovalState::Expired;
                approval.decided_at = Some(now_ms());
            }
        }
        let mut wilds = store.load_wilds()?;
        for wild in &mut wilds {
            if wild.state == WildState::Acting {
                wild.state = WildState::Waiting;
            }
        }
        Ok(Self {
            approvals: Table::new(approvals),
            waiting: HashMap::new(),
            wilds: Table::new(wilds),
        })
    }
}

impl State {
    /// Every approval, oldest first.
    pub fn approvals(&self) -> &[Approval] {
        self.agent.approvals.all()
    }

    /// Finds an approval by id or unique id prefix.
    pub fn resolve_approval(&self, query: &str) -> Result<&Approval, RpcError> {
        self.agent.approvals.resolve(query)
    }

    /// Commits a new or changed approval, then broadcasts it.
    pub fn save_approval(&mut self, approval: Approval) -> Result<Approval, RpcError> {
        self.bus.emit(EventKind::Approval {
            approval: approval.clone(),
        })?;
        self.agent.approvals.upsert(approval.clone());
        Ok(approval)
    }

    /// Every wild-mode loop, oldest first.
    pub fn wilds(&self) -> &[WildInfo] {
        self.agent.wilds.all()
    }

    /// The loop of a session, if it has one.
    pub fn wild(&self, session: &str) -> Option<&WildInfo> {
        self.agent.wilds.get(session)
    }

    /// Commits a new or changed loop, then broadcasts it.
    pub fn save_wild(&mut self, wild: WildInfo) -> Result<WildInfo, RpcError> {
        self.bus.emit(EventKind::Wild { wild: wild.clone() })?;
        self.agent.wilds.upsert(wild.clone());
        Ok(wild)
    }
}
