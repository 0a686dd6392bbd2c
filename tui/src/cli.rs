//! The command line: every action reagent offers, for people and scripts alike.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// reagent: a terminal cockpit for training and serving models.
#[derive(Parser, Debug)]
#[command(name = "reagent", version, about, propagate_version = true)]
pub struct Cli {
    /// Use the daemon on HOST, through `ssh HOST reagent proxy` (`REAGENT_SSH` names ssh).
    #[arg(long, global = true, value_name = "HOST")]
    pub remote: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start, stop or check the daemon (other commands start it when needed).
    Daemon {
        /// What to do with it.
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// Start a run: a command in its own terminal, owned by the daemon, or a Slurm batch job
    /// with --on slurm. Prints the run's id.
    Run(RunArgs),
    /// List runs, oldest first; --status, --name and --limit narrow the list.
    Runs(RunsArgs),
    /// Remove ended runs with their logs, metrics series and alerts (a live run is refused).
    Rm {
        /// Run ids, names or unique id prefixes.
        #[arg(required = true, value_name = "RUN")]
        runs: Vec<String>,
        /// Print the removed runs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every finished run (exit code 0), with --failed the failed ones, with
    /// --all-ended every ended one (finished, failed, stopped, lost).
    Clean {
        /// Remove the failed runs instead.
        #[arg(long, conflicts_with = "all_ended")]
        failed: bool,
        /// Remove every ended run.
        #[arg(long)]
        all_ended: bool,
        /// Only runs that ended at least this long ago: 30m, 2h, 7d, 1h30m.
        #[arg(long, value_name = "DUR", value_parser = reagent::time::parse_duration_ms)]
        older_than: Option<u64>,
        /// Print the removed runs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a run again as a new run: the same cwd, env, GPUs, metrics file and alert rules,
    /// with a new command after `--` if given. Prints the new run's id.
    Rerun {
        /// Run id, name or unique id prefix.
        run: String,
        /// Print the new run as JSON instead of its id.
        #[arg(long)]
        json: bool,
        /// The new command and its arguments (after `--`); the old run's when absent.
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Print a run's log.
    Logs {
        /// Run id, name or unique id prefix.
        run: String,
        /// Keep printing new output until the run ends.
        #[arg(short, long)]
        follow: bool,
        /// Start this many lines before the end.
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// What a terminal would show: progress bars as their last state, escape sequences
        /// removed.
        #[arg(long)]
        plain: bool,
    },
    /// Stop a run: SIGTERM to its process group, SIGKILL after the grace period.
    Stop {
        /// Run id, name or unique id prefix.
        run: String,
        /// Seconds between SIGTERM and SIGKILL (default from the config: 10).
        #[arg(long, value_name = "SECS")]
        grace: Option<f64>,
        /// Return at once instead of waiting for the run to end.
        #[arg(long)]
        no_wait: bool,
    },
    /// Type text into a run's terminal, followed by Enter.
    Input {
        /// Run id, name or unique id prefix.
        run: String,
        /// The text.
        text: String,
        /// Do not press Enter after the text.
        #[arg(long)]
        no_enter: bool,
    },
    /// Wait for a run to end; exits with the run's exit code.
    Wait {
        /// Run id, name or unique id prefix.
        run: String,
        /// Print the ended run as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a run's terminal full-screen, keys and resizes forwarded; `Ctrl-b d` detaches.
    Attach {
        /// Run id, name or unique id prefix.
        run: String,
        /// Watch only: no keys reach the job and its terminal keeps its size (shown anchored
        /// at its cursor when this terminal is smaller).
        #[arg(long)]
        watch: bool,
    },
    /// Name a run (an empty name removes it).
    Rename {
        /// Run id, name or unique id prefix.
        run: String,
        /// The new name.
        name: String,
    },
    /// The daemon and a count of runs by status.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Bridge stdin/stdout to the local daemon's socket (what `--remote` runs over ssh).
    Proxy,
    /// Ask a model; the answer streams to stdout. The prompt comes from the arguments or stdin.
    Chat(ChatArgs),
    /// List chat sessions.
    Sessions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's messages.
    History {
        /// Session id, title or unique id prefix.
        session: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename, fork, delete a chat session, or cancel its answer.
    Session {
        /// What to do.
        #[command(subcommand)]
        action: SessionAction,
    },
    /// List LLM providers and their models (never their keys).
    Providers {
        /// Ask each provider whether it answers.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tokens and cost per session and per day.
    Usage {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The GPUs now (or why there are none), and which runs use them.
    Gpus {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Runs waiting for GPUs or a sweep slot (and why), and runs holding GPUs.
    Queue {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Expand a parameter sweep into queued runs; or show or stop one.
    Sweep(SweepCmd),
    /// List sweeps and their progress.
    Sweeps {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A run's metrics: each series with its point count and newest value.
    Metrics {
        /// Run id, name or unique id prefix.
        run: String,
        /// Print JSON (with -f, one line per update).
        #[arg(long)]
        json: bool,
        /// Then print the newest values as they arrive, until the run ends.
        #[arg(short, long)]
        follow: bool,
    },
    /// List open alerts (with --all, answered ones too).
    Alerts {
        /// Print JSON (one array of alerts).
        #[arg(long)]
        json: bool,
        /// Include answered alerts.
        #[arg(long)]
        all: bool,
    },
    /// Answer an alert.
    Alert {
        /// What to do.
        #[command(subcommand)]
        action: AlertAction,
    },
    /// Add, show or remove a recipe: how to serve one model.
    Recipe {
        /// What to do.
        #[command(subcommand)]
        action: RecipeAction,
    },
    /// List recipes.
    Recipes {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Launch or stop a model server, or print its log.
    Model {
        /// What to do.
        #[command(subcommand)]
        action: ModelAction,
    },
    /// List model servers: launching, serving and ended.
    Models {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or revoke a token for the daemon's HTTP face (`[http] listen`).
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// List the HTTP face's tokens: names and scopes, never the tokens.
    Tokens {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The `/v1` gateway's request log.
    Gateway {
        /// What to do.
        #[command(subcommand)]
        action: GatewayAction,
    },
    /// Every tool an agent session's model may call (built-in and MCP), with its schema.
    Tools {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The MCP servers of the config, their state and tools (starting them).
    Mcp {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Requests of agents to run acting tools that wait for an answer (--all: settled too).
    Approvals {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Include settled ones.
        #[arg(long)]
        all: bool,
    },
    /// Approve an agent's request to run a tool.
    Approve {
        /// Approval id or unique id prefix.
        id: String,
        /// Let this tool run without asking for the rest of the session.
        #[arg(long)]
        always: bool,
    },
    /// Deny an agent's request to run a tool; the model is told.
    Deny {
        /// Approval id or unique id prefix.
        id: String,
        /// Why, passed on to the model.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let an agent pursue a goal on its own, within budgets; or see or stop it.
    Wild {
        /// What to do.
        #[command(subcommand)]
        action: WildAction,
    },
}

/// `reagent wild …`
#[derive(Subcommand, Debug)]
pub enum WildAction {
    /// Start a loop toward a goal (in a new agent session unless --session names one).
    Start {
        /// What to achieve.
        #[arg(long)]
        goal: String,
        /// Run in this session (id, title or unique id prefix).
        #[arg(long)]
        session: Option<String>,
        /// PROVIDER/MODEL of a new session.
        #[arg(long)]
        model: Option<String>,
        /// Steps (prompts of the model) at most.
        #[arg(long, value_name = "N")]
        max_steps: Option<u32>,
        /// Tokens at most.
        #[arg(long, value_name = "N")]
        max_tokens: Option<u64>,
        /// US dollars at most.
        #[arg(long, value_name = "USD")]
        max_cost: Option<f64>,
        /// Hours at most.
        #[arg(long, value_name = "H")]
        max_hours: Option<f64>,
        /// Minutes between steps when nothing happens (default 10).
        #[arg(long, value_name = "MINUTES")]
        every: Option<f64>,
        /// Acting tools it may use without asking (repeatable).
        #[arg(long = "auto", value_name = "TOOL")]
        auto: Vec<String>,
        /// Print the loop as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every loop: goal, step, budget used, what it waits for or why it ended.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a loop (the one going, unless --session names one).
    Stop {
        /// The loop's session.
        #[arg(long)]
        session: Option<String>,
    },
}

/// `reagent token …`
#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a token and print it: the only time it is shown (the daemon keeps its hash).
    Create {
        /// A unique name for whoever holds it; the request log names it.
        name: String,
        /// What it may be used for (repeatable); every scope when none is given.
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<reagent::token::Scope>,
        /// Print `{"name", "token", "scopes"}`.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests carrying it are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `reagent gateway …`
#[derive(Subcommand, Debug)]
pub enum GatewayAction {
    /// Every `/v1` request, oldest first: token, route, model, status, timings, tokens,
    /// cost and how it ended.
    Log {
        /// Print JSON (one array of requests).
        #[arg(long)]
        json: bool,
        /// Only requests made with this token (by name).
        #[arg(long, value_name = "NAME")]
        token: Option<String>,
        /// Only requests of the last DUR (`30m`, `2h`, `7d`).
        #[arg(long, value_name = "DUR", value_parser = reagent::time::parse_duration_ms)]
        since: Option<u64>,
        /// At most this many, the newest.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

/// A token scope by name, as `--scope` takes it.
fn parse_scope(text: &str) -> Result<reagent::token::Scope, String> {
    reagent::token::Scope::ALL
        .into_iter()
        .find(|scope| scope.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a scope (gateway, rpc or metrics)"))
}

/// `reagent recipe …`
#[derive(Subcommand, Debug)]
pub enum RecipeAction {
    /// Add the recipes of TOML files (`[[recipe]]` tables), each replacing any of its name;
    /// nothing is added when a file has an error.
    Add {
        /// Recipe files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the added recipes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A recipe's settings and the exact command a launch of it runs.
    Show {
        /// The recipe's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a recipe.
    Rm {
        /// The recipe's name.
        name: String,
    },
}

/// `reagent model …`
#[derive(Subcommand, Debug)]
pub enum ModelAction {
    /// Launch a recipe's model server and wait until it is ready (exits 1 with the reason
    /// when it fails). Launching a recipe already launching joins that launch.
    Launch {
        /// The recipe's name.
        recipe: String,
        /// Cancel other launches holding the GPUs this one needs, instead of waiting.
        #[arg(long)]
        preempt: bool,
        /// Print the ready model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a model server, or cancel its launch.
    Stop {
        /// The model's name (its recipe's).
        name: String,
        /// Print the model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a model server's log (its run's), as `reagent logs` does.
    Logs {
        /// The model's name (its recipe's).
        name: String,
        /// Keep printing new output until the server ends.
        #[arg(short, long)]
        follow: bool,
        /// Start this many lines before the end.
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// What a terminal would show: progress bars as their last state, escape sequences
        /// removed.
        #[arg(long)]
        plain: bool,
    },
}

/// `reagent sweep [FILE] [--grid K=V1,V2]... [--parallel N] [--gpus N] -- CMD {K}...`
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepCmd {
    /// Show or stop a sweep.
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    /// A sweep file (TOML): name, command, method, count, parallel, gpus, [parameters.K].
    pub file: Option<PathBuf>,
    /// A grid parameter and its values, `lr=1e-3,1e-4` (repeatable); `{lr}` in the command.
    #[arg(long, value_name = "K=V1,V2")]
    pub grid: Vec<String>,
    /// At most this many of the sweep's runs at once (default: no limit).
    #[arg(long, value_name = "N")]
    pub parallel: Option<u32>,
    /// GPUs each run needs.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// The sweep's name (runs are named NAME-k=v,...).
    #[arg(long)]
    pub name: Option<String>,
    /// Queue priority of its runs.
    #[arg(long)]
    pub priority: Option<i32>,
    /// Let its runs have NAME although the daemon keeps a secret in it (repeatable; see
    /// `reagent run --pass-env`).
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Where its runs execute (one Slurm job array with --on slurm, --parallel its limit),
    /// and what each asks of Slurm.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Print the sweep as JSON.
    #[arg(long)]
    pub json: bool,
    /// The command template (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `reagent sweep show|stop`
#[derive(Subcommand, Debug)]
pub enum SweepAction {
    /// A sweep's runs with their parameters and state, ranked by a metric (best first).
    Show {
        /// Sweep id, name or unique id prefix.
        sweep: String,
        /// The metric to rank by (default: `loss`, when a run reports it).
        #[arg(long, value_name = "METRIC")]
        rank: Option<String>,
        /// Higher is better (accuracy); lower is better without it (loss).
        #[arg(long)]
        max: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a sweep's running runs and drop its queued ones.
    Stop {
        /// Sweep id, name or unique id prefix.
        sweep: String,
    },
}

/// `reagent alert …`
#[derive(Subcommand, Debug)]
pub enum AlertAction {
    /// Answer an open alert: `ignore` closes it, `stop` stops its run, `chat` opens a chat
    /// session about it (and prints the session's id).
    Respond {
        /// Alert id or unique id prefix.
        id: String,
        /// ignore, stop or chat.
        #[arg(value_parser = parse_choice)]
        choice: reagent::alert::Choice,
    },
    /// Ignore every open alert like this one (the same rule and metric) on the runs of its
    /// sweep, or on every run when its run is in no sweep: a sweep raises the same alert on
    /// each of its runs.
    IgnoreLike {
        /// Alert id or unique id prefix.
        id: String,
    },
}

fn parse_mode(text: &str) -> Result<reagent::agent::PolicyMode, String> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| format!("expected ask, auto or deny, got `{text}`"))
}

fn parse_choice(text: &str) -> Result<reagent::alert::Choice, String> {
    reagent::alert::Choice::parse(text)
        .ok_or_else(|| format!("expected ignore, stop or chat, got `{text}`"))
}

/// `reagent session …`
#[derive(Subcommand, Debug)]
pub enum SessionAction {
    /// Give a session a title (an empty one removes it).
    Rename {
        /// Session id, title or unique id prefix.
        session: String,
        /// The title.
        title: String,
    },
    /// Switch a session to another model; its next answer comes from it.
    Model {
        /// Session id, title or unique id prefix.
        session: String,
        /// `PROVIDER/MODEL`.
        model: String,
    },
    /// Copy a session's history (up to a message) into a new session.
    Fork {
        /// Session id, title or unique id prefix.
        session: String,
        /// The last message to copy (id or unique prefix).
        #[arg(long, value_name = "MESSAGE")]
        at: Option<String>,
    },
    /// Delete a session and its messages.
    Delete {
        /// Session id, title or unique id prefix.
        session: String,
    },
    /// Stop the answer streaming in a session, keeping what arrived.
    Cancel {
        /// Session id, title or unique id prefix.
        session: String,
    },
    /// Turn a session's tools on or off, and set how its acting tools run.
    Agent {
        /// Session id, title or unique id prefix.
        session: String,
        /// Tools on.
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Tools off.
        #[arg(long)]
        off: bool,
        /// ask (the default), auto (acting tools run without asking) or deny.
        #[arg(long, value_parser = parse_mode)]
        mode: Option<reagent::agent::PolicyMode>,
        /// An acting tool that runs without asking (repeatable; replaces the list).
        #[arg(long = "auto", value_name = "TOOL")]
        auto: Vec<String>,
    },
}

/// `reagent chat …`
#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Continue this session (id, title or unique id prefix) instead of starting one.
    #[arg(short, long, conflicts_with_all = ["new", "model", "system"])]
    pub session: Option<String>,
    /// Start a new session (the default without --session).
    #[arg(long)]
    pub new: bool,
    /// PROVIDER/MODEL for a new session (split at the first `/`).
    #[arg(long)]
    pub model: Option<String>,
    /// System prompt for a new session.
    #[arg(long)]
    pub system: Option<String>,
    /// Give a new session's model the agent's tools (acting ones ask first; answer with
    /// `reagent approve` or in the cockpit).
    #[arg(long, conflicts_with = "session")]
    pub agent: bool,
    /// Print one JSON event per line instead of the text.
    #[arg(long)]
    pub json: bool,
    /// The prompt (read from stdin when absent).
    pub prompt: Vec<String>,
}

/// `reagent daemon …`
#[derive(Subcommand, Debug, Clone, Copy)]
pub enum DaemonAction {
    /// Start the daemon in the background (nothing happens if it runs).
    Start,
    /// Ask the daemon to exit; runs keep going and are re-adopted by the next daemon.
    Stop,
    /// Is the daemon running? Exits 1 when it is not.
    Status,
}

/// `reagent run …`
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A name to refer to the run by.
    #[arg(long)]
    pub name: Option<String>,
    /// Working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Extra environment variable, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Let the job have NAME from this environment although the daemon keeps a secret in it
    /// (a provider's key, a webhook URL), repeatable; such variables are removed otherwise.
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// The metrics file the job writes (default: metrics.jsonl in the run's folder); the job
    /// finds it in REAGENT_METRICS_FILE.
    #[arg(long, value_name = "PATH")]
    pub metrics: Option<PathBuf>,
    /// An alert rule for this run, METRIC OP VALUE such as 'loss > 5' (repeatable).
    #[arg(long = "alert", value_name = "RULE")]
    pub alerts: Vec<String>,
    /// Hand the run's alerts to this chat session's agent (id, title or unique id prefix).
    #[arg(long, value_name = "SESSION")]
    pub agent_session: Option<String>,
    /// Print the new run as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
    /// Wait in the queue until this many GPUs are free; start with CUDA_VISIBLE_DEVICES set.
    #[arg(long, value_name = "N", conflicts_with = "gpu_ids")]
    pub gpus: Option<u32>,
    /// Wait for exactly these GPUs, e.g. `0,3`.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub gpu_ids: Vec<u32>,
    /// Queue priority: higher starts first (FIFO within a priority).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Requeue up to N times when the job dies of CUDA busy / out of memory.
    #[arg(long, value_name = "N")]
    pub retry_gpu: Option<u32>,
    /// Where it runs, and what it asks of Slurm there.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Where a run executes (`--on`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// This machine, under the daemon: the default.
    Local,
    /// A Slurm batch job, submitted with sbatch from the daemon's machine.
    Slurm,
}

/// `--on slurm` and what a run (or each of a sweep's runs) asks of Slurm; `--gpus` is then
/// Slurm's too. Unset, the config's `[slurm]` defaults apply, then the cluster's.
#[derive(Args, Debug, Default)]
pub struct SlurmArgs {
    /// Where to run: local (this machine, the default) or slurm (a batch job).
    #[arg(long, value_enum, value_name = "WHERE")]
    pub on: Option<On>,
    /// Slurm partition (with --on slurm).
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// CPUs for the job, --cpus-per-task (with --on slurm).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// Memory for the job, such as 32G (with --on slurm).
    #[arg(long, value_name = "SIZE")]
    pub mem: Option<String>,
    /// Time limit, such as 30, 4:00:00 or 2-00:00:00 (with --on slurm).
    #[arg(long, value_name = "LIMIT")]
    pub time: Option<String>,
    /// Account to charge (with --on slurm).
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// One more sbatch option, such as --sbatch-arg=--qos=high (repeatable; with --on slurm).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

/// `reagent runs [--status S] [--name GLOB] [--limit N] [--json]`
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Only runs in this status: queued, launching, running, finished, failed, stopped, lost.
    #[arg(long, value_name = "S", value_parser = parse_status)]
    pub status: Option<reagent::run::RunStatus>,
    /// Only runs whose name matches GLOB (`*` any text, `?` one character; quote it).
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Only the newest N of the runs picked.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON (one array of runs) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<reagent::run::RunStatus, String> {
    reagent::run::RunStatus::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a run status: expected queued, launching, running, finished, \
             failed, stopped or lost"
        )
    })
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_the_separator() {
        let cli = Cli::try_parse_from(["reagent", "run", "--env", "A=1=2", "--", "sh", "-c", "x"])
            .unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("not a run")
        };
        assert_eq!(args.command, ["sh", "-c", "x"]);
        assert_eq!(args.env, [("A".to_string(), "1=2".to_string())]);
    }

    #[test]
    fn sweep_takes_a_file_grids_or_a_subcommand() {
        let cli = Cli::try_parse_from([
            "reagent",
            "sweep",
            "--grid",
            "lr=1,2",
            "--parallel",
            "2",
            "--",
            "echo",
            "{lr}",
        ])
        .unwrap();
        let Some(Command::Sweep(sweep)) = cli.command else {
            panic!("not a sweep")
        };
        assert_eq!(
            (sweep.grid, sweep.parallel, sweep.command.len()),
            (vec!["lr=1,2".to_string()], Some(2), 2)
        );
        let cli = Cli::try_parse_from(["reagent", "sweep", "stop", "ab12"]).unwrap();
        let Some(Command::Sweep(sweep)) = cli.command else {
            panic!("not a sweep")
        };
        assert!(matches!(sweep.action, Some(SweepAction::Stop { .. })));
        let cli = Cli::try_parse_from(["reagent", "sweep", "lr.toml"]).unwrap();
        let Some(Command::Sweep(sweep)) = cli.command else {
            panic!("not a sweep")
        };
        assert_eq!(sweep.file, Some(PathBuf::from("lr.toml")));
    }

    #[test]
    fn alert_answers_are_checked_by_the_parser() {
        let cli = Cli::try_parse_from(["reagent", "alert", "respond", "ab", "stop"]).unwrap();
        let Some(Command::Alert {
            action: AlertAction::Respond { id, choice },
        }) = cli.command
        else {
            panic!("not an alert answer")
        };
        assert_eq!((id.as_str(), choice), ("ab", reagent::alert::Choice::Stop));
        let err = Cli::try_parse_from(["reagent", "alert", "respond", "ab", "run"]).unwrap_err();
        assert!(err.to_string().contains("ignore, stop or chat"), "{err}");
    }

    #[test]
    fn tidying_commands_check_their_arguments() {
        let cli =
            Cli::try_parse_from(["reagent", "clean", "--failed", "--older-than", "2h"]).unwrap();
        let Some(Command::Clean {
            failed, older_than, ..
        }) = cli.command
        else {
            panic!("not a clean")
        };
        assert_eq!((failed, older_than), (true, Some(7_200_000)));
        let err = Cli::try_parse_from(["reagent", "clean", "--older-than", "2 weeks"]).unwrap_err();
        assert!(
            err.to_string().contains("`2 weeks` is not a duration"),
            "{err}"
        );
        let err = Cli::try_parse_from(["reagent", "clean", "--failed", "--all-ended"]).unwrap_err();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        let err = Cli::try_parse_from(["reagent", "runs", "--status", "done"]).unwrap_err();
        assert!(
            err.to_string().contains("`done` is not a run status"),
            "{err}"
        );
        assert!(
            Cli::try_parse_from(["reagent", "rm"]).is_err(),
            "rm needs a run"
        );
        let cli = Cli::try_parse_from(["reagent", "rerun", "ab", "--", "sh", "-c", "x"]).unwrap();
        let Some(Command::Rerun { run, command, .. }) = cli.command else {
            panic!("not a rerun")
        };
        assert_eq!((run.as_str(), command.len()), ("ab", 3));
    }

    #[test]
    fn model_commands_parse_their_subcommands() {
        let cli = Cli::try_parse_from(["reagent", "recipe", "add", "a.toml", "b.toml"]).unwrap();
        let Some(Command::Recipe {
            action: RecipeAction::Add { files, json },
        }) = cli.command
        else {
            panic!("not a recipe add")
        };
        assert_eq!((files.len(), json), (2, false));
        assert!(
            Cli::try_parse_from(["reagent", "recipe", "add"]).is_err(),
            "add needs a file"
        );
        let cli = Cli::try_parse_from(["reagent", "model", "launch", "qwen", "--preempt"]).unwrap();
        let Some(Command::Model {
            action: ModelAction::Launch {
                recipe, preempt, ..
            },
        }) = cli.command
        else {
            panic!("not a model launch")
        };
        assert_eq!((recipe.as_str(), preempt), ("qwen", true));
        let cli = Cli::try_parse_from(["reagent", "model", "logs", "qwen", "-f"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Model {
                action: ModelAction::Logs { follow: true, .. }
            })
        ));
        let cli = Cli::try_parse_from(["reagent", "models", "--json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Models { json: true })));
    }

    #[test]
    fn slurm_flags_parse_with_their_values() {
        let cli = Cli::try_parse_from([
            "reagent",
            "run",
            "--on",
            "slurm",
            "--partition",
            "gpu",
            "--time",
            "0:01",
            "--sbatch-arg",
            "--qos=high",
            "--",
            "python",
            "train.py",
        ])
        .unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("not a run")
        };
        assert_eq!(args.slurm.on, Some(On::Slurm));
        assert_eq!(args.slurm.partition.as_deref(), Some("gpu"));
        assert_eq!(args.slurm.sbatch_args, ["--qos=high"]);
        assert_eq!(args.command, ["python", "train.py"]);
        let err = Cli::try_parse_from(["reagent", "run", "--on", "k8s", "--", "x"]).unwrap_err();
        assert!(err.to_string().contains("k8s"), "{err}");
    }

    #[test]
    fn a_bad_env_names_the_value() {
        let err = Cli::try_parse_from(["reagent", "run", "--env", "NOEQ", "--", "x"]).unwrap_err();
        assert!(err.to_string().contains("NOEQ"), "{err}");
    }
}
