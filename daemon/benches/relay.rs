//! `relay`: what `reagentd` costs when it relays an LLM answer, measured against reading the
//! same stream straight from the provider, side by side.
//!
//! A chat answer reaches the user through the daemon: it POSTs to the provider, parses the
//! SSE stream, appends each text delta to the answer (saved as it grows) and broadcasts it to
//! every subscribed client as an `event` notification. That hop must not be felt: the first
//! token is what the user waits for, and a fast local model (or many sessions at once) must
//! not make the daemon drop or garble text. So each measurement runs a baseline — this
//! process doing the provider's part of the work itself with the daemon's own request builder
//! and parser (`reagentd::llm`) over the same reqwest — and the real thing, a client connected
//! to a release `reagentd` on a fresh temporary `REAGENT_DIR`, in alternating order.
//!
//! The provider is a stand-in in this process: a minimal OpenAI-style server on loopback
//! (its own thread and runtime) that answers every request with `N` scripted
//! `{"content":"tok "}` deltas, a finish chunk, a usage chunk and `[DONE]`, then closes; the
//! model name picks `N` (`n1`, `n2000`, `n100000`) and the pace: by default the first delta
//! alone, then writes of 16 KiB as fast as the socket takes them; `n100000e` one write per
//! event; `n100000r20000` 20,000 deltas a second. It notes when each request arrived, which
//! splits the time to first token into "until the provider was asked" and "after it
//! answered". Deltas reaching the client are counted by their text (`tok ` each), so a daemon
//! that merges several into one event is neither penalised nor mistaken for losing some.
//!
//! 1. **Time to first token**: 200 samples (50 with `--quick`) of a one-token answer, each in
//!    a fresh session. Baseline: POST, parse, stop the clock at the first text delta.
//!    Reagent: `chat.send`, stop the clock when the first `delta` event for the session
//!    reaches the client (which said `hello`). Target: the daemon adds < 1 ms at the median.
//! 2. **Throughput**: one 100,000-delta answer, 3 times (once with `--quick`). Reagent:
//!    deltas per second received by the client, from the first delta to the answer's terminal
//!    `message` event; every delta's text must arrive, in order, without a `resync`, and the
//!    stored answer must hold all 100,000 tokens, `complete`. Baseline: the same stream parsed
//!    directly. Target: ≥ 20,000 deltas/s through the daemon, nothing lost. For context, once
//!    each: the provider writing one event at a time, and pacing itself at the target rate.
//! 3. **50 concurrent streams**: 50 sessions, a `chat.send` in each at once, 2,000 deltas per
//!    answer, until all 50 terminal `message` events arrived. Every stored answer (read back
//!    with `session.history`) must be `complete` with exactly its 2,000 tokens, and the client
//!    must have received every delta of every answer — unless the daemon told it to `resync`
//!    (it fell behind), which is counted and shown, and then only the stored text is compared.
//!    Baseline for context: 50 direct streams at once. Target: nothing lost.
//!
//! Run with `cargo bench -p reagentd --bench relay [-- --quick]`. Exits with status 1 when a
//! target fails (or a measurement cannot be made). The table, statistics and signal helpers
//! are shared with the other benches in `benches/support.rs`.

#[path = "../../benches/support.rs"]
mod support;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reagent::chat::{MessageInfo, MessageStatus, Role};
use reagent::client::{Client, Notifications};
use reagent::protocol::{
    CreateSession, Event, EventKind, Notification, SendChat, SessionHistory, Sync as CatchUp,
};
use reagentd::llm::{ChatMessage, ChatRequest, ProviderKind, StreamEvent};
use support::{BenchDaemon, Stats, Table, median};
use tokio::io::AsyncWriteExt as _;

/// The text of every scripted delta.
const TOKEN: &str = "tok ";
/// One scripted delta event, as the provider sends it.
const DELTA_EVENT: &[u8] =
    b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"}}]}\n\n";
/// The chunk that says why the model stopped.
const FINISH_EVENT: &[u8] =
    b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
/// The end of every stream.
const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";
/// The response head: a stream that ends when the connection closes.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
/// The mock batches events into writes of about this many bytes.
const WRITE_BYTES: usize = 16 * 1024;
/// A paced stream writes what is due this often.
const PACE_TICK: Duration = Duration::from_millis(2);
/// The user's message in every request.
const PROMPT: &str = "count";
/// The key the daemon sends (the mock ignores it); a benchmark, not a secret.
const KEY: &str = "sk-relay-bench";
/// The environment variable the daemon reads the key from.
const KEY_VAR: &str = "MOCK_KEY";
/// Who the bench says it is in `hello`.
const CLIENT_NAME: &str = "relay-bench";

/// Time-to-first-token samples per side.
const TTFT_SAMPLES: usize = 200;
/// With `--quick`.
const TTFT_SAMPLES_QUICK: usize = 50;
/// Unmeasured samples per side first (connection setup, caches).
const TTFT_WARMUP: usize = 5;
/// What the daemon may add to the median time to first token, in milliseconds.
const MAX_TTFT_OVERHEAD_MS: f64 = 1.0;
/// Deltas in the throughput answer.
const STREAM_DELTAS: usize = 100_000;
/// Deltas per second the client must receive through the daemon, at least.
const MIN_RATE: f64 = 20_000.0;
/// Concurrent sessions.
const SESSIONS: usize = 50;
/// Deltas per concurrent answer.
const SESSION_DELTAS: usize = 2_000;
/// How long one answer (or one batch of them) may take before the measurement is abandoned.
const DEADLINE: Duration = Duration::from_secs(120);

/// Parses `--quick`, runs the measurements, exits 1 when a target fails.
fn main() -> ExitCode {
    let quick = support::quick();
    support::block_on("relay", bench(quick))
}

/// Runs every measurement, prints the table, and says whether all targets held.
async fn bench(quick: bool) -> anyhow::Result<bool> {
    // reqwest is built without a default TLS provider (the daemon installs ring the same way);
    // harmless for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mock = Mock::start()?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("build the HTTP client")?;
    let (samples, reps) = if quick {
        (TTFT_SAMPLES_QUICK, 1)
    } else {
        (TTFT_SAMPLES, 3)
    };
    println!(
        "relay: {samples} TTFT samples, {reps} repetition(s), daemon {}, provider {}",
        daemon_binary().display(),
        mock.base_url
    );
    let mut table = Table::default();

    let ttft = ttft(&mock, &http, samples).await?;
    ttft_rows(&mut table, &ttft);

    let model = format!("n{STREAM_DELTAS}");
    let mut streams = Vec::new();
    for rep in 0..reps {
        let pair = side_by_side(
            rep,
            || direct_stream(&http, &mock, &model),
            || reagent_stream(&mock, &model, STREAM_DELTAS),
        )
        .await?;
        progress_stream("stream", rep, &pair);
        streams.push(pair);
    }
    // For context, once each: the provider's events one write apiece, and paced at the target.
    let variants = [
        ("one write per event", format!("n{STREAM_DELTAS}e")),
        (
            "paced at the target",
            format!("n{STREAM_DELTAS}r{MIN_RATE:.0}"),
        ),
    ];
    let mut extras = Vec::new();
    for (rep, (what, model)) in variants.iter().enumerate() {
        let pair = side_by_side(
            rep,
            || direct_stream(&http, &mock, model),
            || reagent_stream(&mock, model, STREAM_DELTAS),
        )
        .await?;
        progress_stream(what, 0, &pair);
        extras.push((*what, pair));
    }
    stream_rows(&mut table, &streams, &extras);

    let mut concurrent = Vec::new();
    for rep in 0..reps {
        let pair = side_by_side(
            rep,
            || direct_concurrent(&http, &mock),
            || reagent_concurrent(&mock),
        )
        .await?;
        println!(
            "  {SESSIONS} streams #{}: baseline {:.3} s, reagent {:.3} s, {} resync(s)",
            rep + 1,
            pair.0.as_secs_f64(),
            pair.1.elapsed.as_secs_f64(),
            pair.1.resyncs
        );
        concurrent.push(pair);
    }
    concurrent_rows(&mut table, &concurrent);
    Ok(table.print())
}

/// Measures the baseline and the real thing one after the other; which goes first alternates
/// with `rep`, so neither always gets the warmer machine.
async fn side_by_side<B, R, FB, FR>(
    rep: usize,
    baseline: impl FnOnce() -> FB,
    real: impl FnOnce() -> FR,
) -> anyhow::Result<(B, R)>
where
    FB: Future<Output = anyhow::Result<B>>,
    FR: Future<Output = anyhow::Result<R>>,
{
    if rep.is_multiple_of(2) {
        let base = baseline().await?;
        Ok((base, real().await?))
    } else {
        let real = real().await?;
        Ok((baseline().await?, real))
    }
}

// ---------------------------------------------------------------------------------------
// The stand-in provider
// ---------------------------------------------------------------------------------------

/// When the mock got a request and when it had written the first delta.
#[derive(Debug, Clone, Copy)]
struct Served {
    /// The request's head and body were read.
    request: Instant,
    /// The response head and first delta were written.
    first_write: Instant,
}

/// The stand-in provider: an OpenAI-style SSE server on loopback, on its own thread, for as
/// long as the bench runs.
struct Mock {
    /// `http://127.0.0.1:PORT/v1`, the provider's `base_url`.
    base_url: String,
    /// The latest request's timing (samples that use it run one at a time).
    last: Arc<Mutex<Option<Served>>>,
}

impl Mock {
    /// Binds a free port and serves on a dedicated thread with its own single-threaded
    /// runtime, so the provider's work never waits behind the client's.
    fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind the mock")?;
        listener
            .set_nonblocking(true)
            .context("make the mock's socket non-blocking")?;
        let base_url = format!("http://{}/v1", listener.local_addr()?);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the mock's runtime")?;
        let last: Arc<Mutex<Option<Served>>> = Arc::default();
        let log = last.clone();
        std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || runtime.block_on(accept(listener, log)))
            .context("spawn the mock's thread")?;
        Ok(Self { base_url, last })
    }

    /// The timing of the latest request, taken so a sample never reads a previous one's.
    fn take_last(&self) -> Option<Served> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Accepts connections forever, one task each.
async fn accept(listener: std::net::TcpListener, log: Arc<Mutex<Option<Served>>>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("relay: the mock cannot listen: {err}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let log = log.clone();
                tokio::spawn(async move {
                    // A client that hangs up early (the daemon after `[DONE]`) is fine.
                    let _ = serve(stream, &log).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Reads one request and answers it with the stream its model name asks for, then closes.
async fn serve(
    mut stream: tokio::net::TcpStream,
    log: &Mutex<Option<Served>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(body) = support::read_chat_request(&mut stream).await? else {
        let refusal = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return stream.write_all(refusal).await;
    };
    let request = Instant::now();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = body["model"].as_str().unwrap_or_default();
    let (count, pace) = script(model);
    let mut out = Vec::with_capacity(WRITE_BYTES + 1024);
    out.extend_from_slice(RESPONSE_HEAD);
    if count > 0 {
        out.extend_from_slice(DELTA_EVENT);
    }
    stream.write_all(&out).await?;
    let first_write = Instant::now();
    *log.lock().unwrap_or_else(PoisonError::into_inner) = Some(Served {
        request,
        first_write,
    });
    out.clear();
    match pace {
        Pace::Batched | Pace::EachEvent => {
            for _ in 1..count {
                out.extend_from_slice(DELTA_EVENT);
                if pace == Pace::EachEvent || out.len() >= WRITE_BYTES {
                    stream.write_all(&out).await?;
                    out.clear();
                }
            }
        }
        Pace::PerSecond(rate) => {
            // Each tick writes what is due by then, so timer slack never lowers the rate.
            let mut tick = tokio::time::interval(PACE_TICK);
            let (mut sent, begun) = (1, Instant::now());
            while sent < count {
                tick.tick().await;
                let due = (begun.elapsed().as_secs_f64() * f64::from(rate)) as usize + 1;
                for _ in sent..due.min(count) {
                    out.extend_from_slice(DELTA_EVENT);
                }
                sent = sent.max(due.min(count));
                stream.write_all(&out).await?;
                out.clear();
            }
        }
    }
    out.extend_from_slice(FINISH_EVENT);
    let usage = format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":{count}}}}}\n\n"
    );
    out.extend_from_slice(usage.as_bytes());
    out.extend_from_slice(DONE_EVENT);
    stream.write_all(&out).await?;
    stream.shutdown().await
}

/// How the mock delivers a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// As fast as it can, in writes of about [`WRITE_BYTES`].
    Batched,
    /// As fast as it can, one write per event.
    EachEvent,
    /// This many deltas per second, in a write every [`PACE_TICK`].
    PerSecond(u32),
}

/// What a model name asks for: `n{N}` is N deltas, batched; `n{N}e` one write per event;
/// `n{N}r{R}` paced at R deltas per second. Anything else is one delta.
fn script(model: &str) -> (usize, Pace) {
    let rest = model.strip_prefix('n').unwrap_or_default();
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (count, how) = rest.split_at(digits);
    let count = count.parse().unwrap_or(1);
    let pace = match how {
        "e" => Pace::EachEvent,
        _ => match how.strip_prefix('r').and_then(|r| r.parse().ok()) {
            Some(rate) if rate > 0 => Pace::PerSecond(rate),
            _ => Pace::Batched,
        },
    };
    (count, pace)
}

// ---------------------------------------------------------------------------------------
// The baseline: the provider's stream read directly
// ---------------------------------------------------------------------------------------

/// One stream read directly from the provider.
struct Direct {
    /// From building the request until the first text delta was parsed.
    first: Duration,
    /// From building the request until `[DONE]` was parsed.
    end: Duration,
    /// Text deltas parsed.
    deltas: usize,
    /// Whether every delta was exactly the scripted token.
    intact: bool,
    /// The mock's timing of this request.
    served: Option<Served>,
    /// When the clock started, to place `served` on the same timeline.
    start: Instant,
}

/// POSTs the request the daemon would send for a one-message session on `model`, and parses
/// the stream with the daemon's own parser until `[DONE]`.
async fn direct_stream(http: &reqwest::Client, mock: &Mock, model: &str) -> anyhow::Result<Direct> {
    let kind = ProviderKind::OpenAi;
    let start = Instant::now();
    let request = ChatRequest {
        model: model.to_string(),
        system: None,
        messages: vec![ChatMessage::text(reagentd::llm::Role::User, PROMPT)],
        max_tokens: None,
        tools: Vec::new(),
    };
    let body = serde_json::to_vec(&kind.request_body(&mock.base_url, &request))?;
    let mut builder = http
        .post(kind.endpoint(&mock.base_url))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(body);
    for (name, value) in kind.auth_headers(KEY) {
        builder = builder.header(name, value);
    }
    let mut response = builder.send().await.context("POST to the mock")?;
    ensure!(
        response.status().is_success(),
        "the mock answered {}",
        response.status()
    );
    let mut parser = kind.parser();
    let (mut first, mut deltas, mut intact) = (None, 0, true);
    loop {
        let chunk = response.chunk().await.context("read the mock's stream")?;
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish(),
        };
        for event in events {
            match event {
                StreamEvent::Text(text) => {
                    first.get_or_insert_with(|| start.elapsed());
                    deltas += 1;
                    intact &= text == TOKEN;
                }
                StreamEvent::Done { .. } => {
                    return Ok(Direct {
                        first: first.context("a stream without text")?,
                        end: start.elapsed(),
                        deltas,
                        intact,
                        served: mock.take_last(),
                        start,
                    });
                }
                StreamEvent::Error(error) => bail!("the direct stream failed: {error}"),
                _ => {}
            }
        }
        if chunk.is_none() {
            bail!("the direct stream ended without [DONE]");
        }
    }
}

/// 50 direct streams of 2,000 deltas at once; the time until all ended.
async fn direct_concurrent(http: &reqwest::Client, mock: &Mock) -> anyhow::Result<Duration> {
    let model = format!("n{SESSION_DELTAS}");
    let start = Instant::now();
    let streams = (0..SESSIONS).map(|_| direct_stream(http, mock, &model));
    let all = futures_util::future::try_join_all(streams);
    let done = tokio::time::timeout(DEADLINE, all)
        .await
        .context("the direct streams did not end in time")??;
    let elapsed = start.elapsed();
    let intact = done.iter().all(|d| d.deltas == SESSION_DELTAS && d.intact);
    ensure!(intact, "a direct stream lost or garbled deltas");
    Ok(elapsed)
}

// ---------------------------------------------------------------------------------------
// The real thing: a client of reagentd
// ---------------------------------------------------------------------------------------

/// A daemon and one client that said `hello`, following its events.
struct Reagent {
    /// The daemon.
    daemon: BenchDaemon,
    /// The connection.
    client: Client,
    /// Its notifications.
    notes: Notifications,
    /// Events replayed by a `hello` after a resync, not yet handed out.
    replayed: VecDeque<Event>,
    /// The latest event seen, for resyncing.
    last_seq: u64,
    /// `resync` notifications received: each means the daemon dropped what it had queued.
    resyncs: u32,
}

impl Reagent {
    /// Starts a daemon that knows the mock as provider `mock`, and connects to it.
    async fn start(mock: &Mock) -> anyhow::Result<Self> {
        let daemon = start_daemon(mock)?;
        let (client, notes) = Client::connect(&daemon.socket()).await?;
        let hello = client.hello(CLIENT_NAME, None).await?;
        let last_seq = match hello.sync {
            CatchUp::Snapshot(snapshot) => snapshot.seq,
            CatchUp::Events { events } => events.last().map_or(0, |event| event.seq),
        };
        Ok(Self {
            daemon,
            client,
            notes,
            replayed: VecDeque::new(),
            last_seq,
            resyncs: 0,
        })
    }

    /// A new session on the mock's model `model`.
    async fn session(&self, model: &str) -> anyhow::Result<String> {
        let create = CreateSession {
            model: Some(format!("mock/{model}")),
            cwd: Some(self.daemon.path().to_path_buf()),
            ..CreateSession::default()
        };
        Ok(self.client.call(&create).await?.id)
    }

    /// Sends the prompt in `session`; the answer's message comes back from a task, so the
    /// caller can follow events meanwhile.
    async fn send(
        &self,
        session: &str,
    ) -> anyhow::Result<tokio::task::JoinHandle<reagent::Result<MessageInfo>>> {
        let send = SendChat {
            session: session.to_string(),
            text: PROMPT.into(),
        };
        Ok(tokio::spawn(self.client.request(&send).await?))
    }

    /// The next event, in order. A `resync` is counted and answered with `hello` from the
    /// latest seq, and the stored events it missed are handed out next (deltas are not
    /// stored: those are gone).
    async fn next_event(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<Event> {
        loop {
            if let Some(event) = self.replayed.pop_front() {
                return Ok(event);
            }
            let note = tokio::time::timeout_at(deadline, self.notes.recv())
                .await
                .context("timed out waiting for the daemon")?
                .context("the daemon closed the connection")?;
            match note {
                Notification::Event(event) => {
                    self.last_seq = event.seq;
                    return Ok(event);
                }
                Notification::Resync(_) => {
                    self.resyncs += 1;
                    let hello = self.client.hello(CLIENT_NAME, Some(self.last_seq)).await?;
                    match hello.sync {
                        CatchUp::Events { events } => {
                            if let Some(last) = events.last() {
                                self.last_seq = last.seq;
                            }
                            self.replayed.extend(events);
                        }
                        CatchUp::Snapshot(_) => {
                            bail!("after a resync the daemon no longer had the missed events")
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The stored answer `id` of `session`.
    async fn stored(&self, session: &str, id: &str) -> anyhow::Result<MessageInfo> {
        let history = SessionHistory {
            session: session.to_string(),
        };
        let messages = self.client.call(&history).await?;
        messages
            .into_iter()
            .find(|message| message.id == id)
            .with_context(|| format!("answer {id} is not in session {session}"))
    }
}

/// The answer a `message` event reports ended, if it is an answer in `session` that ended.
fn ended<'a>(kind: &'a EventKind, sessions: &impl Fn(&str) -> bool) -> Option<&'a MessageInfo> {
    match kind {
        EventKind::Message { message }
            if message.role == Role::Assistant
                && message.status.is_terminal()
                && sessions(&message.session) =>
        {
            Some(message)
        }
        _ => None,
    }
}

/// Whether `message` is a complete answer of exactly `count` tokens.
fn intact(message: &MessageInfo, count: usize) -> bool {
    message.status == MessageStatus::Complete && message.text() == TOKEN.repeat(count)
}

// ---------------------------------------------------------------------------------------
// 1. Time to first token
// ---------------------------------------------------------------------------------------

/// One time-to-first-token sample.
#[derive(Debug, Clone, Copy)]
struct Ttft {
    /// From the start until the first text reached the reader.
    first: Duration,
    /// From the start until the provider had the request.
    asked: Option<Duration>,
    /// From the provider's first write until the first text reached the reader.
    after: Option<Duration>,
}

impl Ttft {
    /// A sample from a start, the time of the first text, and the mock's timing.
    fn new(start: Instant, first: Duration, served: Option<Served>) -> Self {
        let at = start + first;
        Self {
            first,
            asked: served.map(|s| s.request.saturating_duration_since(start)),
            after: served.map(|s| at.saturating_duration_since(s.first_write)),
        }
    }
}

/// Time-to-first-token samples of both sides, in pairs.
async fn ttft(
    mock: &Mock,
    http: &reqwest::Client,
    samples: usize,
) -> anyhow::Result<Vec<(Ttft, Ttft)>> {
    let mut reagent = Reagent::start(mock).await?;
    let mut pairs = Vec::with_capacity(samples);
    for i in 0..TTFT_WARMUP + samples {
        let pair = side_by_side(
            i,
            || async {
                let direct = direct_stream(http, mock, "n1").await?;
                Ok(Ttft::new(direct.start, direct.first, direct.served))
            },
            || reagent_ttft(&mut reagent, mock),
        )
        .await?;
        if i >= TTFT_WARMUP {
            pairs.push(pair);
        }
    }
    let resyncs = reagent.resyncs;
    reagent.daemon.stop()?;
    ensure!(resyncs == 0, "the TTFT client was told to resync");
    let ms = |pick: fn(&(Ttft, Ttft)) -> Duration| {
        median(pairs.iter().map(|p| pick(p).as_secs_f64() * 1e3))
    };
    println!(
        "  ttft: baseline {:.3} ms, reagent {:.3} ms (medians of {})",
        ms(|p| p.0.first),
        ms(|p| p.1.first),
        pairs.len()
    );
    Ok(pairs)
}

/// One answer of one token through the daemon, in a fresh session: the time from `chat.send`
/// until the first `delta` event reached the client; returns once the answer ended.
async fn reagent_ttft(reagent: &mut Reagent, mock: &Mock) -> anyhow::Result<Ttft> {
    let session = reagent.session("n1").await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let start = Instant::now();
    let reply = reagent.send(&session).await?;
    let mut first = None;
    let ours = |s: &str| s == session;
    let status = loop {
        let event = reagent.next_event(deadline).await?;
        if let EventKind::Delta { session: s, .. } = &event.kind
            && *s == session
        {
            first.get_or_insert_with(|| start.elapsed());
        }
        if let Some(message) = ended(&event.kind, &ours) {
            break message.status;
        }
    };
    reply.await??;
    ensure!(
        status == MessageStatus::Complete,
        "a TTFT answer ended {status:?}"
    );
    let first = first.context("an answer ended without a delta")?;
    Ok(Ttft::new(start, first, mock.take_last()))
}

/// The time-to-first-token rows.
fn ttft_rows(table: &mut Table, pairs: &[(Ttft, Ttft)]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let base = Stats::of(pairs.iter().map(|p| ms(p.0.first)));
    let real = Stats::of(pairs.iter().map(|p| ms(p.1.first)));
    let n = pairs.len();
    table.info(
        "TTFT: baseline (POST + parse)",
        format!("p50 {:.3} ms, p95 {:.3} ms (n={n})", base.p50, base.p95),
    );
    table.info(
        "TTFT: reagent (chat.send -> delta event)",
        format!("p50 {:.3} ms, p95 {:.3} ms (n={n})", real.p50, real.p95),
    );
    let added = real.p50 - base.p50;
    table.check(
        "TTFT: added by the daemon (difference of medians)",
        format!("{added:+.3} ms"),
        format!("< {MAX_TTFT_OVERHEAD_MS} ms"),
        added < MAX_TTFT_OVERHEAD_MS,
    );
    table.info(
        "  median of paired differences",
        format!(
            "{:+.3} ms",
            median(pairs.iter().map(|p| ms(p.1.first) - ms(p.0.first)))
        ),
    );
    let part = |pick: fn(&Ttft) -> Option<Duration>| {
        let side = |which: fn(&(Ttft, Ttft)) -> &Ttft| {
            median(pairs.iter().filter_map(|p| pick(which(p)).map(ms)))
        };
        format!(
            "baseline {:.3} ms, reagent {:.3} ms",
            side(|p| &p.0),
            side(|p| &p.1)
        )
    };
    table.info(
        "  until the provider had the request (p50)",
        part(|t| t.asked),
    );
    table.info(
        "  provider's first write -> text at reader (p50)",
        part(|t| t.after),
    );
}

// ---------------------------------------------------------------------------------------
// 2. Throughput on one stream
// ---------------------------------------------------------------------------------------

/// One long answer through the daemon.
struct Relayed {
    /// From `chat.send` until the answer's terminal event.
    total: Duration,
    /// From the first delta event until the answer's terminal event.
    streaming: Duration,
    /// The provider's deltas that reached the client: the tokens in the `delta` events' text.
    tokens: usize,
    /// The `delta` events that carried them (fewer than the tokens if the daemon merges).
    events: usize,
    /// Whether their texts, in order, were exactly the answer.
    received_intact: bool,
    /// Resyncs the client was told to do.
    resyncs: u32,
    /// Whether the stored answer is complete with every token.
    stored_intact: bool,
    /// The stored answer's status.
    status: MessageStatus,
    /// CPU seconds the daemon spent on the answer.
    daemon_cpu: f64,
}

impl Relayed {
    /// The provider's deltas received per second, over the streaming time.
    fn rate(&self) -> f64 {
        self.tokens as f64 / self.streaming.as_secs_f64()
    }

    /// Whether nothing was lost on the way or in the store.
    fn lossless(&self) -> bool {
        self.received_intact && self.resyncs == 0 && self.stored_intact
    }
}

/// One answer of `count` deltas of model `model` through a fresh daemon, followed by its
/// client until the terminal event, then checked in the store.
async fn reagent_stream(mock: &Mock, model: &str, count: usize) -> anyhow::Result<Relayed> {
    let mut reagent = Reagent::start(mock).await?;
    let session = reagent.session(model).await?;
    let pid = reagent.daemon.pid()?;
    let cpu_before = support::cpu_seconds(pid)?.0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let start = Instant::now();
    let reply = reagent.send(&session).await?;
    let expected = TOKEN.repeat(count);
    let mut received = String::with_capacity(expected.len());
    let (mut first, mut events) = (None, 0);
    let ours = |s: &str| s == session;
    let status = loop {
        let event = reagent.next_event(deadline).await?;
        if let EventKind::Delta {
            session: s, text, ..
        } = &event.kind
            && *s == session
        {
            first.get_or_insert_with(Instant::now);
            events += 1;
            received.push_str(text);
        }
        if let Some(message) = ended(&event.kind, &ours) {
            break message.status;
        }
    };
    let end = Instant::now();
    let daemon_cpu = support::cpu_seconds(pid)?.0 - cpu_before;
    let answer = reply.await??;
    let stored = reagent.stored(&session, &answer.id).await?;
    let resyncs = reagent.resyncs;
    reagent.daemon.stop()?;
    let first = first.context("the answer ended without a delta")?;
    Ok(Relayed {
        total: end - start,
        streaming: end - first,
        tokens: received.len() / TOKEN.len(),
        events,
        received_intact: received == expected,
        resyncs,
        stored_intact: intact(&stored, count),
        status,
        daemon_cpu,
    })
}

/// Prints one repetition of a stream as it ends.
fn progress_stream(what: &str, rep: usize, (base, real): &(Direct, Relayed)) {
    println!(
        "  {what} #{}: baseline {:.0} deltas/s, reagent {:.0} deltas/s ({} received{}, {} \
         resync(s), {:?})",
        rep + 1,
        direct_rate(base),
        real.rate(),
        real.tokens,
        in_events(real.tokens, real.events),
        real.resyncs,
        real.status
    );
}

/// Deltas per second of a direct stream, from its first delta to `[DONE]`.
fn direct_rate(direct: &Direct) -> f64 {
    direct.deltas as f64 / (direct.end - direct.first).as_secs_f64()
}

/// The throughput rows.
fn stream_rows(
    table: &mut Table,
    streams: &[(Direct, Relayed)],
    extras: &[(&str, (Direct, Relayed))],
) {
    let n = streams.len();
    let base = median(streams.iter().map(|(b, _)| direct_rate(b)));
    let real = median(streams.iter().map(|(_, r)| r.rate()));
    let total = median(streams.iter().map(|(_, r)| r.total.as_secs_f64()));
    let base_total = median(streams.iter().map(|(b, _)| b.end.as_secs_f64()));
    table.info(
        &format!("stream of {STREAM_DELTAS}: baseline (parsed directly)"),
        format!("{base:.0} deltas/s ({base_total:.3} s from the request)"),
    );
    let fewest = streams.iter().map(|(_, r)| r.tokens).min().unwrap_or(0);
    let partial = if fewest < STREAM_DELTAS {
        format!("; as few as {fewest} arrived")
    } else {
        String::new()
    };
    table.check(
        &format!("stream of {STREAM_DELTAS}: received by the client"),
        format!("{real:.0} deltas/s ({total:.3} s from chat.send; median of {n}{partial})"),
        format!(">= {MIN_RATE:.0} deltas/s"),
        real >= MIN_RATE,
    );
    let lossless = streams.iter().all(|(_, r)| r.lossless());
    table.check(
        &format!("stream of {STREAM_DELTAS}: nothing lost"),
        if lossless {
            format!("every delta in order, stored complete ({n}/{n})")
        } else {
            let all: Vec<String> = streams.iter().map(|(_, r)| loss(r)).collect();
            all.join("; ")
        },
        "all deltas, no resync, stored intact".into(),
        lossless,
    );
    table.info(
        "  daemon CPU per stream (median)",
        format!(
            "{:.2} s ({:.1} us per delta)",
            median(streams.iter().map(|(_, r)| r.daemon_cpu)),
            median(streams.iter().map(|(_, r)| r.daemon_cpu)) / STREAM_DELTAS as f64 * 1e6
        ),
    );
    for (what, (base, real)) in extras {
        table.info(
            &format!("  {what}: baseline, reagent"),
            format!(
                "{:.0}, {:.0} deltas/s; {}",
                direct_rate(base),
                real.rate(),
                if real.lossless() {
                    "nothing lost".into()
                } else {
                    loss(real)
                }
            ),
        );
    }
}

/// What a relayed stream lost, briefly, for a row whose check failed.
fn loss(relayed: &Relayed) -> String {
    let mut said = format!("{} arrived", relayed.tokens);
    said.push_str(&in_events(relayed.tokens, relayed.events));
    if relayed.tokens == STREAM_DELTAS && !relayed.received_intact {
        said.push_str(" but garbled");
    }
    said.push_str(&format!(", {} resync(s), stored ", relayed.resyncs));
    if relayed.stored_intact {
        said.push_str("intact");
    } else {
        said.push_str(&format!("{:?}, text differs", relayed.status));
    }
    said
}

/// ` in N events` when the daemon merged deltas into fewer events, else nothing.
fn in_events(tokens: usize, events: usize) -> String {
    if tokens == events {
        String::new()
    } else {
        format!(" in {events} events")
    }
}

// ---------------------------------------------------------------------------------------
// 3. Concurrent streams
// ---------------------------------------------------------------------------------------

/// 50 answers at once through the daemon.
struct Concurrent {
    /// From the first `chat.send` until the last terminal event.
    elapsed: Duration,
    /// Stored answers that are complete with exactly their tokens.
    stored_intact: usize,
    /// Answers whose deltas reached the client complete and in order.
    received_intact: usize,
    /// The provider's deltas that reached the client (tokens in the `delta` text), over all.
    tokens: usize,
    /// The `delta` events that carried them.
    events: usize,
    /// Resyncs the client was told to do.
    resyncs: u32,
    /// Stored statuses that are not `complete`, for the report.
    not_complete: Vec<MessageStatus>,
}

/// 50 sessions, one `chat.send` each sent back to back, 2,000 deltas per answer; followed
/// until every answer ended, then every stored answer checked.
async fn reagent_concurrent(mock: &Mock) -> anyhow::Result<Concurrent> {
    let mut reagent = Reagent::start(mock).await?;
    let model = format!("n{SESSION_DELTAS}");
    let mut sessions = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        sessions.push(reagent.session(&model).await?);
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let start = Instant::now();
    let mut replies = Vec::with_capacity(SESSIONS);
    for session in &sessions {
        replies.push(reagent.send(session).await?);
    }
    let known: HashSet<String> = sessions.iter().cloned().collect();
    let ours = |s: &str| known.contains(s);
    // By message id: the text received, and the delta events that carried it.
    let mut received: HashMap<String, (String, usize)> = HashMap::new();
    let mut ended_ids = HashSet::new();
    while ended_ids.len() < SESSIONS {
        let event = reagent.next_event(deadline).await?;
        if let EventKind::Delta {
            session,
            message,
            text,
            ..
        } = &event.kind
            && known.contains(session)
        {
            let entry = received.entry(message.clone()).or_default();
            entry.0.push_str(text);
            entry.1 += 1;
        }
        if let Some(message) = ended(&event.kind, &ours) {
            ended_ids.insert(message.id.clone());
        }
    }
    let elapsed = start.elapsed();
    let expected = TOKEN.repeat(SESSION_DELTAS);
    let (mut stored_intact, mut received_intact, mut not_complete) = (0, 0, Vec::new());
    for (session, reply) in sessions.iter().zip(replies) {
        let answer = reply.await??;
        let stored = reagent.stored(session, &answer.id).await?;
        if intact(&stored, SESSION_DELTAS) {
            stored_intact += 1;
        }
        if stored.status != MessageStatus::Complete {
            not_complete.push(stored.status);
        }
        if received
            .get(&answer.id)
            .is_some_and(|(text, _)| *text == expected)
        {
            received_intact += 1;
        }
    }
    let resyncs = reagent.resyncs;
    reagent.daemon.stop()?;
    Ok(Concurrent {
        elapsed,
        stored_intact,
        received_intact,
        tokens: received.values().map(|(text, _)| text.len()).sum::<usize>() / TOKEN.len(),
        events: received.values().map(|(_, count)| count).sum(),
        resyncs,
        not_complete,
    })
}

/// The concurrency rows.
fn concurrent_rows(table: &mut Table, runs: &[(Duration, Concurrent)]) {
    let n = runs.len();
    let base = median(runs.iter().map(|(b, _)| b.as_secs_f64()));
    let real = median(runs.iter().map(|(_, r)| r.elapsed.as_secs_f64()));
    let all = SESSIONS * SESSION_DELTAS;
    table.info(
        &format!("{SESSIONS} streams x {SESSION_DELTAS}: baseline (direct, all done)"),
        format!("{base:.3} s ({:.0} deltas/s)", all as f64 / base),
    );
    table.info(
        &format!("{SESSIONS} streams x {SESSION_DELTAS}: reagent (all terminal)"),
        format!("{real:.3} s ({:.0} deltas/s)", all as f64 / real),
    );
    let stored = runs.iter().all(|(_, r)| r.stored_intact == SESSIONS);
    table.check(
        &format!("{SESSIONS} streams: stored answers complete, text intact"),
        if stored {
            format!("{SESSIONS}/{SESSIONS} ({n}/{n} runs)")
        } else {
            let each: Vec<String> = runs
                .iter()
                .map(|(_, r)| format!("{}/{SESSIONS} {:?}", r.stored_intact, r.not_complete))
                .collect();
            each.join("; ")
        },
        "all complete, all text".into(),
        stored,
    );
    let resyncs: u32 = runs.iter().map(|(_, r)| r.resyncs).sum();
    // A client told to resync lost deltas by design: then only the store is the judge.
    let delivered = runs
        .iter()
        .all(|(_, r)| r.resyncs > 0 || r.received_intact == SESSIONS);
    let each: Vec<String> = runs
        .iter()
        .map(|(_, r)| {
            format!(
                "{}/{SESSIONS} whole ({} deltas{}, {} resync(s))",
                r.received_intact,
                r.tokens,
                in_events(r.tokens, r.events),
                r.resyncs
            )
        })
        .collect();
    table.check(
        &format!("{SESSIONS} streams: deltas received by the client"),
        each.join("; "),
        format!("{SESSION_DELTAS} per answer, in order"),
        delivered,
    );
    if resyncs > 0 {
        table.info(
            "  the client fell behind",
            format!("{resyncs} resync(s): deltas dropped by design; stored text compared"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// A daemon configured with the mock as provider `mock`, its key in the daemon's environment.
fn start_daemon(mock: &Mock) -> anyhow::Result<BenchDaemon> {
    BenchDaemon::start(&daemon_binary(), "rgrelay", |dir, command| {
        let config = format!(
            "[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_VAR}\"\n",
            mock.base_url
        );
        std::fs::write(dir.join("config.toml"), config).context("write config.toml")?;
        command.env(KEY_VAR, KEY);
        for var in support::PROXY_VARS {
            command.env_remove(var);
        }
        Ok(())
    })
}

/// The `reagentd` cargo built for this bench.
fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}
