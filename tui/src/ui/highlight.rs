//! Syntax highlighting of code blocks with syntect (pure-Rust regexes, bundled syntaxes).
//!
//! Loading the syntaxes costs tens of milliseconds, so it happens once, the first time a
//! code block is drawn; a cockpit that never shows code never pays it.

use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// Blocks longer than this are shown without colours: highlighting them would stall a frame.
const MAX_HIGHLIGHTED_LINES: usize = 2000;

struct Highlighter {
    syntaxes: SyntaxSet,
    theme: Theme,
}

fn highlighter() -> &'static Option<Highlighter> {
    static HIGHLIGHTER: OnceLock<Option<Highlighter>> = OnceLock::new();
    HIGHLIGHTER.get_or_init(|| {
        let mut themes = ThemeSet::load_defaults();
        let theme = themes.themes.remove("base16-ocean.dark")?;
        Some(Highlighter {
            syntaxes: SyntaxSet::load_defaults_newlines(),
            theme,
        })
    })
}

/// The lines of `code` as coloured spans, for the language named by a fence's info string
/// (`rust`, `py`, `bash`, …). Unknown languages and very long blocks come back in `plain`.
pub fn code(code: &str, lang: &str, plain: Style) -> Vec<Vec<Span<'static>>> {
    let plain_lines = || {
        code.lines()
            .map(|line| vec![Span::styled(line.to_string(), plain)])
            .collect()
    };
    let token = lang.split([',', ' ']).next().unwrap_or_default();
    let Some(h) = highlighter() else {
        return plain_lines();
    };
    let Some(syntax) = (!token.is_empty())
        .then(|| h.syntaxes.find_syntax_by_token(token))
        .flatten()
    else {
        return plain_lines();
    };
    if code.lines().count() > MAX_HIGHLIGHTED_LINES {
        return plain_lines();
    }
    let mut lines = HighlightLines::new(syntax, &h.theme);
    let mut out = Vec::new();
    for line in LinesWithEndings::from(code) {
        let Ok(ranges) = lines.highlight_line(line, &h.syntaxes) else {
            return plain_lines();
        };
        let spans = ranges
            .into_iter()
            .map(|(style, text)| {
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                Span::styled(text, convert(style))
            })
            .filter(|span| !span.content.is_empty())
            .collect();
        out.push(spans);
    }
    out
}

fn convert(style: syntect::highlighting::Style) -> Style {
    let fg = style.foreground;
    let mut out = Style::new().fg(Color::Rgb(fg.r, fg.g, fg.b));
    if style.font_style.contains(FontStyle::BOLD) {
        out = out.add_modifier(Modifier::BOLD);
    }
    if style.font_style.contains(FontStyle::ITALIC) {
        out = out.add_modifier(Modifier::ITALIC);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_get_colours_and_keep_their_text() {
        let lines = code("fn main() {}\nlet x = 1;\n", "rust", Style::new());
        assert_eq!(lines.len(), 2);
        let text: String = lines[0].iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "fn main() {}");
        let colours: std::collections::HashSet<_> = lines[0].iter().map(|s| s.style.fg).collect();
        assert!(colours.len() > 1, "keywords and names differ: {colours:?}");
    }

    #[test]
    fn unknown_languages_are_plain() {
        let plain = Style::new().fg(Color::Yellow);
        let lines = code("a b\nc", "no-such-language", plain);
        assert_eq!(
            lines,
            vec![
                vec![Span::styled("a b", plain)],
                vec![Span::styled("c", plain)]
            ]
        );
    }
}
