//! Keys of the models view and of its launch picker. The view's own keys come first (move,
//! launch, stop, open a server's log); the cockpit-wide keys work as everywhere else.
//!
//! A launch never blocks the cockpit: `model.launch` is sent like any request and its reply,
//! which the daemon gives only once the model is ready or has failed (minutes, for a big
//! model), comes back as a message. The progress meanwhile comes from `model` events.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::protocol::{LaunchModel, ListRecipes};

use super::keys::{self, Action};
use super::state::{App, Confirm, Focus, Mode, View};
use super::update::{Effect, act, show};

/// A key in the models view: move, launch, stop, open the log, then the cockpit-wide keys.
pub fn models_key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    app.flash = None;
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return Vec::new();
    }
    match (key.code, keys::action_for(key)) {
        (_, Some(Action::Down)) => app.models.step(1),
        (_, Some(Action::Up)) => app.models.step(-1),
        (_, Some(Action::Top)) => app.models.selected = 0,
        (_, Some(Action::Bottom)) => app.models.step(isize::MAX),
        (KeyCode::Char('n'), _) => return open_picker(app),
        (KeyCode::Char('s'), _) => ask_stop(app),
        (KeyCode::Enter, _) => return open_log(app),
        (_, Some(action)) if action.is_global() => return act(app, action),
        _ => {}
    }
    Vec::new()
}

/// Opens the launch picker on the highlighted model's recipe (relaunching what failed or
/// was stopped is the common case), and reads the recipes again in case the list is behind.
pub fn open_picker(app: &mut App) -> Vec<Effect> {
    let models = &app.models;
    let at = models
        .current()
        .and_then(|model| models.recipes.iter().position(|r| r.name == model.name))
        .unwrap_or(0);
    app.mode = Mode::Launch(at);
    vec![Effect::ask(ListRecipes {})]
}

/// The launch picker: ↑/↓ (or j/k) choose a recipe, Enter launches it, `P` launches it
/// cancelling the launches that hold the GPUs it needs, Esc closes.
pub fn picker(app: &mut App, selected: usize, key: &KeyEvent) -> Vec<Effect> {
    let last = app.models.recipes.len().saturating_sub(1);
    match key.code {
        KeyCode::Esc | KeyCode::Char('q') => app.mode = Mode::Normal,
        KeyCode::Down | KeyCode::Char('j') => app.mode = Mode::Launch((selected + 1).min(last)),
        KeyCode::Up | KeyCode::Char('k') => app.mode = Mode::Launch(selected.saturating_sub(1)),
        KeyCode::Enter | KeyCode::Char('P') => {
            app.mode = Mode::Normal;
            let Some(recipe) = app.models.recipes.get(selected) else {
                app.say(
                    "no recipe to launch: add one with `reagent recipe add FILE`",
                    true,
                );
                return Vec::new();
            };
            let name = recipe.name.clone();
            return launch(app, name, key.code == KeyCode::Char('P'));
        }
        _ => {}
    }
    Vec::new()
}

/// Launches recipe `name` and highlights its model, now or when its first event lists it.
pub fn launch(app: &mut App, name: String, preempt: bool) -> Vec<Effect> {
    let models = &mut app.models;
    match models.models.iter().position(|m| m.name == name) {
        Some(at) => models.selected = at,
        None => models.follow = Some(name.clone()),
    }
    let how = if preempt { " (preempting)" } else { "" };
    app.say(format!("launching {name}{how}…"), false);
    vec![Effect::ask(LaunchModel {
        recipe: name,
        preempt,
    })]
}

/// Asks before stopping the highlighted model (or cancelling its launch).
fn ask_stop(app: &mut App) {
    let Some(model) = app.models.current() else {
        return;
    };
    if model.state.is_terminal() {
        let text = format!("{} is {} already", model.name, model.state);
        app.say(text, true);
        return;
    }
    let confirm = Confirm::StopModel(model.name.clone(), model.state.is_launching());
    app.mode = Mode::Confirm(confirm);
}

/// Shows the highlighted model's server in the pane: it is an ordinary run, so its log is
/// that run's, selected and attached like any other, in the runs view.
fn open_log(app: &mut App) -> Vec<Effect> {
    let Some(model) = app.models.current() else {
        return Vec::new();
    };
    let name = model.name.clone();
    let Some(id) = model.run.clone() else {
        let text = format!("{name} has no server run yet ({})", model.state);
        app.say(text, true);
        return Vec::new();
    };
    let Some(index) = app.runs.iter().position(|run| run.id == id) else {
        app.say(format!("{name}'s server run {id} is not listed"), true);
        return Vec::new();
    };
    let run = app.runs[index].clone();
    app.view = View::Runs;
    app.selected = index;
    let effects = show(app, &run);
    app.focus = Focus::Pane;
    app.say(
        format!(
            "{name}'s server is run {} · PgUp scrolls its log",
            run.label()
        ),
        false,
    );
    effects
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use reagent::config::PrefixKey;
    use reagent::model::ModelState;
    use reagent::protocol::{Detach, Event, EventKind, LaunchModel, ListRecipes, StopModel};
    use reagent::run::RunInfo;

    use crate::app::App;
    use crate::app::conversation::Plain;
    use crate::app::fixtures::{model, recipe};
    use crate::app::palette::execute;
    use crate::app::side::Side;
    use crate::app::state::{Confirm, Focus, Mode, View};
    use crate::app::update::{Effect, on_key};

    fn run(id: &str) -> RunInfo {
        crate::app::fixtures::run(id, "vllm")
    }

    /// Runs `aaaa` and the server of `qwen` (ready), recipes `llama` and `qwen`, model
    /// `llama` failed.
    fn app() -> App {
        let mut app = App::new("local", PrefixKey('b'), (160, 40), 0, Box::new(Plain));
        app.runs = vec![run("aaaa"), run("m0de1000")];
        app.models.recipes = vec![recipe("llama"), recipe("qwen")];
        app.models.models = vec![
            model("qwen", ModelState::Ready, 0),
            model("llama", ModelState::Failed, 0),
        ];
        app
    }

    fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
        on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn launch(recipe: &str, preempt: bool) -> Effect {
        Effect::ask(LaunchModel {
            recipe: recipe.into(),
            preempt,
        })
    }

    #[test]
    fn shift_l_shows_the_models_and_n_launches_a_recipe_from_the_picker() {
        let mut app = app();
        assert!(press(&mut app, KeyCode::Char('L')).is_empty());
        assert_eq!(app.view, View::Models);
        assert_eq!(
            press(&mut app, KeyCode::Char('n')),
            [Effect::ask(ListRecipes {})]
        );
        assert_eq!(
            app.mode,
            Mode::Launch(1),
            "the picker starts on the highlighted model's recipe"
        );
        press(&mut app, KeyCode::Char('k'));
        assert_eq!(app.mode, Mode::Launch(0));
        assert_eq!(press(&mut app, KeyCode::Enter), [launch("llama", false)]);
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.models.selected, 1, "the launched model is highlighted");
        assert_eq!(
            app.view,
            View::Models,
            "the launch does not wait for its reply"
        );

        // A recipe without a model yet is highlighted when its first event lists it.
        app.models.recipes.push(recipe("gemma"));
        press(&mut app, KeyCode::Char('n'));
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(
            press(&mut app, KeyCode::Char('P')),
            [launch("gemma", true)],
            "P preempts"
        );
        let model = model("gemma", ModelState::Requested, 0);
        app.apply_event(Event {
            seq: 1,
            ts: 0,
            kind: EventKind::Model { model },
        });
        assert_eq!(app.models.current().map(|m| m.name.as_str()), Some("gemma"));

        press(&mut app, KeyCode::Char('n'));
        assert!(press(&mut app, KeyCode::Esc).is_empty());
        assert_eq!(app.mode, Mode::Normal, "Esc launches nothing");
        press(&mut app, KeyCode::Char('L'));
        assert_eq!(app.view, View::Runs);
    }

    #[test]
    fn s_asks_before_stopping_the_highlighted_model() {
        let mut app = app();
        app.view = View::Models;
        assert!(press(&mut app, KeyCode::Char('s')).is_empty());
        assert_eq!(
            app.mode,
            Mode::Confirm(Confirm::StopModel("qwen".into(), false))
        );
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            [Effect::ask(StopModel {
                name: "qwen".into()
            })]
        );
        press(&mut app, KeyCode::Char('j'));
        assert!(press(&mut app, KeyCode::Char('s')).is_empty());
        assert_eq!(app.mode, Mode::Normal, "a failed model has nothing to stop");
        assert!(app.flash.as_ref().is_some_and(|f| f.error));

        app.models.models[1].state = ModelState::WaitingHealth;
        press(&mut app, KeyCode::Char('s'));
        assert_eq!(
            app.mode,
            Mode::Confirm(Confirm::StopModel("llama".into(), true)),
            "a launch is cancelled"
        );
        assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    }

    #[test]
    fn enter_shows_the_models_server_run_in_the_pane() {
        let mut app = app();
        app.view = View::Models;
        app.open_pane(&run("aaaa"));
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            [
                Effect::ask(Detach { run: "aaaa".into() }),
                Effect::Attach("m0de1000".into())
            ]
        );
        assert_eq!(app.view, View::Runs);
        assert_eq!(app.selected, 1);
        assert_eq!(app.focus, Focus::Pane, "PgUp scrolls its log");
        assert_eq!(app.mode, Mode::Normal, "watched, not typed into");

        app.view = View::Models;
        press(&mut app, KeyCode::Char('j'));
        app.models.models[1].run = None;
        assert!(press(&mut app, KeyCode::Enter).is_empty());
        assert!(app.flash.as_ref().is_some_and(|f| f.error), "no server run");
    }

    #[test]
    fn the_side_panel_takes_the_models_keys() {
        let mut app = app();
        app.side.shown = Some(Side::Models);
        app.focus = Focus::Side;
        press(&mut app, KeyCode::Char('j'));
        assert_eq!(app.models.selected, 1);
        assert_eq!(app.selected, 0, "the runs list stays");
        assert_eq!(app.view, View::Runs);
        assert_eq!(app.focus, Focus::Side);
        press(&mut app, KeyCode::Char('k'));
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(effects, [Effect::Attach("m0de1000".into())]);
        assert_eq!(app.focus, Focus::Pane, "the log is beside the panel");
    }

    #[test]
    fn the_palette_shows_the_models_and_launches_recipes() {
        let mut app = app();
        assert!(execute(&mut app, "models").is_empty());
        assert_eq!(app.view, View::Models);
        assert_eq!(execute(&mut app, "launch qwen"), [launch("qwen", false)]);
        assert_eq!(
            execute(&mut app, "launch --preempt llama"),
            [launch("llama", true)]
        );
        assert_eq!(execute(&mut app, "launch"), [Effect::ask(ListRecipes {})]);
        assert!(matches!(app.mode, Mode::Launch(_)));
    }
}
