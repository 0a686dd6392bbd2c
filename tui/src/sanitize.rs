//! Untrusted text made safe to print on a terminal.
//!
//! Run names and commands, alert texts, metric names, model answers and provider errors come
//! from jobs, files and remote services. Printed raw, an escape sequence in one of them writes
//! the clipboard (`ESC ]52;c;…`), clears the screen (`ESC [2J`), and a newline forges a table
//! row. Every CLI path that prints such text goes through here; only `logs`, `attach` and
//! `--json` (whose encoder escapes control characters itself) print what they get.
//!
//! Control characters are shown as `cat -v` shows them, the one notation the README
//! documents: C0 controls in caret notation (`^[` for ESC, `^J` for a newline, `^I` for a
//! tab, `^@` for NUL), DEL as `^?`, and the C1 controls U+0080–U+009F as `M-` followed by the
//! caret form of their low seven bits (`M-^[` for U+009B, which some terminals read as CSI).
//! Every other character passes unchanged.

use std::borrow::Cow;

/// For a single line (a table cell, a name inside a message): every control character is
/// made visible, newlines and tabs included, so nothing can start a line or move the cursor.
pub fn line(text: &str) -> Cow<'_, str> {
    visible(text, |_| false)
}

/// For a body of text (a chat message, an error): newlines and tabs stay, as its layout needs
/// them; every other control character is made visible.
pub fn text(text: &str) -> Cow<'_, str> {
    visible(text, |c| c == '\n' || c == '\t')
}

fn visible(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            push_caret(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `cat -v`'s form of a control character: `^X`, `^?` for DEL, `M-^X` for a C1 control.
fn push_caret(c: char, out: &mut String) {
    let code = u32::from(c);
    if code >= 0x80 {
        out.push_str("M-");
    }
    out.push('^');
    let low = code & 0x7f;
    out.push(match u8::try_from(low) {
        Ok(0x7f) | Err(_) => '?',
        Ok(byte) => char::from(byte + 0x40),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_newlines_become_visible_on_one_line() {
        assert_eq!(
            line("x\x1b]52;c;aGk=\x07\x1b[2J\ny\tz\r\0\x7f"),
            "x^[]52;c;aGk=^G^[[2J^Jy^Iz^M^@^?"
        );
        assert_eq!(line("\u{9b}31m \u{85}"), "M-^[31m M-^E", "C1 controls too");
    }

    #[test]
    fn bodies_keep_newlines_and_tabs_only() {
        assert_eq!(text("a\n\tb\r\n\x1b[2J"), "a\n\tb^M\n^[[2J");
    }

    #[test]
    fn clean_text_is_borrowed_and_unicode_passes() {
        assert!(matches!(line("train-lr=3e-4 ✓ 日本"), Cow::Borrowed(_)));
        assert_eq!(line("naïve ✓"), "naïve ✓");
    }
}
