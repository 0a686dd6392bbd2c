//! Key bindings — one table, used both to dispatch keys and to draw the `?` help — and the
//! translation of keys into the bytes a terminal program expects.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a cockpit key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the cockpit (the daemon and runs go on).
    Quit,
    /// Show every binding.
    Help,
    /// Open the command palette.
    Palette,
    /// Palette with `run ` typed.
    NewRun,
    /// Palette with `rename ` typed.
    Rename,
    /// Move focus to the next panel.
    FocusNext,
    /// Move focus to the previous panel.
    FocusPrev,
    /// Next run, or scroll the pane down.
    Down,
    /// Previous run, or scroll the pane up.
    Up,
    /// First run.
    Top,
    /// Last run.
    Bottom,
    /// Open the selected run in the pane and type into it.
    Open,
    /// Leave the pane (it stays on screen).
    Detach,
    /// Stop the selected run (asks first).
    Stop,
    /// Remove the selected ended run with its log and series (asks first).
    Remove,
    /// Start the selected run again as a new run.
    Rerun,
    /// Show or hide the runs list.
    ToggleRuns,
    /// Switch between runs and chat.
    ToggleChat,
    /// Switch between runs and the metrics charts.
    ToggleCharts,
    /// Switch between runs and the alerts list.
    ToggleAlerts,
    /// Switch between runs and the model servers.
    ToggleModels,
    /// Switch between runs and the gateway's usage by token.
    ToggleGateway,
    /// A key only the charts, alerts or models view reads (listed here for help; those views handle
    /// it before this table is consulted).
    InView,
    /// Widen the runs list.
    Wider,
    /// Narrow the runs list.
    Narrower,
    /// Scroll the pane back a page.
    PageUp,
    /// Scroll the pane forward a page.
    PageDown,
    /// Show or hide the GPU panel ("processors").
    ToggleGpus,
    /// Cycle the side panel beside the pane: chat, charts, alerts, GPUs, models, none.
    CycleSide,
    /// Widen the side panel.
    SideWider,
    /// Narrow the side panel.
    SideNarrower,
}

/// One binding: the keys, how help shows them, and what they do (an [`Action`], or a
/// view's own action type).
pub struct Binding<A = Action> {
    /// Keys that trigger it (without modifiers other than Shift).
    pub keys: &'static [KeyCode],
    /// How the help overlay writes the keys.
    pub label: &'static str,
    /// The action.
    pub action: A,
    /// What it does, for the help overlay.
    pub help: &'static str,
}

/// Every cockpit binding, in the order help lists them.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[KeyCode::Tab],
        label: "Tab",
        action: Action::FocusNext,
        help: "focus the next panel",
    },
    Binding {
        keys: &[KeyCode::BackTab],
        label: "Shift-Tab",
        action: Action::FocusPrev,
        help: "focus the previous panel",
    },
    Binding {
        keys: &[KeyCode::Char('j'), KeyCode::Down],
        label: "j / ↓",
        action: Action::Down,
        help: "next run (in the pane: scroll down)",
    },
    Binding {
        keys: &[KeyCode::Char('k'), KeyCode::Up],
        label: "k / ↑",
        action: Action::Up,
        help: "previous run (in the pane: scroll up)",
    },
    Binding {
        keys: &[KeyCode::Char('g'), KeyCode::Home],
        label: "g / Home",
        action: Action::Top,
        help: "first run",
    },
    Binding {
        keys: &[KeyCode::Char('G'), KeyCode::End],
        label: "G / End",
        action: Action::Bottom,
        help: "last run",
    },
    Binding {
        keys: &[KeyCode::Enter, KeyCode::Char('i')],
        label: "Enter / i",
        action: Action::Open,
        help: "open the run in the pane and type into it",
    },
    Binding {
        keys: &[KeyCode::Char('d'), KeyCode::Esc],
        label: "d / Esc",
        action: Action::Detach,
        help: "leave the pane (it stays on screen)",
    },
    Binding {
        keys: &[KeyCode::PageUp],
        label: "PgUp",
        action: Action::PageUp,
        help: "scroll the pane back",
    },
    Binding {
        keys: &[KeyCode::PageDown],
        label: "PgDn",
        action: Action::PageDown,
        help: "scroll the pane forward",
    },
    Binding {
        keys: &[KeyCode::Char('n')],
        label: "n",
        action: Action::NewRun,
        help: "new run (palette: run CMD)",
    },
    Binding {
        keys: &[KeyCode::Char('s')],
        label: "s",
        action: Action::Stop,
        help: "stop the selected run",
    },
    Binding {
        keys: &[KeyCode::Char('r')],
        label: "r",
        action: Action::Rename,
        help: "rename the selected run",
    },
    Binding {
        keys: &[KeyCode::Char('R')],
        label: "R",
        action: Action::Rerun,
        help: "rerun the selected run (same cwd, env, GPUs, metrics, alerts)",
    },
    Binding {
        keys: &[KeyCode::Char('D')],
        label: "D",
        action: Action::Remove,
        help: "remove the selected ended run, its log and series",
    },
    Binding {
        keys: &[KeyCode::Char('b')],
        label: "b",
        action: Action::ToggleRuns,
        help: "show or hide the runs list",
    },
    Binding {
        keys: &[KeyCode::Char('c')],
        label: "c",
        action: Action::ToggleChat,
        help: "switch between runs and chat",
    },
    Binding {
        keys: &[KeyCode::Char('p')],
        label: "p",
        action: Action::ToggleGpus,
        help: "show or hide the GPU panel",
    },
    Binding {
        keys: &[KeyCode::Char('v')],
        label: "v",
        action: Action::CycleSide,
        help: "side panel: chat, charts, alerts, GPUs, models, none",
    },
    Binding {
        keys: &[KeyCode::Char('}')],
        label: "}",
        action: Action::SideWider,
        help: "widen the side panel",
    },
    Binding {
        keys: &[KeyCode::Char('{')],
        label: "{",
        action: Action::SideNarrower,
        help: "narrow the side panel",
    },
    Binding {
        keys: &[KeyCode::Char('m')],
        label: "m",
        action: Action::ToggleCharts,
        help: "switch between runs and metrics charts",
    },
    Binding {
        keys: &[],
        label: "[ ] l s S C",
        action: Action::InView,
        help: "charts: metric, log scale, smoothing, clip outliers",
    },
    Binding {
        keys: &[],
        label: "z + - Space o",
        action: Action::InView,
        help: "charts: zoom, mark to overlay, flip the ranking",
    },
    Binding {
        keys: &[],
        label: ", . Esc #",
        action: Action::InView,
        help: "charts: cursor back, forward, hide it; grid of 4 metrics",
    },
    Binding {
        keys: &[KeyCode::Char('a')],
        label: "a",
        action: Action::ToggleAlerts,
        help: "switch between runs and alerts",
    },
    Binding {
        keys: &[],
        label: "i I x c Enter",
        action: Action::InView,
        help: "alerts: ignore (I: all like it), stop the run, chat, details",
    },
    Binding {
        keys: &[KeyCode::Char('L')],
        label: "L",
        action: Action::ToggleModels,
        help: "switch between runs and model servers",
    },
    Binding {
        keys: &[],
        label: "n s Enter",
        action: Action::InView,
        help: "models: launch a recipe, stop the model, its server's log",
    },
    Binding {
        keys: &[KeyCode::Char('U')],
        label: "U",
        action: Action::ToggleGateway,
        help: "switch between runs and gateway usage by token (r: refresh)",
    },
    Binding {
        keys: &[KeyCode::Char('<')],
        label: "<",
        action: Action::Narrower,
        help: "narrow the runs list",
    },
    Binding {
        keys: &[KeyCode::Char('>')],
        label: ">",
        action: Action::Wider,
        help: "widen the runs list",
    },
    Binding {
        keys: &[KeyCode::Char(':')],
        label: ":",
        action: Action::Palette,
        help: "command palette",
    },
    Binding {
        keys: &[KeyCode::Char('?')],
        label: "?",
        action: Action::Help,
        help: "this help",
    },
    Binding {
        keys: &[KeyCode::Char('q')],
        label: "q",
        action: Action::Quit,
        help: "quit the client (runs and daemon go on)",
    },
];

/// The cockpit action for a key, if any.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    lookup(BINDINGS, key)
}

/// The action `table` binds to `key`; keys with Ctrl or Alt are never cockpit keys.
pub fn lookup<A: Copy>(table: &[Binding<A>], key: &KeyEvent) -> Option<A> {
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return None;
    }
    table
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

impl Action {
    /// Whether the action works the same in every view (the rest act on runs).
    pub fn is_global(self) -> bool {
        matches!(
            self,
            Action::Quit
                | Action::Help
                | Action::Palette
                | Action::FocusNext
                | Action::FocusPrev
                | Action::ToggleRuns
                | Action::ToggleChat
                | Action::ToggleGpus
                | Action::ToggleCharts
                | Action::ToggleAlerts
                | Action::ToggleModels
                | Action::ToggleGateway
                | Action::Wider
                | Action::Narrower
                | Action::CycleSide
                | Action::SideWider
                | Action::SideNarrower
        )
    }
}

/// Whether `key` is Ctrl + the prefix letter.
pub fn is_prefix(key: &KeyEvent, prefix: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char(c) if c.eq_ignore_ascii_case(&prefix))
}

/// The bytes a terminal sends for `key`; `app_cursor` is the job's application-cursor mode
/// (arrows then send `ESC O A` rather than `ESC [ A`).
pub fn key_bytes(key: &KeyEvent, app_cursor: bool) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let arrow = |c: u8| {
        if app_cursor {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    let tilde = |n: &str| format!("\x1b[{n}~").into_bytes();
    let mut bytes = match key.code {
        KeyCode::Char(c) if ctrl && c.is_ascii_alphabetic() => {
            vec![(c.to_ascii_lowercase() as u8) & 0x1f]
        }
        KeyCode::Char(' ') if ctrl => vec![0],
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => vec![b'\r'],
        KeyCode::Tab => vec![b'\t'],
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => arrow(b'A'),
        KeyCode::Down => arrow(b'B'),
        KeyCode::Right => arrow(b'C'),
        KeyCode::Left => arrow(b'D'),
        KeyCode::Home => arrow(b'H'),
        KeyCode::End => arrow(b'F'),
        KeyCode::Insert => tilde("2"),
        KeyCode::Delete => tilde("3"),
        KeyCode::PageUp => tilde("5"),
        KeyCode::PageDown => tilde("6"),
        KeyCode::F(n @ 1..=4) => vec![0x1b, b'O', b'P' + n - 1],
        KeyCode::F(n @ 5..=12) => {
            let code = ["15", "17", "18", "19", "20", "21", "23", "24"][usize::from(n - 5)];
            tilde(code)
        }
        _ => return None,
    };
    if alt {
        bytes.insert(0, 0x1b);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_become_terminal_bytes() {
        let none = KeyModifiers::NONE;
        assert_eq!(
            key_bytes(&key(KeyCode::Char('a'), none), false),
            Some(b"a".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Char('c'), KeyModifiers::CONTROL), false),
            Some(vec![3])
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Char('x'), KeyModifiers::ALT), false),
            Some(b"\x1bx".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Up, none), false),
            Some(b"\x1b[A".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Up, none), true),
            Some(b"\x1bOA".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Enter, none), false),
            Some(b"\r".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::F(5), none), false),
            Some(b"\x1b[15~".to_vec())
        );
        assert_eq!(
            key_bytes(&key(KeyCode::Char('é'), none), false),
            Some("é".as_bytes().to_vec())
        );
    }

    #[test]
    fn every_binding_is_reachable_and_unique() {
        let mut seen = Vec::new();
        for binding in BINDINGS {
            for code in binding.keys {
                assert!(!seen.contains(code), "{code:?} bound twice");
                seen.push(*code);
                let action = action_for(&key(*code, KeyModifiers::NONE));
                assert_eq!(action, Some(binding.action));
            }
        }
        assert_eq!(
            action_for(&key(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            None
        );
    }

    #[test]
    fn the_prefix_is_ctrl_and_its_letter() {
        assert!(is_prefix(
            &key(KeyCode::Char('b'), KeyModifiers::CONTROL),
            'b'
        ));
        assert!(!is_prefix(
            &key(KeyCode::Char('b'), KeyModifiers::NONE),
            'b'
        ));
    }
}
