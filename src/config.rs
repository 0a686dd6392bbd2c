//! The config file: TOML, every key optional, every key documented in
//! `assets/default_config.toml` (which a test parses, so the two cannot drift).
//!
//! A missing file means defaults. A broken one is an error naming the file, line and key:
//! a daemon that silently ignored a typo would be worse than one that refuses to start.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

mod checks;
pub mod notify;
pub mod slurm;

pub use notify::NotifyConfig;
pub use slurm::SlurmConfig;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The daemon process.
    pub daemon: DaemonConfig,
    /// Runs and their terminals.
    pub runs: RunsConfig,
    /// The terminal client.
    pub tui: TuiConfig,
    /// Chat defaults.
    pub chat: ChatConfig,
    /// GPU sampling and the GPU queue.
    pub gpus: GpusConfig,
    /// Model servers: how launches are watched and servers scraped.
    pub models: ModelsConfig,
    /// The HTTP face: the `/v1` gateway, `/rpc` over WebSocket, `/metrics`.
    pub http: HttpConfig,
    /// LLM providers by name (`[providers.NAME]`). With none, `OPENAI_API_KEY` and
    /// `ANTHROPIC_API_KEY` in the daemon's environment enable the public endpoints.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Where notices of alerts and run endings go (`[notify]`).
    pub notify: NotifyConfig,
    /// Alert rules every run gets, and the optional LLM judge.
    pub alerts: crate::alert::AlertsConfig,
    /// MCP servers by name (`[mcp.NAME]`), whose tools a session's model may call as
    /// `NAME__tool`.
    #[serde(deserialize_with = "mcp_servers")]
    pub mcp: BTreeMap<String, McpServerConfig>,
    /// Defaults for runs on Slurm, and how their jobs are followed.
    pub slurm: SlurmConfig,
}

/// `[chat]`: defaults for sessions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// `PROVIDER/MODEL` for sessions that name none.
    pub default_model: Option<String>,
    /// A cap on answers, in tokens, for providers and models that set none of their own.
    /// Unset by default: a cap nobody asked for cuts long answers, so only Anthropic, whose
    /// API requires one, gets a per-model default (see `daemon/src/llm/anthropic.rs`).
    pub max_tokens: Option<NonZeroU32>,
    /// Seconds to keep retrying a provider that is rate-limited or down before giving up.
    pub retry_secs: f64,
    /// How a session without a title gets one from its first message.
    pub titles: TitleMode,
    /// `PROVIDER/MODEL` asked for titles in `titles = "model"` mode; unset, the session's own
    /// model is asked. A cheap, fast model is the point.
    pub title_model: Option<String>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            default_model: None,
            max_tokens: None,
            retry_secs: 30.0,
            titles: TitleMode::FirstLine,
            title_model: None,
        }
    }
}

/// `[chat] titles`: how an untitled session is named after its first message, so the session
/// list says what each one is about without the user renaming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TitleMode {
    /// The first line of the first message, cut at a word near 60 characters: free and
    /// immediate.
    FirstLine,
    /// A short title asked of a model in the background; the first line when that fails.
    Model,
    /// No automatic titles.
    Off,
}

/// `[gpus]`: sampling and when the queue counts a GPU as free.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpusConfig {
    /// Seconds between samples.
    pub sample_secs: f64,
    /// Samples of utilisation kept per GPU for sparklines.
    pub history: usize,
    /// A GPU no reagent run holds counts as free only while it uses less memory than this
    /// (MiB); absent means any GPU no reagent run holds is free.
    pub free_below_mib: Option<u64>,
}

impl Default for GpusConfig {
    fn default() -> Self {
        Self {
            sample_secs: 1.0,
            history: 120,
            free_below_mib: None,
        }
    }
}

/// `[models]`: how the daemon watches model servers come up and serve.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// A server that exits within this many seconds of starting failed at start (its log's
    /// tail is the reason).
    pub stability_secs: f64,
    /// Milliseconds between health polls while a launch waits: short, so ready is seen
    /// within a poll of the server answering healthy.
    pub health_interval_ms: u64,
    /// Seconds an eviction waits for the stopped servers' memory to be freed.
    pub evict_timeout_secs: f64,
    /// Seconds between scrapes of each ready server's `/metrics`.
    pub scrape_secs: f64,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            stability_secs: 3.0,
            health_interval_ms: 50,
            evict_timeout_secs: 120.0,
            scrape_secs: 2.0,
        }
    }
}

/// `[http]`: the daemon's HTTP listener, off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `HOST:PORT` to listen on (`127.0.0.1:7878`); no listener when absent.
    pub listen: Option<String>,
    /// Allow `listen` on an address other than loopback. Every request still needs a token,
    /// but tokens then cross the network in clear text: put TLS in front.
    pub allow_remote: bool,
    /// Keep request and answer bodies in the gateway's request log (keys and tokens
    /// redacted). Off: bodies are prompts, and prompts are private.
    pub log_bodies: bool,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: None,
            allow_remote: false,
            log_bodies: false,
            max_body_bytes: 32 << 20,
        }
    }
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (OpenAI, vLLM, SGLang, llama.cpp, Ollama, …).
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

/// `[providers.NAME]`: one LLM API. The key itself never sits in the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The protocol.
    pub kind: ProviderKind,
    /// As the official SDKs take it: OpenAI-style ones end in `/v1`, Anthropic's is the host.
    /// Checked at load: an `http` or `https` URL with a host.
    #[serde(deserialize_with = "checks::http_url")]
    pub base_url: String,
    /// The environment variable (of the daemon) holding the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file holding the key; it must be private (0600).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Models to offer.
    #[serde(default)]
    pub models: Vec<String>,
    /// US dollars per million tokens.
    #[serde(default)]
    pub prices: Option<Prices>,
    /// Extra HTTP headers sent with every request (`providers --check`'s included); names
    /// and values are checked at load.
    #[serde(default, deserialize_with = "checks::headers")]
    pub headers: BTreeMap<String, String>,
    /// A cap on this provider's answers, in tokens (over `[chat] max_tokens`). Unset, answers
    /// are not capped (Anthropic's get a per-model default, as its API requires a cap).
    #[serde(default)]
    pub max_tokens: Option<NonZeroU32>,
    /// Caps for single models, by the model's id at this provider (over `max_tokens`), e.g.
    /// `{ "gpt-4o" = 16384 }`.
    #[serde(default)]
    pub model_max_tokens: BTreeMap<String, NonZeroU32>,
}

/// Prices per million tokens, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million answer tokens.
    pub output: f64,
}

/// `[mcp.NAME]`: one MCP server the daemon starts on first use and speaks to over its stdin
/// and stdout. Its tools reach models as `NAME__tool`; as their effects are unknown, each
/// call asks first like any acting tool.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The program, looked up on the daemon's PATH unless it holds a `/`. Checked at load:
    /// not empty.
    #[serde(deserialize_with = "mcp_command")]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables set for it on top of the daemon's environment. Values may be secrets (API
    /// tokens), so they never appear in errors, logs or replies; only the keys do.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Its working directory; the daemon's when absent.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Seconds one tool call may take before the model is told it timed out (and the server,
    /// which may be stuck, is restarted on its next use). Checked at load: more than zero.
    #[serde(default = "mcp_timeout_secs", deserialize_with = "mcp_timeout")]
    pub timeout_secs: f64,
}

/// Not derived: `env`'s values may be secrets, so only its keys print.
impl std::fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerConfig")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

fn mcp_timeout_secs() -> f64 {
    60.0
}

/// Deserializes the `[mcp.*]` tables, refusing a name a tool name cannot carry: providers
/// take tool names of letters, digits, `-` and `_` (OpenAI at most 64 of them), and `__`
/// separates the server's name from its tool's.
fn mcp_servers<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, McpServerConfig>, D::Error> {
    let servers = BTreeMap::<String, McpServerConfig>::deserialize(deserializer)?;
    let fits = |name: &str| {
        (1..=32).contains(&name.len())
            && !name.contains("__")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    match servers.keys().find(|name| !fits(name)) {
        Some(bad) => Err(serde::de::Error::custom(format!(
            "`{bad}`: an MCP server's name is 1 to 32 letters, digits, `-` or `_`, without \
             `__` (its tools are called NAME__tool)"
        ))),
        None => Ok(servers),
    }
}

/// Deserializes `[mcp.NAME] command`, refusing an empty one (which would only fail, less
/// clearly, at the server's first use).
fn mcp_command<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let command = String::deserialize(deserializer)?;
    if command.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "the command is empty; name the server's program, e.g. `npx` or `uvx`",
        ));
    }
    Ok(command)
}

/// Deserializes `[mcp.NAME] timeout_secs`, refusing zero, negative and non-finite values: no
/// call could finish within them, or none would ever time out.
fn mcp_timeout<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(serde::de::Error::custom(format!(
            "{secs} is no timeout; write a positive number of seconds, e.g. 60"
        )));
    }
    Ok(secs)
}

/// `[daemon]`: logging, history and client limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or an `EnvFilter` directive).
    pub log_level: String,
    /// Daily log files to keep.
    pub log_files: usize,
    /// Events kept for clients that reconnect with `since`; older gaps get a fresh snapshot.
    pub event_history: u64,
    /// Bytes queued for one client before it is told to resync instead of growing memory.
    pub client_queue_bytes: usize,
    /// Connections served at once. Each may hold about a megabyte of unread replies (see
    /// `daemon/src/outbox.rs`), so this bounds the memory clients can take; one more is told
    /// the daemon is full and closed.
    pub max_clients: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_files: 7,
            event_history: 10_000,
            client_queue_bytes: 8 << 20,
            max_clients: 256,
        }
    }
}

/// `[runs]`: defaults for new runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunsConfig {
    /// PTY width of a new run.
    pub cols: u16,
    /// PTY height of a new run.
    pub rows: u16,
    /// Seconds between SIGTERM and SIGKILL when a run is stopped.
    pub stop_grace_secs: f64,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self {
            cols: 200,
            rows: 50,
            stop_grace_secs: 10.0,
        }
    }
}

/// `[tui]`: the terminal client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiConfig {
    /// The prefix key that leaves a job pane's input mode, as `C-b`, `C-a` …
    pub prefix: PrefixKey,
}

impl Default for TuiConfig {
    fn default() -> Self {
        Self {
            prefix: PrefixKey('b'),
        }
    }
}

/// A Ctrl-letter prefix key, written `C-b` (or `^b`) in the config. Checked when the config
/// loads, so a typo is reported with its line rather than discovered mid-session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixKey(pub char);

impl PrefixKey {
    /// The byte a terminal sends for it (Ctrl-b is 0x02).
    pub fn byte(self) -> u8 {
        (self.0 as u8) & 0x1f
    }
}

impl<'de> Deserialize<'de> for PrefixKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let key = text.strip_prefix("C-").or_else(|| text.strip_prefix('^'));
        let mut chars = key.unwrap_or_default().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Ok(PrefixKey(c.to_ascii_lowercase())),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a prefix key; write Ctrl and a letter as `C-b`"
            ))),
        }
    }
}

/// The variables the public APIs' keys are read from when no `[providers.*]` are configured.
pub const DEFAULT_KEY_VARS: [&str; 2] = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

impl Config {
    /// Every environment variable the daemon reads a secret from: the providers'
    /// `api_key_env`, the public APIs' default key variables (always: a key in a user's
    /// shell is as secret whether or not providers are configured), and `[notify]`'s webhook
    /// and token variables. Jobs never get these unless a run names them (`--pass-env`).
    pub fn secret_vars(&self) -> Vec<String> {
        let providers = self.providers.values().map(|p| &p.api_key_env);
        let slack = self.notify.slack.iter().map(|s| &s.webhook_url_env);
        let telegram = self.notify.telegram.iter().map(|t| &t.bot_token_env);
        let mut vars: Vec<String> = DEFAULT_KEY_VARS.iter().map(|v| v.to_string()).collect();
        vars.extend(providers.chain(slack).chain(telegram).flatten().cloned());
        vars.sort();
        vars.dedup();
        vars
    }

    /// Loads the config file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(Error::io("read", path)(err)),
        }
    }

    /// Parses config text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let located = |span: Option<std::ops::Range<usize>>, message: String| {
            let offset = span.map_or(0, |s| s.start).min(text.len());
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Error::Config {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|err| located(err.span(), err.message().to_string()))?;
        serde_path_to_error::deserialize(de).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            located(inner.span(), format!("key `{key}`: {}", inner.message()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_config_parses_to_the_defaults() {
        let text = include_str!("../assets/default_config.toml");
        let config = Config::parse(Path::new("default_config.toml"), text).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn missing_file_means_defaults() {
        let config = Config::load(Path::new("/nonexistent/reagent/config.toml")).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let text = "[daemon]\nlog_level = \"info\"\n\n[runs]\ncols = \"wide\"\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:5:"), "{err}");
        assert!(err.contains("runs.cols"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_not_ignored() {
        let err = Config::parse(Path::new("c.toml"), "[runs]\ncolumns = 80\n").unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with("c.toml:2:"), "{err}");
        assert!(err.contains("columns"), "{err}");
    }

    #[test]
    fn providers_parse_with_their_keys_kept_out() {
        let text = "[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodels = [\"qwen\"]\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        let local = &config.providers["local"];
        assert_eq!(local.kind, ProviderKind::Openai);
        assert_eq!(local.models, ["qwen"]);
        let err = Config::parse(
            Path::new("c.toml"),
            "[providers.x]\nkind = \"gemini\"\nbase_url = \"http://u\"\n",
        );
        assert!(err.unwrap_err().to_string().contains("providers.x.kind"));
    }

    #[test]
    fn a_base_url_that_is_no_http_url_names_file_line_and_key() {
        for bad in ["not a url", "ftp://example.com/v1", "http://[::1/v1"] {
            let text = format!(
                "[providers.local]\nkind = \"openai\"\nbase_url = \"{bad}\"\nmodels = []\n"
            );
            let err = Config::parse(Path::new("c.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("c.toml:3:"), "{err}");
            assert!(err.contains("providers.local.base_url"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
        let text = "[notify.telegram]\nchat_id = \"1\"\nbase_url = \"api.telegram.org\"\n";
        let err = Config::parse(Path::new("c.toml"), text).unwrap_err();
        assert!(
            err.to_string().contains("notify.telegram.base_url"),
            "{err}"
        );
    }

    #[test]
    fn answer_caps_are_unset_unless_written_and_zero_is_refused() {
        assert_eq!(Config::default().chat.max_tokens, None);
        let text = "[chat]\ntitles = \"model\"\n\n[providers.o]\nkind = \"openai\"\n\
                    base_url = \"http://h/v1\"\nmax_tokens = 1000\n\
                    model_max_tokens = { \"big\" = 9000 }\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(config.chat.titles, TitleMode::Model);
        let provider = &config.providers["o"];
        assert_eq!(provider.max_tokens.map(NonZeroU32::get), Some(1000));
        assert_eq!(provider.model_max_tokens["big"].get(), 9000);
        let err = Config::parse(Path::new("c.toml"), "[chat]\nmax_tokens = 0\n").unwrap_err();
        assert!(err.to_string().contains("chat.max_tokens"), "{err}");
        let err = Config::parse(Path::new("c.toml"), "[chat]\ntitles = \"llm\"\n").unwrap_err();
        assert!(err.to_string().contains("chat.titles"), "{err}");
    }

    #[test]
    fn a_header_with_a_bad_name_or_value_names_its_line() {
        let text = "[providers.local]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n\n\
                    [providers.local.headers]\nX-Good = \"1\"\n\"Bad Name\" = \"2\"\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:7:"), "{err}");
        assert!(err.contains("providers.local.headers"), "{err}");
        assert!(err.contains("`Bad Name` is not a header name"), "{err}");
        let text = "[providers.local]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n\
                    headers = { X-Evil = \"a\\r\\nHost: b\" }\n";
        let err = Config::parse(Path::new("c.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:4:"), "{err}");
        assert!(err.contains("control character"), "{err}");
        let good = "[providers.local]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n\
                    headers = { X-Org = \"acme\" }\n";
        let config = Config::parse(Path::new("c.toml"), good).unwrap();
        assert_eq!(config.providers["local"].headers["X-Org"], "acme");
    }

    #[test]
    fn prefix_keys_are_ctrl_letters() {
        let config = Config::parse(Path::new("c.toml"), "[tui]\nprefix = \"C-a\"\n").unwrap();
        assert_eq!(config.tui.prefix.byte(), 0x01);
        let err = Config::parse(Path::new("c.toml"), "[tui]\nprefix = \"F1\"\n").unwrap_err();
        assert!(err.to_string().contains("tui.prefix"), "{err}");
    }

    #[test]
    fn a_config_path_that_is_a_folder_says_why_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = anyhow::Error::from(Config::load(dir.path()).unwrap_err());
        let text = format!("{err:#}");
        assert!(text.starts_with("cannot read "), "{text}");
        assert_eq!(text.matches("Is a directory").count(), 1, "{text}");
    }

    #[test]
    fn secret_vars_name_every_key_and_webhook_variable() {
        let text = "[providers.a]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\n\
                    api_key_env = \"A_KEY\"\n\
                    [notify.slack]\nwebhook_url_env = \"HOOK\"\n\
                    [notify.telegram]\nbot_token_env = \"TG\"\nchat_id = \"1\"\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(
            config.secret_vars(),
            ["ANTHROPIC_API_KEY", "A_KEY", "HOOK", "OPENAI_API_KEY", "TG"]
        );
        assert_eq!(
            Config::default().secret_vars(),
            ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
        );
    }

    #[test]
    fn mcp_servers_parse_and_a_bad_command_or_timeout_names_its_key() {
        let text = "[mcp.files]\ncommand = \"npx\"\nargs = [\"-y\", \"server-files\"]\n\
                    env = { TOKEN = \"hunter2-secret\" }\ncwd = \"/srv\"\ntimeout_secs = 5\n\
                    [mcp.bare]\ncommand = \"mcp-bare\"\n";
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        let files = &config.mcp["files"];
        assert_eq!(files.args, ["-y", "server-files"]);
        assert_eq!(files.env["TOKEN"], "hunter2-secret");
        assert_eq!(files.cwd.as_deref(), Some(Path::new("/srv")));
        assert_eq!(files.timeout_secs, 5.0);
        let debug = format!("{files:?}");
        assert!(
            debug.contains("TOKEN") && !debug.contains("hunter2"),
            "{debug}"
        );
        let bare = &config.mcp["bare"];
        assert_eq!((bare.args.len(), bare.env.len()), (0, 0));
        assert_eq!((bare.cwd.as_ref(), bare.timeout_secs), (None, 60.0));
        assert!(Config::default().mcp.is_empty());

        for (bad, key) in [
            ("command = \"\"", "mcp.x.command"),
            ("command = \"  \"", "mcp.x.command"),
            ("command = \"s\"\ntimeout_secs = 0", "mcp.x.timeout_secs"),
            ("command = \"s\"\ntimeout_secs = -1.5", "mcp.x.timeout_secs"),
            ("command = \"s\"\ntimeout_secs = nan", "mcp.x.timeout_secs"),
            ("command = \"s\"\ntimeout_secs = inf", "mcp.x.timeout_secs"),
            ("command = \"s\"\nenvironment = {}", "environment"),
            ("args = []", "command"),
        ] {
            let text = format!("[mcp.x]\n{bad}\n");
            let err = Config::parse(Path::new("c.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("c.toml:"), "{bad}: {err}");
            assert!(err.contains(key), "{bad}: {err}");
        }
        let err = Config::parse(
            Path::new("c.toml"),
            "[mcp.x]\ncommand = \"s\"\ntimeout_secs = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("c.toml:3:"), "{err}");
        for bad in [
            "\"a.b\"",
            "a__b",
            "\"\"",
            "x23456789012345678901234567890123",
        ] {
            let text = format!("[mcp.{bad}]\ncommand = \"s\"\n");
            let err = Config::parse(Path::new("c.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains("an MCP server's name"), "{bad}: {err}");
        }
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = Config::parse(Path::new("c.toml"), "[runs]\ncols = = 3\n").unwrap_err();
        assert!(err.to_string().starts_with("c.toml:2:"), "{err}");
    }
}
