//! A live run's terminal as the daemon sees it: the bytes clients attach to, and a screen
//! model built when someone needs it.
//!
//! Clients that attach get the screen as escape sequences that repaint it, then every byte
//! after it; the offset ties the two together so nothing is shown twice or skipped.
//!
//! Parsing is lazy. Output is forwarded as it arrives, but only kept (up to
//! [`MAX_UNPARSED`]) until a screen is asked for — by an attach, a resize or a restart. A job
//! flooding its terminal therefore costs the daemon a copy, not a terminal emulation, and a
//! run nobody watches costs no screen at all. When more piles up than that, the screen is
//! rebuilt from the last [`KEEP_UNPARSED`] bytes, as after a daemon restart; modes set before
//! that tail (an alternate screen, say) are forgotten until the job sets them again.

use std::sync::Arc;

use crate::outbox::{Outbox, Pushed, encode_output};

/// Unparsed bytes held per run before the screen is rebuilt from a tail.
pub const MAX_UNPARSED: usize = 1 << 20;
/// The tail a screen is rebuilt from.
pub const KEEP_UNPARSED: usize = 256 * 1024;

/// The widest screen the daemon models. vt100 keeps a 32-byte cell in a main and an
/// alternate grid, so a 1000x1000 screen cost 64 MB per run; 500x200 costs 6.4 MB and is
/// still more than a full-screen terminal on a 4K display (about 550x140 at a 7x15 font).
pub const MAX_COLS: u16 = 500;
/// The tallest screen the daemon models; see [`MAX_COLS`].
pub const MAX_ROWS: u16 = 200;

/// The terminal size a run gets for a requested one: larger sizes are cut to
/// [`MAX_COLS`] x [`MAX_ROWS`] (the client then shows the run in part of its window), and
/// sizes under 2x2, which no terminal has, are refused with the reason.
pub fn fit_size(cols: u16, rows: u16) -> Result<(u16, u16), String> {
    if cols < 2 || rows < 2 {
        return Err(format!("{cols}x{rows} is smaller than 2x2"));
    }
    Ok((cols.min(MAX_COLS), rows.min(MAX_ROWS)))
}

/// A run's output subscribers and its (lazily built) screen.
pub struct Pane {
    run: String,
    cols: u16,
    rows: u16,
    /// The screen as of `offset - unparsed.len()`; `None` until first needed.
    parser: Option<vt100::Parser>,
    /// Output not yet fed to the screen.
    unparsed: Vec<u8>,
    /// Bytes of the log seen so far.
    offset: u64,
    subscribers: Vec<(u64, Arc<Outbox>)>,
    /// Looks for a W&B run in the output.
    pub wandb: crate::metrics::wandb::Detector,
}

impl Pane {
    /// A blank `cols` x `rows` terminal.
    pub fn new(run: &str, cols: u16, rows: u16) -> Self {
        Self {
            run: run.to_string(),
            cols: cols.max(1),
            rows: rows.max(1),
            parser: None,
            unparsed: Vec::new(),
            offset: 0,
            subscribers: Vec::new(),
            wandb: Default::default(),
        }
    }

    /// Bytes of the log reflected here.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts at `offset` of the log, the screen drawn from `tail` (the bytes just before it):
    /// how a restarted daemon rebuilds a screen without replaying gigabytes.
    pub fn restore(&mut self, offset: u64, tail: &[u8]) {
        self.parser = None;
        self.unparsed.clear();
        self.keep(tail);
        self.offset = offset;
    }

    /// Takes the next bytes of the log: forwards them to every attached client and keeps them
    /// for the screen.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.subscribers.is_empty() {
            let line = encode_output(&self.run, self.offset, bytes);
            // A client that fell behind is detached; it re-attaches after its resync.
            self.subscribers
                .retain(|(_, outbox)| outbox.push(&line) == Pushed::Queued);
        }
        self.wandb.feed(bytes);
        self.keep(bytes);
        self.offset += bytes.len() as u64;
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.unparsed.extend_from_slice(bytes);
        if self.unparsed.len() > MAX_UNPARSED {
            let cut = self.unparsed.len() - KEEP_UNPARSED;
            self.unparsed.drain(..cut);
            self.parser = None;
        }
    }

    /// The screen, brought up to date.
    fn parser(&mut self) -> &mut vt100::Parser {
        let (rows, cols) = (self.rows, self.cols);
        let parser = self
            .parser
            .get_or_insert_with(|| vt100::Parser::new(rows, cols, 0));
        parser.process(&self.unparsed);
        self.unparsed.clear();
        parser
    }

    /// Attaches a client: returns the escape sequences that paint the current screen and the
    /// offset where its `output` notifications start.
    pub fn attach(&mut self, conn: u64, outbox: Arc<Outbox>) -> (Vec<u8>, u64) {
        self.subscribers
            .retain(|(id, outbox)| *id != conn && !outbox.is_closed());
        self.subscribers.push((conn, outbox));
        (self.screen(), self.offset)
    }

    /// The escape sequences that paint the current screen, cursor and modes.
    ///
    /// vt100 paints only the visible grid and leaves the alternate-screen mode out: a client
    /// fed that alone would draw a full-screen program (vim, htop) on its main screen and keep
    /// it there after the program left. So a screen in the alternate mode is painted after
    /// switching to it; when the program leaves, the client is back on its main screen (blank,
    /// since the main grid itself cannot be read from vt100 meanwhile).
    pub fn screen(&mut self) -> Vec<u8> {
        let screen = self.parser().screen();
        let mut bytes = Vec::new();
        if screen.alternate_screen() {
            bytes.extend_from_slice(b"\x1b[?1049h");
        }
        bytes.extend_from_slice(&screen.state_formatted());
        bytes
    }

    /// The screen's text.
    #[cfg(test)]
    pub fn contents(&mut self) -> String {
        self.parser().screen().contents()
    }

    /// Detaches a client.
    pub fn detach(&mut self, conn: u64) {
        self.subscribers.retain(|(id, _)| *id != conn);
    }

    /// Follows the job's terminal to a new size. Output before the resize is drawn at the old
    /// size first, as a real terminal would have.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        if self.parser.is_some() || !self.unparsed.is_empty() {
            self.parser();
        }
        (self.cols, self.rows) = (cols.max(1), rows.max(1));
        if let Some(parser) = self.parser.as_mut() {
            parser.screen_mut().set_size(self.rows, self.cols);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(screen: &[u8], cols: u16, rows: u16) -> String {
        let mut parser = vt100::Parser::new(rows, cols, 0);
        parser.process(screen);
        parser.screen().contents()
    }

    #[test]
    fn a_full_screen_program_attached_to_leaves_a_clear_screen_when_it_exits() {
        let mut pane = Pane::new("r1", 20, 4);
        pane.feed(b"$ vim\r\n\x1b[?1049h\x1b[2J\x1b[HVIM SCREEN");
        let (screen, _) = pane.attach(1, Outbox::new(1 << 20));
        let mut client = vt100::Parser::new(4, 20, 0);
        client.process(&screen);
        assert!(client.screen().alternate_screen());
        assert!(client.screen().contents().contains("VIM SCREEN"));
        client.process(b"\x1b[?1049l");
        assert!(!client.screen().contents().contains("VIM SCREEN"));
    }

    #[test]
    fn attaching_late_sees_the_current_screen_then_new_output() {
        let mut pane = Pane::new("r1", 20, 4);
        pane.feed(b"hello\r\n");
        let outbox = Outbox::new(1 << 20);
        let (screen, offset) = pane.attach(1, outbox.clone());
        assert_eq!(offset, 7);
        assert_eq!(replay(&screen, 20, 4).trim_end(), "hello");
        pane.feed(b"world");
        assert!(outbox.queued_bytes() > 0);
        assert_eq!(pane.offset(), 12);
        assert!(pane.contents().contains("world"));
    }

    #[test]
    fn a_flood_keeps_a_bounded_tail_and_the_last_screen() {
        let mut pane = Pane::new("r1", 20, 4);
        for i in 0..200_000 {
            pane.feed(format!("line {i}\r\n").as_bytes());
        }
        assert!(pane.unparsed.len() <= MAX_UNPARSED);
        assert!(pane.contents().contains("line 199999"));
        assert!(pane.unparsed.is_empty());
    }

    #[test]
    fn sizes_are_cut_to_the_largest_screen_modelled() {
        assert_eq!(fit_size(1000, 1000), Ok((MAX_COLS, MAX_ROWS)));
        assert_eq!(fit_size(80, 24), Ok((80, 24)));
        assert!(fit_size(1, 24).is_err());
    }

    #[test]
    fn output_before_a_resize_is_drawn_at_the_old_size() {
        let mut pane = Pane::new("r1", 10, 3);
        pane.feed(b"0123456789abc");
        pane.resize(20, 3);
        let screen = pane.contents();
        assert!(screen.starts_with("0123456789\nabc"), "{screen:?}");
    }
}
