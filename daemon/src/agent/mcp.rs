//! MCP servers: tools for a session's model from outside reagent. Each `[mcp.NAME]` is a
//! program the daemon starts on first use and speaks MCP to over its stdin and stdout; its
//! tools reach models as `NAME__tool`. What such a tool does is unknown, so every call asks
//! first (`acts`), and whatever a server does wrong stays with it: one that will not start,
//! hangs or dies costs its own tools, never another server's nor the daemon's.
//!
//! - Servers start on the first listing or call, all at once; one start at a time per server,
//!   so callers that arrive during a start wait for it instead of starting a second copy.
//! - A call past its server's `timeout_secs` is abandoned (the server is told it is
//!   cancelled) and the model told so. The server may be stuck, so it is restarted on its next
//!   use; a hung server never holds up calls to the others.
//! - A server that dies during a call is restarted once and the call retried; if it dies
//!   again, it is `Failed` and the model gets the error. A `Failed` server lists no tools, so
//!   later turns do not pay for starting it again, but a call that still names it (a model
//!   holding an earlier listing) tries once more, so a passing fault does not lose it for good.
//! - Each server runs in a process group of its own, with its stderr read into the daemon's
//!   log at debug level (never onto the daemon's terminal) and its last lines kept for errors.
//!   Stopping it follows MCP's stdio shutdown (close its stdin, then SIGTERM, then SIGKILL),
//!   then kills its group, so helpers it started (an `npx` server's `node`) go too. A server
//!   whose transport is dropped without that (the daemon's runtime ending) has its group
//!   killed at once.
//! - The config's `env` values may be secrets: every error and log line has them replaced by
//!   their key.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use reagent::agent::{McpServerInfo, McpState, ToolInfo};
use reagent::config::McpServerConfig;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, JsonObject};
use rmcp::model::{ResourceContents, Tool};
use rmcp::service::{RunningService, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::{TokioChildProcess, Transport};
use rmcp::{RoleClient, ServiceError, ServiceExt as _};
use rustix::process::Signal;
use serde_json::Value;
use tokio::io::AsyncReadExt as _;
use tokio::process::ChildStderr;
use tokio::sync::watch;

/// Between a server's name and its tool's in the names models see: `files__read`.
const SEPARATOR: &str = "__";
/// The least time a start (spawn, handshake, tool listing) is given: `npx` and `uvx` fetch
/// the server on their first run. A longer `timeout_secs` gives it that.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`McpServers::shutdown`] waits for the servers to go. MCP's stdio shutdown gives
/// a server that ignores its closed stdin 3 s, and 3 s more after SIGTERM, before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of a server's stderr kept for its errors.
const TAIL_LINES: usize = 6;
/// Bytes of one stderr line kept; the rest of a longer line is dropped.
const LINE_BYTES: usize = 1000;
/// How long an error waits for the rest of a dead server's stderr, which may trail the end
/// of its stdout by a little.
const TAIL_WAIT: Duration = Duration::from_millis(500);
/// Why nothing starts after [`McpServers::shutdown`].
const SHUT_DOWN: &str = "it was stopped: the daemon is shutting down";
/// `env` values shorter than this are not scrubbed: replacing every `1` or `yes` would
/// garble errors, and a secret is longer.
const MIN_SCRUBBED: usize = 4;

/// The configured MCP servers and their clients. The daemon holds one in an `Arc`; every
/// method takes `&self`, and calls to different servers run concurrently.
///
/// Dropping it stops every server (in the background, as rmcp closes each transport); a
/// daemon that is going away calls [`McpServers::shutdown`] first to wait for them.
pub struct McpServers {
    servers: BTreeMap<String, Server>,
}

impl McpServers {
    /// From the config's `[mcp.*]` tables. Starts nothing: a server starts on first use, so
    /// a daemon whose sessions never use tools never runs them.
    pub fn new(config: &BTreeMap<String, McpServerConfig>, secret_vars: &[String]) -> Self {
        let servers = config
            .iter()
            .map(|(name, config)| {
                // The daemon's secrets (provider keys, webhooks) are not a server's business,
                // unless its own `env` gives it one.
                let hidden = (secret_vars.iter())
                    .filter(|var| !config.env.contains_key(*var))
                    .cloned()
                    .collect();
                (name.clone(), Server::new(name, config, hidden))
            })
            .collect();
        Self { servers }
    }

    /// Every server's tools, for a model: named `NAME__tool`, each acting (a call asks
    /// first). Servers not running yet are started first, all at once; one that fails to
    /// start is `Failed` with the reason and adds nothing, without holding up the others. A
    /// `Failed` server is not started again here (see the module's doc).
    pub async fn tools(&self) -> Vec<ToolInfo> {
        let clients = join_all(self.servers.values().map(|server| server.client(false))).await;
        clients
            .into_iter()
            .flatten()
            .flat_map(|client| client.tools.clone())
            .collect()
    }

    /// Calls `NAME__tool` with `arguments` (a JSON object, or null for none), starting its
    /// server if needed. `Ok` is the result's text, `Err` what went wrong, in words for the
    /// model: an unknown server or tool, a timeout, the server's own error, a server that
    /// died twice.
    pub async fn call(&self, qualified: &str, arguments: Value) -> Result<String, String> {
        let (server, tool) = self.find(qualified)?;
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            Value::Null => None,
            _ => {
                return Err(format!(
                    "the arguments of `{qualified}` must be a JSON object"
                ));
            }
        };
        server.call(qualified, tool, arguments).await
    }

    /// Each server as `reagent mcp` shows it: its state, tools, restarts and last error.
    pub fn infos(&self) -> Vec<McpServerInfo> {
        self.servers.values().map(Server::info).collect()
    }

    /// Stops every server and waits (up to 10 s) for them to be gone; nothing starts after
    /// it. For the daemon's shutdown.
    pub async fn shutdown(&self) {
        let clients: Vec<Arc<Client>> = self
            .servers
            .values()
            .filter_map(|server| {
                let mut inner = server.lock();
                inner.closed = true;
                inner.client.take()
            })
            .collect();
        for client in &clients {
            client.stop();
        }
        let gone = join_all(clients.iter().map(|client| client.gone()));
        if tokio::time::timeout(STOP_TIMEOUT, gone).await.is_err() {
            tracing::warn!(
                "MCP servers still stopping after {} s",
                STOP_TIMEOUT.as_secs()
            );
        }
    }

    /// The server and tool `qualified` names. Server names may hold `__` too, so the longest
    /// configured name that prefixes it wins.
    fn find<'a>(&self, qualified: &'a str) -> Result<(&Server, &'a str), String> {
        let found = self
            .servers
            .values()
            .filter_map(|server| {
                let tool = qualified
                    .strip_prefix(server.name.as_str())?
                    .strip_prefix(SEPARATOR)?;
                (!tool.is_empty()).then_some((server, tool))
            })
            .max_by_key(|(server, _)| server.name.len());
        found.ok_or_else(|| {
            let names: Vec<&str> = self.servers.keys().map(String::as_str).collect();
            format!(
                "no MCP server has the tool `{qualified}`: MCP tools are named SERVER__tool, \
                 and the servers are {}",
                if names.is_empty() {
                    "none (no [mcp.NAME] in the config)".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
    }
}

/// One configured server.
struct Server {
    name: String,
    config: McpServerConfig,
    /// The daemon's secret variables, removed from the server's environment.
    hidden: Vec<String>,
    /// Replaces the config's `env` values in errors and log lines.
    scrub: Scrub,
    /// Held across a start, so there is one at a time; only this server's users wait on it.
    gate: tokio::sync::Mutex<()>,
    /// Everything else; locked only to read or swap, never across an `.await`.
    inner: Mutex<Inner>,
}

/// A server's state between uses.
struct Inner {
    /// The client of the latest start, until a failure or `shutdown` takes it.
    client: Option<Arc<Client>>,
    /// `Running` once a start succeeded (shown as `Idle` while its client is dead or stuck),
    /// `Failed` after a failed start or a second death in one call.
    state: McpState,
    /// What went wrong last, scrubbed; kept after a restart for `reagent mcp`.
    error: Option<String>,
    /// Starts tried; all but the first are restarts.
    starts: u32,
    /// Set by `shutdown`: nothing starts again.
    closed: bool,
}

impl Server {
    fn new(name: &str, config: &McpServerConfig, hidden: Vec<String>) -> Self {
        Self {
            name: name.to_string(),
            config: config.clone(),
            hidden,
            scrub: Scrub::new(&config.env),
            gate: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                client: None,
                state: McpState::Idle,
                error: None,
                starts: 0,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long one call may take. The config refuses what `Duration` cannot hold; a huge
    /// value is as good as none.
    fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.config.timeout_secs).unwrap_or(Duration::MAX)
    }

    fn info(&self) -> McpServerInfo {
        let inner = self.lock();
        let alive = inner.client.as_ref().is_some_and(|client| client.alive());
        let state = match inner.state {
            McpState::Running if !alive => McpState::Idle,
            state => state,
        };
        let command = std::iter::once(&self.config.command).chain(&self.config.args);
        McpServerInfo {
            name: self.name.clone(),
            command: command.cloned().collect(),
            state,
            tools: inner
                .client
                .as_ref()
                .map(|client| client.tools.clone())
                .unwrap_or_default(),
            error: inner.error.clone(),
            restarts: inner.starts.saturating_sub(1),
        }
    }

    /// The running client, (re)starting the server when it has none that works: never
    /// started, dead, or stuck after a timeout. A `Failed` server is tried again only with
    /// `retry_failed`.
    async fn client(&self, retry_failed: bool) -> Result<Arc<Client>, String> {
        if let Some(client) = self.usable(retry_failed)? {
            return Ok(client);
        }
        let _gate = self.gate.lock().await;
        // Someone else may have started it while this caller waited.
        if let Some(client) = self.usable(retry_failed)? {
            return Ok(client);
        }
        let (old, start) = {
            let mut inner = self.lock();
            inner.starts += 1;
            (inner.client.take(), inner.starts)
        };
        if let Some(old) = old {
            tracing::info!(mcp = %self.name, "restarting");
            old.stop();
        }
        let started = self.start(start).await;
        let mut inner = self.lock();
        if inner.closed {
            if let Ok(client) = &started {
                client.stop();
            }
            return Err(SHUT_DOWN.into());
        }
        match started {
            Ok(client) => {
                tracing::info!(mcp = %self.name, tools = client.tools.len(), "started");
                inner.state = McpState::Running;
                inner.client = Some(Arc::clone(&client));
                Ok(client)
            }
            Err(err) => {
                tracing::warn!(mcp = %self.name, "cannot start: {err}");
                inner.state = McpState::Failed;
                inner.error = Some(err.clone());
                Err(err)
            }
        }
    }

    /// The client when it works; `None` when the server needs a start; `Err` when it must
    /// not start (shut down, or `Failed` without `retry_failed`).
    fn usable(&self, retry_failed: bool) -> Result<Option<Arc<Client>>, String> {
        let inner = self.lock();
        if inner.closed {
            return Err(SHUT_DOWN.into());
        }
        if let Some(client) = inner.client.as_ref().filter(|client| client.alive()) {
            return Ok(Some(Arc::clone(client)));
        }
        if inner.state == McpState::Failed && !retry_failed {
            return Err(inner.error.clone().unwrap_or_default());
        }
        Ok(None)
    }

    /// Spawns the server, does the MCP handshake and lists its tools, within the start
    /// timeout. An error says why, with the end of the server's stderr.
    async fn start(&self, start: u32) -> Result<Arc<Client>, String> {
        let config = &self.config;
        let mut command = tokio::process::Command::new(&config.command);
        command
            .args(&config.args)
            .envs(&config.env)
            .kill_on_drop(true)
            .process_group(0);
        for var in &self.hidden {
            command.env_remove(var);
        }
        if let Some(cwd) = &config.cwd {
            command.current_dir(cwd);
        }
        let (process, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| self.spawn_error(err))?;
        let tail = Arc::new(Tail::new());
        if let Some(stderr) = stderr {
            let reader = read_stderr(stderr, self.name.clone(), self.scrub.clone(), tail.clone());
            tokio::spawn(reader);
        }
        let (gone_tx, gone) = watch::channel(());
        let transport = Grouped {
            group: process.id(),
            process,
            _gone: gone_tx,
        };
        let limit = START_TIMEOUT.max(self.timeout());
        let handshake = async {
            let service =
                ().serve(transport)
                    .await
                    .map_err(|err| format!("no MCP handshake: {err}"))?;
            let tools = service
                .list_all_tools()
                .await
                .map_err(|err| format!("cannot list its tools: {err}"))?;
            Ok::<_, String>((service, tools))
        };
        // On any error the transport is dropped here, which kills the server's group.
        let (service, tools) = match tokio::time::timeout(limit, handshake).await {
            Ok(Ok(started)) => started,
            Ok(Err(err)) => return Err(self.with_tail(err, &tail).await),
            Err(_) => {
                let err = format!("it did not start within {} s", limit.as_secs_f64());
                return Err(self.with_tail(err, &tail).await);
            }
        };
        Ok(Arc::new(Client {
            tools: tools.iter().map(|tool| self.tool_info(tool)).collect(),
            service,
            start,
            retired: AtomicBool::new(false),
            stderr: tail,
            gone,
        }))
    }

    /// Why the program could not be run, naming the command (never an `env` value).
    fn spawn_error(&self, err: std::io::Error) -> String {
        let command = &self.config.command;
        if let Some(cwd) = self.config.cwd.as_ref().filter(|cwd| !cwd.is_dir()) {
            return format!(
                "cannot start `{command}`: its cwd {} is not a folder",
                cwd.display()
            );
        }
        self.scrub
            .apply(&format!("cannot start `{command}`: {err}"))
    }

    fn tool_info(&self, tool: &Tool) -> ToolInfo {
        let description = tool.description.as_deref().or(tool.title.as_deref());
        ToolInfo {
            name: format!("{}{SEPARATOR}{}", self.name, tool.name),
            description: description.unwrap_or_default().to_string(),
            schema: Value::Object(tool.input_schema.as_ref().clone()),
            source: self.name.clone(),
            acts: true,
        }
    }

    /// `what`, followed by the end of the server's stderr once it has ended (or after a
    /// short wait), scrubbed.
    async fn with_tail(&self, what: String, tail: &Tail) -> String {
        let mut ended = tail.ended.subscribe();
        let _ = tokio::time::timeout(TAIL_WAIT, ended.wait_for(|ended| *ended)).await;
        let lines = tail.lines();
        let text = if lines.is_empty() {
            what
        } else {
            format!("{what}; its stderr ended with: {}", lines.join(" | "))
        };
        self.scrub.apply(&text)
    }

    /// One call, restarting the server once if it dies during it.
    async fn call(
        &self,
        qualified: &str,
        tool: &str,
        arguments: Option<JsonObject>,
    ) -> Result<String, String> {
        let timeout = self.timeout();
        let mut restarted = false;
        loop {
            let client = self.client(true).await.map_err(|err| {
                format!(
                    "`{qualified}` cannot run: the MCP server `{}` does not start: {err}",
                    self.name
                )
            })?;
            if !client.tools.iter().any(|info| info.name == qualified) {
                let names: Vec<&str> = client.tools.iter().map(|t| t.name.as_str()).collect();
                return Err(format!(
                    "the MCP server `{}` has no tool `{tool}`; its tools are {}",
                    self.name,
                    names.join(", ")
                ));
            }
            let mut params = CallToolRequestParams::new(tool.to_string());
            if let Some(arguments) = &arguments {
                params = params.with_arguments(arguments.clone());
            }
            // Dropping the call at the timeout sends the server `notifications/cancelled`.
            let answer = tokio::time::timeout(timeout, client.service.call_tool(params)).await;
            let err = match answer {
                Ok(Ok(result)) => return self.result(qualified, &result),
                Ok(Err(err)) => err,
                Err(_) => {
                    let err = format!(
                        "`{qualified}` timed out after {} s",
                        self.config.timeout_secs
                    );
                    tracing::warn!(mcp = %self.name, "{err}; restarting it on its next use");
                    client.retire();
                    self.lock().error = Some(err.clone());
                    return Err(err);
                }
            };
            if !matches!(
                err,
                ServiceError::TransportClosed | ServiceError::TransportSend(_)
            ) {
                let message = match err {
                    ServiceError::McpError(err) => err.message.to_string(),
                    err => err.to_string(),
                };
                return Err(self
                    .scrub
                    .apply(&format!("`{qualified}` failed: {message}")));
            }
            // The server died (or was stopped) during the call.
            client.retire();
            let died = format!("the MCP server `{}` exited during `{qualified}`", self.name);
            let died = self.with_tail(died, &client.stderr).await;
            if restarted {
                self.fail(&client, died.clone());
                return Err(format!(
                    "{died}; it had been restarted once for this call, and is now failed"
                ));
            }
            tracing::warn!(mcp = %self.name, "{died}; restarting it and calling again");
            self.lock().error = Some(died);
            restarted = true;
        }
    }

    /// Marks the server `Failed`, unless someone has started it again since `client`.
    fn fail(&self, client: &Client, why: String) {
        let mut inner = self.lock();
        let current = inner.client.as_ref().map(|c| c.start);
        if current.is_some_and(|start| start != client.start) {
            return;
        }
        tracing::warn!(mcp = %self.name, "failed: {why}");
        inner.client = None;
        inner.state = McpState::Failed;
        inner.error = Some(why);
    }

    /// A tool's result as text for the model: `Err` when the server says the call failed.
    fn result(&self, qualified: &str, result: &CallToolResult) -> Result<String, String> {
        let text = result_text(result);
        if result.is_error != Some(true) {
            return Ok(text);
        }
        Err(self.scrub.apply(&if text.is_empty() {
            format!("`{qualified}` failed (the server gave no reason)")
        } else {
            text
        }))
    }
}

/// The text of a tool's result: its text contents joined by newlines, other contents
/// summarized (`[image image/png]`); with no contents, its structured content as JSON.
fn result_text(result: &CallToolResult) -> String {
    if result.content.is_empty() {
        let structured = result.structured_content.as_ref();
        return structured.map(Value::to_string).unwrap_or_default();
    }
    let parts: Vec<String> = result.content.iter().map(content_text).collect();
    parts.join("\n")
}

fn content_text(content: &ContentBlock) -> String {
    match content {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!("[image {}]", image.mime_type),
        ContentBlock::Audio(audio) => format!("[audio {}]", audio.mime_type),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => {
                format!("[resource {uri}]\n{text}")
            }
            ResourceContents::BlobResourceContents { uri, mime_type, .. } => match mime_type {
                Some(mime_type) => format!("[resource {uri} {mime_type}]"),
                None => format!("[resource {uri}]"),
            },
            _ => "[resource]".into(),
        },
        ContentBlock::ResourceLink(link) => format!("[resource link {}]", link.uri),
        _ => "[content]".into(),
    }
}

/// One start of a server: its rmcp client and what came with it.
struct Client {
    /// Dropping it cancels rmcp's task, which closes the transport (so stops the server).
    service: RunningService<RoleClient, ()>,
    /// Which start made it ([`Inner::starts`] then).
    start: u32,
    /// Its tools as models see them.
    tools: Vec<ToolInfo>,
    /// Set when a call timed out (the server may be stuck) or saw it die: its next use
    /// starts another.
    retired: AtomicBool,
    /// The end of the server's stderr.
    stderr: Arc<Tail>,
    /// Closed once the transport, and so the server, is gone.
    gone: watch::Receiver<()>,
}

impl Client {
    /// Whether calls may use it: not retired, and rmcp's task still reads the server.
    fn alive(&self) -> bool {
        !self.retired.load(Ordering::Relaxed)
            && !self.service.is_closed()
            && !self.service.is_transport_closed()
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Stops the server without waiting: rmcp's task closes the transport in the background.
    fn stop(&self) {
        self.retire();
        self.service.cancellation_token().cancel();
    }

    /// Returns once the server's transport is gone (its process and group killed).
    async fn gone(&self) {
        let mut gone = self.gone.clone();
        // Nothing is ever sent: this returns when the sender is dropped.
        let _ = gone.changed().await;
    }
}

/// The server's process as rmcp's transport, plus what rmcp does not do: the server leads a
/// process group of its own, killed when the transport closes or is dropped, so helpers it
/// started do not outlive it. rmcp's own child handling closes stdin, then SIGTERMs and
/// SIGKILLs the server itself.
struct Grouped {
    process: TokioChildProcess,
    /// The group's id (the server's pid), until the group is killed.
    group: Option<u32>,
    /// Dropped with the transport, which tells [`Client::gone`].
    _gone: watch::Sender<()>,
}

impl Grouped {
    fn kill_group(&mut self) {
        if let Some(group) = self.group.take() {
            // Mostly the group is empty by now (ESRCH): nothing to report.
            let _ = crate::process::signal_group(group, Signal::KILL);
        }
    }
}

impl Transport<RoleClient> for Grouped {
    type Error = std::io::Error;

    /// What rmcp's errors call it (by default, this type's path).
    fn name() -> std::borrow::Cow<'static, str> {
        "stdio".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.process.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.process.receive()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let closed = self.process.close().await;
        self.kill_group();
        closed
    }
}

impl Drop for Grouped {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// The last lines of a server's stderr, for its errors.
struct Tail {
    lines: Mutex<VecDeque<String>>,
    /// `true` once the stderr has ended.
    ended: watch::Sender<bool>,
}

impl Tail {
    fn new() -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            ended: watch::Sender::new(false),
        }
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

/// Copies a server's stderr into the daemon's log (debug level: servers log every request)
/// and its tail, a line at a time, each cut to [`LINE_BYTES`] and scrubbed.
async fn read_stderr(mut stderr: ChildStderr, name: String, scrub: Scrub, tail: Arc<Tail>) {
    let mut buffer = vec![0; 8192];
    let mut line = Vec::new();
    let emit = |line: &mut Vec<u8>| {
        let text = scrub.apply(String::from_utf8_lossy(line).trim_end());
        line.clear();
        if !text.is_empty() {
            tracing::debug!(mcp = %name, "stderr: {text}");
            tail.push(text);
        }
    };
    while let Ok(read) = stderr.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                emit(&mut line);
            } else if line.len() < LINE_BYTES {
                line.push(byte);
            }
        }
    }
    emit(&mut line);
    tail.ended.send_replace(true);
}

/// Replaces a server's `env` values with `[env KEY]`: they may be secrets, and errors and
/// log lines may quote them (a server that prints its settings when it fails).
#[derive(Clone)]
struct Scrub(Arc<Vec<(String, String)>>);

impl Scrub {
    fn new(env: &BTreeMap<String, String>) -> Self {
        let mut pairs: Vec<(String, String)> = env
            .iter()
            .filter(|(_, value)| value.chars().count() >= MIN_SCRUBBED)
            .map(|(key, value)| (value.clone(), format!("[env {key}]")))
            .collect();
        // A value holding another is replaced first, whole.
        pairs.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        Self(Arc::new(pairs))
    }

    fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_string(), |text, (value, key)| {
            text.replace(value, key)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use serde_json::json;

    use super::*;

    /// The stand-in server the tests start.
    const STANDIN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/standin/mcp_server.py"
    );
    /// How long any test may take in all, on a loaded machine.
    const BOUND: Duration = Duration::from_secs(180);

    /// A Python with the `mcp` package: `REAGENT_MCP_PYTHON`, else the one
    /// `scripts/mcp-python.sh` makes in the default cache; `None` (with the reason said) when
    /// neither is there. With the variable set, a missing Python fails the test.
    fn python() -> Option<PathBuf> {
        if let Some(python) = std::env::var_os("REAGENT_MCP_PYTHON").filter(|p| !p.is_empty()) {
            let python = PathBuf::from(python);
            assert!(
                python.is_file(),
                "REAGENT_MCP_PYTHON is set, yet {} is missing",
                python.display()
            );
            return Some(python);
        }
        // The version the script pins names its folder.
        let script = include_str!("../../../scripts/mcp-python.sh");
        let version = script
            .lines()
            .find_map(|line| line.strip_prefix("version="))
            .expect("scripts/mcp-python.sh pins a version");
        let cache = std::env::var_os("REAGENT_TEST_CACHE")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/reagent-test"))
            })
            .unwrap_or_default();
        let python = cache.join(format!("mcp-python-{version}/venv/bin/python"));
        if python.is_file() {
            return Some(python);
        }
        // Said on the terminal even under the harness's capture, which takes only
        // `print!`/`eprint!`, so a skip is seen in a plain `cargo test`.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: no Python with the `mcp` package ({} is missing). Make it with \
             `scripts/mcp-python.sh` (python3 with pip; under a minute, cached afterwards) \
             and set REAGENT_MCP_PYTHON to the path it prints, or leave it unset for the \
             default cache",
            python.display()
        );
        None
    }

    fn standin(python: &Path, timeout_secs: f64, extra: &[&str]) -> McpServerConfig {
        let mut args = vec![STANDIN.to_string()];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        McpServerConfig {
            command: python.to_string_lossy().into_owned(),
            args,
            env: BTreeMap::new(),
            cwd: None,
            timeout_secs,
        }
    }

    fn servers(list: Vec<(&str, McpServerConfig)>) -> McpServers {
        let config = list
            .into_iter()
            .map(|(name, config)| (name.to_string(), config))
            .collect();
        McpServers::new(&config, &[])
    }

    fn info(servers: &McpServers, name: &str) -> McpServerInfo {
        let infos = servers.infos();
        let found = infos.into_iter().find(|info| info.name == name);
        found.expect("the server is listed")
    }

    /// Runs a test's body within [`BOUND`], so a hang fails instead of stalling the suite.
    async fn bounded(body: impl Future<Output = ()>) {
        tokio::time::timeout(BOUND, body)
            .await
            .expect("the test ends in time");
    }

    #[tokio::test]
    async fn tools_are_listed_by_server_and_called() {
        let Some(python) = python() else { return };
        bounded(async {
            let servers = servers(vec![("t", standin(&python, 60.0, &[]))]);
            assert_eq!(info(&servers, "t").state, McpState::Idle);
            let tools = servers.tools().await;
            let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            names.sort();
            assert_eq!(
                names,
                ["t__add", "t__crash", "t__echo", "t__getenv", "t__hang"]
            );
            for tool in &tools {
                assert_eq!(tool.source, "t");
                assert!(tool.acts, "{}", tool.name);
                assert!(!tool.description.is_empty(), "{}", tool.name);
                assert_eq!(tool.schema["type"], "object", "{}", tool.name);
            }
            let add = tools.iter().find(|t| t.name == "t__add").expect("add");
            assert!(add.schema["properties"]["a"].is_object(), "{}", add.schema);

            assert_eq!(
                servers.call("t__add", json!({"a": 2, "b": 3})).await,
                Ok("5".into())
            );
            let echo = servers.call("t__echo", json!({"text": "héllo"})).await;
            assert_eq!(echo, Ok("héllo".into()));

            let err = servers.call("t__nope", json!({})).await.unwrap_err();
            assert!(
                err.contains("no tool `nope`") && err.contains("t__echo"),
                "{err}"
            );
            let err = servers.call("x__echo", json!({})).await.unwrap_err();
            assert!(err.contains("`x__echo`") && err.contains("are t"), "{err}");
            let err = servers.call("t__echo", json!([1])).await.unwrap_err();
            assert!(err.contains("JSON object"), "{err}");
            // The server's own refusal (a missing argument) comes back as an error.
            let err = servers.call("t__add", json!({"a": 2})).await.unwrap_err();
            assert!(!err.is_empty());

            let t = info(&servers, "t");
            assert_eq!(t.state, McpState::Running);
            assert_eq!((t.restarts, t.tools.len(), t.error), (0, 5, None));
            assert_eq!(t.command, [python.to_string_lossy().as_ref(), STANDIN]);
            servers.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_call_past_its_timeout_is_abandoned_without_holding_up_others() {
        let Some(python) = python() else { return };
        bounded(async {
            let servers = servers(vec![
                ("t", standin(&python, 1.0, &[])),
                ("u", standin(&python, 60.0, &[])),
            ]);
            assert_eq!(servers.tools().await.len(), 10, "{:?}", servers.infos());

            let began = Instant::now();
            let hang = async {
                let answer = servers.call("t__hang", json!({"seconds": 120})).await;
                (answer, began.elapsed())
            };
            let echo = async {
                let answer = servers.call("u__echo", json!({"text": "meanwhile"})).await;
                (answer, began.elapsed())
            };
            let ((hung, hung_after), (echoed, echoed_after)) = tokio::join!(hang, echo);
            assert_eq!(hung, Err("`t__hang` timed out after 1 s".into()));
            assert!(hung_after >= Duration::from_secs(1), "{hung_after:?}");
            assert!(hung_after < Duration::from_secs(5), "{hung_after:?}");
            assert_eq!(echoed, Ok("meanwhile".into()));
            assert!(echoed_after < hung_after, "{echoed_after:?} {hung_after:?}");
            assert_eq!(info(&servers, "t").state, McpState::Idle);

            // The stuck server (its whole event loop sleeps) is replaced on its next use.
            let again = servers.call("t__echo", json!({"text": "again"})).await;
            assert_eq!(again, Ok("again".into()));
            let t = info(&servers, "t");
            assert_eq!((t.state, t.restarts), (McpState::Running, 1));
            assert!(t.error.is_some_and(|e| e.contains("timed out")));
            assert_eq!(info(&servers, "u").restarts, 0);
            servers.shutdown().await;
        })
        .await;
    }

    /// Decided: a server that dies during a call is restarted once and the call retried; a
    /// second death makes it `Failed`, which `tools()` leaves alone, but a call naming it
    /// tries again (and here works, as only `crash` kills it).
    #[tokio::test]
    async fn a_server_dying_in_a_call_is_restarted_once_then_failed() {
        let Some(python) = python() else { return };
        bounded(async {
            let servers = servers(vec![("t", standin(&python, 60.0, &[]))]);
            assert_eq!(servers.tools().await.len(), 5);

            let err = servers.call("t__crash", json!({})).await.unwrap_err();
            assert!(err.contains("exited during `t__crash`"), "{err}");
            assert!(err.contains("restarted once"), "{err}");
            let t = info(&servers, "t");
            assert_eq!((t.state, t.restarts), (McpState::Failed, 1));
            assert!(t.error.is_some_and(|e| e.contains("exited")));
            assert!(t.tools.is_empty());
            assert_eq!(servers.tools().await, []);
            assert_eq!(info(&servers, "t").restarts, 1);

            let back = servers.call("t__echo", json!({"text": "back"})).await;
            assert_eq!(back, Ok("back".into()));
            let t = info(&servers, "t");
            assert_eq!((t.state, t.restarts), (McpState::Running, 2));
            servers.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_server_that_cannot_start_is_failed_and_says_why_without_its_secrets() {
        bounded(async {
            let missing = McpServerConfig {
                command: "/nonexistent/reagent-mcp-server".into(),
                args: Vec::new(),
                env: BTreeMap::new(),
                cwd: None,
                timeout_secs: 60.0,
            };
            let leaky = McpServerConfig {
                command: "sh".into(),
                args: vec!["-c".into(), "echo \"bad token $TOKEN\" >&2; exit 3".into()],
                env: BTreeMap::from([("TOKEN".to_string(), "hunter2-secret".to_string())]),
                cwd: None,
                timeout_secs: 60.0,
            };
            let servers = servers(vec![("gone", missing), ("leaky", leaky)]);
            assert_eq!(servers.tools().await, []);

            let gone = info(&servers, "gone");
            assert_eq!((gone.state, gone.restarts), (McpState::Failed, 0));
            let err = gone.error.unwrap_or_default();
            assert!(
                err.contains("cannot start `/nonexistent/reagent-mcp-server`"),
                "{err}"
            );
            assert!(err.contains("No such file"), "{err}");

            let leaky = info(&servers, "leaky");
            assert_eq!(leaky.state, McpState::Failed);
            let err = leaky.error.unwrap_or_default();
            assert!(err.contains("bad token [env TOKEN]"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");

            // A listing does not retry failed servers; a call naming one does.
            assert_eq!(servers.tools().await, []);
            assert_eq!(info(&servers, "gone").restarts, 0);
            let err = servers.call("gone__tool", json!({})).await.unwrap_err();
            assert!(err.contains("cannot start"), "{err}");
            assert_eq!(info(&servers, "gone").restarts, 1);
            let err = servers.call("leaky__tool", json!({})).await.unwrap_err();
            assert!(
                err.contains("[env TOKEN]") && !err.contains("hunter2"),
                "{err}"
            );
        })
        .await;
    }

    /// Processes whose command line holds `marker`.
    fn processes_with(marker: &str) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains(marker)
            })
            .collect()
    }

    async fn until_gone(marker: &str) {
        while !processes_with(marker).is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shutdown stops every server, helpers included: here the server runs under a shell
    /// that waits for it, and it is stuck (ignoring its closed stdin), so only the group's
    /// kill ends it. Dropping the servers stops them too.
    #[tokio::test]
    async fn shutdown_and_drop_stop_every_server_and_its_helpers() {
        let Some(python) = python() else { return };
        bounded(async {
            let marker = format!("reagent-mcp-test-{}", std::process::id());
            let mut wrapped = standin(&python, 1.0, &[]);
            wrapped.args = vec![
                "-c".into(),
                "\"$0\" \"$@\"; exit $?".into(),
                python.to_string_lossy().into_owned(),
                STANDIN.into(),
                format!("{marker}-a"),
            ];
            wrapped.command = "sh".into();
            let plain = standin(&python, 60.0, &[&format!("{marker}-b")]);
            let servers = servers(vec![("t", wrapped), ("u", plain)]);
            assert_eq!(servers.tools().await.len(), 10, "{:?}", servers.infos());
            assert_eq!(processes_with(&format!("{marker}-a")).len(), 2);
            assert_eq!(processes_with(&format!("{marker}-b")).len(), 1);
            let hung = servers.call("t__hang", json!({"seconds": 120})).await;
            assert!(hung.is_err());

            servers.shutdown().await;
            tokio::time::timeout(Duration::from_secs(30), until_gone(&marker))
                .await
                .unwrap_or_else(|_| panic!("still running: {:?}", processes_with(&marker)));
            let err = servers
                .call("u__echo", json!({"text": "x"}))
                .await
                .unwrap_err();
            assert!(err.contains("shutting down"), "{err}");
            assert_eq!(servers.tools().await, []);

            let marker = format!("{marker}-c");
            let servers = super::McpServers::new(
                &BTreeMap::from([("v".to_string(), standin(&python, 60.0, &[&marker]))]),
                &[],
            );
            assert_eq!(servers.tools().await.len(), 5);
            assert_eq!(processes_with(&marker).len(), 1);
            drop(servers);
            tokio::time::timeout(Duration::from_secs(30), until_gone(&marker))
                .await
                .unwrap_or_else(|_| panic!("still running: {:?}", processes_with(&marker)));
        })
        .await;
    }

    #[test]
    fn results_become_text_and_env_values_are_scrubbed() {
        let result: CallToolResult = serde_json::from_value(json!({
            "content": [
                {"type": "text", "text": "one"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "text", "text": "two"},
            ],
        }))
        .expect("a result");
        assert_eq!(result_text(&result), "one\n[image image/png]\ntwo");
        let structured: CallToolResult =
            serde_json::from_value(json!({"content": [], "structuredContent": {"n": 5}}))
                .expect("a result");
        assert_eq!(result_text(&structured), r#"{"n":5}"#);

        let env = BTreeMap::from([
            ("SHORT".to_string(), "yes".to_string()),
            ("TOKEN".to_string(), "abcd1234".to_string()),
            ("LONGER".to_string(), "xxabcd1234xx".to_string()),
        ]);
        let scrub = Scrub::new(&env);
        assert_eq!(
            scrub.apply("yes: abcd1234 and xxabcd1234xx"),
            "yes: [env TOKEN] and [env LONGER]"
        );
    }
}
