//! Keys in the chat view: its own binding table (which `?` shows), writing a message,
//! searching the session, and the model picker.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::protocol::{CancelChat, ListProviders, SendChat, SetSessionModel, UsageQuery};

use super::App;
use super::chat::Search;
use super::conversation::{Conversation, Show};
use super::geometry::chat_viewport;
use super::keys::{self, Binding};
use super::state::{Focus, Mode, ModelPicker};
use super::update::{Effect, act, history, new_session};

/// What a chat-view key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatAction {
    /// Next session, or scroll the conversation down a line.
    Down,
    /// Previous session, or scroll up a line.
    Up,
    /// First session, or the conversation's first message.
    Top,
    /// Last session, or the end of the conversation.
    Bottom,
    /// Scroll the conversation back a page.
    PageUp,
    /// Scroll the conversation forward a page.
    PageDown,
    /// Open the selected session and write a message.
    Open,
    /// Start a session (palette: `chat MODEL`); during a search, the next match.
    New,
    /// The previous match of the search.
    PrevMatch,
    /// Search the open session.
    Search,
    /// Copy the newest code block.
    Copy,
    /// Pick the open session's model.
    Models,
    /// Title the session (palette: `rename`).
    Rename,
    /// Fold or unfold thinking.
    Thinking,
    /// Fold or unfold the session's system prompt (a chat about an alert: its context).
    System,
    /// Unfold or fold every tool call of the session.
    Tools,
    /// Turn the session's tools (the research agent) on or off.
    Agent,
    /// Show usage.
    Usage,
    /// Stop the answer streaming.
    Stop,
    /// End the search, or go back to the sessions list.
    Back,
}

/// The chat view's bindings, in the order help lists them.
pub const CHAT_BINDINGS: &[Binding<ChatAction>] = &[
    Binding {
        keys: &[KeyCode::Char('j'), KeyCode::Down],
        label: "j / ↓",
        action: ChatAction::Down,
        help: "next session (in the conversation: scroll down)",
    },
    Binding {
        keys: &[KeyCode::Char('k'), KeyCode::Up],
        label: "k / ↑",
        action: ChatAction::Up,
        help: "previous session (in the conversation: scroll up)",
    },
    Binding {
        keys: &[KeyCode::Char('g'), KeyCode::Home],
        label: "g / Home",
        action: ChatAction::Top,
        help: "first session (in the conversation: first message)",
    },
    Binding {
        keys: &[KeyCode::Char('G'), KeyCode::End],
        label: "G / End",
        action: ChatAction::Bottom,
        help: "last session (in the conversation: the end, following it)",
    },
    Binding {
        keys: &[KeyCode::PageUp],
        label: "PgUp",
        action: ChatAction::PageUp,
        help: "scroll the conversation back",
    },
    Binding {
        keys: &[KeyCode::PageDown],
        label: "PgDn",
        action: ChatAction::PageDown,
        help: "scroll the conversation forward",
    },
    Binding {
        keys: &[KeyCode::Enter, KeyCode::Char('i')],
        label: "Enter / i",
        action: ChatAction::Open,
        help: "open the session and write a message",
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        action: ChatAction::New,
        help: "new session (while searching: next match, older)",
    },
    Binding {
        keys: &[KeyCode::Char('N')],
        label: "N",
        action: ChatAction::PrevMatch,
        help: "while searching: previous match, newer",
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        action: ChatAction::Search,
        help: "search the session",
    },
    Binding {
        keys: &[KeyCode::Char('y')],
        label: "y",
        action: ChatAction::Copy,
        help: "copy the newest code block to the clipboard",
    },
    Binding {
        keys: &[KeyCode::Char('M')],
        label: "M",
        action: ChatAction::Models,
        help: "pick the model (of the open session, or for a new one)",
    },
    Binding {
        keys: &[KeyCode::Char('r')],
        label: "r",
        action: ChatAction::Rename,
        help: "rename the session",
    },
    Binding {
        keys: &[KeyCode::Char('t')],
        label: "t",
        action: ChatAction::Thinking,
        help: "unfold or fold thinking",
    },
    Binding {
        keys: &[KeyCode::Char('o')],
        label: "o",
        action: ChatAction::System,
        help: "unfold or fold the system prompt (an alert's context)",
    },
    Binding {
        keys: &[KeyCode::Char('e')],
        label: "e",
        action: ChatAction::Tools,
        help: "expand or collapse tool calls (arguments and whole results)",
    },
    Binding {
        keys: &[KeyCode::Char('T')],
        label: "T",
        action: ChatAction::Agent,
        help: "turn the session's tools on or off (the research agent, ⚙)",
    },
    Binding {
        keys: &[KeyCode::Char('u')],
        label: "u",
        action: ChatAction::Usage,
        help: "usage: tokens and cost per day and session",
    },
    Binding {
        keys: &[KeyCode::Char('s')],
        label: "s",
        action: ChatAction::Stop,
        help: "stop the answer (keeps what arrived)",
    },
    Binding {
        keys: &[KeyCode::Esc, KeyCode::Char('d')],
        label: "Esc / d",
        action: ChatAction::Back,
        help: "end the search, or back to the sessions list",
    },
];

/// A key in the chat view's normal mode: its own table first, then the global keys.
pub fn normal(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    app.flash = None;
    if let Some(action) = keys::lookup(CHAT_BINDINGS, key) {
        return chat_action(app, action);
    }
    match keys::action_for(key) {
        Some(action) if action.is_global() => act(app, action),
        _ => Vec::new(),
    }
}

fn chat_action(app: &mut App, action: ChatAction) -> Vec<Effect> {
    let in_list = app.focus == Focus::Runs;
    let last = app.chat.sessions.len().saturating_sub(1);
    let (_, page) = chat_viewport(app);
    let page = isize::try_from(page).unwrap_or(10).max(1);
    match action {
        ChatAction::Down if in_list => app.chat.selected = (app.chat.selected + 1).min(last),
        ChatAction::Up if in_list => app.chat.selected = app.chat.selected.saturating_sub(1),
        ChatAction::Top if in_list => app.chat.selected = 0,
        ChatAction::Bottom if in_list => app.chat.selected = last,
        ChatAction::Down => scroll(app, 1),
        ChatAction::Up => scroll(app, -1),
        ChatAction::PageDown => scroll(app, page),
        ChatAction::PageUp => scroll(app, -page),
        ChatAction::Top => scroll(app, isize::MIN / 2),
        ChatAction::Bottom => {
            if let Some(open) = app.chat.open.as_mut() {
                open.scroll = None;
            }
        }
        ChatAction::Open => return open(app),
        ChatAction::New if app.chat.search.is_some() => jump(app, true),
        ChatAction::New => app.mode = Mode::Palette("chat ".into()),
        ChatAction::PrevMatch => jump(app, false),
        ChatAction::Search if app.chat.open.is_some() => app.mode = Mode::Search(String::new()),
        ChatAction::Search => app.say("open a session to search it", true),
        ChatAction::Copy => copy(app),
        ChatAction::Models => {
            app.mode = Mode::Models(ModelPicker::default());
            return vec![Effect::ask(ListProviders { check: false })];
        }
        ChatAction::Rename => {
            let id = app.chat.open.as_ref().map(|open| open.id.as_str());
            let session = app.chat.sessions.iter().find(|s| Some(s.id.as_str()) == id);
            let title = session.and_then(|s| s.title.clone()).unwrap_or_default();
            app.mode = Mode::Palette(format!("rename {title}"));
        }
        ChatAction::Thinking => {
            app.chat.thinking = !app.chat.thinking;
            let state = if app.chat.thinking {
                "unfolded"
            } else {
                "folded"
            };
            app.say(format!("thinking {state}"), false);
        }
        ChatAction::System => unfold_system(app),
        ChatAction::Tools => unfold_tools(app),
        ChatAction::Agent => return super::agent_keys::set_agent(app, None),
        ChatAction::Usage => {
            app.mode = Mode::Usage;
            return vec![Effect::ask(UsageQuery {})];
        }
        ChatAction::Stop => {
            if let Some(open) = &app.chat.open {
                return vec![Effect::ask(CancelChat {
                    session: open.id.clone(),
                })];
            }
        }
        ChatAction::Back if app.chat.search.is_some() => app.chat.search = None,
        ChatAction::Back => {
            if app.show_runs {
                app.focus = Focus::Runs;
            }
        }
    }
    Vec::new()
}

/// Shows the open session's whole system prompt, or folds it back to a few lines.
fn unfold_system(app: &mut App) {
    let Some(open) = app.chat.open.as_mut().filter(|open| open.system.is_some()) else {
        app.say("this session has no system prompt", true);
        return;
    };
    open.system_unfolded = !open.system_unfolded;
    let state = if open.system_unfolded {
        "unfolded"
    } else {
        "folded"
    };
    app.say(format!("system prompt {state}"), false);
}

/// Shows every tool call of the open session whole, or folds them back to a line each.
fn unfold_tools(app: &mut App) {
    let Some(open) = app.chat.open.as_mut() else {
        app.say("no session open", true);
        return;
    };
    open.tools_unfolded = !open.tools_unfolded;
    let state = if open.tools_unfolded {
        "expanded"
    } else {
        "collapsed"
    };
    app.say(format!("tool calls {state}"), false);
}

/// Moves the conversation view by `lines` (negative: back).
fn scroll(app: &mut App, lines: isize) {
    let (width, height) = chat_viewport(app);
    let thinking = app.chat.thinking;
    if let Some(open) = app.chat.open.as_mut() {
        let awaiting = app.agent.awaiting(&open.id);
        let show = Show {
            thinking,
            awaiting: &awaiting,
        };
        let layout = Conversation::new(open, &*app.typesetter, width, show);
        open.scroll = layout.scroll(open.scroll, lines, height);
    }
}

/// Enter: open the highlighted session (or the shown one) and write a message.
fn open(app: &mut App) -> Vec<Effect> {
    let id = match app.focus {
        Focus::Runs => app.chat.selected_session().map(|s| s.id.clone()),
        Focus::Pane | Focus::Side => app.chat.open.as_ref().map(|open| open.id.clone()),
    };
    let Some(id) = id else {
        app.mode = Mode::Palette("chat ".into());
        return Vec::new();
    };
    let fresh = app.chat.open.as_ref().is_none_or(|open| open.id != id);
    app.chat.open(&id);
    app.focus = Focus::Pane;
    app.mode = Mode::Compose;
    if fresh { vec![history(id)] } else { Vec::new() }
}

/// Shows the next match of the search, older (`n`) or newer (`N`).
fn jump(app: &mut App, older: bool) {
    let (width, height) = chat_viewport(app);
    let thinking = app.chat.thinking;
    let (Some(open), Some(search)) = (app.chat.open.as_mut(), app.chat.search.as_mut()) else {
        return;
    };
    let Some(hit) = open.find(&search.query, search.hit, older) else {
        let which = if older { "older" } else { "newer" };
        app.flash = Some(super::state::Flash {
            text: format!("no {which} match for “{}”", search.query),
            error: true,
        });
        return;
    };
    search.hit = Some(hit);
    let awaiting = app.agent.awaiting(&open.id);
    let show = Show {
        thinking,
        awaiting: &awaiting,
    };
    let layout = Conversation::new(open, &*app.typesetter, width, show);
    open.scroll = layout.reveal(hit, height);
    let count = open.messages.len();
    app.say(format!("match in message {}/{count}", hit + 1), false);
}

fn copy(app: &mut App) {
    let Some(block) = app.chat.open.as_ref().and_then(|o| o.last_code_block()) else {
        app.say("no code block in this session", true);
        return;
    };
    let lines = block.lines().count();
    app.chat.clipboard = Some(block);
    app.say(
        format!("copied the newest code block ({lines} lines) to the clipboard"),
        false,
    );
}

/// Typing a chat message: Enter sends, Alt-Enter (or Shift-Enter) starts a new line, Esc
/// leaves, Ctrl-C stops the answer streaming; Alt-y, Alt-n, Alt-a answer a pending approval.
pub fn compose(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    let Some(session) = app.chat.open.as_ref().map(|open| open.id.clone()) else {
        app.mode = Mode::Normal;
        return Vec::new();
    };
    if let Some(effects) = super::agent_keys::compose_key(app, key) {
        return effects;
    }
    let modifiers = key.modifiers;
    match key.code {
        KeyCode::Esc => app.mode = Mode::Normal,
        KeyCode::Enter if modifiers.intersects(KeyModifiers::ALT | KeyModifiers::SHIFT) => {
            app.chat.input.push('\n');
        }
        KeyCode::Enter => {
            let text = std::mem::take(&mut app.chat.input);
            if !text.trim().is_empty() {
                // A message sent is a message the user wants to see answered: follow the end.
                if let Some(open) = app.chat.open.as_mut() {
                    open.scroll = None;
                }
                return vec![Effect::ask(SendChat { session, text })];
            }
        }
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => {
            return vec![Effect::ask(CancelChat { session })];
        }
        KeyCode::Backspace => {
            app.chat.input.pop();
        }
        KeyCode::Char(c) if !modifiers.contains(KeyModifiers::CONTROL) => app.chat.input.push(c),
        _ => {}
    }
    Vec::new()
}

/// Typing a search: Enter finds the newest match, Esc gives up.
pub fn search(app: &mut App, mut query: String, key: &KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Esc => app.mode = Mode::Normal,
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            if !query.is_empty() {
                app.chat.search = Some(Search { query, hit: None });
                jump(app, true);
            }
        }
        KeyCode::Backspace => {
            query.pop();
            app.mode = Mode::Search(query);
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            query.push(c);
            app.mode = Mode::Search(query);
        }
        _ => {}
    }
    Vec::new()
}

/// The model picker: type to filter, ↑/↓ to choose, Enter to switch, Esc to leave.
pub fn models(app: &mut App, mut picker: ModelPicker, key: &KeyEvent) -> Vec<Effect> {
    let shown = picker.matches(&app.chat.models).len();
    match key.code {
        KeyCode::Esc => {
            app.mode = Mode::Normal;
            return Vec::new();
        }
        KeyCode::Down => picker.selected = (picker.selected + 1).min(shown.saturating_sub(1)),
        KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
        KeyCode::Backspace => {
            picker.filter.pop();
            picker.selected = 0;
        }
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            let Some(model) = picker
                .matches(&app.chat.models)
                .get(picker.selected)
                .cloned()
            else {
                return Vec::new();
            };
            return match &app.chat.open {
                Some(open) => vec![Effect::ask(SetSessionModel {
                    session: open.id.clone(),
                    model: model.clone(),
                })],
                None => vec![new_session(Some(model.clone()), None, None)],
            };
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            picker.filter.push(c);
            picker.selected = 0;
        }
        _ => {}
    }
    app.mode = Mode::Models(picker);
    Vec::new()
}
