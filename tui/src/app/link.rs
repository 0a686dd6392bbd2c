//! The cockpit's connection to the daemon: connect, say hello, relay notifications, perform
//! effects in order; when the daemon goes away, say so and retry with backoff, then resync
//! from the last `seq` seen — the cockpit itself never restarts.

use std::future::Future;
use std::time::Duration;

use reagent::client::{Client, Notifications};
use reagent::protocol::{
    AlertResponse, Attach, Attached, CancelChat, CreateSession, Detach, HelloReply,
    IgnoreAlertsLike, ListAlerts, ListProviders, ListSessions, LogChunk, Notification,
    QueryMetrics, ReadLog, RemoveRuns, RenameRun, RenameSession, RerunRun, ResizeRun, RespondAlert,
    SendChat, SendInput, SessionHistory, SetSessionModel, StopRun, Sync, UsageQuery,
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
    /// An alert this client answered.
    Answered(Box<AlertResponse>),
    /// Something worked; a message for the status line.
    Done(String),
    /// Something failed; why.
    Failed(String),
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
        Effect::Start(mut spec) => {
            if local {
                // Like `reagent run`, a run started here works in the cockpit's folder, with
                // its environment.
                spec.cwd = spec.cwd.or_else(|| std::env::current_dir().ok());
                spec.client_env = spec
                    .client_env
                    .or_else(|| Some(reagent::transport::process_env()));
            }
            let reply = client.request(&spec).await?;
            relay(incoming, reply, |run| Replied::Started(Box::new(run)));
        }
        Effect::Stop(run) => {
            let reply = client
                .request(&StopRun {
                    run,
                    grace_secs: None,
                })
                .await?;
            relay(incoming, reply, |run| {
                Replied::Done(format!("stopping {}", run.label()))
            });
        }
        Effect::Remove(run) => {
            let reply = client.request(&RemoveRuns { runs: vec![run] }).await?;
            relay(incoming, reply, |removed| {
                let labels: Vec<&str> = removed.iter().map(RunInfo::label).collect();
                Replied::Done(format!("removed {}", labels.join(", ")))
            });
        }
        Effect::Rerun(run) => {
            let reply = client.request(&RerunRun { run, command: None }).await?;
            relay(incoming, reply, |run| Replied::Started(Box::new(run)));
        }
        Effect::Rename(run, name) => {
            let reply = client.request(&RenameRun { run, name }).await?;
            relay(incoming, reply, |run| {
                Replied::Done(format!("{} is now {}", run.id, run.label()))
            });
        }
        Effect::Input(run, data) => {
            let data = reagent::protocol::Blob(data);
            let reply = client.request(&SendInput { run, data }).await?;
            relay(incoming, reply, |_| Replied::Done(String::new()));
        }
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
            relay(incoming, both, |(attached, history)| {
                let history = history_before(&attached, history);
                Replied::Attached(Box::new(attached), history)
            });
        }
        Effect::Detach(run) => {
            let reply = client.request(&Detach { run }).await?;
            relay(incoming, reply, |_| Replied::Done(String::new()));
        }
        Effect::Resize(run, cols, rows) => {
            let reply = client.request(&ResizeRun { run, cols, rows }).await?;
            relay(incoming, reply, |_| Replied::Done(String::new()));
        }
        Effect::Sessions => {
            let reply = client.request(&ListSessions {}).await?;
            relay(incoming, reply, Replied::Sessions);
        }
        Effect::CreateSession {
            model,
            system,
            title,
        } => {
            let cwd = if local {
                std::env::current_dir().ok()
            } else {
                None
            };
            let create = CreateSession {
                model,
                system,
                cwd,
                title,
            };
            let reply = client.request(&create).await?;
            relay(incoming, reply, Replied::SessionCreated);
        }
        Effect::History(session) => {
            let reply = client
                .request(&SessionHistory {
                    session: session.clone(),
                })
                .await?;
            relay(incoming, reply, move |messages| {
                Replied::History(session, messages)
            });
        }
        Effect::SendChat(session, text) => {
            let reply = client.request(&SendChat { session, text }).await?;
            relay(incoming, reply, |_| Replied::Done(String::new()));
        }
        Effect::CancelChat(session) => {
            let reply = client.request(&CancelChat { session }).await?;
            relay(incoming, reply, |_| Replied::Done("cancelled".into()));
        }
        Effect::RenameSession(session, title) => {
            let reply = client.request(&RenameSession { session, title }).await?;
            relay(incoming, reply, |session| {
                Replied::Done(format!("{} is now {}", session.id, session.label()))
            });
        }
        Effect::SetModel(session, model) => {
            let reply = client.request(&SetSessionModel { session, model }).await?;
            relay(incoming, reply, |session| {
                Replied::Done(format!(
                    "{} now talks to {}",
                    session.label(),
                    session.model
                ))
            });
        }
        Effect::Providers => {
            let reply = client.request(&ListProviders { check: false }).await?;
            relay(incoming, reply, |providers| {
                let models = providers.iter().flat_map(|p| {
                    p.models
                        .iter()
                        .map(move |model| format!("{}/{model}", p.name))
                });
                Replied::Models(models.collect())
            });
        }
        Effect::Usage => {
            let reply = client.request(&UsageQuery {}).await?;
            relay(incoming, reply, Replied::Usage);
        }
        Effect::QueryMetrics {
            run,
            window,
            columns,
        } => {
            let query = QueryMetrics {
                run,
                names: Vec::new(),
                window,
                columns,
            };
            let reply = client.request(&query).await?;
            relay(incoming, reply, |reply| Replied::Metrics(Box::new(reply)));
        }
        Effect::ListAlerts => {
            let reply = client.request(&ListAlerts::default()).await?;
            relay(incoming, reply, Replied::Alerts);
        }
        Effect::RespondAlert(id, choice) => {
            let reply = client.request(&RespondAlert { id, choice }).await?;
            relay(incoming, reply, |reply| Replied::Answered(Box::new(reply)));
        }
        Effect::IgnoreAlertsLike(id) => {
            // The alerts come back as `alert` events; the reply says how many.
            let reply = client.request(&IgnoreAlertsLike { id }).await?;
            relay(incoming, reply, |reply| Replied::Done(reply.summary()));
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

fn relay<T: Send + 'static>(
    incoming: &mpsc::Sender<Incoming>,
    reply: impl Future<Output = reagent::Result<T>> + Send + 'static,
    on_ok: impl FnOnce(T) -> Replied + Send + 'static,
) {
    let incoming = incoming.clone();
    tokio::spawn(async move {
        let replied = match reply.await {
            Ok(value) => on_ok(value),
            Err(err) => Replied::Failed(err.to_string()),
        };
        let _ = incoming.send(Incoming::Replied(replied)).await;
    });
}
