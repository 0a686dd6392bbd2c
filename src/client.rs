//! The client side of a daemon connection, shared by the CLI, the TUI and `reagent proxy`.
//!
//! A [`Client`] sends typed requests and awaits their responses; a background task reads the
//! connection and routes responses to their callers and notifications to [`Notifications`].
//! The transport is any byte stream: the Unix socket locally, `ssh HOST reagent proxy` remotely.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Frame, encode_line, read_message};
use crate::paths::Paths;
use crate::protocol::{
    Hello, HelloReply, Method, Notification, OutgoingRequest, PROTOCOL_VERSION, Response, RpcError,
    codes,
};
use crate::{Error, Result};

const SECOND: Duration = Duration::from_secs(1);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to the daemon. Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct Client {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

/// Notifications the daemon pushes (events, output, resync), in the order it sent them.
/// `None` once the connection is gone.
///
/// The queue is bounded: a consumer that falls behind stops the connection's reader, the
/// socket fills, and the daemon tells this client to resync — memory stays flat on both ends.
pub struct Notifications(mpsc::Receiver<Notification>);

/// Notifications buffered before the reader waits for the consumer.
const NOTIFICATION_QUEUE: usize = 128;

impl Notifications {
    /// The next notification, or `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.0.recv().await
    }
}

impl Client {
    /// Wraps any byte stream that speaks the protocol.
    pub fn from_stream(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
    ) -> (Self, Notifications) {
        let pending: Pending = Arc::default();
        let (notify_tx, notify_rx) = mpsc::channel(NOTIFICATION_QUEUE);
        tokio::spawn(read_loop(
            BufReader::new(reader),
            pending.clone(),
            notify_tx,
        ));
        let client = Self {
            writer: Arc::new(tokio::sync::Mutex::new(Box::new(writer))),
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
        };
        (client, Notifications(notify_rx))
    }

    /// Connects to a running daemon's socket.
    pub async fn connect(socket: &Path) -> Result<(Self, Notifications)> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(Error::io("connect to", socket))?;
        let (reader, writer) = stream.into_split();
        Ok(Self::from_stream(reader, writer))
    }

    /// Connects to the daemon, starting it in the background when none runs (as tmux does).
    pub async fn connect_or_start(paths: &Paths) -> Result<(Self, Notifications)> {
        let socket = paths.socket();
        match Self::connect(&socket).await {
            Ok(connection) => return Ok(connection),
            Err(Error::Io { error, .. }) if no_daemon(&error) => {}
            Err(err) => return Err(err),
        }
        start_daemon().await?;
        // A daemon that won a start race may still be binding its socket: give it a moment.
        let mut delay = Duration::from_millis(5);
        loop {
            match Self::connect(&socket).await {
                Err(Error::Io { error, .. }) if no_daemon(&error) && delay < SECOND => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                result => return result,
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn call<M: Method>(&self, params: &M) -> Result<M::Reply> {
        self.request(params).await?.await
    }

    /// Sends a request now and returns its reply as a future, so a caller can send several
    /// requests in order (keystrokes, say) without waiting for each reply in turn.
    pub async fn request<M: Method>(
        &self,
        params: &M,
    ) -> Result<impl Future<Output = Result<M::Reply>> + Send + 'static> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let line = encode_line(&OutgoingRequest {
            jsonrpc: "2.0",
            id,
            method: M::NAME,
            params,
        });
        let sent = {
            let mut writer = self.writer.lock().await;
            match writer.write_all(&line).await {
                Ok(()) => writer.flush().await,
                Err(err) => Err(err),
            }
        };
        if let Err(err) = sent {
            lock(&self.pending).remove(&id);
            return Err(Error::Disconnected(format!(
                "cannot send `{}`: {err}",
                M::NAME
            )));
        }
        Ok(async move {
            let value = rx.await.map_err(|_| {
                Error::Disconnected(format!(
                    "the connection closed before the reply to `{}`",
                    M::NAME
                ))
            })??;
            serde_json::from_value(value)
                .map_err(|err| Error::Protocol(format!("unexpected reply to `{}`: {err}", M::NAME)))
        })
    }

    /// Says hello: checks the protocol version and subscribes this connection to events.
    pub async fn hello(&self, client: &str, since: Option<u64>) -> Result<HelloReply> {
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            client: client.into(),
            since,
        };
        let reply = self.call(&hello).await.map_err(|err| match err {
            Error::Rpc(RpcError {
                code: codes::VERSION_MISMATCH,
                message,
            }) => {
                let daemon = message
                    .split_whitespace()
                    .find_map(|word| word.parse().ok())
                    .unwrap_or_default();
                Error::VersionMismatch {
                    daemon,
                    client: PROTOCOL_VERSION,
                }
            }
            other => other,
        })?;
        Ok(reply)
    }
}

/// Whether a connect error means "no daemon listens there". A reset is a daemon that died
/// with this connection still waiting to be accepted: no daemon either.
pub fn no_daemon(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::NotFound
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    pending: Pending,
    notifications: mpsc::Sender<Notification>,
) {
    let mut buf = Vec::new();
    while let Ok(Frame::Line(line)) = read_message(&mut reader, &mut buf).await {
        let Ok(value) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if value.get("method").is_some() {
            if let Ok(note) = serde_json::from_value::<Notification>(value) {
                // The receiver may be gone (a one-shot CLI call); that is fine.
                let _ = notifications.send(note).await;
            }
            continue;
        }
        let Ok(response) = serde_json::from_value::<Response>(value) else {
            continue;
        };
        let Some(id) = response.id.as_u64() else {
            continue;
        };
        let Some(tx) = lock(&pending).remove(&id) else {
            continue;
        };
        let result = match (response.result, response.error) {
            (_, Some(error)) => Err(error),
            (result, None) => Ok(result.unwrap_or(Value::Null)),
        };
        let _ = tx.send(result);
    }
    // Dropping the senders wakes every caller with "connection closed".
    lock(&pending).clear();
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the daemon binary is: `REAGENTD` when set, else next to this executable, else `PATH`.
pub fn daemon_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REAGENTD") {
        return PathBuf::from(path);
    }
    let sibling = std::env::current_exe().ok().and_then(|exe| {
        let candidate = exe.parent()?.join("reagentd");
        candidate.is_file().then_some(candidate)
    });
    sibling.unwrap_or_else(|| PathBuf::from("reagentd"))
}

/// Starts `reagentd --background` and waits until it listens (it prints `ready`) or says why
/// it could not. Losing a start race to another client's daemon counts as success.
pub async fn start_daemon() -> Result<()> {
    let binary = daemon_binary();
    let mut child = tokio::process::Command::new(&binary)
        .arg("--background")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(Error::io("start the daemon", &binary))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Protocol("no daemon stdout".into()))?;
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    let read = stdout.read_line(&mut line);
    match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(Ok(_)) if line.trim() == "ready" => Ok(()),
        Ok(Ok(_)) if line.contains("already running") => Ok(()),
        Ok(Ok(_)) if line.trim().is_empty() => Err(Error::Protocol(format!(
            "{} exited before it was ready; see its log",
            binary.display()
        ))),
        Ok(Ok(_)) => Err(Error::DaemonRefused(
            line.trim().trim_start_matches("error: ").to_string(),
        )),
        Ok(Err(err)) => Err(Error::io("read from", &binary)(err)),
        Err(_) => Err(Error::Protocol(
            "the daemon did not become ready within 30 s".into(),
        )),
    }
}
