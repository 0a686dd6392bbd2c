//! The open conversation as lines, and scrolling through them.
//!
//! How a message looks as lines (markdown, highlighting, wrapping) is the renderer's
//! business: it implements [`Typesetter`] and keeps what it laid out. The state holds one
//! typesetter, so key handling, which scrolls by lines, and drawing see the same lines.
//! Scrolling is anchored at a message and a line within it, so moving through a session of
//! 10,000 messages costs the messages crossed, never the whole session.
//!
//! The session's system prompt (for a chat opened from an alert, what the model was told about
//! the run) is typeset as the first lines of the first message, so anchors stay message
//! indices; a session with no messages yet shows it alone.

use std::rc::Rc;

use ratatui::text::Line;

use super::chat::{Anchor, OpenSession};

/// A message's lines, shared between a typesetter's memory and the frames that draw them.
pub type Lines = Rc<[Line<'static>]>;

/// What messages look like beyond their own content, which the state knows and the
/// session does not: whether thinking is unfolded, and which tool calls wait for a person's
/// answer (they read "waiting for approval" rather than "running").
#[derive(Debug, Clone, Copy, Default)]
pub struct Show<'a> {
    /// Thinking shown in full.
    pub thinking: bool,
    /// Call ids of the session's calls with an approval pending.
    pub awaiting: &'a [String],
}

/// Lays messages out as lines; the renderer implements it.
pub trait Typesetter {
    /// Message `index` of `open` at `width` cells (the first one preceded by the system
    /// prompt; with no messages, index 0 is the system prompt alone), as `show` says.
    fn lines(&self, open: &OpenSession, index: usize, width: usize, show: Show<'_>) -> Lines;
}

/// One session's messages as seen through a viewport `width` cells wide.
pub struct Conversation<'a> {
    open: &'a OpenSession,
    typesetter: &'a dyn Typesetter,
    width: usize,
    show: Show<'a>,
}

impl<'a> Conversation<'a> {
    /// `open` laid out by `typesetter` at `width`, as `show` says.
    pub fn new(
        open: &'a OpenSession,
        typesetter: &'a dyn Typesetter,
        width: usize,
        show: Show<'a>,
    ) -> Self {
        Self {
            open,
            typesetter,
            width: width.max(8),
            show,
        }
    }

    fn lines(&self, index: usize) -> Lines {
        self.typesetter
            .lines(self.open, index, self.width, self.show)
    }

    fn height(&self, index: usize) -> usize {
        self.lines(index).len()
    }

    /// Messages shown; a session with only a system prompt shows that as one.
    fn len(&self) -> usize {
        let len = self.open.messages.len();
        len.max(usize::from(self.open.system.is_some()))
    }

    /// The `height` lines a viewport shows: from `anchor` down, or the end of the session.
    pub fn visible(&self, anchor: Option<Anchor>, height: usize) -> Vec<Line<'static>> {
        match anchor.filter(|a| self.fills(*a, height)) {
            Some(anchor) => {
                let mut shown = Vec::with_capacity(height);
                let mut skip = anchor.line;
                for index in anchor.message..self.len() {
                    let lines = self.lines(index);
                    shown.extend(lines.iter().skip(skip).take(height - shown.len()).cloned());
                    skip = 0;
                    if shown.len() >= height {
                        break;
                    }
                }
                shown
            }
            None => {
                // Walk back from the newest message until the screen is full.
                let mut blocks = Vec::new();
                let mut total = 0;
                for index in (0..self.len()).rev() {
                    let lines = self.lines(index);
                    total += lines.len();
                    blocks.push(lines);
                    if total >= height {
                        break;
                    }
                }
                let skip = total.saturating_sub(height);
                blocks
                    .iter()
                    .rev()
                    .flat_map(|lines| lines.iter().cloned())
                    .skip(skip)
                    .collect()
            }
        }
    }

    /// Whether a screen of `height` lines starting at `anchor` is full: if not, the anchor is
    /// past the last screenful and the view follows the end instead.
    fn fills(&self, anchor: Anchor, height: usize) -> bool {
        let mut lines = 0;
        for index in anchor.message..self.len() {
            lines += self.height(index);
            if index == anchor.message {
                lines = lines.saturating_sub(anchor.line);
            }
            if lines > height {
                return true;
            }
        }
        false
    }

    /// The anchor of the top line when the view follows the end.
    fn bottom_anchor(&self, height: usize) -> Anchor {
        let mut above = height;
        for index in (0..self.len()).rev() {
            let lines = self.height(index);
            if lines >= above {
                return Anchor {
                    message: index,
                    line: lines - above,
                };
            }
            above -= lines;
        }
        Anchor::default()
    }

    /// Where the top of the view goes after scrolling `delta` lines (negative: back towards
    /// the first message); `None` follows the end.
    pub fn scroll(&self, from: Option<Anchor>, delta: isize, height: usize) -> Option<Anchor> {
        if self.len() == 0 {
            return None;
        }
        let mut at = from.unwrap_or_else(|| self.bottom_anchor(height));
        let mut n = delta.unsigned_abs();
        if delta < 0 {
            while n > 0 {
                if at.line >= n {
                    at.line -= n;
                    n = 0;
                } else if at.message == 0 {
                    at.line = 0;
                    n = 0;
                } else {
                    n -= at.line + 1;
                    at.message -= 1;
                    at.line = self.height(at.message).saturating_sub(1);
                }
            }
        } else {
            while n > 0 {
                let rest = self.height(at.message).saturating_sub(at.line + 1);
                if rest >= n {
                    at.line += n;
                    n = 0;
                } else if at.message + 1 >= self.len() {
                    at.line += rest;
                    n = 0;
                } else {
                    n -= rest + 1;
                    at.message += 1;
                    at.line = 0;
                }
            }
        }
        self.fills(at, height).then_some(at)
    }

    /// The anchor that shows message `index` at the top (or the end, if it is on the last
    /// screen).
    pub fn reveal(&self, index: usize, height: usize) -> Option<Anchor> {
        let at = Anchor {
            message: index,
            line: 0,
        };
        self.fills(at, height).then_some(at)
    }
}

/// A typesetter for tests of the state alone, which never look at the lines: each message
/// is one line of its text.
#[cfg(test)]
pub(crate) struct Plain;

#[cfg(test)]
impl Typesetter for Plain {
    fn lines(&self, open: &OpenSession, index: usize, _: usize, _: Show<'_>) -> Lines {
        let text = open
            .messages
            .get(index)
            .map(|m| m.text())
            .unwrap_or_default();
        Lines::from(vec![Line::raw(text)])
    }
}
