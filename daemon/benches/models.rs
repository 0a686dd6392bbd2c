//! `models`: what model servers cost, against baselines measured side by side. The server is
//! the stand-in in `tests/standin/model_server.py`, which prints `stand-in: healthy at <unix
//! ms>` the moment its `/health` turns 200.
//!
//! 1. **Health to ready**: a release `reagentd` (health polled every 50 ms, the default)
//!    launches a `command` recipe of the stand-in (`--ready-after 1.5`, so it turns healthy
//!    while the launch polls), 20 times (5 with `--quick`); each time the latency is the
//!    model's `ready_at` (from `models.list`) minus the `healthy at` of its server's log, and
//!    the model is stopped again. Baseline, alternating with it: the same stand-in started by
//!    the bench, with a poller of its own sending the same GET to `/health` every 50 ms (what
//!    an ideal client with the daemon's interval sees), timed from `healthy at` to the first
//!    200. Target: p95 < 100 ms.
//! 2. **Scraping 8 models**: a daemon with `[models] scrape_secs = 2` (the default) serving
//!    8 ready stand-in models (`gpus = 0`), whose `/metrics` it scrapes; its own threads' CPU
//!    time from `/proc` over 30 s (10 s with `--quick`) while nothing else happens. Baseline,
//!    over the same window: a second daemon (its own `REAGENT_DIR`) running the same 8
//!    stand-ins as plain runs, which nothing scrapes. Target: < 1% of one core.
//!
//! Every stand-in is stopped through its daemon before the daemons are stopped (runs outlive
//! their daemon); one left behind by a failed measurement gets SIGTERM by its own pid.
//!
//! Run with `cargo bench -p reagentd --bench models [-- --quick]`; exits 1 when a target
//! fails.

#[path = "../../benches/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reagent::client::Client;
use reagent::model::{ModelInfo, ModelState};
use reagent::protocol::{
    AddRecipes, LaunchModel, ListModels, ListRuns, ReadLog, StopModel, StopRun,
};
use reagent::run::RunSpec;
use reagent::time::now_ms;
use support::{BenchDaemon, CpuReading, Stats, Table};
use tokio::io::AsyncBufReadExt as _;

/// The stand-in model server.
const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/standin/model_server.py"
);
/// Seconds until a stand-in turns healthy: well after a launch has started polling.
const READY_AFTER: &str = "1.5";
/// What its log says the moment it turns healthy, followed by unix milliseconds.
const HEALTHY_AT: &str = "stand-in: healthy at ";
/// How often the daemon polls health (`[models] health_interval_ms`, its default), and the
/// baseline poller too.
const HEALTH_INTERVAL: Duration = Duration::from_millis(50);
/// How long one health poll may take (the daemon's bound).
const POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the daemon scrapes each ready model (`[models] scrape_secs`, its default).
const SCRAPE_SECS: f64 = 2.0;
/// The recipe launched again and again for the latency.
const LATENCY_MODEL: &str = "standin";
/// Models served while the daemon's CPU is measured.
const SERVED: usize = 8;
/// Health-to-ready target: p95 below this many milliseconds.
const MAX_READY_P95_MS: f64 = 100.0;
/// CPU target for the daemon scraping them, fraction of one core.
const MAX_SCRAPING_CORE: f64 = 0.01;
/// How long a stand-in may take to turn healthy, or to exit once stopped.
const DEADLINE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    support::block_on("models", bench(support::quick()))
}

async fn bench(quick: bool) -> anyhow::Result<bool> {
    let samples = if quick { 5 } else { 20 };
    let window = Duration::from_secs(if quick { 10 } else { 30 });
    println!(
        "models: {samples} launches, CPU over {} s, daemon {}",
        window.as_secs(),
        daemon_binary().display()
    );
    let latency = latency(samples).await?;
    let scraping = scraping(window).await?;

    let mut table = Table::default();
    let (direct, daemon) = (Stats::of(latency.direct), Stats::of(latency.daemon));
    let show = |s: &Stats| format!("p50 {:.0} ms, p95 {:.0} ms (n={})", s.p50, s.p95, s.n);
    table.info(
        "healthy -> seen: own poller every 50 ms (baseline)",
        show(&direct),
    );
    table.check(
        "healthy -> ready: daemon, health every 50 ms",
        format!(
            "{} ({:.2}x baseline p95)",
            show(&daemon),
            daemon.p95 / direct.p95.max(1.0)
        ),
        format!("p95 < {MAX_READY_P95_MS:.0} ms"),
        daemon.p95 < MAX_READY_P95_MS,
    );
    let over = format!("(over {:.0} s)", scraping.window.as_secs_f64());
    table.info(
        &format!("daemon, {SERVED} stand-ins as plain runs (baseline)"),
        format!("{:.3}% of a core {over}", scraping.runs * 100.0),
    );
    table.check(
        &format!("daemon, {SERVED} ready models scraped every {SCRAPE_SECS:.0} s"),
        format!(
            "{:.3}% of a core (+{:.3} points) {over}",
            scraping.models * 100.0,
            (scraping.models - scraping.runs) * 100.0
        ),
        "< 1% of a core".into(),
        scraping.models < MAX_SCRAPING_CORE,
    );
    table.info(
        "scrapes in the window",
        format!(
            "{} ({:.1} per model)",
            scraping.scrapes,
            scraping.scrapes as f64 / SERVED as f64
        ),
    );
    Ok(table.print())
}

// ---------------------------------------------------------------------------------------
// 1. Health to ready
// ---------------------------------------------------------------------------------------

/// Milliseconds from a stand-in turning healthy until it was seen so, each side.
struct Latency {
    /// The daemon's launches: `ready_at − healthy at`.
    daemon: Vec<f64>,
    /// The bench's own poller: first 200 − `healthy at`.
    direct: Vec<f64>,
}

async fn latency(samples: usize) -> anyhow::Result<Latency> {
    let mut daemon = BenchDaemon::start(&daemon_binary(), "rgmodels", |dir, _| {
        let config = format!(
            "[models]\nhealth_interval_ms = {}\n",
            HEALTH_INTERVAL.as_millis()
        );
        std::fs::write(dir.join("config.toml"), config).context("write config.toml")
    })?;
    let (client, _) = Client::connect(&daemon.socket()).await?;
    add_recipes(&client, daemon.path(), &[LATENCY_MODEL.to_string()]).await?;
    let http = http_client()?;
    let mut servers = Servers::default();
    let mut latency = Latency {
        daemon: Vec::new(),
        direct: Vec::new(),
    };
    for i in 0..samples {
        // Which side goes first alternates, so neither always gets the warmer machine.
        if i % 2 == 0 {
            latency.direct.push(direct_launch(&http).await?);
            latency
                .daemon
                .push(daemon_launch(&client, &mut servers).await?);
        } else {
            latency
                .daemon
                .push(daemon_launch(&client, &mut servers).await?);
            latency.direct.push(direct_launch(&http).await?);
        }
        println!(
            "  launch #{}: daemon {:.0} ms, own poller {:.0} ms",
            i + 1,
            latency.daemon[i],
            latency.direct[i]
        );
    }
    daemon.stop()?;
    Ok(latency)
}

/// One launch through the daemon, stopped again: `ready_at − healthy at`, ms.
async fn daemon_launch(client: &Client, servers: &mut Servers) -> anyhow::Result<f64> {
    let launch = LaunchModel {
        recipe: LATENCY_MODEL.into(),
        preempt: false,
    };
    let launched = client.call(&launch).await?;
    servers.add(launched.pid)?;
    ensure!(
        launched.state == ModelState::Ready,
        "the launch ended {}",
        launched.state
    );
    let listed = client.call(&ListModels {}).await?;
    let model = (listed.into_iter().rev())
        .find(|m| m.name == LATENCY_MODEL)
        .context("the launched model is not listed")?;
    let ready_at = model.ready_at.context("a ready model without ready_at")?;
    let run = model.run.context("a ready model without a run")?;
    let healthy_at = logged_healthy_at(client, &run).await?;
    stop_models(client, &[LATENCY_MODEL.to_string()]).await?;
    servers.wait_gone().await?;
    Ok((ready_at - healthy_at) as f64)
}

/// One stand-in started here and polled by the bench itself, as the daemon polls it:
/// first 200 − `healthy at`, ms.
async fn direct_launch(http: &reqwest::Client) -> anyhow::Result<f64> {
    let [port] = free_ports::<1>()?;
    let mut child = tokio::process::Command::new("python3")
        .args(standin_args(&port.to_string(), "direct"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Killed if the measurement fails half-way.
        .kill_on_drop(true)
        .spawn()
        .context("spawn the stand-in")?;
    let stdout = child.stdout.take().context("the stand-in's stdout")?;
    // Its whole output is read (a closed pipe would fail its access log); the `healthy at`
    // line is passed on.
    let (healthy_tx, healthy_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut healthy_tx = Some(healthy_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = healthy_at_in(&line)
                && let Some(tx) = healthy_tx.take()
            {
                let _ = tx.send(at);
            }
        }
    });
    let seen = poll_health(http, &format!("http://127.0.0.1:{port}/health")).await;
    let healthy_at = tokio::time::timeout(Duration::from_secs(5), healthy_rx).await;
    let pid = child.id().context("the stand-in was reaped already")?;
    let _ = support::signal(pid, rustix::process::Signal::TERM);
    if tokio::time::timeout(DEADLINE, child.wait()).await.is_err() {
        child.kill().await.context("kill the stand-in")?;
        bail!("the stand-in ignored SIGTERM; killed");
    }
    let seen = seen?;
    let healthy_at = healthy_at
        .context("no `healthy at` line from the stand-in within 5 s")?
        .context("the stand-in's output ended without a `healthy at` line")?;
    Ok((seen - healthy_at) as f64)
}

/// Polls `url` every [`HEALTH_INTERVAL`], as the daemon does (one GET a tick on a kept-alive
/// connection, a late tick delaying the next), until it answers 200; when, in unix ms.
async fn poll_health(http: &reqwest::Client, url: &str) -> anyhow::Result<i64> {
    let deadline = Instant::now() + DEADLINE;
    let mut ticks = tokio::time::interval(HEALTH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let answer = http.get(url).timeout(POLL_TIMEOUT).send().await;
        if answer.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
            return Ok(now_ms());
        }
        ensure!(
            Instant::now() < deadline,
            "{url} not healthy within {DEADLINE:?}"
        );
    }
}

/// An HTTP client built as the daemon builds its own.
fn http_client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider (plain HTTP needs none, but the
    // builder asks for one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("build the HTTP client")
}

// ---------------------------------------------------------------------------------------
// 2. Scraping 8 models
// ---------------------------------------------------------------------------------------

/// The two daemons' CPU over the same window, fractions of one core.
struct Scraping {
    /// The daemon serving the models.
    models: f64,
    /// The daemon with the same servers as plain runs.
    runs: f64,
    /// The window, as measured.
    window: Duration,
    /// `/metrics` requests the stand-ins logged during the window.
    scrapes: usize,
}

async fn scraping(window: Duration) -> anyhow::Result<Scraping> {
    let mut models = BenchDaemon::start(&daemon_binary(), "rgmodels", |dir, _| {
        let config = format!("[models]\nscrape_secs = {SCRAPE_SECS:.1}\n");
        std::fs::write(dir.join("config.toml"), config).context("write config.toml")
    })?;
    let mut runs = BenchDaemon::start(&daemon_binary(), "rgruns", |_, _| Ok(()))?;
    let (models_client, _) = Client::connect(&models.socket()).await?;
    let (runs_client, _) = Client::connect(&runs.socket()).await?;
    let names: Vec<String> = (0..SERVED).map(|i| format!("served{i}")).collect();
    let mut servers = Servers::default();

    add_recipes(&models_client, models.path(), &names).await?;
    let launches = names.iter().map(|name| {
        let launch = LaunchModel {
            recipe: name.clone(),
            preempt: false,
        };
        let client = &models_client;
        async move { client.call(&launch).await }
    });
    let mut model_runs = Vec::new();
    let mut failed = None;
    for launched in futures_util::future::join_all(launches).await {
        match launched {
            Ok(model) => {
                servers.add(model.pid)?;
                match (model.state, model.run) {
                    (ModelState::Ready, Some(run)) => model_runs.push(run),
                    (state, _) => failed = Some(anyhow::anyhow!("a launch ended {state}")),
                }
            }
            Err(err) => failed = Some(err.into()),
        }
    }
    if let Some(err) = failed {
        return Err(err);
    }

    let ports = free_ports::<SERVED>()?;
    let mut plain_runs = Vec::new();
    for (name, port) in names.iter().zip(ports) {
        let spec = RunSpec {
            name: Some(name.clone()),
            command: std::iter::once("python3")
                .chain(standin_args(&port.to_string(), name))
                .map(String::from)
                .collect(),
            cwd: Some(runs.path().to_path_buf()),
            ..RunSpec::default()
        };
        let run = runs_client.call(&spec).await?;
        servers.add(Some(run_pid(&runs_client, &run.id).await?))?;
        plain_runs.push(run.id);
    }
    for run in &plain_runs {
        logged_healthy_at(&runs_client, run).await?;
    }

    // Past start-up and the first scrape of every model, so the window holds only serving.
    tokio::time::sleep(Duration::from_secs_f64(SCRAPE_SECS + 1.0)).await;
    let scrapes_before = scrapes(&models_client, &model_runs).await?;
    let (models_pid, runs_pid) = (models.pid()?, runs.pid()?);
    let (models_start, runs_start) = (CpuReading::now(models_pid)?, CpuReading::now(runs_pid)?);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let (models_end, runs_end) = (CpuReading::now(models_pid)?, CpuReading::now(runs_pid)?);
    let measured = started.elapsed();
    let scrapes_after = scrapes(&models_client, &model_runs).await?;

    let listed: Vec<ModelInfo> = models_client.call(&ListModels {}).await?;
    let serving = (listed.iter())
        .filter(|m| m.state == ModelState::Ready && m.serving.is_some())
        .count();
    ensure!(
        serving == SERVED,
        "{serving} of {SERVED} models were ready with serving figures after the window"
    );

    stop_models(&models_client, &names).await?;
    for run in &plain_runs {
        let stop = StopRun {
            run: run.clone(),
            grace_secs: Some(DEADLINE.as_secs_f64()),
        };
        runs_client.call(&stop).await?;
    }
    servers.wait_gone().await?;
    models.stop()?;
    runs.stop()?;
    Ok(Scraping {
        models: models_end.core_since(&models_start),
        runs: runs_end.core_since(&runs_start),
        window: measured,
        scrapes: scrapes_after.saturating_sub(scrapes_before),
    })
}

/// `/metrics` requests in the access logs of these runs, so far.
async fn scrapes(client: &Client, runs: &[String]) -> anyhow::Result<usize> {
    let mut total = 0;
    for run in runs {
        total += read_log(client, run).await?.matches("GET /metrics").count();
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------
// The stand-in and its servers
// ---------------------------------------------------------------------------------------

/// The stand-in's arguments after `python3`, on `port` as `model`.
fn standin_args<'a>(port: &'a str, model: &'a str) -> [&'a str; 7] {
    [
        STANDIN,
        "--port",
        port,
        "--model",
        model,
        "--ready-after",
        READY_AFTER,
    ]
}

/// Stores a `command` recipe of the stand-in, on no GPU, under each name.
async fn add_recipes(client: &Client, dir: &Path, names: &[String]) -> anyhow::Result<()> {
    let argv = standin_args("{port}", "{model}")
        .iter()
        .map(|arg| format!("{arg:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text: String = (names.iter())
        .map(|name| {
            format!(
                "[[recipe]]\nname = \"{name}\"\nbackend = \"command\"\nmodel = \"{name}-weights\"\n\
                 gpus = 0\ncommand = [\"python3\", {argv}]\n\n"
            )
        })
        .collect();
    let file = dir.join("recipes.toml");
    let recipes = reagent::model::file::parse(&file, &text).map_err(anyhow::Error::msg)?;
    client.call(&AddRecipes { recipes }).await?;
    Ok(())
}

/// Stops these models and waits until each has ended.
async fn stop_models(client: &Client, names: &[String]) -> anyhow::Result<()> {
    let stops = names.iter().map(|name| {
        let stop = StopModel { name: name.clone() };
        async move { client.call(&stop).await }
    });
    for stopped in futures_util::future::join_all(stops).await {
        let model = stopped?;
        ensure!(
            model.state.is_terminal(),
            "model {} is {} after its stop",
            model.name,
            model.state
        );
    }
    Ok(())
}

/// A run's job pid, once its supervisor has started it.
async fn run_pid(client: &Client, run: &str) -> anyhow::Result<u32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let runs = client.call(&ListRuns::default()).await?;
        if let Some(pid) = (runs.iter()).find(|r| r.id == run).and_then(|r| r.pid) {
            return Ok(pid);
        }
        ensure!(
            Instant::now() < deadline,
            "run {run} has no pid after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A run's whole log, as text.
async fn read_log(client: &Client, run: &str) -> anyhow::Result<String> {
    let read = ReadLog {
        run: run.into(),
        offset: Some(0),
        tail_lines: None,
        max_bytes: None,
    };
    let chunk = client.call(&read).await?;
    Ok(String::from_utf8_lossy(&chunk.data.0).into_owned())
}

/// The `healthy at` time in a stand-in's run log, once it is there (it may land in the log
/// just after the server answered its first 200).
async fn logged_healthy_at(client: &Client, run: &str) -> anyhow::Result<i64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = read_log(client, run).await?;
        if let Some(at) = log.lines().find_map(healthy_at_in) {
            return Ok(at);
        }
        ensure!(
            Instant::now() < deadline,
            "run {run} logged no `healthy at` within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The unix ms of a `stand-in: healthy at <ms>` line.
fn healthy_at_in(line: &str) -> Option<i64> {
    let (_, rest) = line.split_once(HEALTHY_AT)?;
    rest.trim().parse().ok()
}

/// Free loopback ports, all picked before any is let go (so no two are the same).
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
        *port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

/// Stand-in servers started through a daemon, by pid. Those still alive when this is
/// dropped (a measurement failed half-way) get SIGTERM, then SIGKILL: runs outlive their
/// daemon, and no server may outlive the bench.
#[derive(Default)]
struct Servers(Vec<u32>);

impl Servers {
    /// Tracks a server's pid.
    fn add(&mut self, pid: Option<u32>) -> anyhow::Result<()> {
        self.0.push(pid.context("a stand-in without a pid")?);
        Ok(())
    }

    /// Waits until every tracked server has exited, then forgets them.
    async fn wait_gone(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        while let Some(&pid) = self.0.iter().find(|&&pid| support::alive(pid)) {
            ensure!(
                Instant::now() < deadline,
                "stand-in {pid} still runs {DEADLINE:?} after its stop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.0.clear();
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for pid in self.0.drain(..) {
            // Only a process that is still the stand-in: never a pid reused since.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if support::alive(pid) && String::from_utf8_lossy(&cmdline).contains("model_server.py")
            {
                let _ = support::terminate(pid, Duration::from_secs(5), || !support::alive(pid));
            }
        }
    }
}

fn daemon_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reagentd"))
}
