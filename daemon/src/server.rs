//! The Unix socket: accepting clients, reading their requests, writing their outboxes.
//!
//! One task reads each connection and one writes it. Bad input never takes the daemon down
//! and never breaks other clients: each bad line gets its JSON-RPC error and the connection
//! stays usable, except a line over the size limit, after which the stream cannot be trusted
//! and that connection is closed.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use reagent::connection::{Frame, read_message};
use reagent::protocol::{RpcError, codes, parse_request};
use serde_json::Value;
use tokio::io::{AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};

use crate::handlers::{self, Conn, Reply};
use crate::outbox::Outbox;
use crate::state::Daemon;

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
        next_id += 1;
        tokio::spawn(connection(daemon.clone(), next_id, stream));
    }
}

#[tracing::instrument(skip(daemon, stream), fields(conn = id))]
async fn connection(daemon: Arc<Daemon>, id: u64, stream: UnixStream) {
    let (reader, writer) = stream.into_split();
    let outbox = Outbox::new(daemon.config.daemon.client_queue_bytes);
    let writing = tokio::spawn(write_loop(outbox.clone(), writer));
    daemon.state().connect(id, outbox.clone());
    let conn = Conn {
        id,
        daemon,
        outbox,
        attached: Default::default(),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::new();
    loop {
        match read_message(&mut reader, &mut buf).await {
            Ok(Frame::Line(line)) if line.iter().all(u8::is_ascii_whitespace) => {}
            Ok(Frame::Line(line)) => handle_line(&conn, &line),
            Ok(Frame::TooLong) => {
                tracing::warn!("closing a connection that sent a line over 16 MiB");
                let message = "message longer than 16 MiB: closing the connection";
                conn.respond(
                    Value::Null,
                    Err(RpcError::new(codes::INVALID_REQUEST, message)),
                );
                conn.outbox.finish();
                let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
                handlers::disconnect(&conn);
                return;
            }
            Ok(Frame::Eof) => break,
            Err(err) => {
                tracing::debug!("read failed: {err}");
                break;
            }
        }
    }
    handlers::disconnect(&conn);
    writing.abort();
}

fn handle_line(conn: &Conn, line: &[u8]) {
    let (id, request) = parse_request(line);
    match request {
        Ok(request) => {
            tracing::debug!(method = request.method(), "request");
            let reply = handlers::dispatch(conn, id.clone().unwrap_or(Value::Null), request);
            // A request without an id is a notification: JSON-RPC sends it no reply.
            if let (Reply::Now(result), Some(id)) = (reply, id) {
                conn.respond(id, result);
            }
        }
        Err(err) => {
            tracing::debug!(code = err.code, "bad request: {}", err.message);
            conn.respond(id.unwrap_or(Value::Null), Err(err));
        }
    }
}

async fn write_loop(outbox: Arc<Outbox>, writer: OwnedWriteHalf) {
    write_all(&outbox, writer).await;
    outbox.writer_done();
}

async fn write_all(outbox: &Outbox, writer: OwnedWriteHalf) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut batch = Vec::new();
    while outbox.next_batch(&mut batch).await.is_some() {
        for line in batch.drain(..) {
            if writer.write_all(&line).await.is_err() {
                outbox.close();
                return;
            }
        }
        if writer.flush().await.is_err() {
            outbox.close();
            return;
        }
    }
}
