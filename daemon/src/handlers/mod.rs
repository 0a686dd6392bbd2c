//! Request handlers: one exhaustive `match` over [`Request`], each arm an adapter from params
//! to the one service function for the request; the few files beside this one hold what is
//! tied to a connection (subscribing, attaching, answering later).
//! Adding a method to the protocol fails to compile until it is handled here.

mod agent;
mod chat;
mod daemon;
mod gpus;
mod models;
mod runs;

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use reagent::connection::encode_line;
use reagent::protocol::{
    Ack, Incoming, Method, Request, RequestId, Response, RpcError, codes, parse_request,
};
use serde::Serialize;
use serde_json::Value;

use crate::agent::{approvals, wild};
use crate::alerts;
use crate::chat::sessions;
use crate::daemon::Daemon;
use crate::models::recipes;
use crate::outbox::{Line, Outbox, Pending, Place};
use crate::queue::sweeps;
use crate::runs::control;
use crate::triage;

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

    /// Where a task that answers request `_params` later sends its reply, typed by its
    /// method. Until it does (or gives up), the connection stays open for it, even after
    /// the client has said all it had to say.
    pub fn defer<M: Method>(&self, id: Option<RequestId>, _params: &M) -> Deferred<M::Reply> {
        // A notification is owed nothing, so it holds nothing open.
        let pending = id.is_some().then(|| self.outbox.pending());
        Deferred {
            outbox: self.outbox.clone(),
            id,
            _pending: pending,
            place: None,
            reply: PhantomData,
        }
    }

    /// Like [`Conn::defer`], and the reply keeps its place in the queue: what is queued for
    /// the client meanwhile (events) goes out after it. For replies too costly to encode
    /// under a lock.
    pub fn hold_place<M: Method>(&self, id: Option<RequestId>, _params: &M) -> Deferred<M::Reply> {
        let place = id.is_some().then(|| self.outbox.hold());
        Deferred {
            outbox: self.outbox.clone(),
            id,
            _pending: None,
            place,
            reply: PhantomData,
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

/// A reply of type `R` a task will send later; see [`Conn::defer`] and [`Conn::hold_place`].
pub struct Deferred<R> {
    outbox: Arc<Outbox>,
    id: Option<RequestId>,
    /// Keeps the connection open until the reply is sent.
    _pending: Option<Pending>,
    /// The reply's place in the queue, when it keeps one (it keeps the connection open too).
    place: Option<Place>,
    reply: PhantomData<fn(R)>,
}

impl<R: Serialize> Deferred<R> {
    /// Sends the reply.
    pub fn respond(self, result: Result<R, RpcError>) {
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

/// Runs one line (or WebSocket message): parses it, dispatches it, and queues the reply
/// (none for a notification). Shared by the Unix socket and `/rpc`, so both speak exactly
/// the same protocol.
pub fn handle_line(conn: &Conn, line: &[u8]) {
    let Incoming { reply_to, request } = parse_request(line);
    match request {
        Ok(request) => {
            tracing::debug!(method = request.method(), "request");
            if let Reply::Now(result) = dispatch(conn, reply_to.clone(), request) {
                conn.respond(reply_to, result);
            }
        }
        Err(err) => {
            tracing::debug!(code = err.code, "bad request: {}", err.message);
            conn.respond(reply_to, Err(err));
        }
    }
}

/// Handles one request; `id` is `None` for a notification, which is run but not answered.
/// Each arm adapts params to the one service function for the request.
pub fn dispatch(conn: &Conn, id: Option<RequestId>, request: Request) -> Reply {
    let daemon = &conn.daemon;
    match request {
        Request::Hello(hello) => daemon::hello(conn, id, hello),
        Request::DaemonStatus(p) => answer(p, |_| Ok(daemon::status(conn))),
        Request::Shutdown(_) => daemon::shutdown(conn, id),
        // Copied under the lock, encoded after it: a long list holds up nobody.
        Request::ListRuns(p) => answer(p, |p| Ok(p.select(daemon.state().runs()))),
        Request::StartRun(spec) => answer(spec, |spec| crate::runs::start(daemon, spec)),
        Request::StopRun(p) => answer(p, |p| {
            control::stop(daemon, &p.run, p.grace_secs, control::STOPPED_BEFORE_START)
        }),
        Request::SendInput(p) => answer(p, |p| control::input(daemon, &p.run, p.data).map(ack)),
        Request::ResizeRun(p) => answer(p, |p| {
            control::resize(daemon, &p.run, p.cols, p.rows).map(ack)
        }),
        Request::RenameRun(p) => answer(p, |p| control::rename(daemon, &p.run, &p.name)),
        Request::ReadLog(p) => answer(p, |p| control::read_log(daemon, &p)),
        Request::Attach(attach) => runs::attach(conn, id, attach),
        Request::Detach(p) => answer(p, |p| runs::detach(conn, p)),
        Request::WaitRun(wait) => runs::wait(conn, id, wait),
        Request::RerunRun(p) => answer(p, |p| crate::queue::rerun::rerun(daemon, p)),
        Request::RemoveRuns(p) => answer(p, |p| crate::runs::tidy::remove(daemon, &p.runs)),
        Request::CleanRuns(p) => answer(p, |p| crate::runs::tidy::clean(daemon, &p)),
        Request::ListSessions(p) => answer(p, |_| Ok(daemon.state().sessions().to_vec())),
        Request::CreateSession(p) => answer(p, |p| sessions::create(daemon, p)),
        Request::SessionHistory(history) => chat::history(conn, id, history),
        Request::SendChat(p) => answer(p, |p| sessions::send(daemon, p)),
        Request::CancelChat(p) => answer(p, |p| sessions::cancel(daemon, &p.session).map(ack)),
        Request::ListProviders(list) => chat::providers(conn, id, list),
        Request::RenameSession(p) => answer(p, |p| sessions::rename(daemon, p)),
        Request::SetSessionModel(p) => answer(p, |p| sessions::set_model(daemon, p)),
        Request::DeleteSession(p) => answer(p, |p| sessions::delete(daemon, p).map(ack)),
        Request::ForkSession(p) => answer(p, |p| sessions::fork(daemon, p)),
        Request::UsageQuery(usage) => chat::usage(conn, id, usage),
        Request::ListGpus(list) => gpus::list(conn, id, list),
        Request::SubmitRun(p) => answer(p, |p| crate::queue::submit(daemon, p)),
        Request::ListQueue(p) => answer(p, |_| Ok(crate::queue::entries(&daemon.state()))),
        Request::StartSweep(p) => answer(p, |p| sweeps::start(daemon, p)),
        Request::ListSweeps(p) => answer(p, |_| Ok(daemon.state().sweeps().to_vec())),
        Request::ShowSweep(p) => answer(p, |p| daemon.state().resolve_sweep(&p.sweep).cloned()),
        Request::StopSweep(p) => answer(p, |p| sweeps::stop(daemon, &p.sweep)),
        Request::ListMetrics(p) => answer(p, |p| crate::metrics::list(daemon, &p.run)),
        Request::QueryMetrics(p) => answer(p, |p| crate::metrics::query(daemon, &p)),
        Request::ListAlerts(p) => answer(p, |p| alerts::list(daemon, &p)),
        Request::RespondAlert(p) => {
            answer(p, |p| triage::respond::respond(daemon, &p.id, p.choice))
        }
        Request::IgnoreAlertsLike(p) => answer(p, |p| triage::ignore_like(daemon, &p.id)),
        Request::AddRecipes(p) => answer(p, |p| recipes::add(daemon, p.recipes)),
        Request::ListRecipes(p) => answer(p, |_| Ok(recipes::list(daemon))),
        Request::ShowRecipe(p) => answer(p, |p| recipes::show(daemon, &p.name)),
        Request::RemoveRecipe(p) => answer(p, |p| recipes::remove(daemon, &p.name).map(ack)),
        Request::LaunchModel(launch) => models::launch(conn, id, launch),
        Request::StopModel(stop) => models::stop(conn, id, stop),
        Request::ListModels(p) => answer(p, |_| Ok(crate::models::list(daemon))),
        Request::CreateToken(p) => answer(p, |p| crate::tokens::create(daemon, p)),
        Request::ListTokens(p) => answer(p, |_| Ok(crate::tokens::list(daemon))),
        Request::RevokeToken(p) => answer(p, |p| crate::tokens::revoke(daemon, &p.name).map(ack)),
        Request::GatewayLog(p) => answer(p, |p| crate::http::gateway::log(daemon, &p)),
        Request::ListTools(list) => agent::tools(conn, id, list),
        Request::ListMcp(list) => agent::mcp(conn, id, list),
        Request::SetSessionAgent(set) => agent::set_session(conn, id, set),
        Request::ListApprovals(p) => answer(p, |p| approvals::list(daemon, &p)),
        Request::AnswerApproval(p) => answer(p, |p| approvals::answer(daemon, p)),
        Request::StartWild(p) => answer(p, |p| wild::start(daemon, p)),
        Request::WildStatus(p) => answer(p, |_| Ok(wild::status(daemon))),
        Request::StopWild(p) => answer(p, |p| wild::stop(daemon, &p)),
    }
}

/// Runs a request answered at once. `run` must return the method's own reply type, so an
/// arm answering with the wrong type does not compile.
fn answer<M: Method>(params: M, run: impl FnOnce(M) -> Result<M::Reply, RpcError>) -> Reply {
    Reply::Now(run(params).and_then(|reply| serde_json::to_value(reply).map_err(internal_json)))
}

/// The reply of requests that only say "done".
fn ack(_: ()) -> Ack {
    Ack {}
}

/// Converts a serialization failure into a reply (it cannot happen for our types).
pub fn internal_json(err: serde_json::Error) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, err.to_string())
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
    state.bus.disconnect(conn.id);
    for run in attached {
        if let Some(live) = state.live(&run) {
            crate::runs::lock(&live.pane).detach(conn.id);
        }
    }
}
