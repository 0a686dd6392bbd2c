//! Request handlers: one exhaustive `match` over [`Request`], one file per method family.
//! Adding a method to the protocol fails to compile until it is handled here.

mod alerts;
pub(crate) mod chat;
mod daemon;
mod gpus;
mod metrics;
mod runs;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use reagent::connection::encode_line;
use reagent::protocol::{Request, Response, RpcError, codes};
use serde::Serialize;
use serde_json::Value;

use crate::outbox::Outbox;
use crate::state::Daemon;

/// One client connection, as handlers see it.
pub struct Conn {
    /// Unique per daemon lifetime.
    pub id: u64,
    /// The daemon.
    pub daemon: Arc<Daemon>,
    /// Where replies and notifications for this client go.
    pub outbox: Arc<Outbox>,
    /// Runs this client attached to, to detach them when it leaves.
    pub attached: Mutex<HashSet<String>>,
}

impl Conn {
    /// Queues a reply to request `id`.
    pub fn respond(&self, id: Value, result: Result<Value, RpcError>) {
        respond(&self.outbox, id, result);
    }
}

/// Queues a reply on an outbox (also for replies sent later, from a task).
pub fn respond(outbox: &Outbox, id: Value, result: Result<Value, RpcError>) {
    let response = match result {
        Ok(value) => Response::ok(id, value),
        Err(error) => Response::err(id, error),
    };
    outbox.reply(encode_line(&response).into());
}

/// What a handler did with its reply.
pub enum Reply {
    /// Here it is; the connection sends it.
    Now(Result<Value, RpcError>),
    /// The handler queued it itself (to order it against notifications), or will later.
    Sent,
}

fn now<T: Serialize>(result: Result<T, RpcError>) -> Reply {
    Reply::Now(result.map(|value| serde_json::to_value(value).unwrap_or(Value::Null)))
}

/// Handles one request.
pub fn dispatch(conn: &Conn, id: Value, request: Request) -> Reply {
    match request {
        Request::Hello(hello) => daemon::hello(conn, id, hello),
        Request::DaemonStatus(_) => now(Ok(daemon::status(conn))),
        Request::Shutdown(_) => daemon::shutdown(conn, id),
        Request::ListRuns(_) => now(Ok(conn.daemon.state().runs().to_vec())),
        Request::StartRun(spec) => now(crate::runs::start(&conn.daemon, spec)),
        Request::StopRun(stop) => now(runs::stop(conn, stop)),
        Request::SendInput(input) => now(runs::input(conn, input)),
        Request::ResizeRun(resize) => now(runs::resize(conn, resize)),
        Request::RenameRun(rename) => now(runs::rename(conn, rename)),
        Request::ReadLog(read) => now(runs::read_log(conn, read)),
        Request::Attach(attach) => runs::attach(conn, id, attach),
        Request::Detach(detach) => now(runs::detach(conn, detach)),
        Request::WaitRun(wait) => runs::wait(conn, id, wait),
        Request::ListSessions(_) => now(Ok(conn.daemon.state().sessions().to_vec())),
        Request::CreateSession(create) => now(chat::create(&conn.daemon, create)),
        Request::SessionHistory(history) => chat::history(conn, id, history),
        Request::SendChat(send) => now(chat::send(&conn.daemon, send)),
        Request::CancelChat(cancel) => now(chat::cancel(conn, cancel)),
        Request::ListProviders(list) => chat::providers(conn, id, list),
        Request::RenameSession(rename) => now(chat::rename(conn, rename)),
        Request::SetSessionModel(set) => now(chat::set_model(conn, set)),
        Request::DeleteSession(delete) => now(chat::delete(conn, delete)),
        Request::ForkSession(fork) => now(chat::fork(conn, fork)),
        Request::UsageQuery(_) => now(conn.daemon.state().usage_report().map_err(|err| {
            RpcError::new(
                codes::INTERNAL_ERROR,
                format!("cannot total the usage: {err:#}"),
            )
        })),
        Request::ListGpus(_) => now(Ok(conn.daemon.state().gpus.full_report())),
        Request::SubmitRun(submit) => now(crate::queue::submit(&conn.daemon, submit)),
        Request::ListQueue(_) => now(Ok(gpus::queue(&conn.daemon.state()))),
        Request::StartSweep(spec) => now(crate::queue::sweeps::start(&conn.daemon, spec)),
        Request::ListSweeps(_) => now(Ok(conn.daemon.state().sweeps().to_vec())),
        Request::ShowSweep(show) => now(conn.daemon.state().resolve_sweep(&show.sweep).cloned()),
        Request::StopSweep(stop) => now(crate::queue::sweeps::stop(&conn.daemon, &stop.sweep)),
        Request::ListMetrics(list) => now(metrics::list(conn, list)),
        Request::QueryMetrics(query) => now(metrics::query(conn, query)),
        Request::ListAlerts(list) => now(alerts::list(conn, list)),
        Request::RespondAlert(respond) => now(alerts::respond(conn, respond)),
    }
}

/// Forgets everything a closed connection held: its event subscription and attachments.
pub fn disconnect(conn: &Conn) {
    conn.outbox.close();
    let attached: Vec<String> = conn
        .attached
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain()
        .collect();
    let mut state = conn.daemon.state();
    state.disconnect(conn.id);
    for run in attached {
        if let Some(live) = state.live(&run) {
            crate::runs::lock(&live.pane).detach(conn.id);
        }
    }
}
