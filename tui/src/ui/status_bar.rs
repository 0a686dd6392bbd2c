//! The status bar: the daemon link, run counts, the mode or last message, key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::app::state::{Link, Mode, View};
use crate::ui::chat_popups::tokens;

/// Draws the bar.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let link = match &app.link {
        Link::Connecting => Span::styled(format!(" ◌ {} connecting… ", app.place), Color::Yellow),
        Link::Connected { clients } => Span::styled(
            format!(
                " ● {} · {clients} client{} ",
                app.place,
                if *clients == 1 { "" } else { "s" }
            ),
            Color::Green,
        ),
        Link::Disconnected {
            reason,
            retry_in_ms,
        } => Span::styled(
            format!(
                " ○ disconnected: {reason} · retrying in {:.1}s ",
                *retry_in_ms as f64 / 1000.0
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    let (running, failed) = app.counts();
    let mut spans = vec![link, Span::raw(format!("│ {running} running "))];
    let failed_style = if failed > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    spans.push(Span::styled(format!("· {failed} failed "), failed_style));
    if let Some(gpus) = super::gpus::compact(&app.gpus) {
        // Readings from before the link went down are not live: said so, and greyed.
        match app.link {
            Link::Connected { .. } => spans.push(Span::styled(format!("│ {gpus} "), Color::Cyan)),
            _ => spans.push(Span::styled(format!("│ {gpus} (stale) "), Color::DarkGray)),
        }
    }
    let open = app.alerts.open();
    if open > 0 {
        let badge = format!("│ ⚠ {open} alert{} (a) ", if open == 1 { "" } else { "s" });
        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        spans.push(Span::styled(badge, style));
    }
    // The box shows the oldest; the badge says how many wait, even under the help or palette.
    let waiting = app.agent.approvals.len();
    if waiting > 0 {
        let badge = format!(
            "│ ⚠ {waiting} approval{} ",
            if waiting == 1 { "" } else { "s" }
        );
        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        spans.push(Span::styled(badge, style));
    }
    spans.push(Span::raw("│ "));
    if app.view == View::Chat {
        spans.extend(chat_usage(app));
    }
    let prefix = app.prefix.0;
    match (&app.mode, &app.flash) {
        (_, Some(flash)) => {
            let color = if flash.error {
                Color::Red
            } else {
                Color::Reset
            };
            spans.push(Span::styled(flash.text.clone(), color));
        }
        (Mode::Input, None) => spans.push(Span::styled(
            format!("typing into the job · Ctrl-{prefix} for the cockpit"),
            Color::Green,
        )),
        (Mode::Normal, None) if app.chat.search.is_some() && app.view == View::Chat => {
            let query = app.chat.search.as_ref().map_or("", |s| s.query.as_str());
            spans.push(Span::styled(
                format!("search “{query}” · n older · N newer · Esc ends"),
                Color::Yellow,
            ));
        }
        (Mode::Compose, None) => {
            spans.push(Span::styled(
                "writing a message · Esc for the cockpit",
                Color::Green,
            ));
        }
        _ => spans.push(Span::styled(
            "? keys · : commands · q quit",
            Color::DarkGray,
        )),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The open session's tokens and cost, and today's cost across sessions.
fn chat_usage(app: &App) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if let Some(open) = &app.chat.open {
        let (mut input, mut output, mut cost) = (0, 0, 0.0);
        for message in open.messages.iter().filter(|m| !m.usage.copied) {
            input += message.usage.input.unwrap_or(0);
            output += message.usage.output.unwrap_or(0);
            cost += message.usage.cost_usd.unwrap_or(0.0);
        }
        if input + output > 0 {
            spans.push(Span::raw(format!(
                "session ↑{} ↓{} ${cost:.4} ",
                tokens(input),
                tokens(output)
            )));
        }
    }
    let today = reagent::time::utc_date(app.now);
    let report = app.chat.usage.as_ref();
    if let Some(day) = report.and_then(|r| r.days.iter().find(|d| d.key == today)) {
        let dot = if spans.is_empty() { "" } else { "· " };
        spans.push(Span::raw(format!("{dot}today ${:.4} ", day.cost_usd)));
    }
    if !spans.is_empty() {
        spans.push(Span::raw("│ "));
    }
    spans
}
