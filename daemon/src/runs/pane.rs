//! A live run's terminal as the daemon sees it: a screen model fed from the log, and the
//! clients attached to its output.
//!
//! Clients that attach get the screen as escape sequences that repaint it, then every byte
//! after it; the offset ties the two together so nothing is shown twice or skipped.

use std::sync::Arc;

use reagent::protocol::{Blob, Notification, Output};

use crate::outbox::{Outbox, Pushed, encode_notification};

/// A run's screen and output subscribers.
pub struct Pane {
    run: String,
    parser: vt100::Parser,
    /// Bytes of the log fed so far.
    offset: u64,
    subscribers: Vec<(u64, Arc<Outbox>)>,
}

impl Pane {
    /// A blank screen of `cols` x `rows` keeping `scrollback` lines.
    pub fn new(run: &str, cols: u16, rows: u16, scrollback: usize) -> Self {
        Self {
            run: run.to_string(),
            parser: vt100::Parser::new(rows.max(1), cols.max(1), scrollback),
            offset: 0,
            subscribers: Vec::new(),
        }
    }

    /// Bytes of the log reflected on the screen.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts the screen at `offset` of the log, with `tail` (the bytes just before it)
    /// already drawn: how a restarted daemon rebuilds a screen without replaying gigabytes.
    pub fn restore(&mut self, offset: u64, tail: &[u8]) {
        self.parser.process(tail);
        self.offset = offset;
    }

    /// Feeds the next bytes of the log to the screen and to every attached client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.parser.process(bytes);
        if !self.subscribers.is_empty() {
            let output = Output {
                run: self.run.clone(),
                offset: self.offset,
                data: Blob(bytes.to_vec()),
            };
            let line = encode_notification(&Notification::Output(output));
            // A client that fell behind is detached; it re-attaches after its resync.
            self.subscribers
                .retain(|(_, outbox)| outbox.push(&line) == Pushed::Queued);
        }
        self.offset += bytes.len() as u64;
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
    pub fn screen(&self) -> Vec<u8> {
        self.parser.screen().state_formatted()
    }

    /// The screen's text, for tests and summaries.
    pub fn contents(&self) -> String {
        self.parser.screen().contents()
    }

    /// Detaches a client.
    pub fn detach(&mut self, conn: u64) {
        self.subscribers.retain(|(id, _)| *id != conn);
    }

    /// Follows the job's terminal to a new size.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.screen_mut().set_size(rows.max(1), cols.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attaching_late_sees_the_current_screen_then_new_output() {
        let mut pane = Pane::new("r1", 20, 4, 10);
        pane.feed(b"hello\r\n");
        let outbox = Outbox::new(1 << 20);
        let (screen, offset) = pane.attach(1, outbox.clone());
        assert_eq!(offset, 7);
        let mut replay = vt100::Parser::new(4, 20, 0);
        replay.process(&screen);
        assert_eq!(replay.screen().contents().trim_end(), "hello");
        pane.feed(b"world");
        assert!(outbox.queued_bytes() > 0);
        assert_eq!(pane.offset(), 12);
        assert!(pane.contents().contains("world"));
    }
}
