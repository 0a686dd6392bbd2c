//! The client side of a daemon connection, shared by the CLI, the TUI and `reagent proxy`.
//!
//! A [`Client`] sends typed requests and awaits their responses; a background task reads the
//! connection and routes responses to their callers and notifications to [`Notifications`].
//! The transport is any byte stream: the Unix socket locally, `ssh HOST reagent proxy` remotely.
//!
//! Each line is parsed once: its envelope first, with `params` or `result` left as raw JSON
//! borrowed from the line, then only that part, straight into its type (a reply is decoded by
//! its caller's [`Method::Reply`], on the reader task, from the line buffer).
//!
//! A follower (`reagent chat`, `metrics -f`, `logs -f`, `attach`) reads a [`Subscription`]:
//! events and output as they come, and after the daemon dropped what it queued for a client
//! that fell behind, a hello again and the events it missed.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Frame, encode_line, read_message};
use crate::paths::Paths;
use crate::protocol::{
    Event, Hello, HelloReply, Method, Notification, OutgoingRequest, Output, PROTOCOL_VERSION,
    RpcError, Snapshot, Sync, codes,
};
use crate::{Error, Result};

const SECOND: Duration = Duration::from_secs(1);

/// What waits for a reply: decodes it into its caller's type and hands it over. Called by the
/// reader task with the `result` borrowed from the line, so a reply is copied out only once.
type Decoder = Box<dyn FnOnce(std::result::Result<&RawValue, RpcError>) + Send>;
type Pending = Arc<Mutex<HashMap<u64, Decoder>>>;
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
        let decode: Decoder = Box::new(move |reply| {
            let reply = reply.map_err(Error::Rpc).and_then(|result| {
                serde_json::from_str::<M::Reply>(result.get()).map_err(|err| {
                    Error::Protocol(format!("unexpected reply to `{}`: {err}", M::NAME))
                })
            });
            // The caller may have given up on the reply; that is fine.
            let _ = tx.send(reply);
        });
        lock(&self.pending).insert(id, decode);
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
            rx.await.map_err(|_| {
                Error::Disconnected(format!(
                    "the connection closed before the reply to `{}`",
                    M::NAME
                ))
            })?
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

/// What a [`Subscription`] yields.
// Like events, updates live only long enough to be applied; boxing the event would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Update {
    /// A state change: live, or one of those missed while behind, replayed in order.
    Event(Event),
    /// Bytes of a run this connection attached to.
    Output(Output),
    /// The daemon had dropped what it queued for this client, which fell behind; the
    /// subscription said `hello` again. What follows are the missed events the daemon still
    /// keeps, or, when it sent the whole state instead, here it is. Output and the events not
    /// kept for replay (deltas, metrics, GPUs) are lost: a follower re-reads what it shows and
    /// re-attaches to the runs it follows (the daemon detached it).
    Resynced(Option<Box<Snapshot>>),
}

/// The events (and output) a client follows, in the daemon's order, with the resync handled:
/// see [`Client::subscribe`].
pub struct Subscription {
    client: Client,
    notes: Notifications,
    /// Who is subscribing, for the daemon's log.
    name: String,
    /// The last event's seq, where the next hello resumes.
    seq: u64,
    /// Missed events to yield before reading on.
    replay: VecDeque<Event>,
    /// The hello said after a resync, until its reply is in.
    hello: Option<Pin<Box<dyn Future<Output = Result<HelloReply>> + Send>>>,
}

impl Client {
    /// Says hello (which subscribes this connection to events) and follows what the daemon
    /// pushes from then on. On a `resync` the subscription says hello again from the last
    /// event it saw and catches up: every follower gets this right once, here.
    pub async fn subscribe(
        &self,
        notes: Notifications,
        name: &str,
    ) -> Result<(HelloReply, Subscription)> {
        let hello = self.hello(name, None).await?;
        let subscription = Subscription {
            client: self.clone(),
            notes,
            name: name.to_string(),
            seq: hello.sync.seq().unwrap_or(0),
            replay: VecDeque::new(),
            hello: None,
        };
        Ok((hello, subscription))
    }
}

impl Subscription {
    /// The next update; `None` once the daemon shuts down or the connection closes. An error
    /// is a failed hello after a resync.
    ///
    /// Cancel-safe, so it can be one branch of a `select!`: a hello in flight when the call is
    /// dropped is kept, and the next call waits for it.
    pub async fn next(&mut self) -> Result<Option<Update>> {
        loop {
            if let Some(hello) = self.hello.as_mut() {
                let reply = hello.await;
                self.hello = None;
                return Ok(Some(Update::Resynced(self.sync(reply?.sync))));
            }
            if let Some(event) = self.replay.pop_front() {
                return Ok(Some(Update::Event(event)));
            }
            let Some(note) = self.notes.recv().await else {
                return Ok(None);
            };
            match note {
                Notification::Event(event) => {
                    self.seq = self.seq.max(event.seq);
                    return Ok(Some(Update::Event(event)));
                }
                Notification::Output(output) => return Ok(Some(Update::Output(output))),
                Notification::Resync(_) => {
                    let (client, name, since) = (self.client.clone(), self.name.clone(), self.seq);
                    self.hello = Some(Box::pin(
                        async move { client.hello(&name, Some(since)).await },
                    ));
                }
                Notification::Shutdown(_) => return Ok(None),
            }
        }
    }

    /// Takes in how the daemon caught this client up: keeps missed events to replay, or
    /// returns the snapshot that replaces them.
    fn sync(&mut self, sync: Sync) -> Option<Box<Snapshot>> {
        self.seq = sync.seq().unwrap_or(self.seq);
        match sync {
            Sync::Events { events } => {
                self.replay.extend(events);
                None
            }
            Sync::Snapshot(snapshot) => Some(Box::new(snapshot)),
        }
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

/// A line from the daemon, its envelope read and its payload left as raw JSON: a notification
/// has a `method`, a response an `id` and a `result` or an `error`.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    pending: Pending,
    notifications: mpsc::Sender<Notification>,
) {
    let mut buf = Vec::new();
    while let Ok(Frame::Line(line)) = read_message(&mut reader, &mut buf).await {
        // A line that is not a message of ours is skipped, whatever it is.
        let Ok(message) = serde_json::from_slice::<Message>(line) else {
            continue;
        };
        if let Some(method) = message.method {
            let note = message
                .params
                .and_then(|params| Notification::from_parts(&method, params).ok());
            if let Some(note) = note {
                // The receiver may be gone (a one-shot CLI call); that is fine.
                let _ = notifications.send(note).await;
            }
            continue;
        }
        let Some(decode) = message.id.and_then(|id| lock(&pending).remove(&id)) else {
            continue;
        };
        decode(match message.error {
            Some(error) => Err(error),
            None => Ok(message.result.unwrap_or(RawValue::NULL)),
        });
    }
    // Dropping the decoders wakes every caller with "connection closed".
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

/// The glibc setting of how many malloc arenas a process may use.
const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// Starts `reagentd --background` and waits until it listens (it prints `ready`) or says why
/// it could not. Losing a start race to another client's daemon counts as success.
pub async fn start_daemon() -> Result<()> {
    let binary = daemon_binary();
    let mut command = tokio::process::Command::new(&binary);
    command
        .arg("--background")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    // One malloc arena: a long-lived daemon whose big replies are encoded now on one worker
    // thread, now on another, otherwise keeps each thread's freed megabytes in its own arena,
    // and its memory grows with every burst instead of being reused. (A user's own setting
    // wins.)
    if std::env::var_os(MALLOC_ARENA_MAX).is_none() {
        command.env(MALLOC_ARENA_MAX, "1");
    }
    let mut child = command
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, DuplexStream};

    use super::*;
    use crate::protocol::{Ack, DaemonStatus, EventKind, Shutdown};

    /// The daemon's end of an in-memory connection: reads requests, writes whatever a test
    /// scripts.
    struct FakeDaemon {
        lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
        writer: tokio::io::WriteHalf<DuplexStream>,
    }

    impl FakeDaemon {
        fn connect() -> (Client, Notifications, Self) {
            let (client_end, daemon_end) = tokio::io::duplex(1 << 16);
            let (reader, writer) = tokio::io::split(client_end);
            let (client, notes) = Client::from_stream(reader, writer);
            let (reader, writer) = tokio::io::split(daemon_end);
            let lines = BufReader::new(reader).lines();
            (client, notes, Self { lines, writer })
        }

        async fn request(&mut self) -> Value {
            let line = self.lines.next_line().await.unwrap().unwrap();
            serde_json::from_str(&line).unwrap()
        }

        async fn send(&mut self, message: Value) {
            let line = format!("{message}\n");
            self.writer.write_all(line.as_bytes()).await.unwrap();
        }

        /// Answers the next request, which must be a `hello`, with `sync`; returns its params.
        async fn answer_hello(&mut self, sync: Value) -> Value {
            let request = self.request().await;
            self.reply_hello(&request, sync).await
        }

        /// Answers `request`, which must be a `hello`, with `sync`; returns its params.
        async fn reply_hello(&mut self, request: &Value, sync: Value) -> Value {
            assert_eq!(request["method"], "hello");
            let daemon = json!({"version": "0", "pid": 1, "started_at": 0, "state_dir": "/s"});
            let result = json!({"protocol": PROTOCOL_VERSION, "daemon": daemon, "sync": sync});
            let id = request["id"].clone();
            self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}))
                .await;
            request["params"].clone()
        }
    }

    fn event(seq: u64, attached: u32) -> Value {
        json!({"jsonrpc": "2.0", "method": "event",
               "params": {"seq": seq, "ts": 0, "type": "clients", "attached": attached}})
    }

    fn seq_of(update: Option<Update>) -> u64 {
        match update {
            Some(Update::Event(event)) => event.seq,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn replies_are_decoded_into_their_type_and_errors_kept() {
        let (client, _notes, mut daemon) = FakeDaemon::connect();
        let shutdown = tokio::spawn({
            let client = client.clone();
            async move { client.call(&Shutdown {}).await }
        });
        let id = daemon.request().await["id"].clone();
        daemon
            .send(json!({"jsonrpc": "2.0", "id": id, "result": {}}))
            .await;
        assert_eq!(shutdown.await.unwrap().unwrap(), Ack {});

        let status = tokio::spawn(async move { client.call(&DaemonStatus {}).await });
        let id = daemon.request().await["id"].clone();
        let error = json!({"code": codes::NOT_FOUND, "message": "no"});
        daemon
            .send(json!({"jsonrpc": "2.0", "id": id, "error": error}))
            .await;
        let err = status.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Rpc(e) if e.code == codes::NOT_FOUND),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_resync_says_hello_again_from_the_last_seq_and_replays_what_was_missed() {
        let (client, notes, mut daemon) = FakeDaemon::connect();
        let snapshot = json!({"type": "snapshot", "seq": 5, "runs": [], "clients": 1});
        let (subscribed, params) = tokio::join!(
            client.subscribe(notes, "test"),
            daemon.answer_hello(snapshot)
        );
        assert_eq!(params["since"], Value::Null);
        let (_, mut updates) = subscribed.unwrap();
        daemon.send(event(6, 1)).await;
        assert_eq!(seq_of(updates.next().await.unwrap()), 6);

        let resync = json!({"jsonrpc": "2.0", "method": "resync", "params": {"reason": "slow"}});
        daemon.send(resync).await;
        // The call that sent the hello is dropped, as a `select!` would, before the reply
        // comes: the next call finishes the resync.
        let hello = tokio::select! {
            update = updates.next() => panic!("no reply to the hello yet: {update:?}"),
            hello = daemon.request() => hello,
        };
        let missed = json!({"type": "events", "events": [
            {"seq": 8, "ts": 0, "type": "clients", "attached": 2}
        ]});
        let (update, params) = tokio::join!(updates.next(), daemon.reply_hello(&hello, missed));
        assert_eq!(params["since"], 6, "resumes after the last event seen");
        assert!(matches!(update.unwrap(), Some(Update::Resynced(None))));
        let replayed = updates.next().await.unwrap();
        assert!(
            matches!(&replayed, Some(Update::Event(e)) if e.kind == EventKind::Clients { attached: 2 })
        );
        daemon.send(event(9, 2)).await;
        assert_eq!(seq_of(updates.next().await.unwrap()), 9);

        // A second resync resumes from the replayed event's seq onwards.
        let resync = json!({"jsonrpc": "2.0", "method": "resync", "params": {"reason": "slow"}});
        daemon.send(resync).await;
        let snapshot = json!({"type": "snapshot", "seq": 12, "runs": [], "clients": 1});
        let (update, params) = tokio::join!(updates.next(), daemon.answer_hello(snapshot));
        assert_eq!(params["since"], 9);
        assert!(
            matches!(update.unwrap(), Some(Update::Resynced(Some(s))) if s.seq == 12),
            "a snapshot replaces the missed events"
        );
        daemon
            .send(json!({"jsonrpc": "2.0", "method": "shutdown", "params": {}}))
            .await;
        assert!(updates.next().await.unwrap().is_none());
    }
}
