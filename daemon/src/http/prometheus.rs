//! `/metrics`: Prometheus exposition of the daemon's state, built at scrape time.
//!
//! Nothing here is kept up to date between scrapes: a scrape copies what it needs out of the
//! state (one short hold of the lock, never across an await), reads what the request logs
//! gained since the previous scrape on a blocking thread with a connection of its own, and
//! encodes both with `prometheus_client`. So no service has to know this module exists, and
//! an unscraped daemon pays nothing.
//!
//! The request logs (`gateway_log`, the chat `messages`) are read incrementally: each scrape
//! aggregates only the rows added since the last one (a range of their row ids, so the work
//! is bounded by the traffic in between, not by the history) and adds them to running totals
//! kept here. The totals are counters in the Prometheus sense: they never go down when old
//! rows are pruned or a session is deleted. After a restart the first scrape totals the
//! whole table once.
//!
//! The body is OpenMetrics 1.0 text, served as `application/openmetrics-text;
//! version=1.0.0`: that is what `prometheus_client` writes (counters' `_total` suffix, `#
//! UNIT` lines, `# EOF`), and it is the text format Prometheus asks for first in its default
//! `scrape_protocols`, ahead of the classic `text/plain; version=0.0.4`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use reagent::alert::{AlertRule, AlertStatus};
use reagent::gpu::GpuInfo;
use reagent::model::{ModelState, ServingStats};
use reagent::run::RunStatus;
use reagent::token::Scope;
use rusqlite::{Connection, OpenFlags, Transaction};

use crate::daemon::Daemon;

/// The content type of the exposition: OpenMetrics text, which Prometheus prefers by
/// default.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds, in seconds, of the gateway's latency histograms: from a cached local
/// answer's first byte (milliseconds) to a long generation (minutes).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Every run status, so each has a series even at zero (a vanishing series reads as "no
/// data", not as none).
const RUN_STATUSES: [RunStatus; 7] = [
    RunStatus::Queued,
    RunStatus::Launching,
    RunStatus::Running,
    RunStatus::Finished,
    RunStatus::Failed,
    RunStatus::Stopped,
    RunStatus::Lost,
];

/// Every model state, for the 0/1 state set of each model.
const MODEL_STATES: [ModelState; 10] = [
    ModelState::Requested,
    ModelState::WaitingLock,
    ModelState::Evicting,
    ModelState::Launching,
    ModelState::CheckingStability,
    ModelState::WaitingHealth,
    ModelState::Ready,
    ModelState::Stopped,
    ModelState::Failed,
    ModelState::Cancelled,
];

/// Every alert rule, so each rule's count has a series even at zero.
const ALERT_RULES: [AlertRule; 8] = [
    AlertRule::Nan,
    AlertRule::Spike,
    AlertRule::Stall,
    AlertRule::Threshold,
    AlertRule::RunFailed,
    AlertRule::Trigger,
    AlertRule::Judge,
    AlertRule::OutputLost,
];

/// The exposition, for a token with the `metrics` scope.
pub async fn metrics(State(daemon): State<Arc<Daemon>>, headers: HeaderMap) -> Response {
    if let Err(denied) = super::authorize(&daemon, &headers, Scope::Metrics) {
        return (
            super::denied_status(denied),
            super::denied_message(denied, Scope::Metrics),
        )
            .into_response();
    }
    let view = View::copy(&daemon);
    let db = daemon.paths.database();
    let logs = match tokio::task::spawn_blocking(move || read_logs(&db)).await {
        Ok(Ok(logs)) => Some(logs),
        Ok(Err(err)) => {
            tracing::warn!("/metrics cannot read the request logs: {err:#}");
            None
        }
        Err(err) => {
            tracing::warn!("/metrics: reading the request logs failed: {err}");
            None
        }
    };
    match encode(&view, logs.as_ref()) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

/// What a scrape needs from the state, copied out so the lock is held only for the copy.
#[derive(Debug, Default)]
struct View {
    /// Runs per status, every status present.
    runs: Vec<(&'static str, u64)>,
    /// Jobs in the queue that have not started.
    queue_waiting: u64,
    /// The GPUs as last sampled.
    gpus: Vec<GpuInfo>,
    /// Every model instance.
    models: Vec<ModelView>,
    /// Alerts per (rule, status).
    alerts: BTreeMap<(&'static str, &'static str), u64>,
}

/// The parts of a model instance the exposition shows.
#[derive(Debug)]
struct ModelView {
    name: String,
    state: ModelState,
    requests: u64,
    serving: Option<ServingStats>,
}

impl View {
    /// Copies the figures out of the state; the lock is released on return.
    fn copy(daemon: &Daemon) -> Self {
        let state = daemon.state();
        let runs = RUN_STATUSES
            .iter()
            .map(|status| {
                let count = state
                    .runs()
                    .iter()
                    .filter(|run| run.status == *status)
                    .count();
                (status.as_str(), count as u64)
            })
            .collect();
        let queue_waiting = state.queue.jobs().iter().filter(|job| !job.started).count() as u64;
        let gpus = state.gpus.report.gpus.clone();
        let models = (state.models.all().iter())
            .map(|model| ModelView {
                name: model.name.clone(),
                state: model.state,
                requests: model.requests,
                serving: model.serving.clone(),
            })
            .collect();
        let mut alerts = BTreeMap::new();
        for rule in ALERT_RULES {
            for status in [AlertStatus::Open, AlertStatus::Answered] {
                alerts.insert((rule.as_str(), status_name(status)), 0);
            }
        }
        for alert in state.alerts() {
            *alerts
                .entry((alert.rule.as_str(), status_name(alert.status)))
                .or_insert(0) += 1;
        }
        Self {
            runs,
            queue_waiting,
            gpus,
            models,
            alerts,
        }
    }
}

/// An alert status's name as a label value.
fn status_name(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Open => "open",
        AlertStatus::Answered => "answered",
    }
}

/// A series' labels, in order.
type Labels = Vec<(&'static str, String)>;

/// A gauge family with float values.
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Sets the gauge of `labels` in `family`.
fn set(family: &Gauges, labels: Labels, value: f64) {
    family.get_or_create(&labels).set(value);
}

/// Builds the registry from the copied state and the request-log totals and encodes it.
/// `logs` is `None` when the database could not be read: the state's figures are still
/// worth serving, and `reagent_store_read_success` says what is missing.
fn encode(view: &View, logs: Option<&Logs>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();

    let runs = Gauges::default();
    for (status, count) in &view.runs {
        set(
            &runs,
            vec![("status", (*status).to_string())],
            *count as f64,
        );
    }
    registry.register("reagent_runs", "Runs known to the daemon, by status", runs);
    let waiting = Gauge::<f64, AtomicU64>::default();
    waiting.set(view.queue_waiting as f64);
    registry.register(
        "reagent_queue_waiting",
        "Queued jobs waiting for GPUs or a sweep slot",
        waiting,
    );

    register_gpus(&mut registry, &view.gpus);
    register_models(&mut registry, &view.models);

    let alerts = Gauges::default();
    for ((rule, status), count) in &view.alerts {
        let labels = vec![
            ("rule", (*rule).to_string()),
            ("status", (*status).to_string()),
        ];
        set(&alerts, labels, *count as f64);
    }
    registry.register("reagent_alerts", "Alerts kept, by rule and status", alerts);

    let ok = Gauge::<f64, AtomicU64>::default();
    ok.set(if logs.is_some() { 1.0 } else { 0.0 });
    registry.register(
        "reagent_store_read_success",
        "1 when this scrape read the request logs (gateway and chat counters are current), 0 when it could not",
        ok,
    );
    if let Some(logs) = logs {
        register_gateway(&mut registry, &logs.gateway);
        register_chat(&mut registry, &logs.chat);
    }

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The GPU gauges, labelled by index, product name and whether the GPU is fake.
fn register_gpus(registry: &mut Registry, gpus: &[GpuInfo]) {
    let util = Gauges::default();
    let used = Gauges::default();
    let total = Gauges::default();
    let temp = Gauges::default();
    let power = Gauges::default();
    let limit = Gauges::default();
    const MIB: f64 = 1024.0 * 1024.0;
    for gpu in gpus {
        let labels = || {
            vec![
                ("gpu", gpu.index.to_string()),
                ("name", gpu.name.clone()),
                ("fake", gpu.fake.to_string()),
            ]
        };
        if let Some(pct) = gpu.util_pct {
            set(&util, labels(), f64::from(pct) / 100.0);
        }
        set(&used, labels(), gpu.mem_used_mib as f64 * MIB);
        set(&total, labels(), gpu.mem_total_mib as f64 * MIB);
        if let Some(celsius) = gpu.temp_c {
            set(&temp, labels(), f64::from(celsius));
        }
        if let Some(watts) = gpu.power_w {
            set(&power, labels(), watts);
        }
        if let Some(watts) = gpu.power_limit_w {
            set(&limit, labels(), watts);
        }
    }
    registry.register(
        "reagent_gpu_utilization_ratio",
        "Fraction of the last sample period a kernel ran, 0 to 1",
        util,
    );
    registry.register_with_unit(
        "reagent_gpu_memory_used",
        "GPU memory in use",
        Unit::Bytes,
        used,
    );
    registry.register_with_unit(
        "reagent_gpu_memory_total",
        "GPU memory installed",
        Unit::Bytes,
        total,
    );
    registry.register_with_unit(
        "reagent_gpu_temperature",
        "GPU core temperature",
        Unit::Celsius,
        temp,
    );
    registry.register_with_unit(
        "reagent_gpu_power",
        "GPU power draw",
        Unit::Other("watts".into()),
        power,
    );
    registry.register_with_unit(
        "reagent_gpu_power_limit",
        "GPU power limit",
        Unit::Other("watts".into()),
        limit,
    );
}

/// Each model's state (a 0/1 set over every state, so a change shows as one series going
/// to 0 and another to 1) and its serving figures while it serves.
fn register_models(registry: &mut Registry, models: &[ModelView]) {
    let states = Gauges::default();
    let requests = Family::<Labels, Counter>::default();
    let gen_tps = Gauges::default();
    let prompt_tps = Gauges::default();
    let running = Gauges::default();
    let waiting = Gauges::default();
    let kv = Gauges::default();
    let ttft = Gauges::default();
    for model in models {
        let name = || vec![("model", model.name.clone())];
        for state in MODEL_STATES {
            let labels = vec![
                ("model", model.name.clone()),
                ("state", state.as_str().to_string()),
            ];
            set(
                &states,
                labels,
                if state == model.state { 1.0 } else { 0.0 },
            );
        }
        requests.get_or_create(&name()).inc_by(model.requests);
        let Some(serving) = &model.serving else {
            continue;
        };
        for (family, value) in [
            (&gen_tps, serving.gen_tps),
            (&prompt_tps, serving.prompt_tps),
            (&running, serving.running),
            (&waiting, serving.waiting),
            (&kv, serving.kv_cache),
            (&ttft, serving.ttft_p50_ms.map(|ms| ms / 1000.0)),
        ] {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                set(family, name(), value);
            }
        }
    }
    registry.register(
        "reagent_model_state",
        "1 for the state each model instance is in, 0 for the others",
        states,
    );
    registry.register(
        "reagent_model_requests",
        "Requests reagent passed to the model instance since it was launched",
        requests,
    );
    registry.register(
        "reagent_model_generation_tokens_per_second",
        "Tokens the model server generated per second between its last two scrapes",
        gen_tps,
    );
    registry.register(
        "reagent_model_prompt_tokens_per_second",
        "Prompt tokens the model server processed per second between its last two scrapes",
        prompt_tps,
    );
    registry.register(
        "reagent_model_requests_running",
        "Requests the model server is serving now",
        running,
    );
    registry.register(
        "reagent_model_requests_waiting",
        "Requests waiting in the model server's own queue",
        waiting,
    );
    registry.register(
        "reagent_model_kv_cache_usage_ratio",
        "KV-cache use of the model server, 0 to 1",
        kv,
    );
    registry.register_with_unit(
        "reagent_model_time_to_first_token_p50",
        "Median time to first token over the model server's last scrape interval",
        Unit::Seconds,
        ttft,
    );
}

/// The gateway's counters and histograms, by route and outcome. The family always has a
/// series: before any request, `route="local", outcome="ok"` at zero (see
/// [`GatewayTotals::seeded`]), so a dashboard or a test can tell "no requests" from "not
/// exported".
fn register_gateway(registry: &mut Registry, gateway: &BTreeMap<(String, String), GatewayTotals>) {
    let requests = Family::<Labels, Counter>::default();
    let tokens = Family::<Labels, Counter>::default();
    let cost = Family::<Labels, Counter<f64, AtomicU64>>::default();
    let mut duration = Histograms::default();
    let mut ttfb = Histograms::default();
    for ((route, outcome), totals) in gateway {
        let labels = || vec![("route", route.clone()), ("outcome", outcome.clone())];
        requests.get_or_create(&labels()).inc_by(totals.count);
        for (direction, count) in [("in", totals.tokens_in), ("out", totals.tokens_out)] {
            let mut labels = labels();
            labels.push(("direction", direction.to_string()));
            tokens.get_or_create(&labels).inc_by(count);
        }
        cost.get_or_create(&labels()).inc_by(totals.cost);
        duration.series.push((labels(), totals.duration.clone()));
        ttfb.series.push((labels(), totals.ttfb.clone()));
    }
    registry.register(
        "reagent_gateway_requests",
        "Requests the /v1 gateway logged, by route and outcome",
        requests,
    );
    registry.register_with_unit(
        "reagent_gateway_request_duration",
        "Duration of /v1 requests, from arrival to the last byte",
        Unit::Seconds,
        duration,
    );
    registry.register_with_unit(
        "reagent_gateway_time_to_first_byte",
        "Time from a /v1 request's arrival to the first byte of its answer (requests that got one)",
        Unit::Seconds,
        ttfb,
    );
    registry.register(
        "reagent_gateway_tokens",
        "Tokens /v1 requests sent (in) and received (out), as the upstream reported them",
        tokens,
    );
    registry.register(
        "reagent_gateway_cost_usd",
        "Cost of /v1 requests in US dollars, where the price is known",
        cost,
    );
}

/// Chat answers, their tokens and cost, by provider and status.
fn register_chat(registry: &mut Registry, chat: &BTreeMap<(String, String), ChatTotals>) {
    let answers = Family::<Labels, Counter>::default();
    let tokens = Family::<Labels, Counter>::default();
    let cost = Family::<Labels, Counter<f64, AtomicU64>>::default();
    for ((provider, status), totals) in chat {
        let labels = || vec![("provider", provider.clone()), ("status", status.clone())];
        answers.get_or_create(&labels()).inc_by(totals.answers);
        for (direction, count) in [("in", totals.tokens_in), ("out", totals.tokens_out)] {
            let labels = vec![
                ("provider", provider.clone()),
                ("status", status.clone()),
                ("direction", direction.to_string()),
            ];
            tokens.get_or_create(&labels).inc_by(count);
        }
        cost.get_or_create(&labels()).inc_by(totals.cost);
    }
    registry.register(
        "reagent_chat_answers",
        "Chat answers that ended (complete, error, cancelled, interrupted), by provider and status",
        answers,
    );
    registry.register(
        "reagent_chat_tokens",
        "Tokens of ended chat answers: prompt (in) and generated (out)",
        tokens,
    );
    registry.register(
        "reagent_chat_cost_usd",
        "Cost of ended chat answers in US dollars, where the price is known",
        cost,
    );
}

/// A histogram already tallied elsewhere (here: by SQL), encoded as it stands:
/// `prometheus_client`'s own `Histogram` can only be observed value by value.
#[derive(Debug, Default)]
struct Histograms {
    series: Vec<(Labels, Tally)>,
}

impl prometheus_client::metrics::TypedMetric for Histograms {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, tally) in &self.series {
            let mut series = encoder.encode_family(labels)?;
            series.encode_histogram::<NoLabelSet>(
                tally.sum,
                tally.count,
                &tally.buckets(),
                None,
            )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }

    fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Observations of one histogram series, in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Tally {
    /// How many.
    count: u64,
    /// Their sum.
    sum: f64,
    /// How many were at or below each of [`BUCKETS`] (cumulative, as Prometheus counts).
    le: Vec<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            le: vec![0; BUCKETS.len()],
        }
    }
}

impl Tally {
    /// Adds another tally of the same buckets.
    fn add(&mut self, other: &Tally) {
        self.count += other.count;
        self.sum += other.sum;
        for (mine, theirs) in self.le.iter_mut().zip(&other.le) {
            *mine += theirs;
        }
    }

    /// `(upper bound, observations in that bucket alone)`, ending with `+Inf`: the shape the
    /// encoder takes (it sums them back into cumulative counts).
    fn buckets(&self) -> Vec<(f64, u64)> {
        let mut below = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len() + 1);
        for (bound, cumulative) in BUCKETS.iter().zip(&self.le) {
            let cumulative = (*cumulative).max(below);
            buckets.push((*bound, cumulative - below));
            below = cumulative;
        }
        buckets.push((f64::INFINITY, self.count.saturating_sub(below)));
        buckets
    }
}

/// Running totals of the gateway's requests with one route and outcome.
#[derive(Debug, Clone, Default, PartialEq)]
struct GatewayTotals {
    count: u64,
    duration: Tally,
    ttfb: Tally,
    tokens_in: u64,
    tokens_out: u64,
    cost: f64,
}

impl GatewayTotals {
    /// The zero series shown before the first request.
    fn seeded() -> BTreeMap<(String, String), GatewayTotals> {
        BTreeMap::from([(("local".into(), "ok".into()), GatewayTotals::default())])
    }

    fn add(&mut self, other: &GatewayTotals) {
        self.count += other.count;
        self.duration.add(&other.duration);
        self.ttfb.add(&other.ttfb);
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost += other.cost;
    }
}

/// Running totals of chat answers with one provider and status.
#[derive(Debug, Clone, Default, PartialEq)]
struct ChatTotals {
    answers: u64,
    tokens_in: u64,
    tokens_out: u64,
    cost: f64,
}

impl ChatTotals {
    fn add(&mut self, other: &ChatTotals) {
        self.answers += other.answers;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost += other.cost;
    }
}

/// What the request logs say, as of this scrape.
#[derive(Debug, Clone, Default, PartialEq)]
struct Logs {
    gateway: BTreeMap<(String, String), GatewayTotals>,
    chat: BTreeMap<(String, String), ChatTotals>,
}

/// The totals kept between scrapes for one database, and how far each log was read.
#[derive(Debug, Default)]
struct Progress {
    /// Gateway rows with an id up to this one are in `logs.gateway`.
    gateway_seen: i64,
    /// Chat messages with a rowid up to this one are in `logs.chat`; every one of them had
    /// ended when it was counted.
    chat_seen: i64,
    logs: Logs,
}

/// The running totals, per database (one in the daemon; tests may open several). Scrapes
/// take turns on it, so two at once never count the same rows twice.
static PROGRESS: Mutex<BTreeMap<PathBuf, Progress>> = Mutex::new(BTreeMap::new());

/// Reads what the logs gained since the last scrape and returns the totals. Blocking: call
/// it on a blocking thread.
fn read_logs(db: &Path) -> anyhow::Result<Logs> {
    let mut conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open the database {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(2))?;
    let mut progress = PROGRESS.lock().unwrap_or_else(PoisonError::into_inner);
    let progress = progress
        .entry(db.to_path_buf())
        .or_insert_with(|| Progress {
            logs: Logs {
                gateway: GatewayTotals::seeded(),
                chat: BTreeMap::new(),
            },
            ..Progress::default()
        });
    // One read transaction: every query sees the same snapshot (WAL lets it read while the
    // daemon writes).
    let tx = conn.transaction()?;
    advance(&tx, progress)
}

/// Adds the rows after `progress`'s marks to its totals and returns the totals to show:
/// those plus chat answers that ended after one still streaming (they are counted again
/// next time, until the streaming one ends and the mark can pass them).
fn advance(tx: &Transaction<'_>, progress: &mut Progress) -> anyhow::Result<Logs> {
    let top: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM gateway_log", [], |row| {
        row.get(0)
    })?;
    if top > progress.gateway_seen {
        for (key, totals) in gateway_between(tx, progress.gateway_seen, top)? {
            progress.logs.gateway.entry(key).or_default().add(&totals);
        }
    }
    progress.gateway_seen = top;

    let top: i64 = tx.query_row("SELECT COALESCE(MAX(rowid), 0) FROM messages", [], |row| {
        row.get(0)
    })?;
    let first_open: Option<i64> = tx.query_row(
        "SELECT MIN(rowid) FROM messages
         WHERE rowid > ?1 AND status IN ('queued', 'streaming')",
        [progress.chat_seen],
        |row| row.get(0),
    )?;
    let settled = first_open.map_or(top, |open| open - 1);
    if settled > progress.chat_seen {
        for (key, totals) in chat_between(tx, progress.chat_seen, settled)? {
            progress.logs.chat.entry(key).or_default().add(&totals);
        }
        progress.chat_seen = settled;
    }
    let mut logs = progress.logs.clone();
    if top > settled {
        for (key, totals) in chat_between(tx, settled, top)? {
            logs.chat.entry(key).or_default().add(&totals);
        }
    }
    Ok(logs)
}

/// Totals of gateway rows with `after < id <= upto`, by route and outcome: one aggregate
/// query over a range of the primary key.
fn gateway_between(
    tx: &Transaction<'_>,
    after: i64,
    upto: i64,
) -> anyhow::Result<Vec<((String, String), GatewayTotals)>> {
    let le = |column: &str| {
        (BUCKETS.iter())
            .map(|bound| format!("COALESCE(SUM({column} <= {}), 0)", bound * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "SELECT route, outcome, COUNT(*),
                COALESCE(SUM(duration_ms), 0.0), {},
                COUNT(ttfb_ms), COALESCE(SUM(ttfb_ms), 0.0), {},
                COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0),
                COALESCE(SUM(cost), 0.0)
         FROM gateway_log WHERE id > ?1 AND id <= ?2
         GROUP BY route, outcome",
        le("duration_ms"),
        le("ttfb_ms"),
    );
    let mut stmt = tx.prepare(&sql)?;
    let n = BUCKETS.len();
    let rows = stmt.query_map([after, upto], |row| {
        let count = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0).cast_unsigned());
        let seconds = |i: usize| row.get::<_, f64>(i).map(|ms| ms / 1000.0);
        let tally = |start: usize| -> rusqlite::Result<Tally> {
            Ok(Tally {
                count: count(start)?,
                sum: seconds(start + 1)?,
                le: (0..n)
                    .map(|b| count(start + 2 + b))
                    .collect::<Result<_, _>>()?,
            })
        };
        let after_ttfb = 2 + 2 * (n + 2);
        Ok((
            (row.get(0)?, row.get(1)?),
            GatewayTotals {
                count: count(2)?,
                duration: tally(2)?,
                ttfb: tally(2 + n + 2)?,
                tokens_in: count(after_ttfb)?,
                tokens_out: count(after_ttfb + 1)?,
                cost: row.get(after_ttfb + 2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Totals of ended assistant answers with `after < rowid <= upto`, by provider (the part of
/// the session's `PROVIDER/MODEL` before the slash) and status. Copies made when a session
/// is forked are not counted again, as in `usage.report`.
fn chat_between(
    tx: &Transaction<'_>,
    after: i64,
    upto: i64,
) -> anyhow::Result<Vec<((String, String), ChatTotals)>> {
    let mut stmt = tx.prepare(
        "SELECT CASE WHEN instr(s.model, '/') > 0
                     THEN substr(s.model, 1, instr(s.model, '/') - 1)
                     ELSE COALESCE(s.model, 'unknown') END AS provider,
                m.status, COUNT(*),
                COALESCE(SUM(json_extract(m.usage, '$.input')), 0),
                COALESCE(SUM(json_extract(m.usage, '$.output')), 0),
                COALESCE(SUM(json_extract(m.usage, '$.cost_usd')), 0.0)
         FROM messages m LEFT JOIN sessions s ON s.id = m.session
         WHERE m.rowid > ?1 AND m.rowid <= ?2 AND m.role = 'assistant'
           AND m.status NOT IN ('queued', 'streaming')
           AND COALESCE(json_extract(m.usage, '$.copied'), 0) = 0
         GROUP BY provider, m.status",
    )?;
    let rows = stmt.query_map([after, upto], |row| {
        let count = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0).cast_unsigned());
        Ok((
            (row.get(0)?, row.get(1)?),
            ChatTotals {
                answers: count(2)?,
                tokens_in: count(3)?,
                tokens_out: count(4)?,
                cost: row.get(5)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        crate::store::Store::open(&path, dir.path()).unwrap();
        (dir, path)
    }

    fn log(db: &Path, route: &str, outcome: &str, duration_ms: f64, ttfb_ms: Option<f64>) {
        let conn = Connection::open(db).unwrap();
        conn.execute(
            "INSERT INTO gateway_log (ts, token, route, model, status, ttfb_ms, duration_ms,
                                      tokens_in, tokens_out, cost, outcome)
             VALUES (1, 't', ?1, 'm', 200, ?2, ?3, 10, 20, 0.5, ?4)",
            rusqlite::params![route, ttfb_ms, duration_ms, outcome],
        )
        .unwrap();
    }

    fn message(db: &Path, id: &str, status: &str) {
        let conn = Connection::open(db).unwrap();
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, model, cwd, created_at) VALUES ('s', 'mock/m', '/', 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (id, session, role, status, parts, usage, created_at)
             VALUES (?1, 's', 'assistant', ?2, '[]', '{\"input\": 3, \"output\": 4}', 1)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status",
            [id, status],
        )
        .unwrap();
    }

    fn key(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn the_gateway_log_is_totalled_incrementally_into_counters_and_buckets() {
        let (_dir, db) = db();
        let first = read_logs(&db).unwrap();
        assert_eq!(
            first.gateway,
            GatewayTotals::seeded(),
            "a zero series before any request"
        );
        log(&db, "local", "ok", 40.0, Some(3.0));
        log(&db, "local", "ok", 2000.0, None);
        log(&db, "provider", "upstream_error", 700_000.0, Some(1.0));
        let logs = read_logs(&db).unwrap();
        let local = &logs.gateway[&key("local", "ok")];
        assert_eq!(local.count, 2);
        assert_eq!(local.tokens_out, 40);
        assert!((local.duration.sum - 2.04).abs() < 1e-9);
        assert_eq!(local.ttfb.count, 1);
        let buckets = local.duration.buckets();
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 2);
        assert_eq!(buckets[3], (0.05, 1), "40 ms is in the 50 ms bucket");
        let slow = &logs.gateway[&key("provider", "upstream_error")];
        assert_eq!(slow.duration.buckets().last(), Some(&(f64::INFINITY, 1)));
        // Nothing new: the same totals, not twice them.
        assert_eq!(read_logs(&db).unwrap(), logs);
        log(&db, "local", "ok", 1.0, Some(1.0));
        assert_eq!(
            read_logs(&db).unwrap().gateway[&key("local", "ok")].count,
            3
        );
    }

    #[test]
    fn chat_answers_count_once_they_end_and_never_twice() {
        let (_dir, db) = db();
        message(&db, "a", "complete");
        message(&db, "b", "streaming");
        message(&db, "c", "error");
        let logs = read_logs(&db).unwrap();
        assert_eq!(logs.chat[&key("mock", "complete")].answers, 1);
        assert_eq!(logs.chat[&key("mock", "error")].answers, 1);
        assert_eq!(logs.chat[&key("mock", "complete")].tokens_out, 4);
        assert!(!logs.chat.contains_key(&key("mock", "streaming")));
        assert_eq!(
            read_logs(&db).unwrap(),
            logs,
            "counted again after the open one, not added"
        );
        message(&db, "b", "complete");
        let logs = read_logs(&db).unwrap();
        assert_eq!(logs.chat[&key("mock", "complete")].answers, 2);
        assert_eq!(logs.chat[&key("mock", "error")].answers, 1);
        assert_eq!(read_logs(&db).unwrap(), logs);
    }

    #[test]
    fn the_exposition_is_openmetrics_with_every_family() {
        let view = View {
            runs: vec![("running", 1), ("failed", 0)],
            queue_waiting: 2,
            gpus: vec![GpuInfo {
                index: 0,
                name: "Fake GPU 0".into(),
                uuid: "u".into(),
                fake: true,
                util_pct: Some(50),
                mem_used_mib: 1,
                mem_total_mib: 2,
                temp_c: Some(40),
                power_w: Some(100.5),
                power_limit_w: None,
                fan_pct: None,
                sm_clock_mhz: None,
                mem_clock_mhz: None,
                processes: Vec::new(),
                assigned_to: None,
                model: None,
            }],
            models: vec![ModelView {
                name: "qwen".into(),
                state: ModelState::Ready,
                requests: 3,
                serving: Some(ServingStats {
                    ttft_p50_ms: Some(250.0),
                    ..ServingStats::default()
                }),
            }],
            alerts: BTreeMap::from([(("nan", "open"), 1)]),
        };
        let logs = Logs {
            gateway: GatewayTotals::seeded(),
            chat: BTreeMap::new(),
        };
        let text = encode(&view, Some(&logs)).unwrap();
        for line in [
            "reagent_runs{status=\"running\"} 1.0",
            "reagent_queue_waiting 2.0",
            "reagent_gpu_utilization_ratio{gpu=\"0\",name=\"Fake GPU 0\",fake=\"true\"} 0.5",
            "reagent_gpu_memory_total_bytes{gpu=\"0\",name=\"Fake GPU 0\",fake=\"true\"} 2097152.0",
            "# UNIT reagent_gpu_power_watts watts",
            "reagent_model_state{model=\"qwen\",state=\"ready\"} 1.0",
            "reagent_model_state{model=\"qwen\",state=\"failed\"} 0.0",
            "reagent_model_requests_total{model=\"qwen\"} 3",
            "reagent_model_time_to_first_token_p50_seconds{model=\"qwen\"} 0.25",
            "reagent_alerts{rule=\"nan\",status=\"open\"} 1.0",
            "reagent_gateway_requests_total{route=\"local\",outcome=\"ok\"} 0",
            "reagent_gateway_request_duration_seconds_bucket{le=\"+Inf\",route=\"local\",outcome=\"ok\"} 0",
            "reagent_store_read_success 1.0",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("reagent_gpu_power_limit"),
            "no sample, no family"
        );
        assert!(text.ends_with("# EOF\n"));
        let (rest, _) = nom_openmetrics::parser::openmetrics(&text).unwrap();
        assert_eq!(rest, "");
    }
}
