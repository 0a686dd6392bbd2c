//! Running the tool calls of one answer: the [`Toolbox`](crate::chat::Toolbox) the agent
//! lends chat. Calls of one answer run side by side (a model's parallel calls), each gated by
//! the session's policy; every call gets a result part in the answer, in the order the calls
//! were made, whatever happens: a denial, an expired approval, a malformed call and a failing
//! tool are results the model reads, never a crash of the turn.

use std::sync::Arc;

use futures_util::future::{BoxFuture, join_all};
use reagent::agent::ApprovalState;
use reagent::chat::{MessageInfo, Part, PartKind, SessionInfo};
use serde_json::Value;
use tokio::sync::watch;

use super::approvals::{self, Gate};
use super::tools::{self, Ctx, Outcome};
use crate::daemon::Daemon;
use crate::llm::ToolSpec;

/// The agent's tools, as chat sees them.
pub struct AgentTools;

impl crate::chat::Toolbox for AgentTools {
    fn specs<'a>(
        &'a self,
        daemon: &'a Arc<Daemon>,
        session: &'a SessionInfo,
    ) -> BoxFuture<'a, Vec<ToolSpec>> {
        Box::pin(async move {
            let wild = daemon.state().wild(&session.id).is_some();
            super::tools_list(daemon)
                .await
                .into_iter()
                // `finish` ends a wild-mode loop; elsewhere it would only confuse.
                .filter(|tool| wild || tool.name != tools::FINISH)
                .map(|tool| ToolSpec {
                    name: tool.name,
                    description: tool.description,
                    schema: tool.schema,
                })
                .collect()
        })
    }

    fn run<'a>(
        &'a self,
        daemon: &'a Arc<Daemon>,
        session: &'a SessionInfo,
        answer: &'a str,
        cancelled: &'a mut watch::Receiver<u64>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(run_calls(daemon, session, answer, cancelled))
    }
}

/// Runs every call of `answer` that has no result yet, then records the results in it.
async fn run_calls(
    daemon: &Arc<Daemon>,
    session: &SessionInfo,
    answer: &str,
    cancelled: &mut watch::Receiver<u64>,
) {
    let Some(message) = find(daemon, session, answer) else {
        return;
    };
    let answered: Vec<&str> = (message.parts.iter())
        .filter(|p| p.kind == PartKind::ToolResult)
        .filter_map(|p| p.call_id.as_deref())
        .collect();
    let calls: Vec<&Part> = (message.parts.iter())
        .filter(|p| p.kind == PartKind::ToolCall)
        .filter(|p| {
            p.call_id
                .as_deref()
                .is_none_or(|id| !answered.contains(&id))
        })
        .collect();
    let ctx = &Ctx { daemon, session };
    let results = join_all(calls.iter().map(|call| {
        let mut cancelled = cancelled.clone();
        async move {
            let name = call.name.clone().unwrap_or_default();
            let call_id = call.call_id.clone().unwrap_or_default();
            let outcome = call_one(ctx, answer, &call_id, &name, &call.text, &mut cancelled).await;
            let (text, error) = match outcome {
                Ok(text) => (text, false),
                Err(text) => (text, true),
            };
            Part::tool_result(call_id, name, text, error)
        }
    }))
    .await;
    record(daemon, session, answer, results);
}

/// The answer as it is now, if it is still in the session.
fn find(daemon: &Daemon, session: &SessionInfo, answer: &str) -> Option<MessageInfo> {
    let message = daemon.state().message(answer).ok()??;
    (message.session == session.id).then_some(message)
}

/// Appends the results to the answer, read afresh (a client may have changed nothing, but
/// the answer is the truth, not the copy the calls started from).
fn record(daemon: &Daemon, session: &SessionInfo, answer: &str, results: Vec<Part>) {
    let Some(mut message) = find(daemon, session, answer) else {
        return;
    };
    message.parts.extend(results);
    if let Err(err) = daemon.state().save_message(message) {
        tracing::error!("cannot record the tool results of answer {answer}: {err}");
    }
}

/// One call, start to end: its arguments read, its gate passed (asking when the policy
/// says so), then the tool run.
async fn call_one(
    ctx: &Ctx<'_>,
    answer: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    cancelled: &mut watch::Receiver<u64>,
) -> Outcome {
    let args: Value = match arguments.trim() {
        "" => Value::Object(serde_json::Map::new()),
        text => serde_json::from_str(text)
            .map_err(|err| format!("the arguments are not JSON ({err}): call `{name}` again"))?,
    };
    let builtin = tools::builtin(name);
    let mcp = builtin.is_none() && name.contains("__");
    if builtin.is_none() && !mcp {
        return Err(format!("there is no tool `{name}`"));
    }
    let action = match builtin {
        Some(tool) => match tool.action {
            Some(describe) => Some(describe(ctx, &args)?),
            None => None,
        },
        None => Some(format!("call MCP tool {name} with {args}")),
    };
    let policy = ctx.session.agent.clone();
    match approvals::gate(&policy, name, action.is_some()) {
        Gate::Run => {}
        Gate::Deny => {
            return Err(format!(
                "denied: this session does not let the agent act (`{name}` was not run)"
            ));
        }
        Gate::Ask => {
            let request = approvals::Request {
                session: ctx.session.id.clone(),
                message: answer.to_string(),
                call_id: call_id.to_string(),
                tool: name.to_string(),
                arguments: args.clone(),
                action: action.unwrap_or_default(),
            };
            let settled = approvals::ask(ctx.daemon, request, cancelled)
                .await
                .map_err(|err| err.message)?;
            match settled.state {
                ApprovalState::Approved => {}
                ApprovalState::Denied => {
                    let why = settled.reason.map(|r| format!(": {r}")).unwrap_or_default();
                    return Err(format!("the user denied `{name}`; nothing was done{why}"));
                }
                ApprovalState::Pending | ApprovalState::Expired => {
                    return Err(format!(
                        "`{name}` was not run: the answer was cancelled before anyone approved it"
                    ));
                }
            }
        }
    }
    match builtin {
        Some(tool) => tool.call(ctx, args).await,
        None => ctx.daemon.agent.mcp.call(name, args).await,
    }
}
