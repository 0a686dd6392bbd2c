//! The alerts view: every alert, newest last, with its run, rule, severity, message, age and
//! status; Enter shows the highlighted one's details and the keys that answer it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};
use reagent::alert::{AlertInfo, AlertStatus, Choice, Severity};
use reagent::number::Short;
use reagent::time::format_duration_ms;

use super::border;
use crate::app::App;
use crate::app::state::Focus;

/// Draws the alerts panel in `area`.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let alerts = &app.alerts;
    let detail = alerts.current().filter(|_| alerts.detail);
    let [list, below] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(if detail.is_some() { 7 } else { 0 }),
    ])
    .areas(area);
    let title = format!(
        " Alerts · {} open · i ignore · I all like it · x stop run · c chat · Enter details ",
        alerts.open()
    );
    let block = Block::bordered()
        .title(title)
        .border_style(border(app, panel));
    if alerts.alerts.is_empty() {
        let text = Paragraph::new(
            "no alerts: NaNs, spikes, stalls, thresholds and failed runs raise them",
        )
        .block(block);
        frame.render_widget(text, list);
        return;
    }
    let rows = alerts.alerts.iter().map(|alert| row(app, alert));
    let widths = [
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Min(10),
        Constraint::Length(8),
    ];
    let header = Row::new(["", "age", "run", "rule", "severity", "message", "status"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(alerts.selected));
    frame.render_stateful_widget(table, list, &mut state);
    if let Some(alert) = detail {
        frame.render_widget(details(alert), below);
    }
}

fn row(app: &App, alert: &AlertInfo) -> Row<'static> {
    let run = app
        .runs
        .iter()
        .find(|r| r.id == alert.run)
        .map_or(alert.run.clone(), |r| r.label().to_string());
    let (mark, color) = match (alert.status, alert.severity) {
        (AlertStatus::Answered, _) => ("·", Color::DarkGray),
        (AlertStatus::Open, Severity::Critical) => ("!", Color::Red),
        (AlertStatus::Open, Severity::Warning) => ("!", Color::Yellow),
        (AlertStatus::Open, Severity::Info) => ("i", Color::Cyan),
    };
    let age = format_duration_ms(app.now - alert.created_at);
    let status = match alert.response {
        Some(choice) => choice.to_string(),
        None => alert.status.to_string(),
    };
    let style = if alert.status == AlertStatus::Open {
        Style::new().fg(color)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Row::new([
        mark.to_string(),
        age,
        run,
        alert.rule.to_string(),
        alert.severity.to_string(),
        alert.message.clone(),
        status,
    ])
    .style(style)
}

fn details(alert: &AlertInfo) -> Paragraph<'static> {
    let mut lines = vec![Line::from(alert.message.clone())];
    let mut facts = format!(
        "alert {} · run {} · rule {}",
        alert.id, alert.run, alert.rule
    );
    if let Some(subject) = &alert.subject {
        facts.push_str(&format!(" · {subject}"));
    }
    if let Some(step) = alert.step {
        facts.push_str(&format!(" · step {}", Short(step)));
    }
    lines.push(Line::from(facts));
    let keys = |c: &Choice| match c {
        Choice::Ignore => "i ignore",
        Choice::Stop => "x stop the run",
        Choice::Chat => "c open a chat about it",
    };
    lines.push(Line::from(match alert.response {
        Some(choice) => format!(
            "answered: {choice}{}",
            alert
                .session
                .as_ref()
                .map(|s| format!(" (session {s})"))
                .unwrap_or_default()
        ),
        None => {
            let choices: Vec<&str> = alert.choices.iter().map(keys).collect();
            format!("answer: {}", choices.join(" · "))
        }
    }));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Details "))
}
