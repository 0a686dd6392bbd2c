//! Messages typeset as lines: markdown, highlighting, wrapping.
//!
//! A message is laid out once per width and content and kept in [`Typeset`]'s memory: a frame
//! looks up only the messages that reach the screen, and a streaming answer is the only
//! message laid out again as it grows. Scrolling through the lines is the state's
//! ([`crate::app::conversation`]).

use std::cell::RefCell;
use std::collections::HashMap;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use reagent::chat::{MessageInfo, MessageStatus, Part, PartKind, Role};

use super::tools;
use super::{markdown, wrap};
use crate::app::chat::{OpenSession, find};
use crate::app::conversation::{Lines, Show, Typesetter};

/// The cockpit's typesetter: laid-out messages by id, each with the stamp it was laid out
/// for, so a message is laid out again only when what it looks like changed.
#[derive(Default)]
pub struct Typeset(RefCell<HashMap<String, (Stamp, Lines)>>);

/// What a message's layout depends on; a different stamp means laying it out again.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    width: usize,
    bytes: usize,
    parts: usize,
    status: MessageStatus,
    error: bool,
    thinking: bool,
    /// Whether tool calls are unfolded.
    tools: bool,
    /// How many of its calls wait for an approval.
    awaiting: usize,
    /// For the first message: the system prompt's length and whether it is unfolded.
    system: Option<(usize, bool)>,
    /// The retry the answer waits for, if any.
    retry: Option<u32>,
}

/// Laid-out messages beyond this many are forgotten (all at once; they are cheap to redo).
const MAX_CACHED: usize = 4096;

impl Typesetter for Typeset {
    fn lines(&self, open: &OpenSession, index: usize, width: usize, show: Show<'_>) -> Lines {
        let system = open.system.as_deref().filter(|_| index == 0);
        let unfolded = open.system_unfolded;
        let Some(message) = open.messages.get(index) else {
            let lines = system.map(|text| system_lines(text, width, unfolded));
            return Lines::from(lines.unwrap_or_default());
        };
        let retry = open.retry_of(&message.id);
        let look = Look {
            thinking: show.thinking,
            tools: open.tools_unfolded,
            awaiting: show.awaiting,
        };
        let stamp = Stamp {
            width,
            bytes: message.parts.iter().map(|p| p.text.len()).sum(),
            parts: message.parts.len(),
            status: message.status,
            error: message.error.is_some(),
            thinking: show.thinking,
            tools: open.tools_unfolded,
            awaiting: awaiting_calls(message, show.awaiting),
            system: system.map(|text| (text.len(), unfolded)),
            retry: retry.map(|r| r.attempt),
        };
        let mut cache = self.0.borrow_mut();
        if let Some((cached, lines)) = cache.get(&message.id)
            && *cached == stamp
        {
            return lines.clone();
        }
        let mut all = system.map_or_else(Vec::new, |text| system_lines(text, width, unfolded));
        let note = retry.map(|r| r.note.as_str());
        all.extend(message_lines(message, width, &look, note));
        let lines: Lines = all.into();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(message.id.clone(), (stamp, lines.clone()));
        lines
    }
}

/// How one message is shown: what is unfolded, and which of its calls wait for a person.
pub(super) struct Look<'a> {
    /// Thinking shown in full.
    pub thinking: bool,
    /// Tool calls shown whole.
    pub tools: bool,
    /// Call ids with an approval pending.
    pub awaiting: &'a [String],
}

/// How many of `message`'s tool calls wait for an approval: when one is answered, the
/// message is laid out again though its parts did not change yet.
fn awaiting_calls(message: &MessageInfo, awaiting: &[String]) -> usize {
    let calls = message
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::ToolCall);
    calls
        .filter(|p| p.call_id.as_ref().is_some_and(|id| awaiting.contains(id)))
        .count()
}

/// Lines of a system prompt shown folded.
const SYSTEM_FOLDED: usize = 4;

/// A session's system prompt as lines: a header, then its text behind a bar, cut to
/// [`SYSTEM_FOLDED`] lines unless `unfolded`.
fn system_lines(text: &str, width: usize, unfolded: bool) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let total = text.lines().count();
    let shown = if unfolded { total } else { SYSTEM_FOLDED };
    let noun = if total == 1 { "line" } else { "lines" };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            "system",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!(" · what the model was told, {total} {noun}"), dim),
    ])];
    let bar = [Span::styled("┊ ", dim)];
    for line in text.lines().take(shown) {
        lines.extend(wrap::wrap(
            &[Span::raw(line.to_string())],
            width,
            &bar,
            &bar,
        ));
    }
    let hint = if total > shown {
        Some(format!("┊ … {} more lines · o unfolds", total - shown))
    } else {
        (total > SYSTEM_FOLDED).then(|| "┊ o folds".to_string())
    };
    if let Some(hint) = hint {
        lines.push(Line::styled(hint, dim.add_modifier(Modifier::ITALIC)));
    }
    lines.push(Line::raw(""));
    lines
}

/// One message as lines: a header, then its parts; a streaming answer ends in its status
/// line (the cursor, and the retry it waits for, if any).
fn message_lines(
    message: &MessageInfo,
    width: usize,
    look: &Look<'_>,
    retry: Option<&str>,
) -> Vec<Line<'static>> {
    let mut lines = vec![header(message)];
    for (index, part) in message.parts.iter().enumerate() {
        match part.kind {
            PartKind::ToolCall => tools::call(message, index, width, look, &mut lines),
            PartKind::ToolResult => tools::result(message, index, width, look.tools, &mut lines),
            _ => part_lines(message.role, part, width, look.thinking, &mut lines),
        }
    }
    if message.status == MessageStatus::Streaming {
        let mut status = vec![Span::styled("▌", Color::Magenta)];
        if let Some(note) = retry {
            status.push(Span::styled(format!(" {note}"), Color::Yellow));
        }
        lines.extend(wrap::wrap(&status, width, &[], &[]));
    }
    if let Some(error) = &message.error {
        let spans = [Span::styled(format!("error: {error}"), Color::Red)];
        lines.extend(wrap::wrap(&spans, width, &[], &[]));
    }
    lines.push(Line::raw(""));
    lines
}

fn header(message: &MessageInfo) -> Line<'static> {
    let (who, color) = match message.role {
        Role::User => ("you", Color::Cyan),
        Role::Assistant => ("model", Color::Magenta),
    };
    let mut header = vec![Span::styled(
        who,
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )];
    let note = match message.status {
        MessageStatus::Complete | MessageStatus::Streaming => None,
        status => Some(format!("{status:?}").to_lowercase()),
    };
    if let Some(note) = note {
        header.push(Span::styled(format!(" · {note}"), Color::Yellow));
    }
    let usage = &message.usage;
    let mut facts = Vec::new();
    if let Some(ms) = usage.ttft_ms {
        facts.push(format!("first token {ms} ms"));
    }
    if let Some(rate) = usage.tokens_per_s {
        facts.push(format!("{rate:.0} tok/s"));
    }
    if let (Some(input), Some(output)) = (usage.input, usage.output) {
        facts.push(format!("{input}→{output} tok"));
    }
    if let Some(cost) = usage.cost_usd {
        facts.push(format!("${cost:.4}"));
    }
    for fact in facts {
        header.push(Span::styled(format!(" · {fact}"), Color::DarkGray));
    }
    Line::from(header)
}

fn part_lines(
    role: Role,
    part: &Part,
    width: usize,
    thinking: bool,
    lines: &mut Vec<Line<'static>>,
) {
    let dim = Style::new().fg(Color::DarkGray);
    match part.kind {
        PartKind::Text if role == Role::User => {
            for line in part.text.lines() {
                lines.extend(wrap::wrap(&[Span::raw(line.to_string())], width, &[], &[]));
            }
        }
        PartKind::Text => lines.extend(markdown::render(&part.text, width)),
        PartKind::Thinking if thinking => {
            let style = dim.add_modifier(Modifier::ITALIC);
            lines.push(Line::styled("▾ thinking", style));
            let bar = [Span::styled("┊ ", dim)];
            for line in part.text.lines() {
                let spans = [Span::styled(line.to_string(), style)];
                lines.extend(wrap::wrap(&spans, width, &bar, &bar));
            }
        }
        PartKind::Thinking => {
            let words = part.text.split_whitespace().count();
            lines.push(Line::styled(
                format!("▸ thinking ({words} words) · t unfolds"),
                dim.add_modifier(Modifier::ITALIC),
            ));
        }
        // Laid out with the message, which pairs each call with its result.
        PartKind::ToolCall | PartKind::ToolResult => {}
    }
}

/// Marks every ASCII-case-insensitive occurrence of `query` in `line`.
pub fn highlight(line: Line<'static>, query: &str) -> Line<'static> {
    if query.is_empty() {
        return line;
    }
    let mark = Style::new().bg(Color::Yellow).fg(Color::Black);
    let mut spans = Vec::with_capacity(line.spans.len());
    for span in line.spans {
        let text = span.content.as_ref();
        let mut start = 0;
        while let Some(at) = find(&text[start..], query) {
            let at = start + at;
            if at > start {
                spans.push(Span::styled(text[start..at].to_string(), span.style));
            }
            let end = at + query.len();
            spans.push(Span::styled(
                text[at..end].to_string(),
                span.style.patch(mark),
            ));
            start = end;
        }
        if start == 0 {
            spans.push(span);
        } else if start < text.len() {
            spans.push(Span::styled(text[start..].to_string(), span.style));
        }
    }
    Line::from(spans).style(line.style)
}

#[cfg(test)]
mod tests {
    use reagent::chat::MessageUsage;

    use super::*;
    use crate::app::chat::Anchor;
    use crate::app::conversation::Conversation;

    fn session(count: usize) -> OpenSession {
        let mut open = OpenSession::new("s");
        open.loaded = true;
        open.messages = (0..count)
            .map(|i| MessageInfo {
                id: format!("m{i}"),
                session: "s".into(),
                role: Role::User,
                status: MessageStatus::Complete,
                parts: vec![Part::text(format!("message {i}"))],
                error: None,
                usage: MessageUsage::default(),
                created_at: 0,
            })
            .collect();
        open
    }

    fn texts(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_end_is_shown_until_the_user_scrolls() {
        let open = session(10);
        let typeset = Typeset::default();
        let layout = Conversation::new(&open, &typeset, 40, Show::default());
        // Each message: header, text, blank.
        let shown = texts(&layout.visible(None, 4));
        assert_eq!(shown, ["", "you", "message 9", ""]);
        let up = layout.scroll(None, -2, 4);
        assert_eq!(
            up,
            Some(Anchor {
                message: 8,
                line: 0
            })
        );
        let shown = texts(&layout.visible(up, 4));
        assert_eq!(shown, ["you", "message 8", "", "you"]);
        assert_eq!(
            layout.scroll(up, 2, 4),
            None,
            "back at the end, following it"
        );
    }

    #[test]
    fn scrolling_stops_at_the_first_line() {
        let open = session(10);
        let typeset = Typeset::default();
        let layout = Conversation::new(&open, &typeset, 40, Show::default());
        let top = layout.scroll(None, -1000, 4);
        assert_eq!(top, Some(Anchor::default()));
        assert_eq!(texts(&layout.visible(top, 2)), ["you", "message 0"]);
        assert_eq!(
            layout.reveal(5, 4),
            Some(Anchor {
                message: 5,
                line: 0
            })
        );
        assert_eq!(
            layout.reveal(9, 4),
            None,
            "the last message is on the last screen"
        );
    }

    #[test]
    fn a_long_session_lays_out_only_what_is_seen() {
        let open = session(10_000);
        let typeset = Typeset::default();
        let layout = Conversation::new(&open, &typeset, 40, Show::default());
        let top = layout.scroll(None, -60, 20);
        let _ = layout.visible(top, 20);
        let laid = typeset.0.borrow().len();
        assert!(laid < 50, "laid out {laid} messages");
    }

    #[test]
    fn search_marks_matches_whatever_their_case() {
        let line = highlight(Line::raw("Loss fell; the LOSS is low"), "loss");
        let marked: Vec<_> = line
            .spans
            .iter()
            .filter(|s| s.style.bg == Some(Color::Yellow))
            .map(|s| s.content.to_string())
            .collect();
        assert_eq!(marked, ["Loss", "LOSS"]);
        assert_eq!(find("héllo wörld", "WÖ"), None, "only ASCII folds");
        assert_eq!(find("héllo wörld", "wö"), Some(7));
    }
}
