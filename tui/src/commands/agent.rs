//! `reagent tools`, `mcp`, `approvals`, `approve`, `deny` and `wild`: the agent's surface.

use std::process::ExitCode;

use reagent::agent::{Approval, McpServerInfo, ToolInfo, WildInfo};
use reagent::protocol::{
    AnswerApproval, ListApprovals, ListMcp, ListTools, StartWild, StopWild, WildStatus,
};

use super::{Ctx, aligned, print_json};
use crate::cli::WildAction;
use crate::sanitize;

/// Lists every tool: name, where it comes from, whether it asks first, what it does.
pub async fn tools(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let tools = client.call(&ListTools {}).await?;
    if json {
        print_json(&tools)?;
    } else {
        print!("{}", tools_table(&tools));
    }
    Ok(ExitCode::SUCCESS)
}

fn tools_table(tools: &[ToolInfo]) -> String {
    let mut rows = vec![
        ["TOOL", "SOURCE", "ASKS", "DESCRIPTION"]
            .map(String::from)
            .to_vec(),
    ];
    for tool in tools {
        rows.push(vec![
            sanitize::line(&tool.name).into_owned(),
            sanitize::line(&tool.source).into_owned(),
            if tool.acts { "yes" } else { "no" }.into(),
            sanitize::line(&tool.description).into_owned(),
        ]);
    }
    aligned(&rows)
}

/// Lists the MCP servers: state, tools and why one failed.
pub async fn mcp(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let servers = client.call(&ListMcp {}).await?;
    if json {
        print_json(&servers)?;
    } else if servers.is_empty() {
        println!("no MCP server: add [mcp.NAME] command = \"…\" to the config");
    } else {
        print!("{}", mcp_table(&servers));
    }
    Ok(ExitCode::SUCCESS)
}

fn mcp_table(servers: &[McpServerInfo]) -> String {
    let mut rows = vec![
        ["SERVER", "STATE", "TOOLS", "NOTE"]
            .map(String::from)
            .to_vec(),
    ];
    for server in servers {
        let tools: Vec<&str> = server.tools.iter().map(|t| t.name.as_str()).collect();
        rows.push(vec![
            sanitize::line(&server.name).into_owned(),
            format!("{:?}", server.state).to_lowercase(),
            sanitize::line(&tools.join(", ")).into_owned(),
            sanitize::line(server.error.as_deref().unwrap_or("")).into_owned(),
        ]);
    }
    aligned(&rows)
}

/// Lists approvals waiting (all with `all`), with the exact action each asks for.
pub async fn approvals(ctx: &Ctx, json: bool, all: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let approvals = client.call(&ListApprovals { all, session: None }).await?;
    if json {
        print_json(&approvals)?;
    } else if approvals.is_empty() {
        println!("no {}approvals", if all { "" } else { "waiting " });
    } else {
        for approval in &approvals {
            print!("{}", describe(approval));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One approval as a block: who asks what, and its exact action indented under it.
fn describe(approval: &Approval) -> String {
    let state = format!("{:?}", approval.state).to_lowercase();
    let mut text = format!(
        "{} {state}: session {} wants `{}`\n",
        approval.id,
        approval.session,
        sanitize::line(&approval.tool)
    );
    for line in sanitize::text(&approval.action).lines() {
        text.push_str(&format!("    {line}\n"));
    }
    if let Some(reason) = &approval.reason {
        text.push_str(&format!("    denied: {}\n", sanitize::line(reason)));
    }
    text
}

/// Approves or denies a request.
pub async fn answer(
    ctx: &Ctx,
    id: String,
    approve: bool,
    always: bool,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let answer = AnswerApproval {
        id,
        approve,
        always,
        reason,
    };
    let settled = client.call(&answer).await?;
    let what = match (approve, always) {
        (true, true) => "approved; it runs without asking for the rest of the session",
        (true, false) => "approved",
        (false, _) => "denied",
    };
    println!("{} `{}` {what}", settled.id, sanitize::line(&settled.tool));
    Ok(ExitCode::SUCCESS)
}

/// `reagent wild start|status|stop`.
pub async fn wild(ctx: &Ctx, action: WildAction) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    match action {
        WildAction::Start {
            goal,
            session,
            model,
            max_steps,
            max_tokens,
            max_cost,
            max_hours,
            every,
            auto,
            json,
        } => {
            let start = StartWild {
                goal,
                session,
                model,
                cwd: std::env::current_dir().ok(),
                max_steps,
                max_tokens,
                max_cost_usd: max_cost,
                max_hours,
                every_minutes: every,
                auto,
            };
            let wild = client.call(&start).await?;
            if json {
                print_json(&wild)?;
            } else {
                println!("{}", status_line(&wild));
            }
        }
        WildAction::Status { json } => {
            let wilds = client.call(&WildStatus {}).await?;
            if json {
                print_json(&wilds)?;
            } else if wilds.is_empty() {
                println!("no wild-mode loop");
            } else {
                for wild in &wilds {
                    println!("{}", status_line(wild));
                }
            }
        }
        WildAction::Stop { session } => {
            let wild = client.call(&StopWild { session }).await?;
            println!("{}", status_line(&wild));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A loop's status line, with the model's summary when it finished.
fn status_line(wild: &WildInfo) -> String {
    let mut line = sanitize::line(&wild.status_line()).into_owned();
    if let Some(summary) = &wild.summary {
        line.push_str(&format!("\n  summary: {}", sanitize::text(summary)));
    }
    line
}
