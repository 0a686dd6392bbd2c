//! `run.*` requests that tie a run to a connection: attach, detach, wait. The run
//! operations themselves are the runs service's ([`crate::runs::control`]).

use reagent::protocol::{Ack, Attach, Attached, Blob, Detach, RequestId, RpcError, WaitRun};

use super::{Conn, Reply, internal_json};
use crate::runs::{control, final_screen, lock};

/// Attaches the connection to a run's output. The reply is queued under the pane's lock, so
/// it reaches the client before any `output` that follows the screen it carries.
pub fn attach(conn: &Conn, id: Option<RequestId>, attach: Attach) -> Reply {
    let mut state = conn.daemon.state();
    let run = match state.resolve(&attach.run) {
        Ok(run) => run.clone(),
        Err(err) => return Reply::Now(Err(err)),
    };
    let live = state.live(&run.id).cloned();
    let Some(live) = live.filter(|_| !run.status.is_terminal()) else {
        drop(state);
        let (screen, offset) = final_screen(&run);
        let attached = Attached {
            run,
            offset,
            screen: Blob(screen),
        };
        return Reply::Now(serde_json::to_value(attached).map_err(internal_json));
    };
    if let Some((cols, rows)) = attach.size
        && let Err(err) = control::resize_locked(&mut state, &run.id, cols, rows)
    {
        return Reply::Now(Err(err));
    }
    let run = state.run(&run.id).cloned().unwrap_or(run);
    drop(state);
    let mut pane = lock(&live.pane);
    let (screen, offset) = pane.attach(conn.id, conn.outbox.clone());
    let attached = Attached {
        run: run.clone(),
        offset,
        screen: Blob(screen),
    };
    conn.respond(id, serde_json::to_value(attached).map_err(internal_json));
    drop(pane);
    conn.attached
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(run.id);
    Reply::Sent
}

/// Stops sending a run's output to this connection.
pub fn detach(conn: &Conn, detach: Detach) -> Result<Ack, RpcError> {
    let state = conn.daemon.state();
    let run = state.resolve(&detach.run)?;
    if let Some(live) = state.live(&run.id) {
        lock(&live.pane).detach(conn.id);
    }
    conn.attached
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&run.id);
    Ok(Ack {})
}

/// Replies once the run has ended (at once if it has).
pub fn wait(conn: &Conn, id: Option<RequestId>, wait: WaitRun) -> Reply {
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &wait);
    tokio::spawn(async move {
        if let Some(result) = control::ended(&daemon, &wait.run, || reply.is_closed()).await {
            reply.respond(result);
        }
    });
    Reply::Sent
}
