//! The `:` command palette: what it understands and what it does.

use reagent::protocol::{CleanRuns, CleanScope, RemoveRuns, RenameRun, RenameSession, RerunRun};
use reagent::run::RunSpec;

use super::state::App;
use super::update::{Effect, input, new_session, stop};

/// Every palette command with its usage, in the order the palette suggests them.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "run",
        "run [--name NAME] CMD…   start CMD (a shell command line) as a new run",
    ),
    (
        "stop",
        "stop [RUN]                stop the selected run (or RUN)",
    ),
    (
        "rename",
        "rename NAME               name the selected run (in chat: the session)",
    ),
    (
        "input",
        "input TEXT                type TEXT and Enter into the selected run",
    ),
    ("open", "open RUN                  show RUN in the pane"),
    (
        "rerun",
        "rerun [RUN]               start the selected run (or RUN) again as a new run",
    ),
    (
        "rm",
        "rm RUN…                   remove ended runs with their logs and series",
    ),
    (
        "clean",
        "clean [failed|ended] [7d] remove finished (failed, or all ended) runs; 7d: ended 7d ago",
    ),
    (
        "chat",
        "chat [PROVIDER/MODEL]     start a chat session (the default model without one)",
    ),
    (
        "agent",
        "agent on|off              the open session's tools (the research agent, ⚙)",
    ),
    (
        "wild",
        "wild GOAL… | wild stop    wild mode toward GOAL in the open session (or a new one)",
    ),
    (
        "approve",
        "approve [always]          approve the pending approval (always: in this session)",
    ),
    (
        "deny",
        "deny [REASON]             deny the pending approval, telling the model why",
    ),
    (
        "sweep",
        "sweep [NAME]              chart a sweep's runs together, ranked (newest sweep)",
    ),
    (
        "models",
        "models                    the model servers: launch, stop, their logs (L)",
    ),
    (
        "gateway",
        "gateway                   the gateway's last day of requests, totalled per token",
    ),
    (
        "launch",
        "launch [--preempt] RECIPE launch a recipe's model server (a picker without one)",
    ),
    ("help", "help                      every key binding"),
    (
        "quit",
        "quit                      leave the cockpit (runs go on)",
    ),
];

/// Commands whose name starts with what is typed so far.
pub fn suggestions(typed: &str) -> impl Iterator<Item = &'static str> {
    let word = typed.split_whitespace().next().unwrap_or("");
    COMMANDS
        .iter()
        .filter(move |(name, _)| name.starts_with(word))
        .map(|(_, usage)| *usage)
}

/// Runs a palette command line.
pub fn execute(app: &mut App, line: &str) -> Vec<Effect> {
    let line = line.trim();
    let (command, rest) = line
        .split_once(' ')
        .map_or((line, ""), |(c, r)| (c, r.trim()));
    let selected = app.selected_run().map(|run| run.id.clone());
    let need = |what: &str| format!("`{command}` needs {what}");
    match command {
        "" => Vec::new(),
        "run" => {
            let (name, command_line) = match rest.strip_prefix("--name ") {
                Some(named) => match named.trim().split_once(' ') {
                    Some((name, cmd)) => (Some(name.to_string()), cmd.trim()),
                    None => (Some(named.trim().to_string()), ""),
                },
                None => (None, rest),
            };
            if command_line.is_empty() {
                app.say(need("a command, e.g. `run python train.py`"), true);
                return Vec::new();
            }
            let spec = RunSpec {
                name,
                command: vec!["sh".into(), "-c".into(), command_line.into()],
                cwd: None,
                env: Vec::new(),
                size: None,
                ..RunSpec::default()
            };
            vec![Effect::ask(spec)]
        }
        "stop" => match (rest, selected) {
            ("", Some(id)) => vec![stop(id)],
            ("", None) => {
                app.say(need("a run"), true);
                Vec::new()
            }
            (run, _) => vec![stop(run.into())],
        },
        "rename" if app.view == super::state::View::Chat => {
            let session = app.chat.open.as_ref().map(|open| open.id.clone());
            match session.or_else(|| app.chat.selected_session().map(|s| s.id.clone())) {
                Some(id) => vec![Effect::ask(RenameSession {
                    session: id,
                    title: rest.into(),
                })],
                None => {
                    app.say(need("a session"), true);
                    Vec::new()
                }
            }
        }
        "rename" => match selected {
            Some(id) => vec![Effect::ask(RenameRun {
                run: id,
                name: rest.into(),
            })],
            None => {
                app.say(need("a selected run"), true);
                Vec::new()
            }
        },
        "input" => match selected {
            Some(id) => vec![input(id, format!("{rest}\r").into_bytes())],
            None => {
                app.say(need("a selected run"), true);
                Vec::new()
            }
        },
        "open" => {
            let found = app.runs.iter().position(|run| {
                run.id.starts_with(rest) && !rest.is_empty() || run.name.as_deref() == Some(rest)
            });
            match found {
                Some(index) => {
                    app.selected = index;
                    app.focus = super::state::Focus::Runs;
                    super::update::on_key(app, enter())
                }
                None => {
                    app.say(format!("no run matches `{rest}`"), true);
                    Vec::new()
                }
            }
        }
        "chat" => {
            app.view = super::state::View::Chat;
            vec![new_session(
                (!rest.is_empty()).then(|| rest.to_string()),
                None,
                None,
            )]
        }
        "rerun" => match (rest, selected) {
            ("", None) => {
                app.say(need("a run: select one or name it"), true);
                Vec::new()
            }
            ("", Some(id)) => vec![Effect::ask(RerunRun {
                run: id,
                command: None,
            })],
            (run, _) => vec![Effect::ask(RerunRun {
                run: run.into(),
                command: None,
            })],
        },
        "rm" if rest.is_empty() => {
            app.say(need("the runs to remove"), true);
            Vec::new()
        }
        "rm" => vec![Effect::ask(RemoveRuns {
            runs: rest.split_whitespace().map(String::from).collect(),
        })],
        "clean" => match clean(rest) {
            Ok(clean) => vec![Effect::ask(clean)],
            Err(why) => {
                app.say(format!("`clean`: {why}"), true);
                Vec::new()
            }
        },
        "agent" => super::agent_keys::agent_command(app, rest),
        "wild" => super::agent_keys::wild_command(app, rest),
        "approve" => super::agent_keys::approve_command(app, rest),
        "deny" => super::agent_keys::deny_command(app, rest),
        "sweep" => super::watch_keys::overlay_sweep(app, rest),
        "models" => {
            app.view = super::state::View::Models;
            app.focus = super::state::Focus::Runs;
            Vec::new()
        }
        "gateway" => super::gateway::open(app),
        "launch" => {
            let (preempt, recipe) = match rest.strip_prefix("--preempt") {
                Some(recipe) => (true, recipe.trim()),
                None => (false, rest),
            };
            app.view = super::state::View::Models;
            app.focus = super::state::Focus::Runs;
            if recipe.is_empty() {
                super::models_keys::open_picker(app)
            } else {
                super::models_keys::launch(app, recipe.to_string(), preempt)
            }
        }
        "help" => super::update::act(app, super::keys::Action::Help),
        "quit" | "q" => {
            app.quit = true;
            Vec::new()
        }
        other => {
            app.say(
                format!(
                    "unknown command `{other}`: try run, stop, rename, input, open, rerun, rm, \
                     clean, chat, agent, wild, approve, deny, sweep, models, launch, quit"
                ),
                true,
            );
            Vec::new()
        }
    }
}

/// `clean`'s words: which ended runs (`failed`, `ended`; finished ones by default) and how
/// long ago they must have ended (`7d`).
fn clean(words: &str) -> Result<CleanRuns, String> {
    let mut clean = CleanRuns::default();
    for word in words.split_whitespace() {
        match word {
            "failed" => clean.which = CleanScope::Failed,
            "ended" => clean.which = CleanScope::Ended,
            "finished" => clean.which = CleanScope::Finished,
            age => clean.older_than_ms = Some(reagent::time::parse_duration_ms(age)?),
        }
    }
    Ok(clean)
}

fn enter() -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    )
}
