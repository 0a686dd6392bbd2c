//! The research agent on screen: the box of the approval waiting for a person, and the wild
//! bar, a row per wild-mode loop going on. Both are drawn in every view: an approval blocks a
//! model until someone answers, and a loop acts on its own, so neither may hide in a view
//! the user is not looking at.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::tools::fit;
use super::wrap;
use crate::app::App;
use crate::app::geometry::{WILD_ROWS, approval_box};
use crate::app::state::Mode;
use crate::sanitize;

/// The oldest pending approval, with the session and tool that ask, the exact action (a
/// diff coloured as one) and the keys that answer it as they work in the current mode.
pub fn approval(app: &App, frame: &mut Frame<'_>) {
    let (Some(approval), Some(placed)) = (app.agent.pending(), approval_box(app)) else {
        return;
    };
    let session = (app.chat.sessions.iter())
        .find(|s| s.id == approval.session)
        .map_or(approval.session.as_str(), |s| s.label());
    let count = app.agent.approvals.len();
    let of = if count > 1 {
        format!(" · 1 of {count}")
    } else {
        String::new()
    };
    let title = Line::from(vec![
        Span::styled(" ⚠ ", Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(
            sanitize::line(&approval.tool).into_owned(),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(" in {}{of} ", sanitize::line(session))),
    ]);
    let answering = app.agent.answering.as_deref() == Some(approval.id.as_str());
    let prefix = app.prefix.0;
    let hint = match &app.mode {
        _ if answering => " answered · waiting for the daemon ".to_string(),
        Mode::Normal => " y approve · n deny · a always (this session) ".to_string(),
        Mode::Compose => " Alt-y approve · Alt-n deny · Alt-a always · or Esc, then y/n/a ".into(),
        Mode::Input => format!(" Ctrl-{prefix}, then y approve · n deny · a always "),
        Mode::Palette(_) => " :approve [always] · :deny [REASON] ".into(),
        _ => " y / n / a once this closes ".into(),
    };
    let area = placed.area;
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let scroll = app.agent.scroll.min(placed.max_scroll());
    let mut block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(Style::new().fg(Color::Yellow))
        .title_bottom(Line::styled(hint, Color::Yellow));
    if placed.rows > placed.shown {
        // Where the view is in a long action, beside the title when there is room.
        let first = usize::from(scroll) + 1;
        let last = usize::from(scroll) + placed.shown;
        let position = format!(" {first}-{last}/{} J/K ", placed.rows);
        if title.width() + position.chars().count() + 2 <= usize::from(area.width) {
            block = block.title(Line::styled(position, Color::Yellow).right_aligned());
        }
    }
    let block = block.title(title);
    let lines = action_lines(&approval.action, width);
    frame.render_widget(Clear, area);
    let body = Paragraph::new(lines).block(block).scroll((scroll, 0));
    frame.render_widget(body, area);
}

/// The action as lines of `width`, every character kept; a unified diff (a file edit) with
/// its added lines green, removed lines red and hunk headers cyan.
fn action_lines(action: &str, width: usize) -> Vec<Line<'static>> {
    let text = sanitize::text(action);
    let diff = is_diff(&text);
    let mut lines = Vec::new();
    for line in text.lines() {
        let style = if diff { diff_style(line) } else { Style::new() };
        lines.extend(wrap::cut(
            &[Span::styled(line.to_string(), style)],
            width,
            &[],
        ));
    }
    lines
}

/// Whether `text` reads as a unified diff: a hunk header, or the two file headers.
fn is_diff(text: &str) -> bool {
    let mut lines = text.lines();
    let headers = lines.next().is_some_and(|l| l.starts_with("--- "))
        && lines.next().is_some_and(|l| l.starts_with("+++ "));
    headers || text.lines().any(|l| l.starts_with("@@ "))
}

/// The colour of one diff line.
fn diff_style(line: &str) -> Style {
    if line.starts_with("+++ ") || line.starts_with("--- ") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if line.starts_with("@@") {
        Style::new().fg(Color::Cyan)
    } else if line.starts_with('+') {
        Style::new().fg(Color::Green)
    } else if line.starts_with('-') {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    }
}

/// A row per wild-mode loop going on: its status line (goal, step, budget used, what it
/// waits for). More loops than rows are counted on the last row.
pub fn wild(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let live: Vec<_> = app.agent.live().collect();
    let rows = usize::from(area.height);
    let width = usize::from(area.width);
    let style = Style::new().fg(Color::Magenta);
    let mut lines: Vec<Line<'static>> = Vec::with_capacity(rows);
    for (i, wild) in live.iter().enumerate() {
        let last_row = i + 1 == rows.min(WILD_ROWS);
        if last_row && live.len() > i + 1 {
            let more = live.len() - i;
            lines.push(Line::styled(
                format!("⟳ {more} wild loops going on · :wild stop SESSION stops one"),
                style,
            ));
            break;
        }
        let spans = vec![
            Span::styled("⟳ ", style.add_modifier(Modifier::BOLD)),
            Span::styled(sanitize::line(&wild.status_line()).into_owned(), style),
        ];
        lines.push(fit(spans, width));
        if last_row {
            break;
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}
