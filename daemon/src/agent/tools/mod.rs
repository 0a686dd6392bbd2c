//! The built-in tools: each is the same operation as a CLI subcommand, calling the one
//! service function for it (never a second path), so what the agent does is exactly what a
//! person could have typed.
//!
//! A tool is a row of [`BUILTINS`]: its name, what it does, the JSON schema of its arguments,
//! and, for a tool that acts, how to say the exact action for an approval. Read-only tools
//! run at once; acting tools ask first (see [`super::approvals`]). Whatever goes wrong comes
//! back as an error result the model reads, never as a failure of the answer.

mod files;
mod lab;
mod runs;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use reagent::agent::ToolInfo;
use reagent::chat::SessionInfo;
use reagent::protocol::RpcError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::daemon::Daemon;

/// What a call comes back with: the text the model reads, or the error it reads.
pub type Outcome = Result<String, String>;

/// What a tool call runs with: the daemon and the session whose model made it.
pub struct Ctx<'a> {
    /// The daemon.
    pub daemon: &'a Arc<Daemon>,
    /// The session; its working directory bounds the file tools.
    pub session: &'a SessionInfo,
}

/// How a tool runs: at once under no lock held long, or as a task that waits (a shell
/// command, a model launch).
pub enum Run {
    /// Returns its outcome at once.
    Now(fn(&Ctx<'_>, Value) -> Outcome),
    /// Returns a future of its outcome.
    Later(for<'a> fn(&'a Ctx<'a>, Value) -> BoxFuture<'a, Outcome>),
}

/// One built-in tool.
pub struct Builtin {
    /// Its name as the model calls it.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// The JSON schema of its arguments.
    pub schema: fn() -> Value,
    /// For a tool that acts: the exact action in words, checked (and refused when the
    /// arguments are wrong) before anyone is asked. `None` for read-only tools.
    pub action: Option<fn(&Ctx<'_>, &Value) -> Outcome>,
    /// What it does.
    pub run: Run,
}

impl Builtin {
    /// The tool as clients and models see it.
    pub fn info(&self) -> ToolInfo {
        ToolInfo {
            name: self.name.into(),
            description: self.description.into(),
            schema: (self.schema)(),
            source: "reagent".into(),
            acts: self.action.is_some(),
        }
    }

    /// Runs the tool.
    pub async fn call(&self, ctx: &Ctx<'_>, args: Value) -> Outcome {
        match self.run {
            Run::Now(run) => run(ctx, args),
            Run::Later(run) => run(ctx, args).await,
        }
    }
}

/// The name of the tool a wild-mode model calls when its goal is met.
pub const FINISH: &str = "finish";

/// Every built-in tool, in the order `reagent tools` lists them.
pub static BUILTINS: &[Builtin] = &[
    runs::LIST,
    runs::SHOW,
    runs::LOG,
    runs::SCREEN,
    lab::METRICS,
    runs::START,
    runs::STOP,
    runs::RERUN,
    runs::SHELL,
    lab::SWEEPS,
    lab::SWEEP_START,
    lab::SWEEP_STOP,
    lab::SWEEP_RANK,
    lab::ALERTS,
    lab::ALERT_ANSWER,
    lab::GPUS,
    lab::RECIPES,
    lab::MODELS,
    lab::MODEL_LAUNCH,
    lab::MODEL_STOP,
    files::READ,
    files::LIST,
    files::WRITE,
    files::EDIT,
    lab::FINISH_TOOL,
];

/// A built-in tool by name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|tool| tool.name == name)
}

/// The most of a result the model is sent: a long log or listing is cut, saying so.
const MAX_RESULT: usize = 32 * 1024;

/// Arguments read into a tool's params type; a mistake names the field, as the protocol does.
pub fn args<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    // Models send `null` for "no arguments".
    let value = if value.is_null() {
        Value::Object(serde_json::Map::new())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            format!("invalid arguments: {inner}")
        } else {
            format!("invalid arguments: `{path}`: {inner}")
        }
    })
}

/// A reply as the model reads it: the JSON the CLI's `--json` prints.
pub fn json<T: Serialize>(value: &T) -> Outcome {
    serde_json::to_string(value)
        .map(clip)
        .map_err(|err| err.to_string())
}

/// A service's refusal as the model reads it: its message, which names what was wrong.
pub fn refused(err: RpcError) -> String {
    err.message
}

/// Text cut to [`MAX_RESULT`] bytes (at a character boundary), saying how much was left out.
pub fn clip(mut text: String) -> String {
    if text.len() <= MAX_RESULT {
        return text;
    }
    let mut end = MAX_RESULT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("\n[… {left} more bytes not shown]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_unique_name_and_an_object_schema() {
        let mut names: Vec<&str> = BUILTINS.iter().map(|tool| tool.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTINS.len());
        for tool in BUILTINS {
            let schema = (tool.schema)();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            assert!(
                !tool.name.contains("__"),
                "`__` is for MCP tools: {}",
                tool.name
            );
        }
    }

    #[test]
    fn bad_arguments_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Params {
            run: String,
        }
        let err = args::<Params>(serde_json::json!({"run": 5})).unwrap_err();
        assert!(err.contains("`run`"), "{err}");
        let err = args::<Params>(Value::Null).unwrap_err();
        assert!(err.contains("missing field `run`"), "{err}");
    }

    #[test]
    fn long_results_are_cut_saying_so() {
        let text = clip("é".repeat(MAX_RESULT));
        assert!(text.len() < MAX_RESULT + 64);
        assert!(text.ends_with("more bytes not shown]"), "{text}");
    }
}
