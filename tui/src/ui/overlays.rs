//! Popups over the panels: help, the command palette, confirmations.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::App;
use crate::app::chat_keys::CHAT_BINDINGS;
use crate::app::keys::BINDINGS;
use crate::app::palette;
use crate::app::state::{Confirm, View};

/// A `width` × `height` rectangle in the middle of `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// Every binding, from the same table that dispatches keys.
pub fn help(app: &App, frame: &mut Frame<'_>) {
    let prefix = app.prefix.0;
    let key = |label: String, help: &str| {
        Line::from(vec![
            Span::styled(format!("{label:>14}  "), Style::new().fg(Color::Cyan)),
            Span::raw(help.to_string()),
        ])
    };
    let mut lines: Vec<Line<'_>> = Vec::new();
    if app.view == View::Chat {
        lines.extend(CHAT_BINDINGS.iter().map(|b| key(b.label.into(), b.help)));
        let global = BINDINGS.iter().filter(|b| b.action.is_global());
        lines.extend(global.map(|b| key(b.label.into(), b.help)));
        lines.push(Line::raw(""));
        lines.push(Line::styled("  While writing a message:", Modifier::BOLD));
        lines.push(key("Enter".into(), "send it"));
        lines.push(key(
            "Alt-Enter".into(),
            "new line (Shift-Enter too, where the terminal tells)",
        ));
        lines.push(key("Ctrl-C".into(), "stop the answer"));
        lines.push(key(
            "Alt-y/n/a".into(),
            "answer the approval box without leaving the message",
        ));
        lines.push(key("Esc".into(), "back to the cockpit keys"));
    } else {
        lines.extend(BINDINGS.iter().map(|b| key(b.label.into(), b.help)));
        lines.push(Line::raw(""));
        lines.push(Line::styled("  While typing into a job:", Modifier::BOLD));
        lines.push(key(
            format!("Ctrl-{prefix}"),
            "back to the cockpit (then d leaves the pane)",
        ));
        lines.push(key(
            format!("Ctrl-{prefix} Ctrl-{prefix}"),
            &format!("send Ctrl-{prefix} to the job"),
        ));
    }
    // The box's keys shadow the view's while it shows, in every view: listed in every help.
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  While an approval box shows (not while typing):",
        Modifier::BOLD,
    ));
    lines.push(key("y".into(), "approve: the tool runs"));
    lines.push(key("n".into(), "deny (:deny REASON tells the model why)"));
    lines.push(key(
        "a".into(),
        "approve, and run this tool without asking in the session",
    ));
    lines.push(key("J / K".into(), "scroll a long action (a diff)"));
    let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let width = lines.iter().map(Line::width).max().unwrap_or(0) + 4;
    let area = centered(
        frame.area(),
        u16::try_from(width).unwrap_or(80),
        total.saturating_add(2),
    );
    let shown = area.height.saturating_sub(2);
    // Scrolled no further than the last line at the bottom.
    let scroll = app.help_scroll.min(total.saturating_sub(shown));
    let title = if shown < total {
        format!(
            " Keys {}-{} of {total} — j/k scroll, any other key closes ",
            scroll + 1,
            scroll + shown
        )
    } else {
        " Keys — any key closes ".to_string()
    };
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(title).border_style(Color::Cyan);
    let help = Paragraph::new(lines).block(block).scroll((scroll, 0));
    frame.render_widget(help, area);
}

/// The palette: what is typed, and the commands that fit it.
pub fn palette(typed: &str, frame: &mut Frame<'_>, status: Rect) {
    let suggestions: Vec<Line<'_>> = palette::suggestions(typed)
        .map(|usage| Line::styled(usage, Color::DarkGray))
        .collect();
    let title = " Command — Enter runs, Esc closes ";
    prompt(frame, status, (":", typed), title, suggestions);
}

/// The search prompt of the chat view.
pub fn search(typed: &str, frame: &mut Frame<'_>, status: Rect) {
    let title = " Search the session — Enter finds the newest match, Esc closes ";
    prompt(frame, status, ("/", typed), title, Vec::new());
}

/// A one-line prompt above the status bar, `sigil` then what is typed, with hints below.
fn prompt(
    frame: &mut Frame<'_>,
    status: Rect,
    (sigil, typed): (&str, &str),
    title: &str,
    suggestions: Vec<Line<'_>>,
) {
    let height = u16::try_from(suggestions.len()).unwrap_or(0) + 3;
    let width = frame.area().width.min(80);
    let area = Rect::new(
        0,
        status.y.saturating_sub(height),
        width,
        height.min(status.y),
    );
    frame.render_widget(Clear, area);
    let mut lines = vec![Line::from(vec![
        Span::styled(sigil, Color::Cyan),
        Span::raw(typed),
        Span::raw("█"),
    ])];
    lines.extend(suggestions);
    let block = Block::bordered().title(title).border_style(Color::Cyan);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A yes/no question.
pub fn confirm(confirm: &Confirm, frame: &mut Frame<'_>) {
    let question = match confirm {
        Confirm::Stop(_, label) => {
            format!("Stop {label}? SIGTERM now, SIGKILL after the grace.  y / n")
        }
        Confirm::StopForAlert(_, label) => format!("Answer the alert: stop {label}?  y / n"),
        Confirm::Remove(_, label) => {
            format!("Remove {label} with its log, series and alerts?  y / n")
        }
        Confirm::StopModel(name, true) => format!("Cancel the launch of {name}?  y / n"),
        Confirm::StopModel(name, false) => {
            format!("Stop model {name}? Its server run ends.  y / n")
        }
    };
    let width = u16::try_from(question.chars().count())
        .unwrap_or(60)
        .saturating_add(4);
    let area = centered(frame.area(), width, 3);
    frame.render_widget(Clear, area);
    let block = Block::bordered().border_style(Color::Yellow);
    frame.render_widget(Paragraph::new(question).block(block), area);
}
