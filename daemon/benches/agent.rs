//! `agent`: what one tool call of an agent session costs the daemon, from the model's answer
//! ending with the call to the call's result reaching the client, on a store of 10,000 runs;
//! measured against the same read made as a plain protocol request, side by side.
//!
//! When a model's streamed answer ends calling tools, `reagentd` decodes each call's
//! arguments, dispatches the tool (the very service function the CLI's request calls),
//! appends a `tool_result` part to the answer (a `message` event to every client) and then
//! asks the model again with the results. Read-only tools (`runs_list`, `run_show`,
//! `alerts_list`, …) run at once, without approval, so that hop is the daemon's own work and
//! nothing else: an agent chaining a dozen reads must not feel it, nor must the people
//! watching the session. The target: < 1 ms per read-only call on a store of the size
//! a busy lab reaches, 10,000 runs.
//!
//! **Setup.** Before a release `reagentd` starts on a fresh temporary `REAGENT_DIR`, the bench
//! writes the store there through `reagentd::store::Store`, committing events as the daemon
//! commits them: 10,000 ended runs (`run` events) and 40 alerts on the newest runs, 20 of
//! them open (`alert` events). The daemon loads that store as it loads any other; its `hello`
//! snapshot must list all 10,000 runs. The provider is a stand-in in this process: a minimal
//! OpenAI-style server on loopback (its own thread and runtime). When the last message it is
//! sent is the user's, and tools are offered, it streams the one tool call that message names
//! (the bench's prompt is `{"tool": NAME, "args": {…}}`): the call's start, its arguments in
//! two fragments as providers cut them, `finish_reason: tool_calls`, usage, `[DONE]`. When the
//! last message is a tool result, it streams a one-word answer, and keeps the result it was
//! sent, so the bench can check what the model read.
//!
//! 1. **Tool round trip**, for `runs_list {"limit": 5}`, `run_show {"run": ID}` (a different
//!    run each sample) and `alerts_list {}`: 200 samples each (50 with `--quick`), after 5
//!    unmeasured ones, the three tools taking turns. One client (a `reagent::client::Client`
//!    over the socket, subscribed with `hello`) in a session with tools on sends the prompt
//!    with `chat.send`, and notes when each `message` event of the session reaches it; the
//!    turn ends with the follow-up answer (which read the result) before the next sample. A
//!    session is replaced after 10 turns, so every sample runs in a session of one to ten
//!    turns, as an agent conversation is, whatever the sample count. The time checked runs
//!    from the provider's answer calling the tool (the mock's one write of the whole stream,
//!    its clock read just before) to the client receiving the answer's `message` event that
//!    carries the `tool_result` part: everything the daemon does for the call — reading the
//!    stream's end, recording the answer complete, decoding the arguments, running the tool,
//!    recording the result and sending the event — plus the loopback hop in and the socket
//!    hop out. Target: p50 < 1 ms for each tool. Reported with it: the same stretch for the
//!    follow-up answer (which calls nothing), so what the call adds shows; and the time
//!    between the answer's `complete` event and its result event at the client. That last
//!    one cannot be the measure: the daemon runs the tool in the task that recorded the
//!    answer complete, without yielding, and the connection's writer task, woken on the same
//!    worker thread (tokio's LIFO slot, which other workers do not steal from), often does
//!    not run before it does; the `complete` event then leaves in the same write as the
//!    result, and the two reach the client microseconds apart however long the tool took
//!    (the table counts how often).
//! 2. **Baseline**, alternating with each sample (which goes first alternates): the same read
//!    as a plain request from the same client, timed from sending it to its decoded reply —
//!    `runs.list {"limit": 5}`, `run.wait {"run": ID}` on the same run as `run_show` (the read
//!    request that resolves one run as `run_show` does, and answers at once for an ended run)
//!    and `alerts.list {"status": "open"}`. Reported for context: the ratio of the medians,
//!    and the absolute overhead (difference of medians, and median of paired differences).
//! 3. **Correct results**: every result part must be the tool's JSON, not an error, equal to
//!    the baseline request's reply of the same sample; the model must have been sent exactly
//!    that text in the follow-up request; and the stored answers (read back with
//!    `session.history` when each session is done) must hold the result the client received.
//! 4. **A long session**, for context: `runs_list` turn after turn in one session of 200
//!    turns (60 with `--quick`), the round trip of its first 10 turns against its last 10:
//!    how the daemon's cost grows with the session's history.
//!
//! Run with `cargo bench -p reagentd --bench agent [-- --quick]`. Exits with status 1 when a
//! target fails (or a measurement cannot be made). The table, statistics and daemon helpers
//! are shared with the other benches in `benches/support.rs`.

#[path = "../../benches/support.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reagent::chat::{MessageInfo, MessageStatus, Part, PartKind, Role};
use reagent::client::{Client, Notifications};
use reagent::paths::Paths;
use reagent::protocol::{
    CreateSession, Event, EventKind, ListAlerts, ListRuns, Method, Notification, SendChat,
    SessionHistory, Sync as CatchUp, WaitRun,
};
use reagent::time::now_ms;
use reagentd::store::Store;
use serde_json::{Value, json};
use support::{BenchDaemon, Stats, Table, median};
use tokio::io::AsyncWriteExt as _;

/// Runs in the store: the size.
const RUNS: usize = 10_000;
/// Alerts in the store, one on each of the newest runs.
const ALERTS: usize = 40;
/// Every `OPEN_EVERY`-th alert is still open (what `alerts_list` returns): 20 of the 40.
const OPEN_EVERY: usize = 2;
/// `runs_list`'s `limit`, and the baseline's.
const LIST_LIMIT: usize = 5;
/// Measured samples per tool, and per baseline.
const SAMPLES: usize = 200;
/// With `--quick`.
const SAMPLES_QUICK: usize = 50;
/// Unmeasured samples per tool first (connections, caches, the first session's rows).
const WARMUP: usize = 5;
/// Turns a session takes before the bench starts a new one.
const SESSION_TURNS: usize = 10;
/// Turns of the long session.
const LONG_TURNS: usize = 200;
/// With `--quick`.
const LONG_TURNS_QUICK: usize = 60;
/// Turns at each end of the long session whose round trips are compared.
const LONG_EDGE: usize = 10;
/// Events closer than this at the client came in together (one read of the socket).
const TOGETHER: Duration = Duration::from_micros(50);
/// The target: a read-only tool's round trip at the median, in milliseconds.
const MAX_ROUND_TRIP_MS: f64 = 1.0;
/// How long one turn may take before the measurement is abandoned.
const DEADLINE: Duration = Duration::from_secs(30);
/// What the stand-in answers once it has read a tool's result.
const FOLLOW_UP: &str = "done";
/// The stand-in's provider name in the daemon's config, and the model the sessions talk to.
const MODEL: &str = "mock/agent";
/// The key the daemon sends (the mock ignores it); a benchmark, not a secret.
const KEY: &str = "sk-agent-bench";
/// The environment variable the daemon reads the key from.
const KEY_VAR: &str = "MOCK_KEY";
/// Who the bench says it is in `hello`.
const CLIENT_NAME: &str = "agent-bench";
/// A multiplier that is odd, so `i * ID_SPREAD` (mod 2^32) gives every run a distinct id.
const ID_SPREAD: u32 = 2_654_435_761;
/// Spreads `run_show`'s runs over the whole store (a prime, so samples rarely repeat one).
const RUN_STRIDE: usize = 7_919;

/// Parses `--quick`, runs the measurements, exits 1 when a target fails.
fn main() -> ExitCode {
    let quick = support::quick();
    support::block_on("agent", bench(quick))
}

/// Runs every measurement, prints the table, and says whether all targets held.
async fn bench(quick: bool) -> anyhow::Result<bool> {
    let begun = Instant::now();
    let mock = Mock::start()?;
    let (samples, long_turns) = if quick {
        (SAMPLES_QUICK, LONG_TURNS_QUICK)
    } else {
        (SAMPLES, LONG_TURNS)
    };
    println!(
        "agent: {samples} samples per tool, a long session of {long_turns} turns, daemon {}, \
         provider {}",
        daemon_binary().display(),
        mock.base_url
    );
    let mut table = Table::default();
    let mut agent = Agent::start(&mock).await?;
    table.info(
        "store",
        format!(
            "{RUNS} runs, {ALERTS} alerts ({} open): seeded in {:.2} s; daemon listening \
             {:.2} s later; hello snapshot {} runs",
            ALERTS.div_ceil(OPEN_EVERY),
            agent.setup.seeded.as_secs_f64(),
            agent.setup.listening.as_secs_f64(),
            agent.setup.snapshot_runs
        ),
    );

    let mut samples_by_tool: HashMap<Tool, Vec<Sample>> = HashMap::new();
    for i in 0..WARMUP + samples {
        for tool in Tool::ALL {
            let run = agent.ids[(i * RUN_STRIDE) % RUNS].clone();
            let sample = agent.sample(&mock, tool, &run, i).await?;
            if i >= WARMUP {
                samples_by_tool.entry(tool).or_default().push(sample);
            }
        }
    }
    agent.check_stored().await?;
    for tool in Tool::ALL {
        let samples = samples_by_tool.get(&tool).map_or(&[][..], Vec::as_slice);
        let ms = |pick: fn(&Sample) -> Duration| median(samples.iter().map(|s| millis(pick(s))));
        println!(
            "  {}: provider's answer -> result {:.3} ms, complete -> result {:.3} ms, \
             baseline {:.3} ms (medians of {})",
            tool.name(),
            ms(|s| s.turn.round_trip()),
            ms(|s| s.turn.between_events()),
            ms(|s| s.baseline),
            samples.len()
        );
        tool_rows(&mut table, tool, samples);
    }
    turn_rows(&mut table, &samples_by_tool);
    let long = agent.long_session(&mock, long_turns).await?;
    correctness_rows(&mut table, &samples_by_tool, &agent);
    long_rows(&mut table, &long);
    agent.daemon.stop()?;
    println!("agent: ran in {:.1} s", begun.elapsed().as_secs_f64());
    Ok(table.print())
}

/// A duration in milliseconds.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------
// The tools measured
// ---------------------------------------------------------------------------------------

/// A read-only tool, and the plain request that reads the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tool {
    /// `runs_list`, against `runs.list`.
    List,
    /// `run_show`, against `run.wait` on an ended run.
    Show,
    /// `alerts_list`, against `alerts.list`.
    Alerts,
}

impl Tool {
    /// Every tool, in the order samples take them.
    const ALL: [Tool; 3] = [Tool::List, Tool::Show, Tool::Alerts];

    /// The tool's name, as the model calls it.
    fn name(self) -> &'static str {
        match self {
            Tool::List => "runs_list",
            Tool::Show => "run_show",
            Tool::Alerts => "alerts_list",
        }
    }

    /// The baseline request, for the table.
    fn request(self) -> &'static str {
        match self {
            Tool::List => "runs.list",
            Tool::Show => "run.wait",
            Tool::Alerts => "alerts.list",
        }
    }

    /// The call's arguments; `run` is the run `run_show` shows.
    fn args(self, run: &str) -> Value {
        match self {
            Tool::List => json!({"limit": LIST_LIMIT}),
            Tool::Show => json!({"run": run}),
            Tool::Alerts => json!({}),
        }
    }

    /// Makes the baseline request; returns its time, from sending to the decoded reply, and
    /// the reply as JSON.
    async fn baseline(self, client: &Client, run: &str) -> anyhow::Result<(Duration, Value)> {
        match self {
            Tool::List => timed::<ListRuns>(client, json!({"limit": LIST_LIMIT})).await,
            Tool::Show => timed::<WaitRun>(client, json!({"run": run})).await,
            Tool::Alerts => timed::<ListAlerts>(client, json!({"status": "open"})).await,
        }
    }
}

/// One request of method `M` with `params`: the time from sending it to its decoded reply,
/// and the reply as JSON (made after the clock stopped).
async fn timed<M: Method>(client: &Client, params: Value) -> anyhow::Result<(Duration, Value)> {
    let params: M = serde_json::from_value(params).context("the baseline's params")?;
    let start = Instant::now();
    let reply = client.call(&params).await?;
    let elapsed = start.elapsed();
    Ok((elapsed, serde_json::to_value(reply)?))
}

// ---------------------------------------------------------------------------------------
// The stand-in provider
// ---------------------------------------------------------------------------------------

/// The stand-in provider: an OpenAI-style SSE server on loopback, on its own thread, for as
/// long as the bench runs.
struct Mock {
    /// `http://127.0.0.1:PORT/v1`, the provider's `base_url`.
    base_url: String,
    /// What it served since the log was last taken (samples run one at a time).
    log: Arc<Mutex<Vec<Served>>>,
}

/// What the mock did for one request.
#[derive(Debug, Clone)]
struct Served {
    /// The request's head and body were read.
    request: Instant,
    /// The whole response was handed to the socket, in one write.
    answered: Instant,
    /// Whether the response called a tool.
    called: bool,
    /// The tool result the request carried, for a follow-up request.
    result: Option<String>,
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
        let log: Arc<Mutex<Vec<Served>>> = Arc::default();
        let served = log.clone();
        std::thread::Builder::new()
            .name("mock-llm".into())
            .spawn(move || runtime.block_on(accept(listener, served)))
            .context("spawn the mock's thread")?;
        Ok(Self { base_url, log })
    }

    /// What the mock served since the last call: once it noted `count` requests (it notes
    /// each just after writing its response, so the daemon may have read it a moment
    /// earlier), or whatever it has after a second.
    async fn take_log(&self, count: usize) -> Vec<Served> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            {
                let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() >= count || Instant::now() >= deadline {
                    return std::mem::take(&mut *log);
                }
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    }
}

/// Accepts connections forever, one task each.
async fn accept(listener: std::net::TcpListener, log: Arc<Mutex<Vec<Served>>>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("agent: the mock cannot listen: {err}");
            return;
        }
    };
    let calls = Arc::new(AtomicU64::new(0));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (log, calls) = (log.clone(), calls.clone());
                tokio::spawn(async move {
                    // A client that hangs up early is fine.
                    let _ = serve(stream, &log, &calls).await;
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The response head: a stream that ends when the connection closes.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\nConnection: close\r\n\r\n";

/// Reads one request and answers it with the stream its last message asks for, then closes.
async fn serve(
    mut stream: tokio::net::TcpStream,
    log: &Mutex<Vec<Served>>,
    calls: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(body) = support::read_chat_request(&mut stream).await? else {
        let refusal = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return stream.write_all(refusal).await;
    };
    let request = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let last = body["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .cloned()
        .unwrap_or_default();
    let asked = last["content"].as_str().unwrap_or_default();
    let command: Value = serde_json::from_str(asked).unwrap_or_default();
    let (mut called, mut result) = (false, None);
    let events = match (last["role"].as_str(), command["tool"].as_str()) {
        (Some("tool"), _) => {
            result = Some(asked.to_string());
            text_events(FOLLOW_UP)
        }
        (Some("user"), Some(tool)) if body.get("tools").is_some() => {
            called = true;
            let id = format!("call-{}", calls.fetch_add(1, Ordering::Relaxed));
            tool_events(&id, tool, &command["args"].to_string())
        }
        _ => text_events(FOLLOW_UP),
    };
    let mut out = Vec::with_capacity(RESPONSE_HEAD.len() + events.len());
    out.extend_from_slice(RESPONSE_HEAD);
    out.extend_from_slice(&events);
    // The clock is read before the write: once the bytes are out, the daemon may run on this
    // core before this thread reads the clock again.
    let answered = Instant::now();
    stream.write_all(&out).await?;
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Served {
            request,
            answered,
            called,
            result,
        });
    stream.shutdown().await
}

/// One SSE event of chat-completion chunk `chunk`.
fn sse(chunk: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
}

/// The end of every stream: the finish chunk, usage, `[DONE]`.
fn finish_events(reason: &str, out: &mut Vec<u8>) {
    sse(
        &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}),
        out,
    );
    sse(
        &json!({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 20}}),
        out,
    );
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// A stream of one text delta.
fn text_events(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    sse(
        &json!({"choices": [{"index": 0, "delta": {"content": text}}]}),
        &mut out,
    );
    finish_events("stop", &mut out);
    out
}

/// A stream of one tool call: its start, then its arguments in two fragments cut mid-way (at
/// a character boundary), as providers cut them.
fn tool_events(id: &str, name: &str, arguments: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let start = json!({"index": 0, "id": id, "type": "function",
                       "function": {"name": name, "arguments": ""}});
    sse(
        &json!({"choices": [{"index": 0, "delta": {"tool_calls": [start]}}]}),
        &mut out,
    );
    let mut cut = arguments.len() / 2;
    while !arguments.is_char_boundary(cut) {
        cut += 1;
    }
    let (first, second) = arguments.split_at(cut);
    for fragment in [first, second] {
        let more = json!({"index": 0, "function": {"arguments": fragment}});
        sse(
            &json!({"choices": [{"index": 0, "delta": {"tool_calls": [more]}}]}),
            &mut out,
        );
    }
    finish_events("tool_calls", &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

/// Writes [`RUNS`] ended runs and [`ALERTS`] alerts into a new store in `dir`, committing
/// `run` and `alert` events as the daemon does; returns the runs' ids, oldest first.
fn seed(dir: &Path) -> anyhow::Result<Vec<String>> {
    let paths = Paths::in_dir(dir, dir.join("config.toml"));
    let mut store = Store::open(&paths.database(), &paths.runs_dir())?;
    let minute = 60_000;
    let first = now_ms() - i64::try_from(RUNS)? * minute;
    let mut ids = Vec::with_capacity(RUNS);
    let mut seq = 0;
    let mut commit = |kind: EventKind, ts: i64| {
        seq += 1;
        store.commit(&Event { seq, ts, kind })
    };
    for i in 0..RUNS {
        let n = u32::try_from(i + 1)?;
        let id = format!("{:08x}", n.wrapping_mul(ID_SPREAD));
        let created = first + i64::from(n) * minute;
        let (status, exit_code, signal, reason) = match i % 10 {
            0 => ("failed", json!(1), json!(null), json!("exited with code 1")),
            1 => ("stopped", json!(null), json!(15), json!(null)),
            _ => ("finished", json!(0), json!(null), json!(null)),
        };
        // Through JSON, so the fields a run gains later keep their defaults here.
        let run = serde_json::from_value(json!({
            "id": id,
            "name": format!("lr-sweep-{i:05}"),
            "command": ["python", "train.py", format!("--lr=0.00{}", i % 9 + 1),
                        format!("--seed={i}")],
            "cwd": dir,
            "env_keys": ["WANDB_PROJECT", "CUDA_VISIBLE_DEVICES"],
            "status": status,
            "exit_code": exit_code,
            "signal": signal,
            "reason": reason,
            "pid": null,
            "cols": 120,
            "rows": 40,
            "created_at": created,
            "started_at": created + 1_000,
            "ended_at": created + 50 * minute,
            "log_path": paths.run_dir(&id).join("output.log"),
        }))
        .context("a seeded run")?;
        commit(EventKind::Run { run }, created)?;
        ids.push(id);
    }
    for (k, run) in ids.iter().rev().take(ALERTS).enumerate() {
        let n = u32::try_from(k + 1)?;
        let open = k.is_multiple_of(OPEN_EVERY);
        let (rule, subject, message) = match k % 3 {
            0 => ("nan", "loss", "loss is NaN at step 1200"),
            1 => ("spike", "loss", "loss jumped from 0.41 to 9.7 at step 1200"),
            _ => ("stall", "loss", "no new metrics for 10 minutes"),
        };
        let created = now_ms() - i64::from(n) * minute;
        let alert = serde_json::from_value(json!({
            "id": format!("{:08x}", n.wrapping_mul(ID_SPREAD) ^ 0xa1e7_0000),
            "run": run,
            "rule": rule,
            "subject": subject,
            "severity": "warning",
            "message": message,
            "step": 1200.0,
            "choices": ["ignore", "chat"],
            "status": if open { "open" } else { "answered" },
            "response": if open { json!(null) } else { json!("ignore") },
            "created_at": created,
            "answered_at": if open { json!(null) } else { json!(created + minute) },
        }))
        .context("a seeded alert")?;
        commit(EventKind::Alert { alert }, created)?;
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// The daemon and its client
// ---------------------------------------------------------------------------------------

/// How the daemon came up.
struct Setup {
    /// Writing the store.
    seeded: Duration,
    /// From spawning the daemon until its socket existed.
    listening: Duration,
    /// Runs in the `hello` snapshot.
    snapshot_runs: usize,
}

/// One measured sample of a tool: its round trip, its baseline, and what came back.
struct Sample {
    /// The turn that called the tool.
    turn: Turn,
    /// The baseline request, from sending it to its reply.
    baseline: Duration,
    /// Whether the result is the tool's JSON and equals the baseline's reply.
    equal: bool,
}

impl Sample {
    /// Whether the model was sent exactly the result's text in the follow-up request.
    fn sent(&self) -> bool {
        self.turn.follow_up.result.as_deref() == Some(self.turn.result.text.as_str())
    }
}

/// A daemon on a seeded store and one client that said `hello`, in an agent session.
struct Agent {
    /// The daemon.
    daemon: BenchDaemon,
    /// The connection.
    client: Client,
    /// Its notifications.
    notes: Notifications,
    /// The seeded runs' ids, oldest first.
    ids: Vec<String>,
    /// How the daemon came up.
    setup: Setup,
    /// The session the next turn goes to.
    session: String,
    /// Turns taken in it.
    turns: usize,
    /// By answer id, the result part the client received, for the answers of the sessions
    /// not yet checked against the store.
    received: HashMap<String, Part>,
    /// Stored answers that hold the result the client received, and those checked.
    stored: (usize, usize),
}

impl Agent {
    /// Seeds a store, starts a daemon on it that knows the mock as provider `mock`, connects,
    /// says `hello`, and opens the first session.
    async fn start(mock: &Mock) -> anyhow::Result<Self> {
        let mut ids = Vec::new();
        let mut seeded = Duration::ZERO;
        let mut spawned = Instant::now();
        let daemon = BenchDaemon::start(&daemon_binary(), "rgagent", |dir, command| {
            let start = Instant::now();
            ids = seed(dir)?;
            seeded = start.elapsed();
            let config = format!(
                "[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \
                 \"{KEY_VAR}\"\n",
                mock.base_url
            );
            std::fs::write(dir.join("config.toml"), config).context("write config.toml")?;
            command.env(KEY_VAR, KEY);
            for var in support::PROXY_VARS {
                command.env_remove(var);
            }
            spawned = Instant::now();
            Ok(())
        })?;
        let listening = spawned.elapsed();
        let (client, notes) = Client::connect(&daemon.socket()).await?;
        let hello = client.hello(CLIENT_NAME, None).await?;
        let snapshot_runs = match hello.sync {
            CatchUp::Snapshot(snapshot) => snapshot.runs.len(),
            CatchUp::Events { .. } => bail!("a first hello got events, not a snapshot"),
        };
        ensure!(
            snapshot_runs == RUNS,
            "the daemon loaded {snapshot_runs} runs, not the {RUNS} seeded"
        );
        let session = new_session(&client, daemon.path()).await?;
        Ok(Self {
            daemon,
            client,
            notes,
            ids,
            setup: Setup {
                seeded,
                listening,
                snapshot_runs,
            },
            session,
            turns: 0,
            received: HashMap::new(),
            stored: (0, 0),
        })
    }

    /// One sample of `tool` (on `run` for `run_show`): the baseline and a turn calling the
    /// tool, in alternating order; the `i`th sample. Starts a new session when this one has
    /// had its turns (checking the old one's stored answers first).
    async fn sample(
        &mut self,
        mock: &Mock,
        tool: Tool,
        run: &str,
        i: usize,
    ) -> anyhow::Result<Sample> {
        if self.turns == SESSION_TURNS {
            self.check_stored().await?;
            self.session = new_session(&self.client, self.daemon.path()).await?;
            self.turns = 0;
        }
        let (turn, (baseline, reply)) = if i.is_multiple_of(2) {
            let base = tool.baseline(&self.client, run).await?;
            (self.turn(mock, tool, run).await?, base)
        } else {
            let turn = self.turn(mock, tool, run).await?;
            (turn, tool.baseline(&self.client, run).await?)
        };
        let equal = !turn.result.error
            && serde_json::from_str::<Value>(&turn.result.text).is_ok_and(|r| r == reply);
        Ok(Sample {
            turn,
            baseline,
            equal,
        })
    }

    /// One turn: the prompt naming `tool`'s call, then the events until the follow-up answer
    /// ended, each noted when the client received it; and what the provider served.
    async fn turn(&mut self, mock: &Mock, tool: Tool, run: &str) -> anyhow::Result<Turn> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let send = SendChat {
            session: self.session.clone(),
            text: json!({"tool": tool.name(), "args": tool.args(run)}).to_string(),
        };
        let sent = Instant::now();
        let answer = self.client.call(&send).await?;
        let mut called = None;
        let (done, result) = loop {
            let (at, message) = self.next_message(deadline).await?;
            if message.id != answer.id {
                continue;
            }
            if let Some(result) = (message.parts.iter()).find(|p| p.kind == PartKind::ToolResult) {
                break (at, result.clone());
            }
            if message.status.is_terminal() {
                ensure!(
                    message.status == MessageStatus::Complete,
                    "the answer calling {} ended {:?}: {}",
                    tool.name(),
                    message.status,
                    message.error.unwrap_or_default()
                );
                ensure!(
                    message.parts.iter().any(|p| p.kind == PartKind::ToolCall),
                    "the answer ended without calling {}",
                    tool.name()
                );
                called.get_or_insert(at);
            }
        };
        let complete = called.context("the result came before the answer was complete")?;
        // The follow-up answer, which read the result, ends the turn.
        let end = loop {
            let (at, message) = self.next_message(deadline).await?;
            if message.role == Role::Assistant
                && message.id != answer.id
                && message.status.is_terminal()
            {
                let calls = message.parts.iter().any(|p| p.kind == PartKind::ToolCall);
                ensure!(
                    message.status == MessageStatus::Complete && !calls,
                    "the follow-up answer ended {:?} ({} tool calls): {}",
                    message.status,
                    if calls { "with" } else { "without" },
                    message.error.unwrap_or_default()
                );
                ensure!(
                    message.text() == FOLLOW_UP,
                    "the follow-up answer says {:?}",
                    message.text()
                );
                break at;
            }
        };
        self.turns += 1;
        self.received.insert(answer.id, result.clone());
        let served = mock.take_log(2).await;
        let call = served.iter().find(|s| s.called).cloned();
        let follow_up = served.iter().find(|s| s.result.is_some()).cloned();
        let (Some(call), Some(follow_up)) = (call, follow_up) else {
            bail!("the provider did not serve a call and a follow-up: {served:?}");
        };
        Ok(Turn {
            sent,
            complete,
            result_at: done,
            end,
            result,
            call,
            follow_up,
        })
    }

    /// The next `message` event of the current session, with when the client received it.
    async fn next_message(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<(Instant, MessageInfo)> {
        loop {
            let note = tokio::time::timeout_at(deadline, self.notes.recv())
                .await
                .context("timed out waiting for the daemon")?
                .context("the daemon closed the connection")?;
            let at = Instant::now();
            match note {
                Notification::Event(Event {
                    kind: EventKind::Message { message },
                    ..
                }) if message.session == self.session => return Ok((at, message)),
                // A client told to resync missed events: the sample's times would be wrong.
                Notification::Resync(_) => {
                    bail!("the daemon told the client to resync: it fell behind");
                }
                _ => {}
            }
        }
    }

    /// Reads the current session back and checks every answer the client saw a result in:
    /// stored with exactly that result.
    async fn check_stored(&mut self) -> anyhow::Result<()> {
        let history = SessionHistory {
            session: self.session.clone(),
        };
        let messages = self.client.call(&history).await?;
        for message in &messages {
            let Some(received) = self.received.remove(&message.id) else {
                continue;
            };
            let stored = (message.parts.iter()).find(|p| p.kind == PartKind::ToolResult);
            self.stored.1 += 1;
            if message.status == MessageStatus::Complete && stored == Some(&received) {
                self.stored.0 += 1;
            }
        }
        // Answers the history did not hold at all count as checked and wrong.
        self.stored.1 += self.received.len();
        self.received.clear();
        Ok(())
    }

    /// `runs_list` turn after turn in one new session; every turn's round trip, in order.
    async fn long_session(&mut self, mock: &Mock, turns: usize) -> anyhow::Result<LongSession> {
        self.session = new_session(&self.client, self.daemon.path()).await?;
        self.turns = 0;
        let mut round_trips = Vec::with_capacity(turns);
        let begun = Instant::now();
        for _ in 0..turns {
            round_trips.push(self.turn(mock, Tool::List, "").await?.round_trip());
        }
        let elapsed = begun.elapsed();
        let messages = self
            .client
            .call(&SessionHistory {
                session: self.session.clone(),
            })
            .await?
            .len();
        self.check_stored().await?;
        Ok(LongSession {
            round_trips,
            messages,
            elapsed,
        })
    }
}

/// One turn, as the client and the provider saw it (one clock: both are in this process).
struct Turn {
    /// When the client sent `chat.send`.
    sent: Instant,
    /// When it received the `message` event of the answer `complete` with its call.
    complete: Instant,
    /// When it received the answer's `message` event carrying the result.
    result_at: Instant,
    /// When it received the follow-up answer's terminal `message` event.
    end: Instant,
    /// The result part.
    result: Part,
    /// The provider's request that it answered with the call.
    call: Served,
    /// The follow-up request, which carried the result.
    follow_up: Served,
}

impl Turn {
    /// The measure checked: from the provider's answer calling the tool to the result at the
    /// client. Everything the daemon does for the call lies in it (reading the stream's end,
    /// recording the answer complete, decoding the arguments, running the tool, recording
    /// the result and sending it), and only one socket hop more.
    fn round_trip(&self) -> Duration {
        self.result_at.saturating_duration_since(self.call.answered)
    }

    /// From the answer's `complete` event to its result event, both at the client.
    fn between_events(&self) -> Duration {
        self.result_at - self.complete
    }

    /// From the provider's answer calling the tool to the `complete` event at the client.
    fn until_complete(&self) -> Duration {
        self.complete.saturating_duration_since(self.call.answered)
    }

    /// From the provider's follow-up answer to its `complete` event at the
    /// client: the same path as [`Turn::round_trip`] for an answer that calls nothing.
    fn follow_up_end(&self) -> Duration {
        self.end.saturating_duration_since(self.follow_up.answered)
    }
}

/// A new session with tools on, on the mock's model, titled (so no title is made from the
/// first prompt).
async fn new_session(client: &Client, cwd: &Path) -> anyhow::Result<String> {
    let create = CreateSession {
        model: Some(MODEL.into()),
        cwd: Some(cwd.to_path_buf()),
        title: Some("agent bench".into()),
        agent: true,
        ..CreateSession::default()
    };
    Ok(client.call(&create).await?.id)
}

/// The `reagentd` cargo built for this bench.
fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

/// One tool's rows: its round trip against the target, its baseline, and the two compared.
fn tool_rows(table: &mut Table, tool: Tool, samples: &[Sample]) {
    let n = samples.len();
    let real = Stats::of(samples.iter().map(|s| millis(s.turn.round_trip())));
    let base = Stats::of(samples.iter().map(|s| millis(s.baseline)));
    table.check(
        &format!("{}: provider's answer -> result event", tool.name()),
        format!("p50 {:.3} ms, p95 {:.3} ms (n={n})", real.p50, real.p95),
        format!("p50 < {MAX_ROUND_TRIP_MS} ms"),
        real.p50 < MAX_ROUND_TRIP_MS,
    );
    let plain = median(samples.iter().map(|s| millis(s.turn.follow_up_end())));
    table.info(
        "  added by the call (vs. an answer calling nothing)",
        format!(
            "{:+.3} ms (p50 of the follow-up answer -> its complete event: {plain:.3} \
             ms)",
            real.p50 - plain
        ),
    );
    let between = Stats::of(samples.iter().map(|s| millis(s.turn.between_events())));
    let together = samples
        .iter()
        .filter(|s| s.turn.between_events() < TOGETHER)
        .count();
    table.info(
        "  complete event -> result event (client)",
        format!(
            "p50 {:.3} ms, p95 {:.3} ms; {together}/{n} within {} us of each other",
            between.p50,
            between.p95,
            TOGETHER.as_micros()
        ),
    );
    table.info(
        &format!("  baseline {} (request -> reply)", tool.request()),
        format!("p50 {:.3} ms, p95 {:.3} ms", base.p50, base.p95),
    );
    table.info(
        "  tool / baseline (p50), overhead",
        format!(
            "x{:.2}, {:+.3} ms (median of paired differences {:+.3} ms)",
            real.p50 / base.p50,
            real.p50 - base.p50,
            median(
                samples
                    .iter()
                    .map(|s| millis(s.turn.round_trip()) - millis(s.baseline))
            )
        ),
    );
    table.info(
        "  result",
        format!(
            "{:.0} bytes of JSON (median)",
            median(samples.iter().map(|s| s.turn.result.text.len() as f64))
        ),
    );
}

/// A stretch of a turn, named for the table.
type Stretch = (&'static str, fn(&Turn) -> Duration);

/// Where a whole turn's time goes, over every tool's samples: medians of each stretch.
fn turn_rows(table: &mut Table, samples: &HashMap<Tool, Vec<Sample>>) {
    let all: Vec<&Turn> = samples.values().flatten().map(|s| &s.turn).collect();
    let p50 = |stretch: fn(&Turn) -> Duration| median(all.iter().map(|t| millis(stretch(t))));
    table.info(
        "a whole turn (chat.send -> follow-up complete)",
        format!(
            "p50 {:.3} ms (n={})",
            p50(|t| t.end.saturating_duration_since(t.sent)),
            all.len()
        ),
    );
    let stretches: [Stretch; 6] = [
        ("  chat.send -> provider asked", |t| {
            t.call.request.saturating_duration_since(t.sent)
        }),
        ("  provider asked -> it answers (the mock)", |t| {
            t.call.answered.saturating_duration_since(t.call.request)
        }),
        (
            "  provider's answer -> complete event",
            Turn::until_complete,
        ),
        ("  complete event -> result event", Turn::between_events),
        ("  result event -> provider asked again", |t| {
            t.follow_up.request.saturating_duration_since(t.result_at)
        }),
        (
            "  provider's follow-up answer -> its complete event",
            Turn::follow_up_end,
        ),
    ];
    for (what, stretch) in stretches {
        table.info(what, format!("p50 {:.3} ms", p50(stretch)));
    }
}

/// Whether every result was right: the tool's JSON, what the model read, what was stored.
fn correctness_rows(table: &mut Table, samples: &HashMap<Tool, Vec<Sample>>, agent: &Agent) {
    let all: Vec<&Sample> = samples.values().flatten().collect();
    let n = all.len();
    let equal = all.iter().filter(|s| s.equal).count();
    let sent = all.iter().filter(|s| s.sent()).count();
    let (stored, checked) = agent.stored;
    let mut wrong = String::new();
    if let Some(bad) = all.iter().find(|s| !s.equal) {
        let result = &bad.turn.result;
        let text: String = result.text.chars().take(120).collect();
        wrong = format!(
            "; e.g. {} (error: {}): {text}",
            result.name.as_deref().unwrap_or("?"),
            result.error
        );
    }
    table.check(
        "results: the tool's JSON, equal to the request's reply",
        format!(
            "{equal}/{n} equal, {sent}/{n} sent to the model as is, {stored}/{checked} \
             stored as received{wrong}"
        ),
        "all".into(),
        equal == n && sent == n && stored == checked && checked >= n,
    );
}

/// A session of many turns.
struct LongSession {
    /// Each turn's round trip, in order.
    round_trips: Vec<Duration>,
    /// Messages the session held at the end.
    messages: usize,
    /// How long all the turns took.
    elapsed: Duration,
}

/// The long session's rows.
fn long_rows(table: &mut Table, long: &LongSession) {
    let turns = long.round_trips.len();
    let edge = LONG_EDGE.min(turns);
    let p50 = |range: &[Duration]| median(range.iter().map(|d| millis(*d)));
    table.info(
        &format!("runs_list in one session of {turns} turns"),
        format!(
            "p50 {:.3} ms over turns 1-{edge}, {:.3} ms over turns {}-{turns} ({} messages; \
             {:.1} ms per turn)",
            p50(&long.round_trips[..edge]),
            p50(&long.round_trips[turns - edge..]),
            turns - edge + 1,
            long.messages,
            millis(long.elapsed) / turns.max(1) as f64
        ),
    );
}
