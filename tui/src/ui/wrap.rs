//! Word wrapping of styled text to a width in terminal cells.
//!
//! ratatui's `Paragraph` can wrap, but then nobody knows how many rows a message takes
//! without drawing it. The chat view needs that number to scroll by lines through long
//! sessions, so messages are wrapped here, once, into the exact lines that get drawn.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Wraps `spans` into lines at most `width` cells wide (after `prefix` and `indent`): words
/// move whole to the next line; a word longer than a line is cut. `prefix` starts the first
/// line, `indent` the others (list bullets, quote bars).
pub fn wrap(
    spans: &[Span<'static>],
    width: usize,
    prefix: &[Span<'static>],
    indent: &[Span<'static>],
) -> Vec<Line<'static>> {
    let mut out = Lines::new(width, prefix, indent);
    for span in spans {
        for (word, space) in words(&span.content) {
            if space {
                out.space(span.style);
            } else {
                out.word(word, span.style);
            }
        }
    }
    out.finish()
}

/// Cuts `spans` into lines of exactly `width` cells (the last may be shorter), keeping every
/// character: code keeps its indentation, which word wrapping would fold away. Each line
/// starts with `prefix`; tabs become four spaces.
pub fn cut(spans: &[Span<'static>], width: usize, prefix: &[Span<'static>]) -> Vec<Line<'static>> {
    let lead: usize = prefix.iter().map(Span::width).sum();
    let room = width.saturating_sub(lead).max(1);
    let mut lines = Vec::new();
    let mut current = prefix.to_vec();
    let mut used = 0;
    for span in spans {
        let mut piece = String::new();
        for c in span.content.replace('\t', "    ").chars() {
            let w = c.width().unwrap_or(0);
            if used + w > room && used > 0 {
                if !piece.is_empty() {
                    current.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                lines.push(Line::from(std::mem::replace(&mut current, prefix.to_vec())));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            current.push(Span::styled(piece, span.style));
        }
    }
    lines.push(Line::from(current));
    lines
}

/// Splits text into runs of non-space (false) and space (true).
fn words(text: &str) -> impl Iterator<Item = (&str, bool)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first.is_whitespace();
        let end = rest
            .find(|c: char| c.is_whitespace() != space)
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some((word, space))
    })
}

/// The lines being filled.
struct Lines {
    width: usize,
    indent: Vec<Span<'static>>,
    lines: Vec<Line<'static>>,
    current: Vec<Span<'static>>,
    /// Cells used on the current line, its prefix included.
    used: usize,
    /// Cells the prefix or indent of the current line takes.
    lead: usize,
    /// A space waits to be written before the next word.
    space: Option<Style>,
}

impl Lines {
    fn new(width: usize, prefix: &[Span<'static>], indent: &[Span<'static>]) -> Self {
        let lead = prefix.iter().map(Span::width).sum();
        Self {
            width: width.max(lead + 1),
            indent: indent.to_vec(),
            lines: Vec::new(),
            current: prefix.to_vec(),
            used: lead,
            lead,
            space: None,
        }
    }

    fn space(&mut self, style: Style) {
        if self.used > self.lead {
            self.space = Some(style);
        }
    }

    fn word(&mut self, word: &str, style: Style) {
        let cells = word.width();
        let space = usize::from(self.space.is_some());
        if self.used + space + cells > self.width && self.used > self.lead {
            self.break_line();
        }
        if let Some(style) = self.space.take()
            && self.used > self.lead
        {
            self.push(" ".into(), style, 1);
        }
        if self.used + cells <= self.width {
            self.push(word.to_string(), style, cells);
            return;
        }
        // Longer than a whole line: cut it where the line ends.
        let mut piece = String::new();
        let mut piece_cells = 0;
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if self.used + piece_cells + w > self.width
                && (piece_cells > 0 || self.used > self.lead)
            {
                self.push(std::mem::take(&mut piece), style, piece_cells);
                piece_cells = 0;
                self.break_line();
            }
            piece.push(c);
            piece_cells += w;
        }
        self.push(piece, style, piece_cells);
    }

    fn push(&mut self, text: String, style: Style, cells: usize) {
        if text.is_empty() {
            return;
        }
        // Neighbouring pieces of one style become one span: fewer, longer spans draw faster.
        match self.current.last_mut() {
            Some(last) if last.style == style && self.used > self.lead => {
                last.content.to_mut().push_str(&text)
            }
            _ => self.current.push(Span::styled(text, style)),
        }
        self.used += cells;
    }

    fn break_line(&mut self) {
        let line = std::mem::replace(&mut self.current, self.indent.clone());
        self.lines.push(Line::from(line));
        self.lead = self.indent.iter().map(Span::width).sum();
        self.used = self.lead;
        self.space = None;
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        if self.used > self.lead || self.lines.is_empty() {
            self.lines.push(Line::from(self.current));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn words_move_whole_and_long_words_are_cut() {
        let spans = [Span::raw("the quick brown fox jumps over abcdefghijklmnop")];
        let lines = wrap(&spans, 10, &[], &[]);
        assert_eq!(
            plain(&lines),
            [
                "the quick",
                "brown fox",
                "jumps over",
                "abcdefghij",
                "klmnop"
            ]
        );
    }

    #[test]
    fn prefix_starts_the_first_line_and_indent_the_rest() {
        let spans = [Span::raw("one two three four")];
        let lines = wrap(&spans, 10, &[Span::raw("• ")], &[Span::raw("  ")]);
        assert_eq!(plain(&lines), ["• one two", "  three", "  four"]);
    }

    #[test]
    fn wide_characters_count_two_cells() {
        let spans = [Span::raw("日本語のテキスト")];
        let lines = wrap(&spans, 6, &[], &[]);
        assert_eq!(plain(&lines), ["日本語", "のテキ", "スト"]);
    }

    #[test]
    fn cutting_keeps_indentation_and_every_character() {
        let spans = [Span::raw("    let x = 1234567;")];
        let lines = cut(&spans, 12, &[Span::raw("│ ")]);
        assert_eq!(plain(&lines), ["│     let x ", "│ = 1234567;"]);
    }

    #[test]
    fn empty_text_is_one_empty_line() {
        assert_eq!(plain(&wrap(&[], 10, &[], &[])), [""]);
    }
}
