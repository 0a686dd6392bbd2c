//! `/rpc`: the Unix socket's JSON-RPC protocol over WebSocket, for browser panels and remote
//! tools that cannot reach the socket.
//!
//! It is the same protocol, method for method: every text frame is one message, run by the
//! socket's own [`handlers::handle_line`], and every reply, `event`, `output` and `resync`
//! goes out as one text frame (without the socket's trailing newline). Each connection has
//! the socket's outbox, so the per-client byte cap, the resync after it and the pause while
//! replies wait unread apply exactly as there. A binary frame gets a -32700 error; a message
//! over 16 MiB gets a -32600 error and the connection closes (code 1009).
//!
//! Authentication, with a token that has the `rpc` scope (`reagent token create NAME --scope
//! rpc`), either way:
//! - in the upgrade request, `Authorization: Bearer TOKEN`: the connection is authenticated at
//!   once (a wrong token there gets a 401 and no WebSocket);
//! - or, since browsers cannot set that header, in the first message:
//!   `{"jsonrpc":"2.0","id":0,"method":"auth","params":{"token":"rg_…"}}`, answered with
//!   `{"jsonrpc":"2.0","id":0,"result":{"ok":true}}`. A wrong token gets a -32602 error and
//!   the client may try again; any other message before then gets a -32600 error saying to
//!   authenticate, and nothing else happens.
//!
//! A connection that has not authenticated within [`AUTH_WITHIN`] is closed with code 1008
//! (policy violation). The daemon pings every [`PING_EVERY`] and closes a connection from
//! which nothing (no pong, no message) has come for [`IDLE_LIMIT`], so a client that vanished
//! without closing does not keep its place, subscription and attachments. Client pings are
//! answered by the WebSocket layer itself. At most `max_clients` WebSocket connections are
//! served at once, counted apart from the socket's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use reagent::connection::encode_line;
use reagent::protocol::{
    Incoming, MAX_LINE_BYTES, Request, RequestId, RpcError, codes, parse_request,
};
use reagent::token::Scope;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::daemon::Daemon;
use crate::handlers::{self, Conn};
use crate::outbox::{Line, Outbox};
use crate::tokens;

/// How long a connection may stay without a valid token.
pub const AUTH_WITHIN: Duration = Duration::from_secs(5);
/// How often the daemon pings each connection.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// How long a connection may stay silent (not even a pong) before it is closed: three pings.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// How long a leaving connection's writer may take to send what is still queued.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// Connection ids for `/rpc`, in a range the socket's (counted up from 1) never reaches:
/// the bus and the panes key connections by id, so the two must not collide.
static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 48);

/// Upgrades to WebSocket, once the request's token (if it carries one) is known good.
pub async fn upgrade(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A token in the request must be right; without one, it must come in the first message.
    let token = match super::presented(&headers) {
        None => None,
        Some(presented) => match tokens::check(&daemon, Some(presented), Scope::Rpc) {
            Ok(name) => Some(name),
            Err(denied) => {
                let message = super::denied_message(denied, Scope::Rpc);
                return refusal(
                    super::denied_status(denied),
                    codes::INVALID_REQUEST,
                    message,
                );
            }
        },
    };
    let ws = match ws {
        Ok(ws) => ws,
        // Not a WebSocket request: say so only to a caller with a token.
        Err(rejection) if token.is_some() => return rejection.into_response(),
        Err(_) => {
            let message = super::denied_message(tokens::Denied::Unknown, Scope::Rpc);
            return refusal(StatusCode::UNAUTHORIZED, codes::INVALID_REQUEST, message);
        }
    };
    let Ok(slot) = slots(&daemon).try_acquire_owned() else {
        let max = daemon.config.daemon.max_clients.max(1);
        tracing::warn!("{max} WebSocket clients connected (max_clients): refusing another");
        let message = format!(
            "the daemon already serves {max} WebSocket clients (max_clients in its config): try \
             again when some have gone"
        );
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TOO_MANY_CLIENTS,
            message,
        );
    };
    (ws.max_message_size(MAX_LINE_BYTES))
        .max_frame_size(MAX_LINE_BYTES)
        .on_upgrade(move |socket| serve(daemon, socket, token, slot))
}

/// The places under `max_clients` for WebSocket connections.
fn slots(daemon: &Daemon) -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let max = daemon.config.daemon.max_clients.max(1);
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(max))).clone()
}

/// A refused upgrade, in the protocol's own error shape.
fn refusal(status: StatusCode, code: i64, message: String) -> Response {
    let body = encode_line(&reagent::protocol::Response::err(
        RequestId::null(),
        RpcError::new(code, message),
    ));
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Why the daemon ends a connection, told in its close frame.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The client closed, or the connection broke: no close frame can reach it.
    Gone,
    /// No token within [`AUTH_WITHIN`].
    NoAuth,
    /// Nothing heard for [`IDLE_LIMIT`].
    Silent,
    /// A message over [`MAX_LINE_BYTES`], or one the WebSocket layer could not read.
    Unreadable { too_long: bool },
}

impl Ending {
    fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            Self::Gone => (close_code::NORMAL, "bye"),
            Self::NoAuth => (
                close_code::POLICY,
                "not authenticated within 5 s: send {\"method\":\"auth\",\"params\":{\"token\":…}} first",
            ),
            Self::Silent => (close_code::POLICY, "no pong or message for 60 s"),
            Self::Unreadable { too_long: true } => (close_code::SIZE, "message over 16 MiB"),
            Self::Unreadable { too_long: false } => (close_code::PROTOCOL, "unreadable message"),
        };
        CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }
    }
}

/// Serves one WebSocket client until it leaves; `token` is the name of the token it already
/// showed, if it did; `_slot` is its place under `max_clients`.
#[tracing::instrument(skip(daemon, socket, token, _slot), fields(conn = tracing::field::Empty))]
async fn serve(
    daemon: Arc<Daemon>,
    socket: WebSocket,
    token: Option<String>,
    _slot: OwnedSemaphorePermit,
) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    tracing::Span::current().record("conn", id);
    let (sink, mut stream) = socket.split();
    let outbox = Outbox::new(daemon.config.daemon.client_queue_bytes);
    // What the close frame says: the reader decides, the writer sends it after the last line.
    let closing = Arc::new(Mutex::new(None));
    let mut writing = tokio::spawn(write_loop(outbox.clone(), sink, closing.clone()));
    let conn = Conn {
        id,
        daemon,
        outbox,
        attached: Default::default(),
    };
    let mut authenticated = false;
    if let Some(name) = token {
        admit(&conn, &name);
        authenticated = true;
    }
    let ending = read_loop(&conn, &mut stream, authenticated).await;
    if matches!(ending, Ending::Unreadable { .. }) {
        let message = match ending {
            Ending::Unreadable { too_long: true } => {
                "message longer than 16 MiB: closing the connection"
            }
            _ => "unreadable WebSocket message: closing the connection",
        };
        conn.respond(
            Some(RequestId::null()),
            Err(RpcError::new(codes::INVALID_REQUEST, message)),
        );
    }
    *closing.lock().unwrap_or_else(PoisonError::into_inner) = Some(ending.frame());
    // What is still queued goes out first (the reply to `daemon.shutdown`, an error saying
    // why), then the close frame; a client that does not read gets `FLUSH_GRACE`.
    conn.outbox.finish();
    let _ = tokio::time::timeout(FLUSH_GRACE, &mut writing).await;
    handlers::disconnect(&conn);
    writing.abort();
}

/// Reads messages until the connection should end, and says why.
async fn read_loop(
    conn: &Conn,
    stream: &mut SplitStream<WebSocket>,
    mut authenticated: bool,
) -> Ending {
    let opened = Instant::now();
    let mut heard = Instant::now();
    loop {
        if !conn.outbox.has_room() {
            // Backpressure, as on the socket: not another request until the client reads
            // its replies. A client silent all that while is gone.
            tokio::select! {
                () = conn.outbox.room() => {}
                () = tokio::time::sleep_until(heard + IDLE_LIMIT) => return Ending::Silent,
            }
        }
        if conn.outbox.is_closed() {
            return Ending::Gone;
        }
        let deadline = if authenticated {
            heard + IDLE_LIMIT
        } else {
            opened + AUTH_WITHIN
        };
        let message = tokio::select! {
            message = stream.next() => message,
            () = tokio::time::sleep_until(deadline) => {
                if authenticated {
                    tracing::info!("closing a WebSocket client silent for {} s", IDLE_LIMIT.as_secs());
                    return Ending::Silent;
                }
                tracing::info!("closing a WebSocket client that did not authenticate");
                return Ending::NoAuth;
            }
        };
        heard = Instant::now();
        match message {
            None | Some(Ok(Message::Close(_))) => return Ending::Gone,
            Some(Err(err)) => {
                let text = err.to_string();
                // The WebSocket layer's capacity error; its type is not ours to name.
                let too_long = text.contains("too long");
                if too_long {
                    tracing::warn!("closing a WebSocket client that sent a message over 16 MiB");
                } else {
                    tracing::debug!("WebSocket read failed: {text}");
                }
                return Ending::Unreadable { too_long };
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Binary(_))) => {
                let message = "parse error: send JSON-RPC messages as text frames, not binary";
                conn.respond(
                    Some(RequestId::null()),
                    Err(RpcError::new(codes::PARSE_ERROR, message)),
                );
            }
            Some(Ok(Message::Text(text))) => {
                let line = text.as_bytes();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if authenticated {
                    if let Some((reply_to, refusal)) = socket_only(line) {
                        conn.respond(reply_to, Err(refusal));
                    } else {
                        handlers::handle_line(conn, line);
                    }
                } else {
                    authenticated = authenticate(conn, line);
                }
            }
        }
    }
}

/// A request only the Unix socket may make, refused here with its reply id: the token
/// methods. A token must not mint or revoke tokens, or an `rpc` token could give itself
/// every scope and outlive its own revocation.
fn socket_only(line: &[u8]) -> Option<(Option<RequestId>, RpcError)> {
    // Most lines name no token method: skip the second parse for them.
    if !line.windows(6).any(|window| window == b"token.") {
        return None;
    }
    let Incoming { reply_to, request } = parse_request(line);
    match request {
        Ok(Request::CreateToken(_) | Request::ListTokens(_) | Request::RevokeToken(_)) => Some((
            reply_to,
            RpcError::new(
                codes::INVALID_REQUEST,
                "token methods are answered only on the daemon's Unix socket (`reagent token …`)",
            ),
        )),
        _ => None,
    }
}

/// The first messages, before a token: only `auth` is run. Returns whether it succeeded.
fn authenticate(conn: &Conn, line: &[u8]) -> bool {
    let Incoming { reply_to, request } = parse_request(line);
    let error = match request {
        // `auth` is not a protocol method: the envelope is sound and only the method is new.
        Err(err) if err.code == codes::METHOD_NOT_FOUND => match auth_token(line) {
            Some(Ok(token)) => match tokens::check(&conn.daemon, Some(&token), Scope::Rpc) {
                Ok(name) => {
                    conn.respond(reply_to, Ok(json!({ "ok": true })));
                    admit(conn, &name);
                    return true;
                }
                Err(denied) => RpcError::new(
                    codes::INVALID_PARAMS,
                    format!("`token`: {}", super::denied_message(denied, Scope::Rpc)),
                ),
            },
            Some(Err(err)) => err,
            None => not_authenticated(),
        },
        // Malformed: its own error, as on the socket.
        Err(err) => err,
        Ok(_) => not_authenticated(),
    };
    tracing::debug!(
        code = error.code,
        "refused before authentication: {}",
        error.message
    );
    conn.respond(reply_to, Err(error));
    false
}

fn not_authenticated() -> RpcError {
    RpcError::new(
        codes::INVALID_REQUEST,
        "not authenticated: send {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"auth\",\
         \"params\":{\"token\":\"…\"}} first (a token with the rpc scope: `reagent token create NAME`)",
    )
}

/// The token of an `auth` message, an error for an `auth` message without one, `None` for
/// another method.
fn auth_token(line: &[u8]) -> Option<Result<String, RpcError>> {
    #[derive(Deserialize)]
    struct Auth {
        method: String,
        #[serde(default)]
        params: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct Params {
        token: String,
    }
    let auth = serde_json::from_slice::<Auth>(line).ok()?;
    if auth.method != "auth" {
        return None;
    }
    Some(
        serde_json::from_value::<Params>(auth.params)
            .map(|params| params.token)
            .map_err(|_| {
                RpcError::new(
                    codes::INVALID_PARAMS,
                    "`token`: auth takes {\"token\": \"…\"}, a token with the rpc scope",
                )
            }),
    )
}

/// Lets an authenticated connection in: from now on it is a client like the socket's.
fn admit(conn: &Conn, token: &str) {
    tracing::info!(token, "WebSocket client authenticated");
    conn.daemon
        .state()
        .bus
        .connect(conn.id, conn.outbox.clone());
}

/// What the writer does next.
enum Step {
    /// Lines were taken from the outbox (`false`: it is closed and drained).
    Lines(bool),
    /// Time to ping.
    Ping,
}

/// Drains the outbox into text frames, pings every [`PING_EVERY`], and ends with a close
/// frame once the outbox is finished.
async fn write_loop(
    outbox: Arc<Outbox>,
    mut sink: SplitSink<WebSocket, Message>,
    closing: Arc<Mutex<Option<CloseFrame>>>,
) {
    if write_all(&outbox, &mut sink).await {
        let frame = (closing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take())
        // Finished by the daemon's goodbye.
        .unwrap_or(CloseFrame {
            code: close_code::AWAY,
            reason: Utf8Bytes::from_static("the daemon is shutting down"),
        });
        let _ = sink.send(Message::Close(Some(frame))).await;
    } else {
        outbox.close();
    }
    outbox.writer_done();
}

/// Writes until the outbox is closed and drained (`true`) or the connection breaks (`false`).
async fn write_all(outbox: &Outbox, sink: &mut SplitSink<WebSocket, Message>) -> bool {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        // `next_batch` takes lines only when it returns, so losing the race to a ping loses
        // nothing.
        let step = tokio::select! {
            got = outbox.next_batch(&mut batch) => Step::Lines(got.is_some()),
            _ = ping.tick() => Step::Ping,
        };
        match step {
            Step::Lines(false) => return true,
            Step::Lines(true) => {
                for line in batch.drain(..) {
                    let Some(text) = text_frame(line) else {
                        continue;
                    };
                    if sink.feed(Message::Text(text)).await.is_err() {
                        return false;
                    }
                }
                if sink.flush().await.is_err() {
                    return false;
                }
                outbox.sent();
            }
            Step::Ping => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// One encoded line as a text frame, without its newline. Lines are serde_json's output or
/// base64, so always UTF-8; one that were not is dropped with a warning rather than sent.
fn text_frame(line: Line) -> Option<Utf8Bytes> {
    let end = line.len() - usize::from(line.ends_with(b"\n"));
    match Utf8Bytes::try_from(line.slice(..end)) {
        Ok(text) => Some(text),
        Err(err) => {
            tracing::warn!("not sending a line that is not UTF-8: {err}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_messages_are_told_apart() {
        let token =
            auth_token(br#"{"jsonrpc":"2.0","id":0,"method":"auth","params":{"token":"rg_x"}}"#);
        assert_eq!(token, Some(Ok("rg_x".to_string())));
        let missing = auth_token(br#"{"jsonrpc":"2.0","id":0,"method":"auth"}"#);
        assert!(matches!(missing, Some(Err(err)) if err.code == codes::INVALID_PARAMS));
        assert_eq!(
            auth_token(br#"{"jsonrpc":"2.0","id":0,"method":"nope"}"#),
            None
        );
    }

    #[test]
    fn lines_lose_their_newline() {
        let text = text_frame(Bytes::from_static(b"{\"a\":1}\n"));
        assert_eq!(text.as_deref(), Some("{\"a\":1}"));
        assert_eq!(text_frame(Bytes::new()).as_deref(), Some(""));
    }
}
