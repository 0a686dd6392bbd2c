//! The chat view: sessions on the left, the open conversation with its input on the right.
//! Messages are laid out by [`super::messages`].

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use reagent::chat::SessionInfo;

use super::border;
use super::messages;
use super::wrap;
use crate::app::App;
use crate::app::conversation::{Conversation, Show};
use crate::app::geometry::{chat_messages, chat_split, inner};
use crate::app::state::{Focus, Mode};
use crate::sanitize;

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
        let mut spans = vec![Span::raw(sanitize::line(session.label()).into_owned())];
        spans.extend(agent_marks(app, session));
        spans.push(Span::styled(
            format!("  {}", sanitize::line(&session.model)),
            Color::DarkGray,
        ));
        ListItem::new(Line::from(spans))
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

/// What a session's label is followed by: `⚙` when its model has tools, `wild` while a
/// wild-mode loop runs in it.
fn agent_marks(app: &App, session: &SessionInfo) -> Vec<Span<'static>> {
    let mut marks = Vec::new();
    if session.agent.enabled {
        marks.push(Span::styled(" ⚙", Color::Yellow));
    }
    if app.agent.live_in(&session.id).is_some() {
        marks.push(Span::styled(
            " wild",
            Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        ));
    }
    marks
}

/// The open conversation and the input box.
pub fn conversation(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let [_, input_area] = chat_split(area);
    let messages_area = chat_messages(app, area, panel == Focus::Pane);
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
    let title = match app.chat.sessions.iter().find(|s| s.id == open.id) {
        Some(session) => {
            let mut title = vec![Span::raw(format!(" {}", sanitize::line(session.label())))];
            title.extend(agent_marks(app, session));
            title.push(Span::raw(format!(" — {} ", sanitize::line(&session.model))));
            Line::from(title)
        }
        None => Line::raw(format!(" {} ", open.id)),
    };
    let (width, height) = inner(messages_area);
    let awaiting = app.agent.awaiting(&open.id);
    let show = Show {
        thinking: app.chat.thinking,
        awaiting: &awaiting,
    };
    let layout = Conversation::new(open, &*app.typesetter, width, show);
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
