//! The cockpit's view of chat: the sessions, the open session's messages, and what is being
//! typed. Deltas carry their offset in the part, so they apply exactly once whether they
//! arrive before or after the history they continue.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use reagent::chat::{MessageInfo, Part, PartKind, SessionInfo, UsageReport, retry_note};
use reagent::protocol::EventKind;

/// Where a scrolled-back conversation view starts: a message and a line within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anchor {
    /// Index of the message at the top of the view.
    pub message: usize,
    /// Lines of it above the view.
    pub line: usize,
}

/// The open session.
pub struct OpenSession {
    /// Its id.
    pub id: String,
    /// Its messages; empty until the history arrives.
    pub messages: Vec<MessageInfo>,
    /// Whether the history has arrived.
    pub loaded: bool,
    /// Events for this session that came before its history.
    early: Vec<EventKind>,
    /// The top of the view when scrolled back; `None` follows the newest message.
    pub scroll: Option<Anchor>,
    /// The session's system prompt (for a chat opened from an alert, the alert and the run's
    /// context the model was given), shown above the first message.
    pub system: Option<String>,
    /// Whether the system prompt is shown whole (it is folded to a few lines by default).
    pub system_unfolded: bool,
    /// Whether tool calls are shown whole: arguments pretty-printed and the full result
    /// (each is one line and a result summary by default).
    pub tools_unfolded: bool,
    /// The answer waiting for the provider to be asked again, while nothing streams.
    pub retrying: Option<Retrying>,
}

/// An answer whose request the daemon will retry: what its status line says until text
/// arrives or the answer ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    /// The answer's id.
    pub message: String,
    /// Which retry (a new one lays the answer out again).
    pub attempt: u32,
    /// `retrying in 2 s (429 from openai)`.
    pub note: String,
}

impl OpenSession {
    /// A session whose history is yet to come.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            messages: Vec::new(),
            loaded: false,
            early: Vec::new(),
            scroll: None,
            system: None,
            system_unfolded: false,
            tools_unfolded: false,
            retrying: None,
        }
    }

    /// The retry note for answer `id`, if it waits for one.
    pub fn retry_of(&self, id: &str) -> Option<&Retrying> {
        self.retrying.as_ref().filter(|r| r.message == id)
    }

    /// Forgets the retry note of answer `id`: its text arrived, or it ended.
    fn retried(&mut self, id: &str) {
        if self.retry_of(id).is_some() {
            self.retrying = None;
        }
    }

    /// The newest code block in the conversation, for copying.
    pub fn last_code_block(&self) -> Option<String> {
        self.messages.iter().rev().find_map(|message| {
            let text = message.text();
            code_blocks(&text).pop()
        })
    }

    /// The index of the next message, going back (`older`) or forward from `from`, whose
    /// text contains `query` (ASCII case ignored).
    pub fn find(&self, query: &str, from: Option<usize>, older: bool) -> Option<usize> {
        let hit = |i: &usize| {
            let message = &self.messages[*i];
            message
                .parts
                .iter()
                .any(|part| find(&part.text, query).is_some())
        };
        let len = self.messages.len();
        if older {
            let end = from.unwrap_or(len).min(len);
            (0..end).rev().find(hit)
        } else {
            let start = from.map_or(0, |i| i + 1);
            (start..len).find(hit)
        }
    }
}

/// How the cockpit reads markdown, when it draws it and when it copies from it.
pub const MARKDOWN: pulldown_cmark::Options = pulldown_cmark::Options::ENABLE_TABLES
    .union(pulldown_cmark::Options::ENABLE_STRIKETHROUGH)
    .union(pulldown_cmark::Options::ENABLE_TASKLISTS);

/// The bodies of the fenced and indented code blocks in `text`, in order: what "copy the
/// last code block" copies.
pub fn code_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new_ext(text, MARKDOWN) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => current = Some(String::new()),
            Event::Text(text) => {
                if let Some(body) = current.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    blocks
}

/// Where `needle` first occurs in `haystack`, ignoring ASCII case: what a search matches.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let (hay, pin) = (haystack.as_bytes(), needle.as_bytes());
    (0..=hay.len() - pin.len()).find(|&i| {
        haystack.is_char_boundary(i)
            && haystack.is_char_boundary(i + pin.len())
            && hay[i..i + pin.len()].eq_ignore_ascii_case(pin)
    })
}

/// A search in the open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// What is searched for.
    pub query: String,
    /// The message found last, if any.
    pub hit: Option<usize>,
}

/// Chat as the cockpit shows it.
#[derive(Default)]
pub struct ChatState {
    /// Every session, oldest first.
    pub sessions: Vec<SessionInfo>,
    /// Index of the highlighted session.
    pub selected: usize,
    /// The session shown, if any.
    pub open: Option<OpenSession>,
    /// The message being typed.
    pub input: String,
    /// Whether thinking is shown in full (it is folded to one line by default).
    pub thinking: bool,
    /// The search in the open session, while one is active.
    pub search: Option<Search>,
    /// Every `PROVIDER/MODEL` the daemon offers, for the model picker.
    pub models: Vec<String>,
    /// The last usage report, for the usage panel and the status bar.
    pub usage: Option<UsageReport>,
    /// Text to put on the clipboard; the run loop writes it to the terminal.
    pub clipboard: Option<String>,
}

/// Events beyond this many, while a history loads, are dropped (the history will be re-read).
const MAX_EARLY: usize = 10_000;

impl ChatState {
    /// The highlighted session.
    pub fn selected_session(&self) -> Option<&SessionInfo> {
        self.sessions.get(self.selected)
    }

    /// Shows a session; its history is to be asked for.
    pub fn open(&mut self, id: &str) {
        if self.open.as_ref().is_none_or(|open| open.id != id) {
            self.open = Some(OpenSession::new(id));
            self.search = None;
            self.show_system();
        }
    }

    /// Replaces the sessions list (a `session.list` reply).
    pub fn set_sessions(&mut self, sessions: Vec<SessionInfo>) {
        self.sessions = sessions;
        self.show_system();
    }

    /// Gives the open session the system prompt its entry in the list has now: the session
    /// may be listed before or after it is opened.
    fn show_system(&mut self) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if let Some(session) = self.sessions.iter().find(|s| s.id == open.id) {
            open.system.clone_from(&session.system);
        }
    }

    /// The history arrived: show it, then the events that came while it was on its way.
    /// Returns false when a gap means it must be asked for again.
    pub fn history(&mut self, session: &str, messages: Vec<MessageInfo>) -> bool {
        let Some(open) = self.open.as_mut().filter(|open| open.id == session) else {
            return true;
        };
        open.messages = messages;
        open.loaded = true;
        let early = std::mem::take(&mut open.early);
        early.iter().all(|kind| self.apply(kind))
    }

    /// Applies a chat event. Returns false when a gap means the history must be re-read.
    pub fn apply(&mut self, kind: &EventKind) -> bool {
        match kind {
            EventKind::Session { session } => {
                match self.sessions.iter_mut().find(|s| s.id == session.id) {
                    Some(existing) => *existing = session.clone(),
                    None => self.sessions.push(session.clone()),
                }
                self.show_system();
                true
            }
            EventKind::SessionDeleted { id } => {
                self.sessions.retain(|s| &s.id != id);
                self.selected = self.selected.min(self.sessions.len().saturating_sub(1));
                if self.open.as_ref().is_some_and(|open| &open.id == id) {
                    self.open = None;
                }
                true
            }
            EventKind::Message { message } => self.with_open(&message.session, kind, |open| {
                if message.status.is_terminal() {
                    open.retried(&message.id);
                }
                match open.messages.iter_mut().find(|m| m.id == message.id) {
                    Some(existing) => *existing = message.clone(),
                    None => open.messages.push(message.clone()),
                }
                true
            }),
            EventKind::Delta {
                session,
                message,
                part,
                kind: part_kind,
                offset,
                text,
            } => self.with_open(session, kind, |open| {
                open.retried(message);
                let Some(message) = open.messages.iter_mut().find(|m| &m.id == message) else {
                    return false;
                };
                append(message, *part, *part_kind, *offset, text)
            }),
            EventKind::ChatRetrying {
                session,
                message,
                attempt,
                delay_ms,
                status,
                provider,
            } => self.with_open(session, kind, |open| {
                open.retrying = Some(Retrying {
                    message: message.clone(),
                    attempt: *attempt,
                    note: retry_note(*attempt, *delay_ms, *status, provider),
                });
                true
            }),
            EventKind::Run { .. }
            | EventKind::RunRemoved { .. }
            | EventKind::Clients { .. }
            | EventKind::Gpus { .. }
            | EventKind::Sweep { .. }
            | EventKind::Metrics { .. }
            | EventKind::Alert { .. }
            | EventKind::Recipe { .. }
            | EventKind::RecipeRemoved { .. }
            | EventKind::Model { .. }
            | EventKind::Serving { .. }
            | EventKind::Approval { .. }
            | EventKind::File { .. }
            | EventKind::Wild { .. } => true,
        }
    }

    fn with_open(
        &mut self,
        session: &str,
        kind: &EventKind,
        apply: impl FnOnce(&mut OpenSession) -> bool,
    ) -> bool {
        match self.open.as_mut() {
            Some(open) if open.id == session && open.loaded => apply(open),
            Some(open) if open.id == session => {
                if open.early.len() < MAX_EARLY {
                    open.early.push(kind.clone());
                }
                true
            }
            _ => true,
        }
    }
}

/// Appends `text` at `offset` of part `part`; skips what is already there; false on a gap.
fn append(
    message: &mut MessageInfo,
    part: usize,
    kind: PartKind,
    offset: usize,
    text: &str,
) -> bool {
    if part == message.parts.len() && offset == 0 {
        message.parts.push(Part {
            kind,
            text: String::new(),
            name: None,
            call_id: None,
            error: false,
        });
    }
    let Some(existing) = message.parts.get_mut(part) else {
        return false;
    };
    let have = existing.text.len();
    if offset > have {
        return false;
    }
    let skip = have - offset;
    if let Some(rest) = text.get(skip..) {
        existing.text.push_str(rest);
    }
    true
}

#[cfg(test)]
mod tests {
    use reagent::chat::{MessageStatus, MessageUsage, Role};

    use super::*;
    use crate::app::fixtures::delta;

    fn answer(text: &str) -> MessageInfo {
        MessageInfo {
            id: "m".into(),
            session: "s".into(),
            role: Role::Assistant,
            status: MessageStatus::Streaming,
            parts: if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::text(text)]
            },
            error: None,
            usage: MessageUsage::default(),
            created_at: 0,
        }
    }

    #[test]
    fn deltas_apply_once_around_a_history() {
        let mut chat = ChatState::default();
        chat.open("s");
        // "Hel" and "lo" arrive before the history, which already holds "Hel".
        assert!(chat.apply(&delta(0, "Hel")));
        assert!(chat.apply(&delta(3, "lo")));
        assert!(chat.history("s", vec![answer("Hel")]));
        assert!(chat.apply(&delta(5, "!")));
        assert!(chat.apply(&delta(5, "!")), "a repeat is skipped");
        let open = chat.open.as_ref().unwrap();
        assert_eq!(open.messages[0].text(), "Hello!");
        assert!(
            !chat.apply(&delta(99, "?")),
            "a gap asks for the history again"
        );
    }
}
