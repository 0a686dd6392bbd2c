//! The daemon's HTTP face, off unless `[http] listen` is set: one listener for `/v1` (the
//! gateway to local models and providers, [`gateway`]), `/rpc` (the JSON-RPC protocol over
//! WebSocket, [`rpc`]) and `/metrics` (Prometheus, [`prometheus`]).
//!
//! Like the protocol handlers, these are adapters: every action goes through the service
//! function that does it (a launch is `models::launch`, a token check `tokens::check`).
//! Every request needs a token with the route's scope; a missing or wrong one gets 401 in
//! the route family's own error shape, and nothing else.

pub mod gateway;
pub mod prometheus;
pub mod rpc;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use reagent::config::HttpConfig;
use reagent::token::Scope;
use tokio::net::TcpListener;

use crate::daemon::Daemon;
use crate::tokens::{self, Denied};

/// Binds `[http] listen`, or says why not (a bad address, a remote one without
/// `allow_remote`, a port in use): the daemon does not start with a listener it cannot have.
pub async fn bind(config: &HttpConfig) -> anyhow::Result<Option<TcpListener>> {
    let Some(listen) = &config.listen else {
        return Ok(None);
    };
    let addr: SocketAddr = listen.parse().with_context(|| {
        format!("[http] listen = {listen:?} is not HOST:PORT (e.g. 127.0.0.1:7878)")
    })?;
    if !addr.ip().is_loopback() {
        if !config.allow_remote {
            anyhow::bail!(
                "[http] listen = {listen:?} is not a loopback address; set [http] allow_remote = true to serve other machines"
            );
        }
        tracing::warn!(
            "HTTP listens on {addr}, beyond this machine: tokens cross the network in clear text unless TLS is put in front"
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ([http] listen)"))?;
    Ok(Some(listener))
}

/// Serves HTTP for as long as the daemon runs. It does not wait on `Daemon::shutdown`
/// itself: that `Notify` wakes one waiter, the socket server, whose return ends the daemon
/// and with it this task (a second waiter here once took the wake-up, and the daemon
/// ignored SIGTERM).
pub async fn serve(daemon: Arc<Daemon>, listener: TcpListener) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, "HTTP ready");
    // A stream relays many small writes: without TCP_NODELAY, Nagle holds each one back
    // until the client acknowledges the last.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {err}");
        }
    });
    if let Err(err) = axum::serve(listener, router(daemon)).await {
        tracing::error!("HTTP stopped: {err}");
    }
}

/// Every route.
fn router(daemon: Arc<Daemon>) -> Router {
    let limit = daemon.config.http.max_body_bytes;
    Router::new()
        .route("/metrics", get(prometheus::metrics))
        .route("/rpc", get(rpc::upgrade))
        .nest("/v1", gateway::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(daemon)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no such route: the daemon serves /v1, /rpc and /metrics\n",
    )
        .into_response()
}

/// The token a request carries: `Authorization: Bearer TOKEN`, or `x-api-key: TOKEN` as
/// Anthropic's clients send it.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = (headers.get(header::AUTHORIZATION))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    let api_key = (headers.get("x-api-key")).and_then(|value| value.to_str().ok());
    bearer.or(api_key).map(str::trim)
}

/// The token's name when the request may use `scope`.
pub fn authorize(daemon: &Daemon, headers: &HeaderMap, scope: Scope) -> Result<String, Denied> {
    tokens::check(daemon, presented(headers), scope)
}

/// The status a refusal gets: 401 for no or an unknown token, 403 for one without the scope.
pub fn denied_status(denied: Denied) -> StatusCode {
    match denied {
        Denied::Unknown => StatusCode::UNAUTHORIZED,
        Denied::OutOfScope => StatusCode::FORBIDDEN,
    }
}

/// What a refusal says: never which part was wrong beyond "no valid token" or "not for this".
pub fn denied_message(denied: Denied, scope: Scope) -> String {
    match denied {
        Denied::Unknown => "a valid reagent token is required (Authorization: Bearer TOKEN; `reagent token create NAME`)".into(),
        Denied::OutOfScope => format!("this token may not use the {scope} scope"),
    }
}
