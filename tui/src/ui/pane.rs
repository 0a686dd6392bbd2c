//! The focused run's terminal, drawn from this client's copy of its screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use tui_term::widget::{Cursor, PseudoTerminal};

use super::border;
use crate::app::App;
use crate::app::state::{Focus, Mode};

/// Draws the pane, or a hint when no run is open.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let style = border(app, Focus::Pane);
    let (Some(pane), Some(run)) = (&app.pane, app.pane_run()) else {
        let hint = "No run open.\n\nSelect a run with j/k and press Enter to watch it and type \
                    into it, or press n to start one. Press ? for every key.";
        let block = Block::bordered().title(" Pane ").border_style(style);
        let paragraph = Paragraph::new(hint)
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(Color::DarkGray))
            .block(block);
        frame.render_widget(paragraph, area);
        return;
    };
    let input = app.mode == Mode::Input && app.focus == Focus::Pane;
    let mut title = format!(" {} — {} ", run.label(), run.status);
    if input {
        title.push_str("[typing] ");
    }
    if pane.scroll > 0 {
        title.push_str(&format!("[{} lines back] ", pane.scroll));
    }
    let mut block = Block::bordered().title(title).border_style(style);
    // A run that logs to Weights & Biases says where its dashboard is.
    let wandb = run
        .wandb
        .as_ref()
        .and_then(|w| w.url.as_ref().or(w.dir.as_ref()));
    if let Some(wandb) = wandb {
        let line = Line::styled(format!(" W&B {wandb} "), Color::Yellow).right_aligned();
        block = block.title_bottom(line);
    }
    if pane.offset.is_none() {
        frame.render_widget(Paragraph::new("attaching…").block(block), area);
        return;
    }
    let cursor = Cursor::default().visibility(input && pane.scroll == 0);
    let terminal = PseudoTerminal::new(pane.parser.screen())
        .block(block)
        .cursor(cursor);
    frame.render_widget(terminal, area);
}
