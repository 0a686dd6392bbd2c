//! The cockpit's connection to the daemon: connect, say hello, relay notifications, perform
//! effects in order; when the daemon goes away, say so and retry with backoff, then resync
//! from the last `seq` seen — the cockpit itself never restarts.

use std::future::Future;
use std::time::Duration;

use reagent::client::{Client, Notifications};
use reagent::protocol::{
    AlertResponse, Attach, Attached, HelloReply, LogChunk, Notification, ReadLog, Sync,
};
use reagent::run::RunInfo;
use reagent::transport::{Transport, last_remote_error};
use tokio::sync::mpsc;

use super::state::PANE_SCROLLBACK;
use super::update::Effect;

/// What the link tells the cockpit.
#[derive(Debug)]
pub enum Incoming {
    /// (Re)connected and caught up.
    Synced(HelloReply),
    /// A notification from the daemon.
    Note(Notification),
    /// The daemon is unreachable; the next attempt is in `retry_in_ms`.
    Down {
        /// Why.
        reason: String,
        /// When the next attempt starts.
        retry_in_ms: u64,
    },
    /// A reply to an effect.
    Replied(Replied),
}

/// Replies the cockpit acts on.
#[derive(Debug)]
pub enum Replied {
    /// The pane's screen, and the log's bytes before it for the scrollback.
    Attached(Box<Attached>, Vec<u8>),
    /// A run the user started.
    Started(Box<RunInfo>),
    /// The chat sessions.
    Sessions(Vec<reagent::chat::SessionInfo>),
    /// A session this client created.
    SessionCreated(reagent::chat::SessionInfo),
    /// A session's messages.
    History(String, Vec<reagent::chat::MessageInfo>),
    /// Every `PROVIDER/MODEL` the providers list.
    Models(Vec<String>),
    /// Tokens and cost per day and session.
    Usage(reagent::chat::UsageReport),
    /// A chart's worth of one run's series.
    Metrics(Box<reagent::metrics::MetricsQueryReply>),
    /// Every alert.
    Alerts(Vec<reagent::alert::AlertInfo>),
    /// Every recipe, for the launch picker.
    Recipes(Vec<reagent::model::Recipe>),
    /// The gateway's request log, oldest first.
    Gateway(Vec<reagent::gateway::GatewayRequest>),
    /// An alert this client answered.
    Answered(Box<AlertResponse>),
    /// The approvals waiting for an answer (`approvals.list`).
    Approvals(Vec<reagent::agent::Approval>),
    /// An approval this client answered, as it is now (settled).
    ApprovalAnswered(Box<reagent::agent::Approval>),
    /// This client's answer to approval `.0` failed (someone else answered first, or the
    /// link is down): the box takes keys for it again.
    ApprovalFailed(String, String),
    /// Every wild-mode loop (`wild.status`).
    WildLoops(Vec<reagent::agent::WildInfo>),
    /// A wild-mode loop this client started; `true` when it started in a session of its own
    /// (none was open), which the cockpit then opens.
    WildStarted(Box<reagent::agent::WildInfo>, bool),
    /// A wild-mode loop this client stopped, as it is now.
    WildStopped(Box<reagent::agent::WildInfo>),
    /// Something worked; a message for the status line.
    Done(String),
    /// Something failed; why.
    Failed(String),
}

impl Replied {
    /// What a reply becomes: `on_ok` of its value, or why the request failed.
    pub fn or_failed<T>(reply: reagent::Result<T>, on_ok: impl FnOnce(T) -> Self) -> Self {
        match reply {
            Ok(value) => on_ok(value),
            Err(err) => Self::Failed(err.to_string()),
        }
    }
}

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(4);

/// Starts the link; effects go in, incoming messages come out.
pub fn spawn(transport: Transport) -> (mpsc::UnboundedSender<Effect>, mpsc::Receiver<Incoming>) {
    let (effects_tx, effects_rx) = mpsc::unbounded_channel();
    // Bounded: a cockpit that falls behind slows its reader, and the daemon makes it resync.
    let (incoming_tx, incoming_rx) = mpsc::channel(64);
    tokio::spawn(run(transport, effects_rx, incoming_tx));
    (effects_tx, incoming_rx)
}

async fn run(
    transport: Transport,
    mut effects: mpsc::UnboundedReceiver<Effect>,
    incoming: mpsc::Sender<Incoming>,
) {
    let mut since = None;
    let mut first = true;
    let mut retry = FIRST_RETRY;
    loop {
        let connected = if first {
            transport.connect().await
        } else {
            transport.reconnect().await
        };
        first = false;
        let reason = match connected {
            Ok((client, notes)) => match hello(&client, &mut since, &incoming).await {
                Ok(()) => {
                    retry = FIRST_RETRY;
                    let local = matches!(transport, Transport::Local(_));
                    serve(&client, local, notes, &mut since, &mut effects, &incoming).await
                }
                Err(err) => err.to_string(),
            },
            Err(err) => err.to_string(),
        };
        let reason = match (&transport, last_remote_error()) {
            (Transport::Remote(_), Some(said)) => format!("{reason} — {said}"),
            _ => reason,
        };
        let retry_in_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX);
        if incoming
            .send(Incoming::Down {
                reason,
                retry_in_ms,
            })
            .await
            .is_err()
        {
            return;
        }
        // While down, effects fail at once rather than piling up.
        let wait = tokio::time::sleep(retry);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                effect = effects.recv() => match effect {
                    Some(_) => {
                        let failed = Replied::Failed("not connected to the daemon".into());
                        let _ = incoming.send(Incoming::Replied(failed)).await;
                    }
                    None => return,
                },
            }
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

async fn hello(
    client: &Client,
    since: &mut Option<u64>,
    incoming: &mpsc::Sender<Incoming>,
) -> reagent::Result<()> {
    let reply = client
        .hello(concat!("reagent-tui ", env!("CARGO_PKG_VERSION")), *since)
        .await?;
    match &reply.sync {
        Sync::Snapshot(snapshot) => *since = Some(snapshot.seq),
        Sync::Events { events } => {
            if let Some(last) = events.last() {
                *since = Some(last.seq);
            }
        }
    }
    let _ = incoming.send(Incoming::Synced(reply)).await;
    Ok(())
}

/// Relays until the connection drops; returns why it dropped.
async fn serve(
    client: &Client,
    local: bool,
    mut notes: Notifications,
    since: &mut Option<u64>,
    effects: &mut mpsc::UnboundedReceiver<Effect>,
    incoming: &mpsc::Sender<Incoming>,
) -> String {
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(note) = note else { return "the daemon closed the connection".into() };
                match &note {
                    Notification::Event(event) => *since = Some(event.seq),
                    Notification::Shutdown(_) => return "the daemon shut down".into(),
                    _ => {}
                }
                let resync = matches!(note, Notification::Resync(_));
                if incoming.send(Incoming::Note(note)).await.is_err() {
                    return "the cockpit closed".into();
                }
                if resync && let Err(err) = hello(client, since, incoming).await {
                    return err.to_string();
                }
            }
            effect = effects.recv() => {
                let Some(effect) = effect else { return "the cockpit closed".into() };
                if let Err(err) = perform(client, local, effect, incoming).await {
                    return err.to_string();
                }
            }
        }
    }
}

/// Sends the effect's request now (so requests keep their order) and relays its reply later.
async fn perform(
    client: &Client,
    local: bool,
    effect: Effect,
    incoming: &mpsc::Sender<Incoming>,
) -> reagent::Result<()> {
    match effect {
        Effect::Request(request) => relay(incoming, request.send(client, local).await?),
        Effect::Attach(run) => {
            let attach = client
                .request(&Attach {
                    run: run.clone(),
                    size: None,
                })
                .await?;
            // Read after the attach, so the chunk reaches at least the screen's offset.
            let history = client
                .request(&ReadLog {
                    run,
                    offset: None,
                    tail_lines: Some(PANE_SCROLLBACK),
                    max_bytes: None,
                })
                .await?;
            let both = async move {
                let attached = attach.await?;
                let history = history.await.ok();
                Ok((attached, history))
            };
            relay(incoming, async move {
                Replied::or_failed(both.await, |(attached, history)| {
                    let history = history_before(&attached, history);
                    Replied::Attached(Box::new(attached), history)
                })
            });
        }
    }
    Ok(())
}

/// The part of a log chunk that comes before an attach snapshot's offset: the run's history
/// for the pane's scrollback. None when the chunk does not reach it (a line-heavy flood over
/// the read limit), as a replay with a hole would show wrong lines.
fn history_before(attached: &Attached, chunk: Option<LogChunk>) -> Vec<u8> {
    let Some(chunk) = chunk else {
        return Vec::new();
    };
    let end = chunk.offset + chunk.data.0.len() as u64;
    if chunk.offset >= attached.offset || end < attached.offset {
        return Vec::new();
    }
    let mut bytes = chunk.data.0;
    bytes.truncate(usize::try_from(attached.offset - chunk.offset).unwrap_or(0));
    bytes
}

/// Hands the reply to the cockpit when it comes, without holding up the requests after it.
fn relay(
    incoming: &mpsc::Sender<Incoming>,
    replied: impl Future<Output = Replied> + Send + 'static,
) {
    let incoming = incoming.clone();
    tokio::spawn(async move {
        let _ = incoming.send(Incoming::Replied(replied.await)).await;
    });
}
