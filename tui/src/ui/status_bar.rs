//! The status bar: the daemon link, run counts, the mode or last message, key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::app::state::{Link, Mode};

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
    let open = app.alerts.open();
    if open > 0 {
        let badge = format!("│ ⚠ {open} alert{} (a) ", if open == 1 { "" } else { "s" });
        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        spans.push(Span::styled(badge, style));
    }
    spans.push(Span::raw("│ "));
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
