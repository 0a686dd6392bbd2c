//! Copying to the user's clipboard with the OSC 52 escape sequence.
//!
//! The terminal does the copying, so it works where the cockpit runs over SSH and needs no
//! clipboard tool on the machine running the cockpit. (tmux passes it on with
//! `set -g set-clipboard on`.)

use std::io::Write as _;

use base64::Engine as _;

/// Asks the terminal to put `text` on the clipboard.
pub fn copy(text: &str) {
    let mut out = std::io::stdout();
    // A terminal that ignores OSC 52 ignores it silently; there is nothing to report.
    let _ = out.write_all(osc52(text).as_bytes());
    let _ = out.flush();
}

/// The escape sequence that sets the clipboard to `text`.
fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_travels_base64_encoded() {
        assert_eq!(super::osc52("hi\n"), "\x1b]52;c;aGkK\x07");
    }
}
