//! `gateway`: what the daemon's `/v1` gateway costs a streamed answer, measured against
//! reading the same stream straight from the provider, side by side in one run.
//!
//! A client of `/v1/chat/completions` with `"model": "PROVIDER/MODEL"` gets the provider's
//! answer through the daemon: it authenticates the reagent token, routes on `model`, sends
//! the request on with the provider's key, and passes the upstream's status, headers and body
//! bytes through unchanged while a tap parses the stream on the side for usage. That hop must
//! not be felt, and it must not change a byte.
//!
//! The provider is a stand-in in this process: a minimal OpenAI-style server on loopback (its
//! own thread and single-threaded runtime) that answers every chat request with `N`
//! `chat.completion.chunk` events of one small numbered delta each (`t0 `, `t1 `, …), a finish
//! chunk, a usage chunk and `[DONE]`, then closes. The model name picks `N` and the framing:
//! `n20000` writes each event on its own, as a serving engine flushes each token, as fast as
//! the socket takes them; `n20000b` writes 16 KiB at a time, a pure-bandwidth stream. Each
//! body is built once and then only written, so the provider's own cost is the writes.
//!
//! Both sides are read by the same function with the same reqwest client: POST the same JSON
//! body (only `model` differs: `n20000` directly, `mock/n20000` through `/v1`), then read the
//! body to its end, keeping every byte. The daemon is a release `reagentd` on a fresh
//! temporary `REAGENT_DIR` with `[http] listen` on a free loopback port and the mock as
//! provider `mock`; the bench's token comes from `token.create` over the Unix socket.
//!
//! 1. **One stream of 20,000 chunks**: 9 pairs (3 with `--quick`) after one unmeasured pair,
//!    direct and through `/v1` alternating which goes first. Total time from sending the
//!    request to the body's end, median of each side. Targets: the gateway's median is at
//!    most 1.05× the direct one, and adds at most 0.01 ms per chunk ((b − a) / 20,000). Every
//!    body through `/v1` must be byte-for-byte the direct body (which must be the scripted
//!    one): every chunk in order, the usage chunk and `[DONE]`. For context: the daemon's CPU
//!    per stream, and the same stream in 16 KiB writes (3 pairs, 1 with `--quick`).
//! 2. **50 concurrent streams** of 2,000 chunks each through `/v1`, 3 times (once with
//!    `--quick`), each next to 50 direct ones for context. Target: all 50 bodies complete
//!    and byte-identical to the scripted one. The daemon's RSS is reported before (after
//!    the single-stream measurements), at its peak during them (sampled every 5 ms, and
//!    `VmHWM` after resetting it through `/proc/PID/clear_refs` where allowed), and 1 s after.
//!
//! Run with `cargo bench -p reagentd --bench gateway [-- --quick]`. Exits with status 1 when
//! a target fails (or a measurement cannot be made). The table, statistics and `/proc`
//! readings are shared with the other benches in `benches/support.rs`. The daemon is stopped
//! with SIGTERM to its own pid at the end (and killed by that pid if a measurement failed).

#[path = "../../benches/support.rs"]
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reagent::client::Client;
use reagent::protocol::CreateToken;
use support::{BenchDaemon, Table, median, mib};
use tokio::io::AsyncWriteExt as _;

/// Chunks in the measured stream.
const CHUNKS: usize = 20_000;
/// Measured pairs of that stream.
const PAIRS: usize = 9;
/// With `--quick`.
const PAIRS_QUICK: usize = 3;
/// Pairs of the same stream in 16 KiB writes, for context.
const BATCHED_PAIRS: usize = 3;
/// With `--quick`.
const BATCHED_PAIRS_QUICK: usize = 1;
/// The gateway's median total over the direct one, at most.
const MAX_RATIO: f64 = 1.05;
/// Time the gateway may add per chunk, in milliseconds.
const MAX_ADDED_MS_PER_CHUNK: f64 = 0.01;
/// Concurrent streams.
const STREAMS: usize = 50;
/// Chunks per concurrent stream.
const STREAM_CHUNKS: usize = 2_000;
/// Runs of the concurrent streams.
const CONCURRENT_RUNS: usize = 3;
/// With `--quick`.
const CONCURRENT_RUNS_QUICK: usize = 1;
/// How often the daemon's RSS is read while the concurrent streams run.
const RSS_EVERY: Duration = Duration::from_millis(5);
/// How long after the last concurrent run the daemon's RSS is read again.
const SETTLE: Duration = Duration::from_secs(1);
/// How long one stream (or one batch of them) may take before the measurement is abandoned.
const DEADLINE: Duration = Duration::from_secs(120);

/// The provider's name in the daemon's config: `/v1` models are `mock/MODEL`.
const PROVIDER: &str = "mock";
/// The key the daemon sends upstream (the mock ignores it); a benchmark, not a secret.
const KEY: &str = "sk-gateway-bench";
/// The environment variable the daemon reads the key from.
const KEY_VAR: &str = "MOCK_KEY";
/// The bench's reagent token's name.
const TOKEN_NAME: &str = "bench";
/// The user's message in every request.
const PROMPT: &str = "count";

/// The response head: a stream that ends when the connection closes.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\nx-request-id: req-gateway-bench\r\nConnection: close\r\n\r\n";
/// A batched stream is written this many bytes at a time.
const WRITE_BYTES: usize = 16 * 1024;

/// Parses `--quick`, runs the measurements, exits 1 when a target fails.
fn main() -> ExitCode {
    let quick = support::quick();
    support::block_on("gateway", bench(quick))
}

/// Runs every measurement, prints the table, and says whether all targets held. The daemon
/// is stopped whatever happened: SIGTERM to its own pid, SIGKILL to that pid if it stays.
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
    let mut gateway = Gateway::start(&mock).await?;
    let (pairs, batched, runs) = if quick {
        (PAIRS_QUICK, BATCHED_PAIRS_QUICK, CONCURRENT_RUNS_QUICK)
    } else {
        (PAIRS, BATCHED_PAIRS, CONCURRENT_RUNS)
    };
    println!(
        "gateway: {pairs} pair(s) of {CHUNKS} chunks, {runs} run(s) of {STREAMS} x \
         {STREAM_CHUNKS}, daemon {} (pid {}), provider {}",
        daemon_binary().display(),
        gateway.daemon.pid()?,
        mock.base_url
    );
    let outcome = measure(&mock, &http, &gateway, pairs, batched, runs).await;
    // The client leaves first (its pooled connections close), as a client would.
    drop(http);
    let stopped = gateway.daemon.stop();
    let mut table = outcome?;
    table.check(
        "daemon exits on SIGTERM after the streams",
        match &stopped {
            Ok(()) => "exited".into(),
            Err(err) => format!("{err:#}"),
        },
        "exits (else SIGKILL after 10 s)".into(),
        stopped.is_ok(),
    );
    Ok(table.print())
}

/// Every measurement, into the table.
async fn measure(
    mock: &Mock,
    http: &reqwest::Client,
    gateway: &Gateway,
    pairs: usize,
    batched: usize,
    runs: usize,
) -> anyhow::Result<Table> {
    let mut table = Table::default();
    let pid = gateway.daemon.pid()?;
    let idle_rss = support::vm_rss(pid)?;

    let model = format!("n{CHUNKS}");
    let expected = script_body(CHUNKS);
    let mut streams = Vec::with_capacity(pairs);
    // One unmeasured pair first: connections, the daemon's first request, caches.
    for rep in 0..=pairs {
        let pair = stream_pair(rep, mock, http, gateway, &model, &expected).await?;
        if rep > 0 {
            progress("stream", rep, &pair);
            streams.push(pair);
        }
    }
    stream_rows(&mut table, &streams, expected.len());

    let model = format!("n{CHUNKS}b");
    let mut extras = Vec::with_capacity(batched);
    for rep in 0..batched {
        let pair = stream_pair(rep, mock, http, gateway, &model, &expected).await?;
        progress("16 KiB writes", rep + 1, &pair);
        extras.push(pair);
    }
    batched_rows(&mut table, &extras);

    let before = support::vm_rss(pid)?;
    let model = format!("n{STREAM_CHUNKS}");
    let expected = script_body(STREAM_CHUNKS);
    let hwm_reset = support::reset_peak_rss(pid).is_ok();
    let mut concurrent = Vec::with_capacity(runs);
    for rep in 0..runs {
        let pair = side_by_side(
            rep,
            || many(http, mock.chat_url(), KEY, &model, &expected),
            || async {
                let sampler = RssSampler::start(pid);
                let url = gateway.chat_url();
                let through = gateway.model(&model);
                let run = many(http, &url, &gateway.token, &through, &expected).await;
                let peak = sampler.stop();
                Ok((run?, peak))
            },
        )
        .await?;
        println!(
            "  {STREAMS} streams #{}: direct {:.3} s ({}/{STREAMS} intact), /v1 {:.3} s \
             ({}/{STREAMS} intact), daemon RSS peak {}",
            rep + 1,
            pair.0.elapsed.as_secs_f64(),
            pair.0.intact,
            pair.1.0.elapsed.as_secs_f64(),
            pair.1.0.intact,
            mib(pair.1.1)
        );
        concurrent.push(pair);
    }
    let hwm = support::vm_hwm(pid)?;
    tokio::time::sleep(SETTLE).await;
    let memory = Memory {
        idle: idle_rss,
        before,
        peak: concurrent
            .iter()
            .map(|(_, (_, peak))| *peak)
            .max()
            .unwrap_or(0),
        hwm,
        hwm_reset,
        after: support::vm_rss(pid)?,
    };
    concurrent_rows(&mut table, &concurrent, &memory);
    Ok(table)
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

/// A scripted answer: its body, and where each of its events ends.
struct Script {
    /// Every byte of the SSE body.
    body: Vec<u8>,
    /// The end offset of each event, in order.
    ends: Vec<usize>,
}

/// The answer of `count` chunks, built once per count and shared by the mock's connections.
type Scripts = Arc<Mutex<HashMap<usize, Arc<Script>>>>;

/// The SSE body of an answer of `count` chunks: the mock serves exactly these bytes, and
/// every body read (directly or through `/v1`) must equal them.
fn script_body(count: usize) -> Vec<u8> {
    script(count).body
}

/// Builds the answer of `count` chunks: numbered one-token deltas, a finish chunk, a usage
/// chunk, `[DONE]`.
fn script(count: usize) -> Script {
    const ID: &str = r#""id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench""#;
    let mut body = Vec::with_capacity(count * 140 + 512);
    let mut ends = Vec::with_capacity(count + 3);
    let mut event = |body: &mut Vec<u8>, json: &str| {
        body.extend_from_slice(b"data: ");
        body.extend_from_slice(json.as_bytes());
        body.extend_from_slice(b"\n\n");
        ends.push(body.len());
    };
    for i in 0..count {
        let json = format!(r#"{{{ID},"choices":[{{"index":0,"delta":{{"content":"t{i} "}}}}]}}"#);
        event(&mut body, &json);
    }
    let finish =
        format!(r#"{{{ID},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}"#);
    event(&mut body, &finish);
    let usage = format!(
        r#"{{{ID},"choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":{count},"total_tokens":{}}}}}"#,
        count + 3
    );
    event(&mut body, &usage);
    event(&mut body, "[DONE]");
    Script { body, ends }
}

/// The stand-in provider: an OpenAI-style SSE server on loopback, on its own thread, for as
/// long as the bench runs.
struct Mock {
    /// `http://127.0.0.1:PORT/v1`, the provider's `base_url`.
    base_url: String,
    /// Its chat completions endpoint.
    chat: String,
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
        std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || runtime.block_on(accept(listener)))
            .context("spawn the mock's thread")?;
        let chat = format!("{base_url}/chat/completions");
        Ok(Self { base_url, chat })
    }

    /// Its chat completions endpoint.
    fn chat_url(&self) -> &str {
        &self.chat
    }
}

/// Accepts connections forever, one task each.
async fn accept(listener: std::net::TcpListener) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("gateway: the mock cannot listen: {err}");
            return;
        }
    };
    let scripts = Scripts::default();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let scripts = scripts.clone();
                tokio::spawn(async move {
                    // A client that hangs up early is the client's business.
                    let _ = serve(stream, &scripts).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Reads one request and answers it with the stream its model name asks for, then closes.
async fn serve(mut stream: tokio::net::TcpStream, scripts: &Scripts) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(body) = support::read_chat_request(&mut stream).await? else {
        let refusal = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return stream.write_all(refusal).await;
    };
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default();
    let rest = model.strip_prefix('n').unwrap_or_default();
    let (count, batched) = match rest.strip_suffix('b') {
        Some(count) => (count, true),
        None => (rest, false),
    };
    let count = count.parse().unwrap_or(1);
    let script = {
        let mut scripts = scripts.lock().unwrap_or_else(PoisonError::into_inner);
        scripts
            .entry(count)
            .or_insert_with(|| Arc::new(script(count)))
            .clone()
    };
    stream.write_all(RESPONSE_HEAD).await?;
    if batched {
        for piece in script.body.chunks(WRITE_BYTES) {
            stream.write_all(piece).await?;
        }
    } else {
        let mut start = 0;
        for &end in &script.ends {
            stream.write_all(&script.body[start..end]).await?;
            start = end;
        }
    }
    stream.shutdown().await
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// A daemon listening for HTTP with the mock as provider `mock`, and the bench's token.
struct Gateway {
    /// The daemon.
    daemon: BenchDaemon,
    /// `http://127.0.0.1:PORT`, its HTTP face.
    origin: String,
    /// The bench's reagent token.
    token: String,
}

impl Gateway {
    /// Starts the daemon on a free port, waits for its listener, and makes a token.
    async fn start(mock: &Mock) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("find a free port")?
            .port();
        let daemon = BenchDaemon::start(&daemon_binary(), "rggate", |dir, command| {
            let config = format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n\n[providers.{PROVIDER}]\n\
                 kind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"{KEY_VAR}\"\n",
                mock.base_url
            );
            std::fs::write(dir.join("config.toml"), config).context("write config.toml")?;
            command.env(KEY_VAR, KEY);
            for var in support::PROXY_VARS {
                command.env_remove(var);
            }
            Ok(())
        })?;
        let pid = daemon.pid()?;
        let mut exited = false;
        support::poll(Duration::from_secs(30), || {
            exited = !support::alive(pid);
            exited || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .context("the daemon's HTTP listener did not come up")?;
        ensure!(!exited, "reagentd exited before its HTTP listener came up");
        let (client, _notes) = Client::connect(&daemon.socket()).await?;
        let create = CreateToken {
            name: TOKEN_NAME.into(),
            scopes: Vec::new(),
        };
        let token = client.call(&create).await.context("token.create")?.token;
        Ok(Self {
            daemon,
            origin: format!("http://127.0.0.1:{port}"),
            token,
        })
    }

    /// Its chat completions endpoint.
    fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.origin)
    }

    /// The `/v1` name of the mock's model `model`.
    fn model(&self, model: &str) -> String {
        format!("{PROVIDER}/{model}")
    }
}

/// The `reagentd` cargo built for this bench.
fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}

// ---------------------------------------------------------------------------------------
// The client: one function for both sides
// ---------------------------------------------------------------------------------------

/// One streamed answer as the client read it.
struct Fetched {
    /// From sending the request until the body ended.
    total: Duration,
    /// From sending the request until the first body bytes.
    first_byte: Duration,
    /// Every byte of the body.
    body: Vec<u8>,
}

/// POSTs a streaming chat request for `model` to `url` with `bearer`, and reads the body to
/// its end, keeping every byte. The same code reads the mock directly and through `/v1`.
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    bearer: &str,
    model: &str,
    capacity: usize,
) -> anyhow::Result<Fetched> {
    let request = serde_json::json!({
        "model": model,
        "stream": true,
        "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": PROMPT }],
    });
    let request = serde_json::to_vec(&request)?;
    let mut body = Vec::with_capacity(capacity);
    let start = Instant::now();
    let mut response = http
        .post(url)
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(request)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let mut first_byte = None;
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("read the body of {url} (cut after {} bytes)", body.len()))?
    {
        first_byte.get_or_insert_with(|| start.elapsed());
        body.extend_from_slice(&chunk);
    }
    let total = start.elapsed();
    ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    Ok(Fetched {
        total,
        first_byte: first_byte.unwrap_or(total),
        body,
    })
}

/// Why `body` is not `expected`, briefly; `None` when it is.
fn differs(body: &[u8], expected: &[u8]) -> Option<String> {
    if body == expected {
        return None;
    }
    let at = body
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(body.len().min(expected.len()));
    let chunks = memchr::memmem::find_iter(body, b"\"content\":\"t").count();
    let usage = memchr::memmem::find(body, b"\"usage\":").is_some();
    let done = body.ends_with(b"data: [DONE]\n\n");
    Some(format!(
        "{} bytes of {}, first difference at byte {at}; {chunks} delta chunks, usage {}, \
         [DONE] {}",
        body.len(),
        expected.len(),
        if usage { "present" } else { "missing" },
        if done { "present" } else { "missing" },
    ))
}

// ---------------------------------------------------------------------------------------
// 1. One stream
// ---------------------------------------------------------------------------------------

/// One stream read directly and through `/v1`.
struct Pair {
    /// Read directly from the mock.
    direct: Fetched,
    /// Read through `/v1`.
    gateway: Fetched,
    /// The daemon's CPU time while it relayed, seconds (its threads' scheduler times).
    daemon_cpu: f64,
    /// Why the body through `/v1` differs from the direct one, if it does.
    mismatch: Option<String>,
}

impl Pair {
    /// The time the gateway added to this pair's stream, seconds.
    fn added(&self) -> f64 {
        self.gateway.total.as_secs_f64() - self.direct.total.as_secs_f64()
    }
}

/// The stream `model` read directly and through `/v1`, in the order `rep` picks; the direct
/// body must be `expected`.
async fn stream_pair(
    rep: usize,
    mock: &Mock,
    http: &reqwest::Client,
    gateway: &Gateway,
    model: &str,
    expected: &[u8],
) -> anyhow::Result<Pair> {
    let pid = gateway.daemon.pid()?;
    let capacity = expected.len();
    let (direct, (through, daemon_cpu)) = side_by_side(
        rep,
        || within(fetch(http, mock.chat_url(), KEY, model, capacity)),
        || async {
            let before = support::threads_cpu_ns(pid)?;
            let url = gateway.chat_url();
            let through = within(fetch(
                http,
                &url,
                &gateway.token,
                &gateway.model(model),
                capacity,
            ))
            .await?;
            let cpu = (support::threads_cpu_ns(pid)? - before) / 1e9;
            Ok((through, cpu))
        },
    )
    .await?;
    if let Some(why) = differs(&direct.body, expected) {
        bail!("the mock's own stream is not the script ({why}): the bench is broken");
    }
    let mismatch = differs(&through.body, &direct.body);
    Ok(Pair {
        direct,
        gateway: through,
        daemon_cpu,
        mismatch,
    })
}

/// `fetch` within [`DEADLINE`].
async fn within(fetch: impl Future<Output = anyhow::Result<Fetched>>) -> anyhow::Result<Fetched> {
    tokio::time::timeout(DEADLINE, fetch)
        .await
        .context("a stream did not end in time")?
}

/// Prints one pair as it ends.
fn progress(what: &str, rep: usize, pair: &Pair) {
    println!(
        "  {what} #{rep}: direct {:.2} ms, /v1 {:.2} ms ({:+.4} ms per chunk), daemon CPU \
         {:.1} ms{}",
        ms(pair.direct.total),
        ms(pair.gateway.total),
        pair.added() * 1e3 / CHUNKS as f64,
        pair.daemon_cpu * 1e3,
        match &pair.mismatch {
            None => String::new(),
            Some(why) => format!(", BODY DIFFERS: {why}"),
        }
    );
}

/// Milliseconds.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The rows of the measured stream.
fn stream_rows(table: &mut Table, pairs: &[Pair], bytes: usize) {
    let n = pairs.len();
    let direct = median(pairs.iter().map(|p| ms(p.direct.total)));
    let through = median(pairs.iter().map(|p| ms(p.gateway.total)));
    let first = |pick: fn(&Pair) -> &Fetched| median(pairs.iter().map(|p| ms(pick(p).first_byte)));
    table.info(
        &format!("stream of {CHUNKS} chunks: direct from the mock"),
        format!(
            "{direct:.2} ms total, first byte {:.3} ms (medians of {n})",
            first(|p| &p.direct)
        ),
    );
    table.info(
        &format!("stream of {CHUNKS} chunks: through /v1"),
        format!(
            "{through:.2} ms total, first byte {:.3} ms (medians of {n})",
            first(|p| &p.gateway)
        ),
    );
    let ratio = through / direct;
    table.check(
        "gateway total / direct total (medians)",
        format!("{ratio:.3}x"),
        format!("<= {MAX_RATIO}x"),
        ratio <= MAX_RATIO,
    );
    let per_chunk = (through - direct) / CHUNKS as f64;
    table.check(
        "time added per chunk ((b - a) / chunks)",
        format!("{per_chunk:+.5} ms"),
        format!("<= {MAX_ADDED_MS_PER_CHUNK} ms"),
        per_chunk <= MAX_ADDED_MS_PER_CHUNK,
    );
    table.info(
        "  median of paired differences",
        format!(
            "{:+.2} ms ({:+.5} ms per chunk)",
            median(pairs.iter().map(|p| p.added() * 1e3)),
            median(pairs.iter().map(|p| p.added() * 1e3 / CHUNKS as f64))
        ),
    );
    let cpu = median(pairs.iter().map(|p| p.daemon_cpu));
    table.info(
        "  daemon CPU per stream (median)",
        format!(
            "{:.1} ms ({:.2} us per chunk)",
            cpu * 1e3,
            cpu * 1e6 / CHUNKS as f64
        ),
    );
    let intact = pairs.iter().filter(|p| p.mismatch.is_none()).count();
    table.check(
        "body through /v1 = direct body, byte for byte",
        if intact == n {
            format!("{n}/{n} ({bytes} bytes: {CHUNKS} chunks in order, usage, [DONE])")
        } else {
            let why: Vec<&str> = pairs.iter().filter_map(|p| p.mismatch.as_deref()).collect();
            format!("{intact}/{n}; {}", why.join("; "))
        },
        "every byte".into(),
        intact == n,
    );
}

/// The context rows of the same stream in 16 KiB writes.
fn batched_rows(table: &mut Table, pairs: &[Pair]) {
    if pairs.is_empty() {
        return;
    }
    let direct = median(pairs.iter().map(|p| ms(p.direct.total)));
    let through = median(pairs.iter().map(|p| ms(p.gateway.total)));
    let intact = pairs.iter().all(|p| p.mismatch.is_none());
    table.info(
        "  same stream in 16 KiB writes: direct, /v1",
        format!(
            "{direct:.2} ms, {through:.2} ms ({:.2}x, {:+.5} ms per chunk; {})",
            through / direct,
            (through - direct) / CHUNKS as f64,
            if intact {
                "bodies identical"
            } else {
                "BODIES DIFFER"
            }
        ),
    );
}

// ---------------------------------------------------------------------------------------
// 2. Concurrent streams
// ---------------------------------------------------------------------------------------

/// Many streams at once.
struct Many {
    /// From the first request until the last body ended.
    elapsed: Duration,
    /// Bodies complete and equal to the script.
    intact: usize,
    /// Why the others were not, briefly (the first few).
    failures: Vec<String>,
}

/// [`STREAMS`] streams of `model` from `url` with `bearer`, all at once; every body must be
/// `expected`.
async fn many(
    http: &reqwest::Client,
    url: &str,
    bearer: &str,
    model: &str,
    expected: &[u8],
) -> anyhow::Result<Many> {
    let start = Instant::now();
    let streams = (0..STREAMS).map(|_| fetch(http, url, bearer, model, expected.len()));
    let all = futures_util::future::join_all(streams);
    let done = tokio::time::timeout(DEADLINE, all)
        .await
        .context("the concurrent streams did not end in time")?;
    let elapsed = start.elapsed();
    let (mut intact, mut failures) = (0, Vec::new());
    for fetched in done {
        let why = match fetched {
            Ok(fetched) => differs(&fetched.body, expected),
            Err(err) => Some(format!("{err:#}")),
        };
        match why {
            None => intact += 1,
            Some(why) if failures.len() < 3 => failures.push(why),
            Some(_) => {}
        }
    }
    Ok(Many {
        elapsed,
        intact,
        failures,
    })
}

/// The daemon's memory around the concurrent streams.
struct Memory {
    /// Right after it started.
    idle: u64,
    /// Before the first concurrent run (after the single streams).
    before: u64,
    /// The largest `VmRSS` sampled during the runs.
    peak: u64,
    /// `VmHWM` after the runs.
    hwm: u64,
    /// Whether `VmHWM` was reset before the runs (else it is the peak since the start).
    hwm_reset: bool,
    /// [`SETTLE`] after the last run.
    after: u64,
}

/// Reads a process's `VmRSS` every [`RSS_EVERY`] on its own thread; keeps the largest.
struct RssSampler {
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The thread, which returns the largest reading.
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                if let Ok(rss) = support::vm_rss(pid) {
                    peak = peak.max(rss);
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(RSS_EVERY);
            }
        });
        Self { stop, thread }
    }

    /// Stops sampling: the largest reading.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// The concurrency rows.
fn concurrent_rows(table: &mut Table, runs: &[(Many, (Many, u64))], memory: &Memory) {
    let n = runs.len();
    let direct = median(runs.iter().map(|(d, _)| d.elapsed.as_secs_f64()));
    let through = median(runs.iter().map(|(_, (g, _))| g.elapsed.as_secs_f64()));
    let all = (STREAMS * STREAM_CHUNKS) as f64;
    table.info(
        &format!("{STREAMS} streams x {STREAM_CHUNKS}: direct, all ended"),
        format!("{direct:.3} s ({:.0} chunks/s)", all / direct),
    );
    table.info(
        &format!("{STREAMS} streams x {STREAM_CHUNKS}: through /v1, all ended"),
        format!("{through:.3} s ({:.0} chunks/s)", all / through),
    );
    let direct_ok = runs.iter().all(|(d, _)| d.intact == STREAMS);
    let intact = runs.iter().all(|(_, (g, _))| g.intact == STREAMS);
    table.check(
        &format!("{STREAMS} streams through /v1: bodies intact"),
        if intact {
            format!("{STREAMS}/{STREAMS} byte-identical ({n}/{n} runs)")
        } else {
            let each: Vec<String> = runs
                .iter()
                .map(|(_, (g, _))| format!("{}/{STREAMS} {}", g.intact, g.failures.join("; ")))
                .collect();
            each.join(" | ")
        },
        "all complete, every byte".into(),
        intact,
    );
    if !direct_ok {
        table.info(
            "  direct streams were not all intact either",
            runs.iter()
                .map(|(d, _)| format!("{}/{STREAMS}", d.intact))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let growth = |bytes: u64| {
        let delta = bytes as f64 - memory.before as f64;
        format!("{:+.1} MiB", delta / f64::from(1u32 << 20))
    };
    table.info(
        "daemon RSS: idle, before the streams",
        format!("{}, {}", mib(memory.idle), mib(memory.before)),
    );
    table.info(
        "daemon RSS: peak during them (sampled)",
        format!("{} ({})", mib(memory.peak), growth(memory.peak)),
    );
    table.info(
        if memory.hwm_reset {
            "daemon RSS: VmHWM (reset before them)"
        } else {
            "daemon RSS: VmHWM (since start: no reset)"
        },
        format!("{} ({})", mib(memory.hwm), growth(memory.hwm)),
    );
    table.info(
        &format!("daemon RSS: {} s after them", SETTLE.as_secs()),
        format!("{} ({})", mib(memory.after), growth(memory.after)),
    );
}
