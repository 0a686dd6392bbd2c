//! `reagent recipe add|show|rm`, `recipes`, `model launch|stop|logs` and `models`: model
//! servers from the shell.
//!
//! `model launch` waits for its reply, which the daemon sends when the server is ready or
//! has failed (minutes, for a large model: there is no client timeout). Meanwhile, on a
//! terminal, the `model` events of the launch drive a one-line progress bar on stderr, so
//! stdout stays the result alone. A model is a run, so `model logs` is `logs` on its run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use reagent::client::{Subscription, Update};
use reagent::gpu::join_ids;
use reagent::model::{GpuSelect, ModelInfo, ModelState, Recipe};
use reagent::protocol::{
    AddRecipes, EventKind, LaunchModel, ListModels, ListRecipes, RecipeView, RemoveRecipe,
    ShowRecipe, StopModel, Sync,
};
use reagent::shell;
use reagent::time::{format_duration_ms, now_ms};

use super::table::fit;
use super::{Ctx, aligned, print_json};
use crate::cli::{ModelAction, RecipeAction};
use crate::sanitize;

/// `reagent recipe add|show|rm`
pub async fn recipe(ctx: &Ctx, action: RecipeAction) -> anyhow::Result<ExitCode> {
    match action {
        RecipeAction::Add { files, json } => add(ctx, &files, json).await,
        RecipeAction::Show { name, json } => show(ctx, name, json).await,
        RecipeAction::Rm { name } => {
            let (client, _) = ctx.connect().await?;
            client.call(&RemoveRecipe { name: name.clone() }).await?;
            println!("removed recipe {}", sanitize::line(&name));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `reagent recipe add FILE... [--json]`: all the files' recipes in one request, or none.
async fn add(ctx: &Ctx, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let recipes = match read_all(files, reagent::model::file::read) {
        Ok(recipes) => recipes,
        Err(errors) => {
            // Each error already names its file, line and key.
            for error in errors {
                eprintln!("reagent: {}", sanitize::text(&error));
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let (client, _) = ctx.connect().await?;
    let added = client.call(&AddRecipes { recipes }).await?;
    if json {
        print_json(&added)?;
    } else {
        for recipe in &added {
            println!(
                "added {} ({})",
                sanitize::line(&recipe.name),
                recipe.backend
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every file's recipes, or every error found: a file that does not read, a file without a
/// recipe (a typo'd table name, most likely), and a name defined twice across the files —
/// which one request would otherwise settle silently, the later replacing the earlier.
fn read_all(
    files: &[PathBuf],
    read: impl Fn(&Path) -> Result<Vec<Recipe>, String>,
) -> Result<Vec<Recipe>, Vec<String>> {
    let mut errors = Vec::new();
    let mut recipes = Vec::new();
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    for path in files {
        let read = match read(path) {
            Ok(read) => read,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        if read.is_empty() {
            errors.push(format!("{}: no [[recipe]] tables", path.display()));
        }
        for recipe in read {
            match seen.get(&recipe.name) {
                Some(first) => errors.push(format!(
                    "{}: recipe `{}` is also defined in {}",
                    path.display(),
                    recipe.name,
                    first.display()
                )),
                None => {
                    seen.insert(recipe.name.clone(), path);
                }
            }
            recipes.push(recipe);
        }
    }
    if errors.is_empty() {
        Ok(recipes)
    } else {
        Err(errors)
    }
}

/// `reagent recipes [--json]`
pub async fn recipes(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let recipes = client.call(&ListRecipes {}).await?;
    if json {
        print_json(&recipes)?;
    } else if recipes.is_empty() {
        println!("no recipes: add some with `reagent recipe add FILE.toml`");
    } else {
        print!("{}", recipes_table(&recipes));
    }
    Ok(ExitCode::SUCCESS)
}

/// Recipes as aligned columns.
fn recipes_table(recipes: &[Recipe]) -> String {
    let mut rows = vec![
        ["NAME", "BACKEND", "MODEL", "GPUS", "PORT"]
            .map(String::from)
            .to_vec(),
    ];
    for recipe in recipes {
        rows.push(vec![
            recipe.name.clone(),
            recipe.backend.to_string(),
            recipe.model.clone(),
            gpus_wanted(&recipe.gpus),
            port_or_auto(recipe.port),
        ]);
    }
    aligned(&rows)
}

/// As the recipe file says it, so `2` (any two) and `[2]` (GPU 2) read apart.
fn gpus_wanted(gpus: &GpuSelect) -> String {
    match gpus {
        GpuSelect::Count(n) => n.to_string(),
        GpuSelect::Ids(ids) => format!("[{}]", join_ids(ids)),
    }
}

/// A recipe without a port gets a free one at each launch.
fn port_or_auto(port: Option<u16>) -> String {
    port.map_or_else(|| "auto".into(), |port| port.to_string())
}

/// `reagent recipe show NAME [--json]`
async fn show(ctx: &Ctx, name: String, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let view = client.call(&ShowRecipe { name }).await?;
    if json {
        print_json(&view)?;
    } else {
        print!("{}", describe(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// A recipe as `key: value` lines (what it leaves to defaults, with the default), then the
/// argv and env a launch uses, quoted so they can be pasted into a shell.
fn describe(view: &RecipeView) -> String {
    let recipe = &view.recipe;
    let fields: [(&str, Option<String>); 16] = [
        ("name", Some(recipe.name.clone())),
        ("backend", Some(recipe.backend.to_string())),
        ("model", Some(recipe.model.clone())),
        ("served_name", Some(recipe.served_name().to_string())),
        ("gpus", Some(gpus_wanted(&recipe.gpus))),
        (
            "tensor_parallel",
            recipe.tensor_parallel.map(|n| n.to_string()),
        ),
        (
            "gpu_memory_fraction",
            recipe.gpu_memory_fraction.map(|f| f.to_string()),
        ),
        ("max_context", recipe.max_context.map(|n| n.to_string())),
        ("tool_parser", recipe.tool_parser.clone()),
        ("reasoning_parser", recipe.reasoning_parser.clone()),
        ("needs_mib", recipe.needs_mib.map(|n| n.to_string())),
        ("cwd", recipe.cwd.as_ref().map(|p| p.display().to_string())),
        ("port", Some(port_or_auto(recipe.port))),
        ("health_path", Some(view.health_path.clone())),
        (
            "ready_timeout_secs",
            Some(recipe.ready_timeout_secs().to_string()),
        ),
        (
            "idle_unload_secs",
            Some(
                recipe
                    .idle_unload_secs
                    .map_or_else(|| "off".into(), |s| s.to_string()),
            ),
        ),
    ];
    let mut out = String::new();
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(out, "{key}: {}", sanitize::line(&value));
        }
    }
    let _ = writeln!(out, "argv: {}", shell::line(&view.argv));
    for (key, value) in &view.env {
        let _ = writeln!(out, "env: {}={}", shell::word(key), shell::word(value));
    }
    out
}

/// `reagent model launch|stop|logs`
pub async fn model(ctx: &Ctx, action: ModelAction) -> anyhow::Result<ExitCode> {
    match action {
        ModelAction::Launch {
            recipe,
            preempt,
            json,
        } => launch(ctx, recipe, preempt, json).await,
        ModelAction::Stop { name, json } => stop(ctx, name, json).await,
        ModelAction::Logs {
            name,
            follow,
            tail,
            plain,
        } => logs(ctx, &name, follow, tail, plain).await,
    }
}

/// `reagent model launch RECIPE [--preempt] [--json]`: returns when the model is ready (exit
/// 0) or has failed (exit 1, the daemon's reason on stderr, with the server's log tail when
/// it died at start).
async fn launch(ctx: &Ctx, recipe: String, preempt: bool, json: bool) -> anyhow::Result<ExitCode> {
    let (client, notes) = ctx.connect().await?;
    let params = LaunchModel {
        recipe: recipe.clone(),
        preempt,
    };
    let reply = if !json && std::io::stderr().is_terminal() {
        // Subscribed before the request, so no event of this launch comes before the hello.
        let (hello, updates) = client.subscribe(notes, "reagent model launch").await?;
        let mut bar = Bar::new();
        if let Sync::Snapshot(snapshot) = &hello.sync {
            bar.take(&recipe, &snapshot.models);
        }
        let reply = client.request(&params).await?;
        follow_launch(&recipe, reply, updates, bar).await
    } else {
        client.call(&params).await
    };
    // A failure is an error whose message holds the reason: `main` prints it, exits 1.
    let model = reply?;
    if json {
        print_json(&model)?;
    } else if model.state == ModelState::Ready {
        println!("{}", ready_line(&model));
    }
    if model.state == ModelState::Ready {
        Ok(ExitCode::SUCCESS)
    } else {
        // The daemon answers a failure with an error, so this is a reply it should not send;
        // it still must not pass for a ready model.
        let why = model.reason.as_deref().unwrap_or("no reason given");
        eprintln!(
            "reagent: {} is {}: {}",
            sanitize::line(&model.name),
            model.state,
            sanitize::text(why)
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Waits for the launch's reply, drawing the bar from the launch's `model` events meanwhile.
/// The subscription is read until the reply comes, whatever happens to the bar: unread
/// notifications would stop the connection's reader, and with it the reply.
async fn follow_launch(
    name: &str,
    reply: impl Future<Output = reagent::Result<ModelInfo>>,
    mut updates: Subscription,
    mut bar: Bar,
) -> reagent::Result<ModelInfo> {
    tokio::pin!(reply);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut open = true;
    bar.draw();
    let result = loop {
        tokio::select! {
            result = &mut reply => break result,
            update = updates.next(), if open => match update {
                Ok(Some(Update::Event(event))) => {
                    if let EventKind::Model { model } = event.kind {
                        bar.take(name, std::slice::from_ref(&model));
                    }
                }
                Ok(Some(Update::Resynced(Some(snapshot)))) => bar.take(name, &snapshot.models),
                // The connection is gone: the reply says so.
                Ok(None) => open = false,
                // Missed events come replayed as events; a hello that failed after a resync
                // only stops the bar, as the reply comes on this connection regardless.
                Ok(Some(_)) | Err(_) => {}
            },
            // The elapsed time moves on between events.
            _ = tick.tick() => bar.draw(),
        }
    };
    bar.clear();
    result
}

/// The launch's progress line on stderr, redrawn in place.
struct Bar {
    started: Instant,
    state: ModelState,
    progress: u8,
    reason: Option<String>,
}

impl Bar {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            state: ModelState::Requested,
            progress: 0,
            reason: None,
        }
    }

    /// Takes the state of the model called `name` among `models`, while it launches; an
    /// instance that ended is an earlier one, or this one's end, which the reply tells.
    fn take(&mut self, name: &str, models: &[ModelInfo]) {
        let Some(model) = models
            .iter()
            .rev()
            .find(|m| m.name == name && m.state.is_launching())
        else {
            return;
        };
        self.state = model.state;
        self.progress = model.progress;
        self.reason.clone_from(&model.reason);
        self.draw();
    }

    fn draw(&self) {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let line = progress_line(self.state, self.progress, self.reason.as_deref(), elapsed);
        // A line wider than the terminal wraps, and `\r` then redraws only its last row.
        // A terminal that does not know its size says 0 columns.
        let cols = match crossterm::terminal::size() {
            Ok((cols, _)) if cols > 0 => usize::from(cols),
            _ => 80,
        };
        let (line, _) = fit(&line, cols.saturating_sub(1));
        // The bar is decoration: a stderr that cannot be written to must not fail the launch.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    fn clear(&self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// `[#####     ] 50% waiting_health (12s)`, then `: REASON` (its first line) when the launch
/// says why it waits. Not yet sanitized.
fn progress_line(state: ModelState, progress: u8, reason: Option<&str>, elapsed_ms: i64) -> String {
    let progress = progress.min(100);
    let filled = usize::from(progress / 10);
    let mut line = format!(
        "[{}{}] {progress}% {state}",
        "#".repeat(filled),
        " ".repeat(10 - filled)
    );
    if elapsed_ms >= 1000 {
        let _ = write!(line, " ({})", format_duration_ms(elapsed_ms));
    }
    if let Some(reason) = reason.and_then(first_line) {
        let _ = write!(line, ": {reason}");
    }
    line
}

/// A text's first non-empty line: a failure's reason goes on with the server's log.
fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|line| !line.is_empty())
}

/// `ready: NAME on 127.0.0.1:PORT (GPUs 0,1) in 12.3 s`, made safe to print.
fn ready_line(model: &ModelInfo) -> String {
    let mut line = format!("ready: {}", sanitize::line(&model.name));
    if let Some(port) = model.port {
        let _ = write!(line, " on 127.0.0.1:{port}");
    }
    let _ = match model.gpus[..] {
        [] => write!(line, " (no GPU)"),
        [gpu] => write!(line, " (GPU {gpu})"),
        _ => write!(line, " (GPUs {})", join_ids(&model.gpus)),
    };
    if let Some(ready_at) = model.ready_at {
        let secs = (ready_at - model.requested_at).max(0) as f64 / 1000.0;
        let _ = write!(line, " in {secs:.1} s");
    }
    line
}

/// `reagent model stop NAME [--json]`
async fn stop(ctx: &Ctx, name: String, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let model = client.call(&StopModel { name }).await?;
    if json {
        print_json(&model)?;
    } else {
        println!("{}", stopped_line(&model));
    }
    Ok(ExitCode::SUCCESS)
}

/// `stopped NAME` for a model that served, `cancelled NAME` for a launch, else where the
/// model is (one that had failed before the stop, say), made safe to print.
fn stopped_line(model: &ModelInfo) -> String {
    let name = sanitize::line(&model.name);
    match model.state {
        ModelState::Stopped => format!("stopped {name}"),
        ModelState::Cancelled => format!("cancelled {name}"),
        state => match model.reason.as_deref().and_then(first_line) {
            Some(reason) => format!("{name} is {state}: {}", sanitize::line(reason)),
            None => format!("{name} is {state}"),
        },
    }
}

/// `reagent models [--json]`
pub async fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let models = client.call(&ListModels {}).await?;
    if json {
        print_json(&models)?;
    } else if models.is_empty() {
        println!("no models: launch one with `reagent model launch RECIPE`");
    } else {
        print!("{}", models_table(&models, now_ms()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Models as aligned columns. There is no RECIPE column: a model is named after its recipe.
/// A model that is not serving says why in its STATE (the reason's first line), as a queued
/// run does in `reagent runs`.
fn models_table(models: &[ModelInfo], now: i64) -> String {
    let header = [
        "NAME",
        "BACKEND",
        "STATE",
        "PROGRESS",
        "GPUS",
        "PORT",
        "PID",
        "UPTIME",
        "REQUESTS",
        "LAST-REQUEST",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    for model in models {
        let reason = model.reason.as_deref().and_then(first_line);
        let state = match reason {
            Some(reason) if model.state != ModelState::Ready => {
                format!("{} ({reason})", model.state)
            }
            _ => model.state.to_string(),
        };
        let uptime = match (model.state, model.ready_at) {
            (ModelState::Ready, Some(ready_at)) => Some(format_duration_ms(now - ready_at)),
            _ => None,
        };
        rows.push(vec![
            model.name.clone(),
            model.backend.to_string(),
            state,
            or_dash((!model.state.is_terminal()).then(|| format!("{}%", model.progress))),
            or_dash((!model.gpus.is_empty()).then(|| join_ids(&model.gpus))),
            or_dash(model.port.map(|port| port.to_string())),
            or_dash(model.pid.map(|pid| pid.to_string())),
            or_dash(uptime),
            model.requests.to_string(),
            or_dash(
                model
                    .last_request_at
                    .map(|at| format!("{} ago", format_duration_ms(now - at))),
            ),
        ]);
    }
    aligned(&rows)
}

/// `reagent model logs NAME [-f] [-n N] [--plain]`: `reagent logs` on the model's run.
async fn logs(
    ctx: &Ctx,
    name: &str,
    follow: bool,
    tail: Option<usize>,
    plain: bool,
) -> anyhow::Result<ExitCode> {
    let (client, _) = ctx.connect().await?;
    let models = client.call(&ListModels {}).await?;
    drop(client);
    // Newest first: a recipe launched again is a new instance of the same name.
    let Some(model) = models.iter().rev().find(|m| m.name == name) else {
        anyhow::bail!("no model is called `{name}`; `reagent models` lists them");
    };
    let Some(run) = &model.run else {
        eprintln!(
            "reagent: {} has no run yet ({}): its server has not been started",
            sanitize::line(name),
            model.state
        );
        return Ok(ExitCode::FAILURE);
    };
    super::logs::logs(ctx, run, follow, tail, plain).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, state: ModelState) -> ModelInfo {
        ModelInfo::new(name, reagent::model::Backend::Vllm, 1_000).in_state(state)
    }

    fn recipe(name: &str) -> Recipe {
        serde_json::from_value(serde_json::json!({
            "name": name, "backend": "vllm", "model": "org/model"
        }))
        .unwrap()
    }

    /// A table line's cells: what two spaces or more separate.
    fn cells(line: &str) -> Vec<&str> {
        line.split("  ")
            .filter(|c| !c.is_empty())
            .map(str::trim)
            .collect()
    }

    #[test]
    fn the_models_table_shows_uptime_ages_and_why_a_model_waits() {
        let now = 100_000_000;
        let mut ready = model("qwen", ModelState::Ready);
        ready.gpus = vec![0, 1];
        ready.port = Some(8001);
        ready.pid = Some(4242);
        ready.ready_at = Some(now - 187_000);
        ready.requests = 12;
        ready.last_request_at = Some(now - 42_000);
        let mut waiting = model("llama", ModelState::WaitingLock);
        waiting.reason = Some("\nwaiting for qwen on GPU 0\nmore".into());
        let mut failed = model("bad\x1b[2J", ModelState::Failed);
        failed.reason = Some("exited with code 1 in its first seconds\nTraceback…".into());
        let text = models_table(&[ready, waiting, failed], now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            cells(lines[0]),
            [
                "NAME",
                "BACKEND",
                "STATE",
                "PROGRESS",
                "GPUS",
                "PORT",
                "PID",
                "UPTIME",
                "REQUESTS",
                "LAST-REQUEST"
            ]
        );
        assert_eq!(
            cells(lines[1]),
            [
                "qwen", "vllm", "ready", "100%", "0,1", "8001", "4242", "3m07s", "12", "42s ago"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "llama",
                "vllm",
                "waiting_lock (waiting for qwen on GPU 0)",
                "0%",
                "-",
                "-",
                "-",
                "-",
                "0",
                "-"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            [
                "bad^[[2J",
                "vllm",
                "failed (exited with code 1 in its first seconds)",
                "-",
                "-",
                "-",
                "-",
                "-",
                "0",
                "-"
            ]
        );
        let header = lines[0];
        let column = |line: &str, cell: &str| line.find(cell);
        assert_eq!(
            column(header, "STATE"),
            column(lines[1], "ready"),
            "aligned"
        );
    }

    #[test]
    fn the_recipes_table_tells_a_count_from_ids_and_an_auto_port() {
        let mut fixed = recipe("a");
        fixed.gpus = GpuSelect::Ids(vec![2]);
        fixed.port = Some(9000);
        let any = recipe("b");
        let text = recipes_table(&[fixed, any]);
        assert_eq!(
            text,
            "NAME  BACKEND  MODEL      GPUS  PORT\n\
             a     vllm     org/model  [2]   9000\n\
             b     vllm     org/model  1     auto\n"
        );
    }

    #[test]
    fn the_progress_line_fills_a_bar_and_says_why_it_waits() {
        assert_eq!(
            progress_line(ModelState::WaitingHealth, 50, None, 0),
            "[#####     ] 50% waiting_health"
        );
        assert_eq!(
            progress_line(ModelState::Requested, 0, None, 500),
            "[          ] 0% requested"
        );
        assert_eq!(
            progress_line(
                ModelState::WaitingLock,
                0,
                Some("waiting for qwen on GPU 0\nsecond line"),
                65_000
            ),
            "[          ] 0% waiting_lock (1m05s): waiting for qwen on GPU 0"
        );
        assert_eq!(
            progress_line(ModelState::Ready, 250, None, 12_000),
            "[##########] 100% ready (12s)",
            "a progress past 100 is 100"
        );
    }

    #[test]
    fn the_ready_line_names_the_place_gpus_and_time() {
        let mut ready = model("qwen", ModelState::Ready);
        ready.port = Some(8001);
        ready.gpus = vec![0, 1];
        ready.ready_at = Some(ready.requested_at + 12_345);
        assert_eq!(
            ready_line(&ready),
            "ready: qwen on 127.0.0.1:8001 (GPUs 0,1) in 12.3 s"
        );
        ready.gpus = vec![3];
        ready.port = None;
        ready.ready_at = None;
        assert_eq!(ready_line(&ready), "ready: qwen (GPU 3)");
        ready.gpus.clear();
        assert_eq!(ready_line(&ready), "ready: qwen (no GPU)");
    }

    #[test]
    fn stopping_says_stopped_or_cancelled_by_the_state() {
        assert_eq!(stopped_line(&model("q", ModelState::Stopped)), "stopped q");
        assert_eq!(
            stopped_line(&model("q", ModelState::Cancelled)),
            "cancelled q"
        );
        let mut failed = model("q", ModelState::Failed);
        failed.reason = Some("died\x1b[2J\nlog".into());
        assert_eq!(stopped_line(&failed), "q is failed: died^[[2J");
    }

    #[test]
    fn show_prints_fields_then_a_pasteable_argv_and_env() {
        let mut recipe = recipe("qwen");
        recipe.max_context = Some(32768);
        recipe.served_name = Some("Qwen\x1b]52;c;x\x07".into());
        let view = RecipeView {
            recipe,
            argv: vec![
                "vllm".into(),
                "serve".into(),
                "org/model".into(),
                "--port".into(),
                "{port}".into(),
                "--chat-template".into(),
                "{% x %}".into(),
            ],
            env: vec![("HF_HOME".into(), "/data/hf cache".into())],
            health_path: "/health".into(),
        };
        let text = describe(&view);
        assert_eq!(
            text,
            "name: qwen\n\
             backend: vllm\n\
             model: org/model\n\
             served_name: Qwen^[]52;c;x^G\n\
             gpus: 1\n\
             max_context: 32768\n\
             port: auto\n\
             health_path: /health\n\
             ready_timeout_secs: 600\n\
             idle_unload_secs: off\n\
             argv: vllm serve org/model --port '{port}' --chat-template '{% x %}'\n\
             env: HF_HOME='/data/hf cache'\n"
        );
    }

    #[test]
    fn adding_reads_every_file_and_refuses_all_of_them_on_any_error() {
        let files: Vec<PathBuf> = ["a.toml", "b.toml", "c.toml", "empty.toml"]
            .map(PathBuf::from)
            .to_vec();
        let read = |path: &Path| match path.to_str() {
            Some("a.toml") => Ok(vec![recipe("x"), recipe("y")]),
            Some("b.toml") => Ok(vec![recipe("y")]),
            Some("c.toml") => Err("c.toml:3: unknown key `gpu`".to_string()),
            _ => Ok(Vec::new()),
        };
        let errors = read_all(&files, read).unwrap_err();
        assert_eq!(
            errors,
            [
                "b.toml: recipe `y` is also defined in a.toml",
                "c.toml:3: unknown key `gpu`",
                "empty.toml: no [[recipe]] tables",
            ]
        );
        let recipes = read_all(&files[..1], read).unwrap();
        assert_eq!(
            recipes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
