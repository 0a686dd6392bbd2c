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
    // Output missing from the log (a full disk) is said where the output is read.
    if let Some(loss) = &run.lost_output {
        let line = Line::styled(format!(" ⚠ {} ", loss.describe()), Color::Red).left_aligned();
        block = block.title_bottom(line);
    }
    if pane.offset.is_none() {
        frame.render_widget(Paragraph::new("attaching…").block(block), area);
        return;
    }
    let cursor = Cursor::default().visibility(input && pane.scroll == 0);
    let screen = pane.parser.screen();
    let top = view_top(screen, area.height.saturating_sub(2), pane.scroll);
    let anchored = Anchored { screen, top };
    let terminal = PseudoTerminal::new(&anchored).block(block).cursor(cursor);
    frame.render_widget(terminal, area);
}

/// Where a pane's view starts when it follows the job; key handling scrolls from the same
/// place, and `reagent attach` anchors its own screen there too.
pub use crate::app::geometry::anchor_top;

/// The row, in the screen's visible coordinates (after its own scrollback offset), that the
/// pane's top shows when scrolled `scroll` lines back from the anchored view: first the rows
/// above the anchor, then the scrollback.
fn view_top(screen: &vt100::Screen, height: u16, scroll: usize) -> u16 {
    let anchor = anchor_top(screen, height);
    let from_scrollback = screen.scrollback();
    let within_screen = u16::try_from(scroll.saturating_sub(from_scrollback)).unwrap_or(u16::MAX);
    anchor.saturating_sub(within_screen)
}

/// A vt100 screen seen from row `top` down.
struct Anchored<'a> {
    screen: &'a vt100::Screen,
    top: u16,
}

impl tui_term::widget::Screen for Anchored<'_> {
    type C = vt100::Cell;

    fn cell(&self, row: u16, col: u16) -> Option<&Self::C> {
        self.screen.cell(row.checked_add(self.top)?, col)
    }

    fn hide_cursor(&self) -> bool {
        self.screen.hide_cursor()
    }

    fn cursor_position(&self) -> (u16, u16) {
        let (row, col) = tui_term::widget::Screen::cursor_position(self.screen);
        // Above the view: park it past the bottom, where nothing is drawn.
        (row.checked_sub(self.top).unwrap_or(u16::MAX), col)
    }
}
