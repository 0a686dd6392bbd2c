//! `/v1`: one endpoint for every model, the daemon's own and the providers'.
//!
//! OpenAI-compatible `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` and
//! `/v1/models`, and Anthropic `/v1/messages` and `/v1/messages/count_tokens`. The body's
//! `model` picks the upstream ([`plan`]): a ready local model (its name or served name), a
//! recipe that is not running (launched first through `models::launch`, which joins a launch
//! in flight, so two requests load it once), `PROVIDER/MODEL` or a bare model a provider
//! lists. The client's credentials never travel on: a provider gets the daemon's key, as its
//! protocol wants it ([`Provider::authorize`]).
//!
//! Pass-through: the upstream's status, the headers a client acts on ([`PASSED_HEADERS`])
//! and the body bytes reach the client unchanged and unbuffered — a 529 stays a 529, a
//! thinking signature is never re-serialized, and a stream cut upstream is cut downstream
//! (the body ends with an error, not a clean end). A [`tap::Tap`] reads a copy on the side
//! for usage and cost, and a [`record::Record`] writes the request's row to the log when it
//! ends, whichever way it ends. Requests without a valid token leave no row: whoever can
//! reach the port could otherwise fill the disk with them.

mod record;
mod shape;
mod tap;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use reagent::gateway::{GatewayOutcome, GatewayRequest, GatewayRoute};
use reagent::model::ModelState;
use reagent::protocol::{GatewayLog, LaunchModel, RpcError};
use reagent::token::Scope;
use serde_json::value::RawValue;

use self::record::Record;
use self::shape::{Family, Kind};
use self::tap::Tap;
use crate::chat::providers::{LOCAL, Provider};
use crate::daemon::{Daemon, internal};

/// How often a streaming request waiting for a launch hears that it is still waiting: well
/// under the idle timeouts of proxies and SDKs (tens of seconds).
const KEEP_ALIVE: Duration = Duration::from_secs(3);

/// Rows a `gateway.log` reply holds when the caller names no limit.
const DEFAULT_LOG_ROWS: usize = 1000;

/// Upstream headers that reach the client: the body's type, retry hints, rate limits and
/// request ids (quoted in a bug report). Hop-by-hop and connection headers are the server's
/// own business; the rest says nothing a client acts on.
const PASSED_HEADERS: [&str; 6] = [
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-request-id",
    "request-id",
];

/// Prefixes of upstream headers that reach the client: OpenAI's and Anthropic's rate limits.
const PASSED_PREFIXES: [&str; 2] = ["x-ratelimit-", "anthropic-ratelimit-"];

/// Client headers that travel on: what the answer should look like and which API features
/// it uses. Never `authorization` or `x-api-key`: those are the client's reagent token.
const FORWARDED_HEADERS: [&str; 2] = ["accept", "anthropic-beta"];

/// The `/v1` routes.
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/chat/completions", post(chat_completions))
        .route("/completions", post(completions))
        .route("/embeddings", post(embeddings))
        .route("/messages", post(messages))
        .route("/messages/count_tokens", post(count_tokens))
        .route("/models", get(models))
        .fallback(unknown)
}

/// The request log, oldest first: the one function `gateway.log` calls.
pub fn log(daemon: &Daemon, params: &GatewayLog) -> Result<Vec<GatewayRequest>, RpcError> {
    let limit = params.limit.unwrap_or(DEFAULT_LOG_ROWS);
    let state = daemon.state();
    (state.store())
        .gateway_log(params.token.as_deref(), params.since_ms, limit)
        .map_err(internal)
}

type Daemon_ = State<Arc<Daemon>>;
type Body_ = Result<Bytes, BytesRejection>;

async fn chat_completions(State(d): Daemon_, headers: HeaderMap, body: Body_) -> Response {
    proxy(d, Family::OpenAi, "/chat/completions", headers, body).await
}

async fn completions(State(d): Daemon_, headers: HeaderMap, body: Body_) -> Response {
    proxy(d, Family::OpenAi, "/completions", headers, body).await
}

async fn embeddings(State(d): Daemon_, headers: HeaderMap, body: Body_) -> Response {
    proxy(d, Family::OpenAi, "/embeddings", headers, body).await
}

async fn messages(State(d): Daemon_, headers: HeaderMap, body: Body_) -> Response {
    proxy(d, Family::Anthropic, "/messages", headers, body).await
}

async fn count_tokens(State(d): Daemon_, headers: HeaderMap, body: Body_) -> Response {
    proxy(
        d,
        Family::Anthropic,
        "/messages/count_tokens",
        headers,
        body,
    )
    .await
}

/// An unknown `/v1` route: 404 in OpenAI's shape (most `/v1` clients speak it), after the
/// token check, so an unauthenticated caller learns nothing about routes.
async fn unknown(State(daemon): Daemon_, headers: HeaderMap) -> Response {
    let family = family_of(&headers);
    if let Err(denied) = super::authorize(&daemon, &headers, Scope::Gateway) {
        return refusal(family, denied);
    }
    let message = "no such route: /v1 serves chat/completions, completions, embeddings, models, \
                   messages and messages/count_tokens";
    family.error(StatusCode::NOT_FOUND, Kind::InvalidRequest, message)
}

/// Anthropic's clients always send `anthropic-version`; everyone else is taken for OpenAI.
fn family_of(headers: &HeaderMap) -> Family {
    if headers.contains_key("anthropic-version") {
        Family::Anthropic
    } else {
        Family::OpenAi
    }
}

fn refusal(family: Family, denied: crate::tokens::Denied) -> Response {
    let kind = match denied {
        crate::tokens::Denied::Unknown => Kind::Authentication,
        crate::tokens::Denied::OutOfScope => Kind::Permission,
    };
    let message = super::denied_message(denied, Scope::Gateway);
    family.error(super::denied_status(denied), kind, &message)
}

/// Where a request goes.
enum Plan {
    /// Somewhere that answers now.
    Ready(Box<Target>),
    /// A recipe whose model must be launched first.
    Launch(String),
}

/// An upstream that answers now.
struct Target {
    route: GatewayRoute,
    url: String,
    /// The name the upstream knows the model by (the body's `model` becomes this).
    model: String,
    /// The provider, whose key and headers go with the request; `None` for a local model.
    provider: Option<Provider>,
}

/// A refusal before any upstream: status, kind, message.
type Refusal = (StatusCode, Kind, String);

/// Where `model` goes, for a request on `path` (below `/v1`) of `family`.
fn plan(daemon: &Daemon, family: Family, path: &str, model: &str) -> Result<Plan, Refusal> {
    if let Ok(target) = local(daemon, path, model) {
        return Ok(Plan::Ready(Box::new(target)));
    }
    // `local/NAME` names a recipe too, as the chat's `local` provider spells it.
    let bare = match model.strip_prefix("local/") {
        Some(name) if !daemon.chat.providers.has(LOCAL) => name,
        _ => model,
    };
    let recipe = daemon.state().recipe(bare).map(|r| r.name.clone());
    if let Ok(recipe) = recipe {
        return Ok(Plan::Launch(recipe));
    }
    let named = match daemon.chat.resolve(daemon, model) {
        Ok(found) => Some(found),
        Err(_) => (daemon.chat.providers.all().iter())
            .find(|p| p.models.iter().any(|m| m == model))
            .map(|p| (p.clone(), model.to_string())),
    };
    let Some((provider, id)) = named else {
        let message = format!("no model `{model}`; known: {}", known(daemon).join(", "));
        return Err((StatusCode::NOT_FOUND, Kind::NotFound, message));
    };
    // `local/NAME` resolves to a ready model server, which speaks whatever it speaks.
    let is_local = provider.name == LOCAL && !daemon.chat.providers.has(LOCAL);
    if !is_local && provider.protocol() != family.protocol() {
        let (speaks, route) = match family {
            Family::OpenAi => ("Anthropic Messages API", "/v1/messages"),
            Family::Anthropic => ("OpenAI API", "/v1/chat/completions"),
        };
        let message = format!(
            "provider `{}` speaks the {speaks}: send `{model}` to {route}",
            provider.name
        );
        return Err((StatusCode::BAD_REQUEST, Kind::InvalidRequest, message));
    }
    let base = provider.base_url.trim_end_matches('/');
    let url = match provider.protocol() {
        crate::llm::ProviderKind::OpenAi => format!("{base}{path}"),
        crate::llm::ProviderKind::Anthropic => {
            format!("{}/v1{path}", base.strip_suffix("/v1").unwrap_or(base))
        }
    };
    let route = if is_local {
        GatewayRoute::Local
    } else {
        GatewayRoute::Provider
    };
    Ok(Plan::Ready(Box::new(Target {
        route,
        url,
        model: id,
        provider: Some(provider),
    })))
}

/// A ready local model by name or served name.
fn local(daemon: &Daemon, path: &str, model: &str) -> Result<Target, String> {
    let (port, served) = crate::models::endpoint(daemon, model)?;
    crate::models::note_request(daemon, model);
    Ok(Target {
        route: GatewayRoute::Local,
        url: format!("http://127.0.0.1:{port}/v1{path}"),
        model: served,
        provider: None,
    })
}

/// Every model name a request may use, for a 404 that helps.
fn known(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = (crate::models::list(daemon).into_iter())
        .filter(|m| m.state == ModelState::Ready)
        .map(|m| m.name)
        .collect();
    for recipe in crate::models::recipes::list(daemon) {
        if !names.contains(&recipe.name) {
            names.push(recipe.name);
        }
    }
    for provider in daemon.chat.providers.all() {
        names.extend(
            provider
                .models
                .iter()
                .map(|m| format!("{}/{m}", provider.name)),
        );
    }
    if names.is_empty() {
        names.push("none (add a recipe or a provider)".into());
    }
    names
}

/// A request body: valid JSON, its `model`, whether it streams, and where `model`'s value
/// sits in the bytes, so the rewrite touches nothing else.
struct Parsed {
    model: String,
    stream: bool,
    /// Byte range of `model`'s JSON value.
    at: std::ops::Range<usize>,
}

fn parse(body: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(body).map_err(|err| format!("the body is not UTF-8: {err}"))?;
    let fields: HashMap<String, &RawValue> = serde_json::from_str(text)
        .map_err(|err| format!("the body is not a JSON object: {err}"))?;
    let raw = fields.get("model").ok_or("the body has no `model`")?;
    let model: String =
        serde_json::from_str(raw.get()).map_err(|_| "`model` is not a string".to_string())?;
    if model.is_empty() {
        return Err("`model` is empty".into());
    }
    let start = (raw.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    let stream = fields.get("stream").is_some_and(|raw| raw.get() == "true");
    Ok(Parsed {
        model,
        stream,
        at: start..start + raw.get().len(),
    })
}

/// `body` with `model`'s value replaced by `model`, every other byte as it was.
fn rewrite(body: &[u8], at: &std::ops::Range<usize>, model: &str) -> Bytes {
    let value = serde_json::Value::String(model.to_string()).to_string();
    let (Some(head), Some(tail)) = (body.get(..at.start), body.get(at.end..)) else {
        return Bytes::copy_from_slice(body);
    };
    let mut out = Vec::with_capacity(body.len() + value.len());
    out.extend_from_slice(head);
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(tail);
    Bytes::from(out)
}

/// Every `/v1` request that carries a body: authenticate, parse, route, forward, log.
async fn proxy(
    daemon: Arc<Daemon>,
    family: Family,
    path: &'static str,
    headers: HeaderMap,
    body: Body_,
) -> Response {
    let started = Instant::now();
    let token = match super::authorize(&daemon, &headers, Scope::Gateway) {
        Ok(token) => token,
        Err(denied) => return refusal(family, denied),
    };
    let mut record = Record::new(daemon.clone(), token, started);
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let (kind, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                let limit = daemon.config.http.max_body_bytes;
                let message = format!("the body is over {limit} bytes ([http] max_body_bytes)");
                (Kind::TooLarge, message)
            } else {
                (Kind::InvalidRequest, rejection.body_text())
            };
            return refuse(&mut record, family, (status, kind, message));
        }
    };
    record.request_body(&body);
    let parsed = match parse(&body) {
        Ok(parsed) => parsed,
        Err(message) => {
            let refusal = (StatusCode::BAD_REQUEST, Kind::InvalidRequest, message);
            return refuse(&mut record, family, refusal);
        }
    };
    record.model(&parsed.model);
    let plan = match plan(&daemon, family, path, &parsed.model) {
        Ok(plan) => plan,
        Err(refusal) => return refuse(&mut record, family, refusal),
    };
    let forwarded = forwarded_headers(&headers);
    match plan {
        Plan::Ready(target) => {
            let body = rewrite(&body, &parsed.at, &target.model);
            record.route(target.route);
            record.prices = target.provider.as_ref().and_then(|p| p.prices);
            match send(&daemon, &target, body, &forwarded).await {
                Ok(upstream) => answer(record, family, upstream),
                Err(why) => fail(&mut record, family, GatewayOutcome::UpstreamError, why),
            }
        }
        Plan::Launch(recipe) => {
            record.route(GatewayRoute::Local);
            let stream = parsed.stream;
            let launch = launched(
                daemon.clone(),
                recipe.clone(),
                path,
                body,
                parsed,
                forwarded,
            );
            if !stream {
                return match launch.await {
                    Ok(upstream) => answer(record, family, upstream),
                    Err((outcome, why)) => fail(&mut record, family, outcome, why),
                };
            }
            waiting(record, family, recipe, Box::pin(launch))
        }
    }
}

/// Refuses before any upstream, logging it.
fn refuse(record: &mut Record, family: Family, (status, kind, message): Refusal) -> Response {
    record.status(status.as_u16());
    record.finish(GatewayOutcome::Refused, Some(message.clone()));
    family.error(status, kind, &message)
}

/// Answers 502 for an upstream that never answered (or a launch that failed), logging why.
fn fail(record: &mut Record, family: Family, outcome: GatewayOutcome, why: String) -> Response {
    record.status(StatusCode::BAD_GATEWAY.as_u16());
    record.finish(outcome, Some(why.clone()));
    family.error(StatusCode::BAD_GATEWAY, Kind::Upstream, &why)
}

/// The client headers that travel on.
fn forwarded_headers(headers: &HeaderMap) -> Vec<(&'static str, HeaderValue)> {
    let mut out = Vec::new();
    for name in FORWARDED_HEADERS {
        for value in headers.get_all(name) {
            out.push((name, value.clone()));
        }
    }
    // A local server may care which Anthropic API version the client speaks; a provider
    // gets the daemon's own (`Provider::authorize`), never two.
    if let Some(value) = headers.get("anthropic-version") {
        out.push(("anthropic-version", value.clone()));
    }
    out
}

/// Sends the request upstream and waits for its status and headers.
async fn send(
    daemon: &Daemon,
    target: &Target,
    body: Bytes,
    forwarded: &[(&'static str, HeaderValue)],
) -> Result<reqwest::Response, String> {
    let mut request = (daemon.chat.http.post(&target.url))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in forwarded {
        if *name == "anthropic-version" && target.provider.is_some() {
            continue;
        }
        request = request.header(*name, value.clone());
    }
    let scrub = |text: String| match target.provider.as_ref().map(|p| &p.key) {
        Some(Ok(key)) => key.scrub(&text),
        _ => text,
    };
    if let Some(provider) = &target.provider {
        let key = (provider.key.as_ref())
            .map_err(|why| format!("provider `{}` has no usable key: {why}", provider.name))?;
        request = provider.authorize(request, key);
    }
    request.send().await.map_err(|err| {
        let kind = if err.is_connect() {
            "connect"
        } else if err.is_timeout() {
            "timeout"
        } else {
            "request"
        };
        scrub(format!("{kind}: cannot reach the upstream: {err}"))
    })
}

/// A launch, then the request to the launched model: what a request for a stopped recipe
/// waits for.
async fn launched(
    daemon: Arc<Daemon>,
    recipe: String,
    path: &'static str,
    body: Bytes,
    parsed: Parsed,
    forwarded: Vec<(&'static str, HeaderValue)>,
) -> Result<reqwest::Response, (GatewayOutcome, String)> {
    let launch = LaunchModel {
        recipe: recipe.clone(),
        preempt: false,
    };
    let launched = crate::models::launch(&daemon, launch).await;
    launched.map_err(|err| {
        let why = format!("launching `{recipe}` failed: {}", err.message);
        (GatewayOutcome::LaunchFailed, why)
    })?;
    let target =
        local(&daemon, path, &recipe).map_err(|why| (GatewayOutcome::LaunchFailed, why))?;
    let body = rewrite(&body, &parsed.at, &target.model);
    send(&daemon, &target, body, &forwarded)
        .await
        .map_err(|why| (GatewayOutcome::UpstreamError, why))
}

/// The upstream's answer, passed through: status, the headers that matter, and the body as
/// it streams, with the tap reading along.
fn answer(mut record: Record, family: Family, upstream: reqwest::Response) -> Response {
    let status = upstream.status();
    record.status(status.as_u16());
    let mut response = Response::builder().status(status.as_u16());
    let mut sse = false;
    for (name, value) in upstream.headers() {
        let name = name.as_str();
        if PASSED_HEADERS.contains(&name) || PASSED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            sse |= name == "content-type" && value.as_bytes().starts_with(b"text/event-stream");
            response = response.header(name, value.as_bytes());
        }
    }
    record.answering = true;
    let relay = Relay {
        phase: Phase::Streaming(upstream.bytes_stream().boxed()),
        tap: Some(Tap::new(family, sse)),
        record,
        failed: (!status.is_success()).then_some(status.as_u16()),
        family,
    };
    response
        .body(Body::from_stream(relay))
        .unwrap_or_else(|err| {
            tracing::warn!("the gateway could not build a response: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
}

/// A streaming request waiting for a launch: 200 and `text/event-stream` at once, a comment
/// every [`KEEP_ALIVE`] until the model answers, then its stream.
fn waiting(
    mut record: Record,
    family: Family,
    recipe: String,
    launch: Pin<Box<dyn Future<Output = Launched> + Send>>,
) -> Response {
    record.status(StatusCode::OK.as_u16());
    record.answering = true;
    let relay = Relay {
        phase: Phase::Launching {
            launch,
            ticker: tokio::time::interval(KEEP_ALIVE),
            comment: Bytes::from(format!(": launching {}\n\n", one_line(&recipe))),
        },
        tap: Some(Tap::new(family, true)),
        record,
        failed: None,
        family,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(relay))
        .unwrap_or_else(|err| {
            tracing::warn!("the gateway could not build a response: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
}

/// A name fit for one SSE comment line.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

type Launched = Result<reqwest::Response, (GatewayOutcome, String)>;

/// What a relay is doing.
enum Phase {
    /// Waiting for a launch (and the launched model's headers).
    Launching {
        launch: Pin<Box<dyn Future<Output = Launched> + Send>>,
        ticker: tokio::time::Interval,
        comment: Bytes,
    },
    /// Passing the upstream's body through.
    Streaming(BoxStream<'static, reqwest::Result<Bytes>>),
    /// Over.
    Done,
}

/// An answer's body on its way to the client: owns the upstream's body (dropping the relay
/// — the client went away — drops the upstream request) and the request's log row.
struct Relay {
    phase: Phase,
    tap: Option<Tap>,
    record: Record,
    /// The upstream's status, when it was not a success: the log says `upstream_error`.
    failed: Option<u16>,
    family: Family,
}

/// Why the body ended badly, for hyper to abort the response with.
fn cut(why: &str) -> std::io::Error {
    std::io::Error::other(why.to_string())
}

impl Relay {
    /// The upstream's body ended cleanly: log the request, and say whether the client's
    /// body must be cut (the stream was cut upstream).
    fn ended(&mut self) -> Option<std::io::Error> {
        let summary = self.tap.take().map(Tap::finish).unwrap_or_default();
        self.record.usage(summary.usage);
        let (outcome, detail) = match (self.failed, &summary.error) {
            _ if summary.cut => (
                GatewayOutcome::UpstreamError,
                Some("cut: the stream ended without its end".into()),
            ),
            (Some(status), error) => {
                let kind = error.clone().unwrap_or_else(|| "error".into());
                (
                    GatewayOutcome::UpstreamError,
                    Some(format!("{status} {kind}")),
                )
            }
            (None, Some(error)) => (
                GatewayOutcome::UpstreamError,
                Some(format!("stream: {error}")),
            ),
            (None, None) => (GatewayOutcome::Ok, None),
        };
        self.record.finish(outcome, detail);
        summary.cut.then(|| cut("the upstream stream was cut"))
    }
}

impl Stream for Relay {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::Streaming(upstream) => {
                    return match upstream.poll_next_unpin(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Some(Ok(bytes))) => {
                            this.record.answer_bytes(&bytes);
                            if let Some(tap) = &mut this.tap {
                                tap.feed(&bytes);
                            }
                            Poll::Ready(Some(Ok(bytes)))
                        }
                        Poll::Ready(Some(Err(err))) => {
                            this.phase = Phase::Done;
                            if let Some(tap) = this.tap.take() {
                                this.record.usage(tap.finish().usage);
                            }
                            let why = format!("cut: the upstream's body failed: {err}");
                            this.record.finish(GatewayOutcome::UpstreamError, Some(why));
                            Poll::Ready(Some(Err(cut("the upstream's body failed"))))
                        }
                        Poll::Ready(None) => {
                            this.phase = Phase::Done;
                            Poll::Ready(this.ended().map(Err))
                        }
                    };
                }
                Phase::Launching {
                    launch,
                    ticker,
                    comment,
                } => match launch.as_mut().poll(cx) {
                    Poll::Ready(Ok(upstream)) if upstream.status().is_success() => {
                        this.record.status(upstream.status().as_u16());
                        this.phase = Phase::Streaming(upstream.bytes_stream().boxed());
                    }
                    Poll::Ready(Ok(upstream)) => {
                        // The 200 went out already: the refusal becomes an error event.
                        let status = upstream.status().as_u16();
                        this.record.status(status);
                        let why = format!("the launched model answered {status}");
                        this.record
                            .finish(GatewayOutcome::UpstreamError, Some(why.clone()));
                        this.phase = Phase::Done;
                        let event = this.family.sse_error(Kind::Upstream, &why);
                        return Poll::Ready(Some(Ok(Bytes::from(event))));
                    }
                    Poll::Ready(Err((outcome, why))) => {
                        this.record.finish(outcome, Some(why.clone()));
                        this.phase = Phase::Done;
                        let event = this.family.sse_error(Kind::Upstream, &why);
                        return Poll::Ready(Some(Ok(Bytes::from(event))));
                    }
                    Poll::Pending => {
                        return match ticker.poll_tick(cx) {
                            Poll::Ready(_) => Poll::Ready(Some(Ok(comment.clone()))),
                            Poll::Pending => Poll::Pending,
                        };
                    }
                },
            }
        }
    }
}

/// `GET /v1/models`: ready local models, recipes (launched on first use) and every model a
/// provider lists, in OpenAI's list shape (Anthropic's when the client sends
/// `anthropic-version`).
async fn models(State(daemon): Daemon_, headers: HeaderMap) -> Response {
    let family = family_of(&headers);
    let started = Instant::now();
    let token = match super::authorize(&daemon, &headers, Scope::Gateway) {
        Ok(token) => token,
        Err(denied) => return refusal(family, denied),
    };
    let mut entries: Vec<(String, &str)> = Vec::new();
    let ready: Vec<String> = (crate::models::list(&daemon).into_iter())
        .filter(|m| m.state == ModelState::Ready)
        .map(|m| m.name)
        .collect();
    for name in &ready {
        entries.push((name.clone(), "reagent"));
    }
    for recipe in crate::models::recipes::list(&daemon) {
        if !ready.contains(&recipe.name) {
            entries.push((recipe.name, "reagent-recipe"));
        }
    }
    for provider in daemon.chat.providers.all() {
        for model in &provider.models {
            entries.push((format!("{}/{model}", provider.name), provider.name.as_str()));
        }
    }
    let body = match family {
        Family::OpenAi => {
            let data: Vec<_> = (entries.iter())
                .map(|(id, owner)| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
                .collect();
            serde_json::json!({"object": "list", "data": data})
        }
        Family::Anthropic => {
            let data: Vec<_> = (entries.iter())
                .map(|(id, _)| serde_json::json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
                .collect();
            let first = entries.first().map(|(id, _)| id.clone());
            let last = entries.last().map(|(id, _)| id.clone());
            serde_json::json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
        }
    };
    let mut record = Record::new(daemon.clone(), token, started);
    record.status(200);
    record.finish(GatewayOutcome::Ok, Some("models".into()));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_rewritten_and_nothing_else() {
        let body =
            br#"{"messages":[{"content":"sig \"x\" \u00e9"}], "model" : "mine", "stream":true}"#;
        let parsed = parse(body).unwrap();
        assert_eq!((parsed.model.as_str(), parsed.stream), ("mine", true));
        let out = rewrite(body, &parsed.at, "served/\"q\"");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"messages":[{"content":"sig \"x\" \u00e9"}], "model" : "served/\"q\"", "stream":true}"#
        );
        assert!(parse(b"{not json").is_err());
        assert!(parse(b"[1]").is_err());
        assert!(parse(br#"{"model":5}"#).is_err());
    }
}
