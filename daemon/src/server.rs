//! The Unix socket: binding it, and accepting clients up to `max_clients`.
//!
//! Each accepted client gets a task of its own ([`connection`]). One over the limit is told
//! so, with a JSON-RPC error, and closed; the daemon logs the first refusal and the end of a
//! run of them, not every attempt, so a client retrying in a loop cannot flood the log.

mod connection;
#[cfg(test)]
mod proptests;

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use reagent::connection::encode_line;
use reagent::protocol::{RequestId, Response, RpcError, codes};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::daemon::Daemon;

/// Binds the daemon's socket: its folder 0700, the socket 0600. The caller holds the lock
/// file, so a socket file already there is a dead daemon's and is replaced.
pub fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    let dir = socket.parent().context("the socket path has no folder")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))?;
    match std::fs::remove_file(socket) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("cannot remove stale {}", socket.display()));
        }
        _ => {}
    }
    // The umask closes the window between bind and chmod in which others could connect.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = std::os::unix::net::UnixListener::bind(socket);
    rustix::process::umask(old);
    let listener = bound.with_context(|| {
        format!(
            "cannot listen on {} (socket paths must be under 108 bytes)",
            socket.display()
        )
    })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}

/// Accepts clients until shutdown.
pub async fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    let uid = rustix::process::getuid().as_raw();
    let max = daemon.config.daemon.max_clients.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let mut refused = 0u64;
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, typically: back off rather than spin.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = daemon.shutdown.notified() => return,
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == uid => {}
            Ok(cred) => {
                tracing::warn!(uid = cred.uid(), pid = ?cred.pid(), "refused a connection from another user");
                continue;
            }
            Err(err) => {
                tracing::warn!("refused a connection whose peer is unknown: {err}");
                continue;
            }
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if refused == 0 {
                tracing::warn!("{max} clients connected (max_clients): refusing new ones");
            }
            refused += 1;
            refuse(&stream, max);
            continue;
        };
        if refused > 0 {
            tracing::info!("accepting clients again; refused {refused} meanwhile");
            refused = 0;
        }
        next_id += 1;
        tokio::spawn(connection::serve(daemon.clone(), next_id, stream, slot));
    }
}

/// Tells a client over the limit why it is closed. A fresh socket's buffer takes the line
/// whole; should it not, the client sees the connection close, which is the message too.
fn refuse(stream: &UnixStream, max: usize) {
    let message = format!(
        "the daemon already serves {max} clients (max_clients in its config): try again \
         when some have gone"
    );
    let error = RpcError::new(codes::TOO_MANY_CLIENTS, message);
    let _ = stream.try_write(&encode_line(&Response::err(RequestId::null(), error)));
}
