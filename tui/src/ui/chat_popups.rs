//! The chat view's popups: the model picker and the usage panel.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use reagent::chat::{Role, UsageTotals};
use reagent::time::utc_date;

use super::overlays::centered;
use crate::app::App;
use crate::app::state::ModelPicker;

/// The model picker: the filter, then the models that match it.
pub fn models(app: &App, picker: &ModelPicker, frame: &mut Frame<'_>) {
    let matches = picker.matches(&app.chat.models);
    let height = u16::try_from(matches.len().clamp(1, 16) + 3).unwrap_or(19);
    let area = centered(frame.area(), 64, height);
    frame.render_widget(Clear, area);
    let target = match &app.chat.open {
        Some(open) => format!(" Model for {} — Enter switches, Esc closes ", open.id),
        None => " Model for a new session — Enter starts it, Esc closes ".to_string(),
    };
    let block = Block::bordered().title(target).border_style(Color::Cyan);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let filter = Line::from(vec![
        Span::styled("filter: ", Color::DarkGray),
        Span::raw(picker.filter.as_str()),
        Span::raw("█"),
    ]);
    let [filter_area, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(filter), filter_area);
    if matches.is_empty() {
        let why = if app.chat.models.is_empty() {
            "no models listed: add `models` to a [providers.NAME] section"
        } else {
            "no model matches"
        };
        frame.render_widget(Paragraph::new(why).fg(Color::DarkGray), list_area);
        return;
    }
    let current = app.chat.open.as_ref().and_then(|open| {
        let session = app.chat.sessions.iter().find(|s| s.id == open.id)?;
        Some(session.model.as_str())
    });
    let items = matches.iter().map(|model| {
        let mark = if Some(model.as_str()) == current {
            "● "
        } else {
            "  "
        };
        ListItem::new(format!("{mark}{model}"))
    });
    let list = List::new(items).highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(picker.selected));
    frame.render_stateful_widget(list, list_area, &mut state);
}

/// Tokens and cost: today, per day, per session, and the newest rate-limit headers.
pub fn usage(app: &App, frame: &mut Frame<'_>) {
    let Some(report) = &app.chat.usage else {
        popup(frame, vec![Line::styled("loading…", Color::DarkGray)]);
        return;
    };
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled(
        format!(
            "  {:<24} {:>7} {:>8} {:>8} {:>8} {:>10}",
            "", "answers", "in", "out", "cached", "cost"
        ),
        Color::DarkGray,
    )];
    let today = utc_date(app.now);
    lines.push(Line::styled("  Per day (UTC)", bold));
    for row in report.days.iter().rev().take(7) {
        let label = if row.key == today { "today" } else { &row.key };
        lines.push(totals_line(label, row));
    }
    lines.push(Line::styled("  Per session (newest first)", bold));
    for row in report.sessions.iter().rev().take(10) {
        let session = app.chat.sessions.iter().find(|s| s.id == row.key);
        let label = session.map_or(row.key.as_str(), |s| s.label());
        lines.push(totals_line(label, row));
    }
    let limits = app.chat.open.as_ref().and_then(|open| {
        let answers = open
            .messages
            .iter()
            .rev()
            .filter(|m| m.role == Role::Assistant);
        answers.map(|m| &m.usage.limits).find(|l| !l.is_empty())
    });
    if let Some(limits) = limits {
        lines.push(Line::styled("  Limits the provider reported last", bold));
        for (name, value) in limits {
            lines.push(Line::raw(format!("    {name:<44} {value}")));
        }
    }
    popup(frame, lines);
}

fn popup(frame: &mut Frame<'_>, lines: Vec<Line<'static>>) {
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = centered(frame.area(), 78, height);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Usage — any key closes ")
        .border_style(Color::Cyan);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn totals_line(label: &str, row: &UsageTotals) -> Line<'static> {
    let label: String = label.chars().take(22).collect();
    Line::raw(format!(
        "    {label:<22} {:>7} {:>8} {:>8} {:>8} {:>10}",
        row.answers,
        tokens(row.input),
        tokens(row.output),
        tokens(row.cached),
        format!("${:.4}", row.cost_usd),
    ))
}

/// A token count in few characters: `950`, `12.3k`, `4.56M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}
