//! Markdown to terminal lines: headings, emphasis, lists, quotes, tables, rules, and code
//! blocks with syntax highlighting, wrapped to a width.
//!
//! Models answer in markdown; showing the raw asterisks and pipes makes answers hard to read.
//! The output is the exact lines drawn, so the chat view knows each message's height.
//! Streaming text is rendered as it stands: an unclosed code fence is code to the end.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

use super::{highlight, wrap};
use crate::app::chat::MARKDOWN;

/// Inline code and unhighlighted code blocks.
const CODE: Style = Style::new().fg(Color::Yellow);
/// Quote bars, code gutters, table rules.
const DIM: Style = Style::new().fg(Color::DarkGray);

/// `text` as lines at most `width` cells wide.
pub fn render(text: &str, width: usize) -> Vec<Line<'static>> {
    let mut writer = Writer::new(width.max(8));
    for event in Parser::new_ext(text, MARKDOWN) {
        writer.event(event);
    }
    writer.finish()
}

/// A block that prefixes the lines inside it.
enum Container {
    /// `> quote`: a bar on every line.
    Quote,
    /// A list item: its marker on the first line, as many spaces on the others.
    Item { marker: String, used: bool },
}

/// A table being collected; it is laid out when it ends, once every width is known.
#[derive(Default)]
struct Table {
    aligns: Vec<Alignment>,
    rows: Vec<Vec<Vec<Span<'static>>>>,
    row: Vec<Vec<Span<'static>>>,
    cell: Option<Vec<Span<'static>>>,
}

struct Writer {
    width: usize,
    out: Vec<Line<'static>>,
    inline: Vec<Span<'static>>,
    styles: Vec<Style>,
    containers: Vec<Container>,
    /// Per open list: the next number, or `None` for bullets.
    lists: Vec<Option<u64>>,
    /// A code block being collected: its language and body.
    code: Option<(String, String)>,
    table: Option<Table>,
    /// Open links: where each points and where its text starts.
    links: Vec<(String, usize)>,
}

impl Writer {
    fn new(width: usize) -> Self {
        Self {
            width,
            out: Vec::new(),
            inline: Vec::new(),
            styles: Vec::new(),
            containers: Vec::new(),
            lists: Vec::new(),
            code: None,
            table: None,
            links: Vec::new(),
        }
    }

    fn style(&self) -> Style {
        self.styles
            .iter()
            .fold(Style::new(), |acc, style| acc.patch(*style))
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => match self.code.as_mut() {
                Some((_, body)) => body.push_str(&text),
                None => self.push(text.into_string(), self.style()),
            },
            Event::Code(text) | Event::InlineMath(text) | Event::DisplayMath(text) => {
                self.push(text.into_string(), self.style().patch(CODE))
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                self.push(html.trim_end().to_string(), self.style().patch(DIM))
            }
            Event::FootnoteReference(name) => self.push(format!("[^{name}]"), DIM),
            Event::SoftBreak => self.push(" ".into(), self.style()),
            Event::HardBreak => self.flush(),
            Event::Rule => {
                self.flush();
                self.gap();
                let width = self.width.saturating_sub(self.lead()).min(60);
                self.out.push(Line::styled("─".repeat(width), DIM));
            }
            Event::TaskListMarker(done) => {
                self.push(if done { "☑ " } else { "☐ " }.into(), self.style())
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock | Tag::DefinitionListTitle => self.gap(),
            Tag::Heading { level, .. } => {
                self.flush();
                self.gap();
                self.styles.push(heading(level));
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.gap();
                self.containers.push(Container::Quote);
                self.styles
                    .push(Style::new().add_modifier(Modifier::ITALIC));
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                self.gap();
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.into_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(first) => {
                self.flush();
                if self.lists.is_empty() {
                    self.gap();
                }
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => ["• ", "◦ ", "▪ "][depth.saturating_sub(1) % 3].to_string(),
                };
                self.containers.push(Container::Item {
                    marker,
                    used: false,
                });
            }
            Tag::Table(aligns) => {
                self.flush();
                self.gap();
                self.table = Some(Table {
                    aligns,
                    ..Table::default()
                });
            }
            Tag::TableHead | Tag::TableRow => {}
            Tag::TableCell => {
                if let Some(table) = self.table.as_mut() {
                    table.cell = Some(Vec::new());
                }
            }
            Tag::Emphasis => self
                .styles
                .push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.styles.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self
                .styles
                .push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                let start = self.target_len();
                self.links.push((dest_url.into_string(), start));
                self.styles.push(
                    Style::new()
                        .fg(Color::Blue)
                        .add_modifier(Modifier::UNDERLINED),
                );
            }
            Tag::Image { dest_url, .. } => {
                self.push("[image: ".into(), DIM);
                let start = self.target_len();
                self.links.push((dest_url.into_string(), start));
                self.styles.push(DIM);
            }
            Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_)
            | Tag::Superscript
            | Tag::Subscript => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock | TagEnd::DefinitionListTitle => self.flush(),
            TagEnd::Heading(_) => {
                self.flush();
                self.styles.pop();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.containers.pop();
                self.styles.pop();
            }
            TagEnd::CodeBlock => self.code_block(),
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Item => {
                self.flush();
                self.containers.pop();
            }
            TagEnd::Table => self.table_end(),
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(table) = self.table.as_mut() {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            TagEnd::TableCell => {
                if let Some(table) = self.table.as_mut() {
                    let cell = table.cell.take().unwrap_or_default();
                    table.row.push(cell);
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                if let Some((dest, start)) = self.links.pop() {
                    let shown = self.target_text(start);
                    if tag == TagEnd::Image {
                        self.push("]".into(), DIM);
                    } else if !dest.is_empty() && shown != dest {
                        self.push(format!(" ({dest})"), DIM);
                    }
                }
            }
            TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_)
            | TagEnd::Superscript
            | TagEnd::Subscript => {}
        }
    }

    /// Where inline text goes: the open table cell, or the paragraph.
    fn target(&mut self) -> &mut Vec<Span<'static>> {
        match self.table.as_mut().and_then(|t| t.cell.as_mut()) {
            Some(cell) => cell,
            None => &mut self.inline,
        }
    }

    fn target_len(&mut self) -> usize {
        self.target().len()
    }

    fn target_text(&mut self, start: usize) -> String {
        let spans = self.target();
        let spans = spans.get(start..).unwrap_or_default();
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn push(&mut self, text: String, style: Style) {
        self.target().push(Span::styled(text, style));
    }

    /// Cells the containers' prefixes take.
    fn lead(&self) -> usize {
        self.containers
            .iter()
            .map(|c| match c {
                Container::Quote => 2,
                Container::Item { marker, .. } => marker.width(),
            })
            .sum()
    }

    /// The prefixes for a block's first line and the lines after it.
    fn prefixes(&mut self) -> (Vec<Span<'static>>, Vec<Span<'static>>) {
        let mut first = Vec::new();
        let mut rest = Vec::new();
        for container in &mut self.containers {
            match container {
                Container::Quote => {
                    first.push(Span::styled("│ ", DIM));
                    rest.push(Span::styled("│ ", DIM));
                }
                Container::Item { marker, used } => {
                    let blank = " ".repeat(marker.width());
                    if *used {
                        first.push(Span::raw(blank.clone()));
                    } else {
                        first.push(Span::styled(marker.clone(), Style::new().fg(Color::Cyan)));
                        *used = true;
                    }
                    rest.push(Span::raw(blank));
                }
            }
        }
        (first, rest)
    }

    /// Writes the paragraph collected so far.
    fn flush(&mut self) {
        if self.inline.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.inline);
        let (first, rest) = self.prefixes();
        self.out
            .extend(wrap::wrap(&spans, self.width, &first, &rest));
    }

    /// A blank line between blocks, except at the top and at the start of a list item.
    fn gap(&mut self) {
        let fresh_item = matches!(
            self.containers.last(),
            Some(Container::Item { used: false, .. })
        );
        let last_blank = self.out.last().is_none_or(|line| line.width() == 0);
        if !fresh_item && !last_blank {
            self.out.push(Line::raw(""));
        }
    }

    fn code_block(&mut self) {
        let Some((lang, body)) = self.code.take() else {
            return;
        };
        let (mut first, rest) = self.prefixes();
        let gutter = Span::styled("▎ ", DIM);
        first.push(gutter.clone());
        let mut prefix = rest;
        prefix.push(gutter);
        let label = lang.split([',', ' ']).next().unwrap_or_default();
        if !label.is_empty() {
            let mut line = first.clone();
            line.push(Span::styled(label.to_string(), DIM));
            self.out.push(Line::from(line));
            first = prefix.clone();
        }
        for (i, spans) in highlight::code(&body, &lang, CODE).into_iter().enumerate() {
            let lead = if i == 0 { &first } else { &prefix };
            let mut lines = wrap::cut(&spans, self.width, lead);
            self.out.append(&mut lines);
        }
    }

    fn table_end(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        if columns == 0 {
            return;
        }
        let mut widths = vec![1; columns];
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.iter().map(Span::width).sum());
            }
        }
        let room = self
            .width
            .saturating_sub(self.lead() + 3 * (columns - 1))
            .max(columns);
        // Narrow the widest column until the table fits.
        while widths.iter().sum::<usize>() > room {
            let Some(widest) = (0..columns).max_by_key(|&i| widths[i]) else {
                break;
            };
            if widths[widest] <= 1 {
                break;
            }
            widths[widest] -= 1;
        }
        let (first, rest) = self.prefixes();
        for (r, row) in table.rows.iter().enumerate() {
            let mut line = if r == 0 { first.clone() } else { rest.clone() };
            for (i, width) in widths.iter().enumerate() {
                if i > 0 {
                    line.push(Span::styled(" │ ", DIM));
                }
                let cell = row.get(i).map(Vec::as_slice).unwrap_or_default();
                let align = table.aligns.get(i).copied().unwrap_or(Alignment::None);
                let header = (r == 0).then_some(Modifier::BOLD);
                line.extend(fit(cell, *width, align, header));
            }
            self.out.push(Line::from(line));
            if r == 0 {
                let mut rule = rest.clone();
                let parts: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                rule.push(Span::styled(parts.join("─┼─"), DIM));
                self.out.push(Line::from(rule));
            }
        }
    }

    fn finish(mut self) -> Vec<Line<'static>> {
        self.flush();
        self.code_block();
        self.table_end();
        while self.out.last().is_some_and(|line| line.width() == 0) {
            self.out.pop();
        }
        self.out
    }
}

fn heading(level: HeadingLevel) -> Style {
    let style = Style::new().add_modifier(Modifier::BOLD);
    match level {
        HeadingLevel::H1 => style.fg(Color::Magenta).add_modifier(Modifier::UNDERLINED),
        HeadingLevel::H2 => style.fg(Color::Cyan),
        _ => style,
    }
}

/// A table cell's spans padded or cut to exactly `width` cells.
fn fit(
    cell: &[Span<'static>],
    width: usize,
    align: Alignment,
    bold: Option<Modifier>,
) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    let mut used = 0;
    let total: usize = cell.iter().map(Span::width).sum();
    for span in cell {
        let mut text = String::new();
        for c in span.content.chars() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > width || (total > width && used + w == width) {
                break;
            }
            text.push(c);
            used += w;
        }
        let style = bold.map_or(span.style, |m| span.style.add_modifier(m));
        out.push(Span::styled(text, style));
    }
    if total > width && used < width {
        out.push(Span::styled("…", DIM));
        used += 1;
    }
    let pad = width.saturating_sub(used);
    let (left, right) = match align {
        Alignment::Right => (pad, 0),
        Alignment::Center => (pad / 2, pad - pad / 2),
        Alignment::None | Alignment::Left => (0, pad),
    };
    if left > 0 {
        out.insert(0, Span::raw(" ".repeat(left)));
    }
    if right > 0 {
        out.push(Span::raw(" ".repeat(right)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::chat::code_blocks;

    fn plain(text: &str, width: usize) -> Vec<String> {
        render(text, width)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn headings_paragraphs_and_emphasis_lose_their_markup() {
        let lines = plain("# Title\n\nSome **bold** and *italic* text.", 40);
        assert_eq!(lines, ["Title", "", "Some bold and italic text."]);
        let styled = render("**bold**", 40);
        assert!(
            styled[0].spans[0]
                .style
                .add_modifier
                .contains(Modifier::BOLD)
        );
    }

    #[test]
    fn lists_nest_and_wrap_under_their_marker() {
        let text = "- one\n- two is a longer item\n  1. first\n  2. second\n";
        assert_eq!(
            plain(text, 16),
            [
                "• one",
                "• two is a",
                "  longer item",
                "  1. first",
                "  2. second"
            ]
        );
    }

    #[test]
    fn code_blocks_keep_indentation_and_name_their_language() {
        let text = "Look:\n\n```python\ndef f():\n    return 1\n```\n";
        assert_eq!(
            plain(text, 40),
            ["Look:", "", "▎ python", "▎ def f():", "▎     return 1"]
        );
        assert_eq!(code_blocks(text), ["def f():\n    return 1\n"]);
    }

    #[test]
    fn an_unclosed_fence_is_code_to_the_end() {
        assert_eq!(plain("```\nlet a = 1;", 40), ["▎ let a = 1;"]);
    }

    #[test]
    fn tables_align_their_columns() {
        let text = "| name | loss |\n|---|--:|\n| a | 0.5 |\n| bb | 12.25 |\n";
        assert_eq!(
            plain(text, 40),
            [
                "name │  loss",
                "─────┼──────",
                "a    │   0.5",
                "bb   │ 12.25"
            ]
        );
    }

    #[test]
    fn wide_tables_shrink_their_widest_column() {
        let text = "| k | v |\n|---|---|\n| x | a very long value here |\n";
        let lines = plain(text, 16);
        assert!(lines.iter().all(|l| l.chars().count() <= 16), "{lines:?}");
        assert!(lines[2].ends_with('…'), "{lines:?}");
    }

    #[test]
    fn quotes_links_and_rules() {
        let text = "> wise words\n\nsee [docs](https://example.com)\n\n---\n";
        assert_eq!(
            plain(text, 60),
            [
                "│ wise words",
                "",
                "see docs (https://example.com)",
                "",
                &"─".repeat(60)
            ]
        );
    }
}
