//! `reagent logs --plain`: a log as a terminal would have shown it, line by line. Carriage
//! returns rewrite their line (a progress bar ends as its last state), backspaces and
//! erase-in-line are applied, and every other escape sequence is dropped, so the text greps,
//! diffs and pastes cleanly.
//!
//! Lines are only ever rewritten in place, never moved: a log is a stream of lines, and
//! programs that move the cursor around the screen (full-screen ones) are better read with
//! `reagent attach` or the pane.

/// What an escape sequence in progress has seen.
#[derive(Debug, Default)]
enum Escape {
    /// Plain text.
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [`, with the parameter bytes so far.
    Csi(String),
    /// Inside `ESC ]` (a title, a hyperlink, a clipboard write), until BEL or `ESC \`.
    Osc,
    /// ESC inside an OSC: `\` ends it.
    OscEsc,
}

/// Turns a terminal byte stream into plain lines, chunk by chunk.
#[derive(Debug, Default)]
pub struct Plain {
    line: Vec<char>,
    cursor: usize,
    escape: Escape,
    /// The start of a UTF-8 character split across chunks.
    partial: Vec<u8>,
}

impl Plain {
    /// Feeds the next bytes; complete lines are appended to `out`, each ending in `\n`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut String) {
        let mut bytes = std::mem::take(&mut self.partial)
            .into_iter()
            .chain(bytes.iter().copied())
            .collect::<Vec<u8>>();
        loop {
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    text.chars().for_each(|c| self.char(c, out));
                    return;
                }
                Err(err) => {
                    let (valid, rest) = bytes.split_at(err.valid_up_to());
                    // Valid by construction: `valid_up_to` says so.
                    if let Ok(text) = std::str::from_utf8(valid) {
                        text.chars().for_each(|c| self.char(c, out));
                    }
                    match err.error_len() {
                        // Cut short at the end of the chunk: wait for the rest.
                        None => {
                            self.partial = rest.to_vec();
                            return;
                        }
                        Some(len) => {
                            self.char(char::REPLACEMENT_CHARACTER, out);
                            bytes = rest[len..].to_vec();
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: a last line without its newline is written too.
    pub fn finish(&mut self, out: &mut String) {
        if !self.partial.is_empty() {
            self.partial.clear();
            self.char(char::REPLACEMENT_CHARACTER, out);
        }
        if !self.line.is_empty() {
            self.end_line(out);
        }
    }

    fn char(&mut self, c: char, out: &mut String) {
        match std::mem::take(&mut self.escape) {
            Escape::None => self.text(c, out),
            Escape::Start => {
                self.escape = match c {
                    '[' => Escape::Csi(String::new()),
                    ']' => Escape::Osc,
                    _ => Escape::None,
                }
            }
            Escape::Csi(mut params) => {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    self.csi(&params, c);
                } else {
                    params.push(c);
                    self.escape = Escape::Csi(params);
                }
            }
            Escape::Osc => {
                self.escape = match c {
                    '\u{7}' => Escape::None,
                    '\u{1b}' => Escape::OscEsc,
                    _ => Escape::Osc,
                }
            }
            Escape::OscEsc => self.escape = if c == '\\' { Escape::None } else { Escape::Osc },
        }
    }

    fn text(&mut self, c: char, out: &mut String) {
        match c {
            '\n' => self.end_line(out),
            '\r' => self.cursor = 0,
            '\u{8}' => self.cursor = self.cursor.saturating_sub(1),
            '\u{1b}' => self.escape = Escape::Start,
            '\t' => self.put('\t'),
            c if c.is_control() => {}
            c => self.put(c),
        }
    }

    /// Writes `c` at the cursor, over what is there.
    fn put(&mut self, c: char) {
        if self.cursor < self.line.len() {
            self.line[self.cursor] = c;
        } else {
            self.line.resize(self.cursor, ' ');
            self.line.push(c);
        }
        self.cursor += 1;
    }

    /// The control sequences that change a line's text: erase in line and cursor moves
    /// along it. The rest (colours, scrolling regions) change nothing a plain log shows.
    fn csi(&mut self, params: &str, command: char) {
        let n = params.parse::<usize>().unwrap_or(0);
        match command {
            'K' => match n {
                0 => self.line.truncate(self.cursor),
                1 => {
                    let end = self.cursor.min(self.line.len());
                    self.line[..end].fill(' ');
                }
                _ => self.line.clear(),
            },
            'C' => self.cursor += n.max(1),
            'D' => self.cursor = self.cursor.saturating_sub(n.max(1)),
            'G' => self.cursor = n.saturating_sub(1),
            _ => {}
        }
    }

    fn end_line(&mut self, out: &mut String) {
        let text: String = self.line.drain(..).collect();
        out.push_str(text.trim_end());
        out.push('\n');
        self.cursor = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Plain;

    fn plain(chunks: &[&[u8]]) -> String {
        let mut plain = Plain::default();
        let mut out = String::new();
        for chunk in chunks {
            plain.feed(chunk, &mut out);
        }
        plain.finish(&mut out);
        out
    }

    #[test]
    fn a_progress_bar_ends_as_its_last_state() {
        let bar = b"epoch 1\r\n 10%|\xe2\x96\x88         |\r 50%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88     |\r100%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88|\r\ndone";
        assert_eq!(plain(&[bar]), "epoch 1\n100%|██████████|\ndone\n");
    }

    #[test]
    fn escape_sequences_go_and_erase_in_line_applies() {
        let text = b"\x1b[1;31mred\x1b[0m text\r\n\x1b]0;title\x07\x1b]52;c;aGk=\x1b\\kept\r\nold line\r\x1b[Knew\r\n";
        assert_eq!(plain(&[text]), "red text\nkept\nnew\n");
    }

    #[test]
    fn overwriting_keeps_what_was_not_overwritten_and_backspace_moves_back() {
        assert_eq!(plain(&[b"abcdef\rXY\r\n"]), "XYcdef\n");
        assert_eq!(plain(&[b"abc\x08\x08Z\n"]), "aZc\n");
    }

    #[test]
    fn characters_and_sequences_split_across_chunks_survive() {
        let bytes = "é \x1b[32mgreen\x1b[0m █\n".as_bytes();
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(plain(&[a, b]), "é green █\n", "cut at {cut}");
        }
    }
}
