//! Shell quoting for what people read and paste: a command line shown for approval, a
//! recipe's argv, a batch script's command. A word comes back exactly as given when a shell
//! reads it, and never carries a control character to the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Words as one shell command line (see [`word`]).
pub fn line(words: &[String]) -> String {
    words.iter().map(|w| word(w)).collect::<Vec<_>>().join(" ")
}

/// One word as a shell reads it back: as it is when it holds no character a shell treats
/// specially, else in single quotes, else — when it holds a control character, which must
/// neither reach the terminal nor break the line — in bash's `$'…'` with escapes. The
/// result is safe to print: it holds no control character.
pub fn word(word: &str) -> Cow<'_, str> {
    // `=` starts zsh's `=cmd` expansion, so it is plain only after the first character.
    let plain = |(at, c): (usize, char)| {
        c.is_ascii_alphanumeric() || "_-./:,+@%".contains(c) || (c == '=' && at > 0)
    };
    if !word.is_empty() && word.char_indices().all(plain) {
        return Cow::Borrowed(word);
    }
    if !word.chars().any(char::is_control) {
        return Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")));
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            // Byte by byte, as `\u` depends on the locale and `\x` does not; always two
            // digits, as `\x` reads at most two, so a digit after it stays a character.
            c if c.is_control() => {
                for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed_and_never_carry_controls() {
        assert_eq!(word("--port"), "--port");
        assert_eq!(
            word("org/Model-7B_v1.5:q4,x+y@z%"),
            "org/Model-7B_v1.5:q4,x+y@z%"
        );
        assert_eq!(word("a=b"), "a=b");
        assert_eq!(word("=b"), "'=b'", "zsh expands a leading `=`");
        assert_eq!(word(""), "''");
        assert_eq!(word("{port}"), "'{port}'");
        assert_eq!(word("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(word("~/x *"), "'~/x *'");
        assert_eq!(
            word("a\nb\t\x1b[2J\\'\u{9b}1\x01f"),
            r"$'a\nb\t\x1b[2J\\\'\xc2\x9b1\x01f'"
        );
        assert_eq!(
            line(&["vllm".into(), "serve".into(), "my model".into()]),
            "vllm serve 'my model'"
        );
    }

    #[test]
    fn shell_words_read_back_as_the_same_word() {
        // What bash makes of each quoted word, when a bash is here to ask.
        let words = [
            "plain",
            "two words",
            "it's",
            "",
            "a\nb\x1b[2J\\'\u{85}9",
            "=x",
            "日本 語",
        ];
        let script: String = words
            .iter()
            .map(|w| format!("printf '%s\\0' {}\n", word(w)))
            .collect();
        let Ok(out) = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
        else {
            eprintln!("skipped: no bash to read the quoted words back");
            return;
        };
        let read: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(read, words);
    }
}
