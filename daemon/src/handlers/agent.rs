//! The agent's requests whose answers come later (the tool list and MCP servers start MCP
//! servers first; a session's auto list is checked against them). Approvals and wild mode
//! are one-liners in the dispatch table.

use std::future::Future;

use reagent::protocol::{ListMcp, ListTools, Method, RequestId, RpcError, SetSessionAgent};

use super::{Conn, Reply};
use crate::agent;

/// Answers `params` with what `work` comes back with, in a task.
fn later<M, F>(conn: &Conn, id: Option<RequestId>, params: M, work: F) -> Reply
where
    M: Method + Send + 'static,
    F: Future<Output = Result<M::Reply, RpcError>> + Send + 'static,
{
    let reply = conn.defer(id, &params);
    tokio::spawn(async move { reply.respond(work.await) });
    Reply::Sent
}

/// `tools.list`.
pub fn tools(conn: &Conn, id: Option<RequestId>, list: ListTools) -> Reply {
    let daemon = conn.daemon.clone();
    later(conn, id, list, async move {
        Ok(agent::tools_list(&daemon).await)
    })
}

/// `mcp.list`.
pub fn mcp(conn: &Conn, id: Option<RequestId>, list: ListMcp) -> Reply {
    let daemon = conn.daemon.clone();
    later(
        conn,
        id,
        list,
        async move { Ok(agent::mcp_list(&daemon).await) },
    )
}

/// `session.agent`.
pub fn set_session(conn: &Conn, id: Option<RequestId>, set: SetSessionAgent) -> Reply {
    let daemon = conn.daemon.clone();
    let params = set.clone();
    later(conn, id, params, async move {
        agent::set_session(&daemon, set).await
    })
}
