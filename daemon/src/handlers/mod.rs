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
use reagent::protocol::{Request, RequestId, Response, RpcError, codes};
use serde::Serialize;
use serde_json::Value;

use crate::outbox::{Line, Outbox, Pending, Place};
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
    /// Queues a reply to request `id`; a notification (`None`) gets none.
    pub fn respond(&self, id: Option<RequestId>, result: Result<Value, RpcError>) {
        respond(&self.outbox, id, result);
    }

    /// Where a task that answers later sends its reply. Until it does (or gives up), the
    /// connection stays open for it, even after the client has said all it had to say.
    pub fn defer(&self, id: Option<RequestId>) -> Deferred {
        // A notification is owed nothing, so it holds nothing open.
        let pending = id.is_some().then(|| self.outbox.pending());
        Deferred {
            outbox: self.outbox.clone(),
            id,
            _pending: pending,
            place: None,
        }
    }

    /// Like [`Conn::defer`], and the reply keeps its place in the queue: what is queued for
    /// the client meanwhile (events) goes out after it. For replies too costly to encode
    /// under a lock.
    pub fn hold_place(&self, id: Option<RequestId>) -> Deferred {
        let place = id.is_some().then(|| self.outbox.hold());
        Deferred {
            outbox: self.outbox.clone(),
            id,
            _pending: None,
            place,
        }
    }
}

/// Queues a reply on an outbox; a notification (`None`) gets none.
pub fn respond(outbox: &Outbox, id: Option<RequestId>, result: Result<Value, RpcError>) {
    if let Some(id) = id {
        outbox.reply(encode_reply(id, result));
    }
}

/// A response as one line, encoded straight from its typed result.
fn encode_reply<T: Serialize>(id: RequestId, result: Result<T, RpcError>) -> Line {
    let line = match result {
        Ok(value) => encode_line(&Response::ok(id, value)),
        Err(error) => encode_line(&Response::err(id, error)),
    };
    line.into()
}

/// A reply a task will send later; see [`Conn::defer`] and [`Conn::hold_place`].
pub struct Deferred {
    outbox: Arc<Outbox>,
    id: Option<RequestId>,
    /// Keeps the connection open until the reply is sent.
    _pending: Option<Pending>,
    /// The reply's place in the queue, when it keeps one (it keeps the connection open too).
    place: Option<Place>,
}

impl Deferred {
    /// Sends the reply.
    pub fn respond<T: Serialize>(self, result: Result<T, RpcError>) {
        let Some(id) = self.id.filter(|_| !self.outbox.is_closed()) else {
            // Nobody to send it to: spare the encoding.
            return;
        };
        let line = encode_reply(id, result);
        match self.place {
            Some(place) => place.fill(line),
            None => self.outbox.reply(line),
        }
    }

    /// Whether the connection is gone, so the answer is no longer wanted.
    pub fn is_closed(&self) -> bool {
        self.outbox.is_closed()
    }
}

/// What a handler did with its reply.
pub enum Reply {
    /// Here it is; the connection sends it.
    Now(Result<Value, RpcError>),
    /// The handler queued it itself (to order it against notifications), or a task will
    /// through a [`Deferred`].
    Sent,
}

fn now<T: Serialize>(result: Result<T, RpcError>) -> Reply {
    Reply::Now(result.map(|value| serde_json::to_value(value).unwrap_or(Value::Null)))
}

/// Takes what `read` copies out of the state, and releases the lock before it is encoded.
fn unlocked<T>(conn: &Conn, read: impl FnOnce(&crate::state::State) -> T) -> T {
    read(&conn.daemon.state())
}

/// Handles one request; `id` is `None` for a notification, which is run but not answered.
pub fn dispatch(conn: &Conn, id: Option<RequestId>, request: Request) -> Reply {
    match request {
        Request::Hello(hello) => daemon::hello(conn, id, hello),
        Request::DaemonStatus(_) => now(Ok(daemon::status(conn))),
        Request::Shutdown(_) => daemon::shutdown(conn, id),
        // Copied under the lock, encoded after it: a long list holds up nobody.
        Request::ListRuns(list) => now(Ok(unlocked(conn, |state| list.select(state.runs())))),
        Request::StartRun(spec) => now(crate::runs::start(&conn.daemon, spec)),
        Request::StopRun(stop) => now(runs::stop(conn, stop)),
        Request::SendInput(input) => now(runs::input(conn, input)),
        Request::ResizeRun(resize) => now(runs::resize(conn, resize)),
        Request::RenameRun(rename) => now(runs::rename(conn, rename)),
        Request::ReadLog(read) => now(runs::read_log(conn, read)),
        Request::Attach(attach) => runs::attach(conn, id, attach),
        Request::Detach(detach) => now(runs::detach(conn, detach)),
        Request::WaitRun(wait) => runs::wait(conn, id, wait),
        Request::RerunRun(rerun) => now(crate::runs::rerun::rerun(&conn.daemon, rerun)),
        Request::RemoveRuns(remove) => now(crate::runs::tidy::remove(&conn.daemon, &remove.runs)),
        Request::CleanRuns(clean) => now(crate::runs::tidy::clean(&conn.daemon, &clean)),
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
        Request::ListGpus(_) => gpus::list(conn, id),
        Request::SubmitRun(submit) => now(crate::queue::submit(&conn.daemon, submit)),
        Request::ListQueue(_) => now(Ok(gpus::queue(&conn.daemon.state()))),
        Request::StartSweep(spec) => now(crate::queue::sweeps::start(&conn.daemon, spec)),
        Request::ListSweeps(_) => now(Ok(unlocked(conn, |state| state.sweeps().to_vec()))),
        Request::ShowSweep(show) => now(conn.daemon.state().resolve_sweep(&show.sweep).cloned()),
        Request::StopSweep(stop) => now(crate::queue::sweeps::stop(&conn.daemon, &stop.sweep)),
        Request::ListMetrics(list) => now(metrics::list(conn, list)),
        Request::QueryMetrics(query) => now(metrics::query(conn, query)),
        Request::ListAlerts(list) => now(alerts::list(conn, list)),
        Request::RespondAlert(respond) => now(alerts::respond(conn, respond)),
        Request::IgnoreAlertsLike(like) => now(alerts::ignore_like(conn, like)),
    }
}

/// Forgets everything a closed connection held: its event subscription and attachments.
pub fn disconnect(conn: &Conn) {
    conn.outbox.close();
    unsubscribe(conn);
}

/// Stops the events and output a connection gets, as when its client says it has nothing
/// more to ask: replies it is owed still go out.
pub fn unsubscribe(conn: &Conn) {
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
