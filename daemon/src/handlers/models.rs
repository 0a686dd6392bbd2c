//! `model.launch` and `model.stop`: adapters to the models service whose answers come later
//! (once the model is ready, or its server gone). The recipe requests are one-liners in the
//! dispatch table.

use reagent::protocol::{LaunchModel, RequestId, StopModel};

use super::{Conn, Reply};
use crate::models;

/// Launches a recipe's model; answers once it is ready, or with why it failed.
pub fn launch(conn: &Conn, id: Option<RequestId>, launch: LaunchModel) -> Reply {
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &launch);
    tokio::spawn(async move {
        reply.respond(models::launch(&daemon, launch).await);
    });
    Reply::Sent
}

/// Stops a model (or cancels its launch); answers once its server is gone.
pub fn stop(conn: &Conn, id: Option<RequestId>, stop: StopModel) -> Reply {
    let daemon = conn.daemon.clone();
    let reply = conn.defer(id, &stop);
    tokio::spawn(async move {
        reply.respond(models::stop(&daemon, &stop.name, "stopped on request").await);
    });
    Reply::Sent
}
