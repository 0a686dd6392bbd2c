//! Approvals: an acting tool asks before it runs. The request reaches every attached client
//! as an `approval` event with the exact action; the first answer from any of them settles
//! it, and the others see it settled. A session's policy decides who is asked at all.

use std::sync::Arc;

use reagent::agent::{AgentPolicy, Approval, ApprovalState, PolicyMode};
use reagent::protocol::{AnswerApproval, ListApprovals, RpcError, codes};
use reagent::time::now_ms;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::daemon::{Daemon, short_id};

/// What a session's policy says of a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Run it now: read-only, or let run by the policy.
    Run,
    /// Ask a person first.
    Ask,
    /// Refuse it: the session's policy is `deny`.
    Deny,
}

/// What `policy` says of a call of `tool`.
pub fn gate(policy: &AgentPolicy, tool: &str, acts: bool) -> Gate {
    if !acts {
        return Gate::Run;
    }
    match policy.mode {
        PolicyMode::Deny => Gate::Deny,
        PolicyMode::Auto => Gate::Run,
        PolicyMode::Ask if policy.auto.contains(tool) => Gate::Run,
        PolicyMode::Ask => Gate::Ask,
    }
}

/// What one call asks approval for.
pub struct Request {
    /// The session whose model made the call.
    pub session: String,
    /// The answer holding the call.
    pub message: String,
    /// The provider's id of the call.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// Its arguments.
    pub arguments: Value,
    /// The exact action, in words.
    pub action: String,
}

/// Asks every client and waits for the first answer; a cancel of the answer (or the daemon
/// stopping) expires the request instead. Returns the approval as settled.
pub async fn ask(
    daemon: &Arc<Daemon>,
    request: Request,
    cancelled: &mut watch::Receiver<u64>,
) -> Result<Approval, RpcError> {
    let (tx, rx) = oneshot::channel();
    let approval = Approval {
        id: short_id(),
        session: request.session,
        message: request.message,
        call_id: request.call_id,
        tool: request.tool,
        arguments: request.arguments,
        action: request.action,
        state: ApprovalState::Pending,
        always: false,
        reason: None,
        created_at: now_ms(),
        decided_at: None,
    };
    let id = approval.id.clone();
    {
        let mut state = daemon.state();
        state.save_approval(approval)?;
        state.agent.waiting.insert(id.clone(), tx);
    }
    tokio::select! {
        answered = rx => {
            answered.map_err(|_| RpcError::new(codes::INTERNAL_ERROR, "the approval was lost"))
        }
        _ = cancelled.changed() => expire(daemon, &id),
    }
}

/// Expires a request nobody answered before its answer was cancelled.
fn expire(daemon: &Daemon, id: &str) -> Result<Approval, RpcError> {
    let mut state = daemon.state();
    state.agent.waiting.remove(id);
    let mut approval = state.resolve_approval(id)?.clone();
    if approval.state == ApprovalState::Pending {
        approval.state = ApprovalState::Expired;
        approval.decided_at = Some(now_ms());
        approval = state.save_approval(approval)?;
    }
    Ok(approval)
}

/// Approves or denies a request; the first answer settles it, a later one is refused naming
/// how it was settled. `always` lets the tool run without asking for the rest of its session.
pub fn answer(daemon: &Daemon, answer: AnswerApproval) -> Result<Approval, RpcError> {
    let mut state = daemon.state();
    let mut approval = state.resolve_approval(&answer.id)?.clone();
    if approval.state != ApprovalState::Pending {
        let settled = match approval.state {
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            _ => "expired",
        };
        return Err(RpcError::new(
            codes::INVALID_STATE,
            format!("approval {} is already {settled}", approval.id),
        ));
    }
    approval.state = if answer.approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Denied
    };
    approval.always = answer.approve && answer.always;
    approval.reason = (!answer.approve)
        .then(|| answer.reason.filter(|r| !r.trim().is_empty()))
        .flatten();
    approval.decided_at = Some(now_ms());
    if approval.always {
        let mut session = state.resolve_session(&approval.session)?.clone();
        session.agent.auto.insert(approval.tool.clone());
        state.save_session(session)?;
    }
    let approval = state.save_approval(approval)?;
    if let Some(waiting) = state.agent.waiting.remove(&approval.id) {
        // The call may have been cancelled meanwhile; then nobody waits, and that is fine.
        let _ = waiting.send(approval.clone());
    }
    Ok(approval)
}

/// Approvals waiting (every one with `all`), optionally one session's, oldest first.
pub fn list(daemon: &Daemon, list: &ListApprovals) -> Result<Vec<Approval>, RpcError> {
    let state = daemon.state();
    let session = match &list.session {
        Some(query) => Some(state.resolve_session(query)?.id.clone()),
        None => None,
    };
    Ok((state.approvals().iter())
        .filter(|a| list.all || a.state == ApprovalState::Pending)
        .filter(|a| session.as_ref().is_none_or(|s| &a.session == s))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_acting_tools_are_gated_and_always_is_per_tool() {
        let mut policy = AgentPolicy::default();
        assert_eq!(gate(&policy, "runs_list", false), Gate::Run);
        assert_eq!(gate(&policy, "run_stop", true), Gate::Ask);
        policy.auto.insert("run_stop".into());
        assert_eq!(gate(&policy, "run_stop", true), Gate::Run);
        assert_eq!(gate(&policy, "shell", true), Gate::Ask);
        policy.mode = PolicyMode::Deny;
        assert_eq!(gate(&policy, "shell", true), Gate::Deny);
        assert_eq!(gate(&policy, "runs_list", false), Gate::Run);
        policy.mode = PolicyMode::Auto;
        assert_eq!(gate(&policy, "shell", true), Gate::Run);
    }
}
