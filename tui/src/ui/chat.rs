//! The chat view: sessions on the left, the open conversation with its input on the right.
//! Messages are laid out by [`super::messages`].

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};

use super::border;
use super::messages;
use super::wrap;
use crate::app::App;
use crate::app::conversation::Conversation;
use crate::app::geometry::{chat_split, inner};
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
pub fn conversation(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let [messages_area, input_area] = chat_split(area);
    let style = border(app, panel);
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
    let (width, height) = inner(messages_area);
    let layout = Conversation::new(open, &*app.typesetter, width, app.chat.thinking);
    let mut shown = layout.visible(open.scroll, height);
    if !open.loaded {
        shown.insert(0, Line::styled("loading…", Color::DarkGray));
    }
    if let Some(search) = &app.chat.search {
        shown = shown
            .into_iter()
            .map(|line| messages::highlight(line, &search.query))
            .collect();
    }
    let mut block = Block::bordered().title(title).border_style(style);
    if let Some(anchor) = open.scroll {
        // A session with no messages yet scrolls through its system prompt alone.
        let position = match open.messages.len() {
            0 => " system prompt · G for the end ".to_string(),
            count => format!(" message {}/{count} · G for the end ", anchor.message + 1),
        };
        block = block.title_bottom(Line::styled(position, Color::Yellow).right_aligned());
    }
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
    let (width, height) = inner(input_area);
    let typed = format!("{}{cursor}", app.chat.input);
    let mut lines: Vec<Line<'static>> = typed
        .split('\n')
        .flat_map(|line| wrap::cut(&[Span::raw(line.to_string())], width, &[]))
        .collect();
    // A message longer than the box shows its end, where the cursor is.
    let lines = lines.split_off(lines.len().saturating_sub(height));
    let input =
        Paragraph::new(lines).block(Block::bordered().title(hint).border_style(input_style));
    frame.render_widget(input, input_area);
}
