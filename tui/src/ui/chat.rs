//! The chat view: sessions on the left, the open conversation with its input on the right.
//! Messages are drawn as plain text for now; thinking is folded to one line, tool calls to
//! their name.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use reagent::chat::{MessageInfo, MessageStatus, PartKind, Role};

use super::border;
use crate::app::App;
use crate::app::state::{Focus, Mode};

/// The sessions list.
pub fn sessions(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let title = format!(" Sessions ({}) ", app.chat.sessions.len());
    let block = Block::bordered()
        .title(title)
        .border_style(border(app, Focus::Runs));
    if app.chat.sessions.is_empty() {
        let hint = Paragraph::new("No sessions yet.\nPress n to start one.")
            .style(Style::new().fg(Color::DarkGray))
            .block(block);
        frame.render_widget(hint, area);
        return;
    }
    let items = app.chat.sessions.iter().map(|session| {
        ListItem::new(Line::from(vec![
            Span::raw(session.label().to_string()),
            Span::styled(format!("  {}", session.model), Color::DarkGray),
        ]))
    });
    let highlight = if app.focus == Focus::Runs {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let list = List::new(items).block(block).highlight_style(highlight);
    let mut state = ListState::default().with_selected(Some(app.chat.selected));
    frame.render_stateful_widget(list, area, &mut state);
}

/// The open conversation and the input box.
pub fn conversation(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let [messages_area, input_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(5)]).areas(area);
    let style = border(app, Focus::Pane);
    let Some(open) = &app.chat.open else {
        let hint = "No session open.\n\nSelect a session and press Enter, or press n (or :chat \
                    PROVIDER/MODEL) to start one. Press c to go back to runs.";
        let block = Block::bordered().title(" Chat ").border_style(style);
        let text = Paragraph::new(hint)
            .style(Style::new().fg(Color::DarkGray))
            .block(block);
        frame.render_widget(text, area);
        return;
    };
    let title = app
        .chat
        .sessions
        .iter()
        .find(|s| s.id == open.id)
        .map_or_else(
            || format!(" {} ", open.id),
            |s| format!(" {} — {} ", s.label(), s.model),
        );
    let width = usize::from(messages_area.width.saturating_sub(2)).max(1);
    // Keep the end in view, and lay out only the messages that reach it: walking back from
    // the newest keeps a frame cheap however long the session grows.
    let height = usize::from(messages_area.height.saturating_sub(2));
    let mut shown: Vec<Line<'_>> = Vec::new();
    for message in open.messages.iter().rev() {
        let mut lines = Vec::new();
        message_lines(message, width, &mut lines);
        lines.append(&mut shown);
        shown = lines;
        if shown.len() >= height {
            break;
        }
    }
    if !open.loaded {
        shown.insert(0, Line::styled("loading…", Color::DarkGray));
    }
    let first = shown.len().saturating_sub(height);
    let shown: Vec<Line<'_>> = shown.into_iter().skip(first).collect();
    let block = Block::bordered().title(title).border_style(style);
    frame.render_widget(Paragraph::new(shown).block(block), messages_area);

    let composing = app.mode == Mode::Compose;
    let hint = if composing {
        " message — Enter sends · Alt-Enter new line · Ctrl-C stops the answer · Esc leaves "
    } else {
        " message — Enter to type "
    };
    let cursor = if composing { "█" } else { "" };
    let input_style = if composing {
        Style::new().fg(Color::Green)
    } else {
        style
    };
    let input = Paragraph::new(format!("{}{cursor}", app.chat.input))
        .wrap(ratatui::widgets::Wrap { trim: false })
        .block(Block::bordered().title(hint).border_style(input_style));
    frame.render_widget(input, input_area);
}

/// One message as lines: a header, then its parts wrapped to `width`.
fn message_lines<'a>(message: &'a MessageInfo, width: usize, lines: &mut Vec<Line<'a>>) {
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
    if let Some(ms) = message.usage.ttft_ms {
        header.push(Span::styled(
            format!(" · first token {ms} ms"),
            Color::DarkGray,
        ));
    }
    lines.push(Line::from(header));
    for part in &message.parts {
        match part.kind {
            PartKind::Text | PartKind::ToolResult => {
                for line in part.text.lines() {
                    wrap(line, width, lines);
                }
            }
            PartKind::Thinking => {
                let size = part.text.chars().count();
                lines.push(Line::styled(
                    format!("▸ thinking ({size} chars)"),
                    Style::new()
                        .fg(Color::DarkGray)
                        .add_modifier(Modifier::ITALIC),
                ));
            }
            PartKind::ToolCall => {
                let name = part.name.as_deref().unwrap_or("tool");
                lines.push(Line::styled(format!("⚙ {name}"), Color::Yellow));
            }
        }
    }
    if message.status == MessageStatus::Streaming {
        lines.push(Line::styled("▌", Color::Magenta));
    }
    if let Some(error) = &message.error {
        lines.push(Line::styled(format!("error: {error}"), Color::Red));
    }
    lines.push(Line::raw(""));
}

/// Splits a line into pieces of at most `width` characters.
fn wrap<'a>(line: &str, width: usize, lines: &mut Vec<Line<'a>>) {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        lines.push(Line::raw(""));
    }
    for piece in chars.chunks(width) {
        lines.push(Line::raw(piece.iter().collect::<String>()));
    }
}
