//! The agent service: the tools a session's model may call (each the one service function a
//! CLI subcommand calls), the approvals that gate acting tools, MCP servers, the alerts handed
//! to an agent, and wild mode.
//!
//! It sits above every other service, since its tools reach them all. Chat, below it, gets
//! the tools through the [`crate::chat::Toolbox`] registered here at start ([`start`]); the
//! alerts service marks which alerts wait for an agent, and the handoff task here
//! ([`handoff::watch`]) hands them over.

pub mod approvals;
pub mod handoff;
pub mod mcp;
pub mod table;
pub mod tools;
pub mod turn;
pub mod wild;

use std::sync::Arc;

use reagent::agent::{McpServerInfo, ToolInfo};
use reagent::chat::SessionInfo;
use reagent::config::Config;
use reagent::protocol::{RpcError, SetSessionAgent, codes};

use crate::daemon::Daemon;

/// What the agent keeps beyond the state: its MCP servers.
pub struct Agent {
    /// The configured MCP servers, started on first use.
    pub mcp: mcp::McpServers,
}

impl Agent {
    /// The agent of a config: its MCP servers, none started yet.
    pub fn new(config: &Config) -> Self {
        Self {
            mcp: mcp::McpServers::new(&config.mcp, &config.secret_vars()),
        }
    }
}

/// Lends chat the tools, starts handing alerts to agents, and resumes the wild-mode loops
/// that were going when the daemon last stopped.
pub fn start(daemon: &Arc<Daemon>) {
    daemon.chat.set_toolbox(Arc::new(turn::AgentTools));
    tokio::spawn(handoff::watch(daemon.clone()));
    wild::resume_all(daemon);
}

/// Every tool: the built-in ones, then each MCP server's (starting those not started yet).
pub async fn tools_list(daemon: &Daemon) -> Vec<ToolInfo> {
    let mut tools: Vec<ToolInfo> = tools::BUILTINS.iter().map(tools::Builtin::info).collect();
    tools.extend(daemon.agent.mcp.tools().await);
    tools
}

/// The MCP servers, their state and tools, once each has been given a chance to start.
pub async fn mcp_list(daemon: &Daemon) -> Vec<McpServerInfo> {
    daemon.agent.mcp.tools().await;
    daemon.agent.mcp.infos()
}

/// Turns a session's tools on or off and sets how its acting tools are let run; a field
/// left out stays as it is. Auto-run tools must be tools that exist.
pub async fn set_session(daemon: &Daemon, set: SetSessionAgent) -> Result<SessionInfo, RpcError> {
    if let Some(auto) = &set.auto {
        let known = tools_list(daemon).await;
        if let Some(unknown) = auto
            .iter()
            .find(|name| !known.iter().any(|t| &t.name == *name))
        {
            return Err(RpcError::new(
                codes::INVALID_PARAMS,
                format!("`auto`: there is no tool `{unknown}` (see `reagent tools`)"),
            ));
        }
    }
    let mut state = daemon.state();
    let mut session = state.resolve_session(&set.session)?.clone();
    if let Some(enabled) = set.enabled {
        session.agent.enabled = enabled;
    }
    if let Some(mode) = set.mode {
        session.agent.mode = mode;
    }
    if let Some(auto) = set.auto {
        session.agent.auto = auto.into_iter().collect();
    }
    state.save_session(session)
}
