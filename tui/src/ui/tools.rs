//! Tool calls in a conversation. An answer holds its calls and, later, their results (the
//! daemon records every call's result in the same answer, in the order of the calls); each
//! call is drawn with its result under it, so the reader sees what was asked and what came
//! back together.
//!
//! Folded (the default), a call is one line — the tool and its arguments on one line, cut to
//! the width — and one line of outcome: the result's first line, the error, "waiting for
//! approval" while a person has to answer, or "running". Unfolded (`e`), the arguments are
//! pretty-printed and the whole result follows. Everything here came from a model or a
//! tool, so it is shown through [`crate::sanitize`]: an escape sequence in a result is text.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use reagent::chat::{MessageInfo, MessageStatus, Part, PartKind};
use serde_json::Value;
use unicode_width::UnicodeWidthChar;

use super::messages::Look;
use super::wrap;
use crate::sanitize;

/// Lays out call `index` of `message` with its outcome.
pub(super) fn call(
    message: &MessageInfo,
    index: usize,
    width: usize,
    look: &Look<'_>,
    lines: &mut Vec<Line<'static>>,
) {
    let part = &message.parts[index];
    let name = sanitize::line(part.name.as_deref().unwrap_or("tool")).into_owned();
    let tool = vec![
        Span::styled("⚙ ", Color::Yellow),
        Span::styled(
            name,
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
    ];
    let result = result_of(message, index);
    let waiting = part
        .call_id
        .as_ref()
        .is_some_and(|id| look.awaiting.contains(id));
    if look.tools {
        lines.push(Line::from(tool));
        let arguments = pretty(&part.text);
        block(&arguments, DIM, width, lines);
        outcome_whole(message, result, waiting, width, lines);
    } else {
        let mut spans = tool;
        spans.push(Span::styled(format!(" {}", one_line(&part.text)), DIM));
        lines.push(fit(spans, width));
        lines.push(outcome_line(message, result, waiting, width));
    }
}

/// Lays out result `index` of `message` when no call of the message is its own (a call
/// shows its result under it): its tool's name and the result.
pub(super) fn result(
    message: &MessageInfo,
    index: usize,
    width: usize,
    unfolded: bool,
    lines: &mut Vec<Line<'static>>,
) {
    if has_call(message, index) {
        return;
    }
    let part = &message.parts[index];
    let name = sanitize::line(part.name.as_deref().unwrap_or("tool")).into_owned();
    if unfolded {
        let (mark, style) = marks(part.error);
        lines.push(Line::styled(format!("{mark} {name}"), style));
        block(&whole_text(&part.text), style_of(part.error), width, lines);
    } else {
        let mut line = outcome_line(message, Some(part), false, width);
        line.spans.insert(1, Span::styled(format!("{name}: "), DIM));
        lines.push(fit(line.spans, width));
    }
}

const DIM: Style = Style::new().fg(Color::DarkGray);

/// A result's mark and its style: `→` for what a tool returned, `✗` for a failure or a
/// denial.
fn marks(error: bool) -> (&'static str, Style) {
    if error {
        ("✗", Style::new().fg(Color::Red))
    } else {
        ("→", DIM)
    }
}

/// The style of a whole result's text.
fn style_of(error: bool) -> Style {
    if error {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    }
}

/// The one line under a folded call: its result's first line (with how many more there
/// are), or where the call is.
fn outcome_line(
    message: &MessageInfo,
    result: Option<&Part>,
    waiting: bool,
    width: usize,
) -> Line<'static> {
    let indent = Span::raw("  ");
    let Some(result) = result else {
        let (text, style) = pending(message, waiting);
        return fit(vec![indent, Span::styled(text, style)], width);
    };
    let (mark, style) = marks(result.error);
    let text = sanitize::text(&result.text);
    let mut rest = text.lines().filter(|line| !line.trim().is_empty());
    let first = rest.next().map_or("(no output)", str::trim);
    let more = rest.count();
    let body_style = if result.error { style } else { Style::new() };
    let noun = if more == 1 { "line" } else { "lines" };
    let suffix = (more > 0).then(|| format!(" (+{more} {noun})"));
    let lead = 2 + mark.chars().count() + 1;
    let room = width.saturating_sub(lead + suffix.as_ref().map_or(0, |s| s.chars().count()));
    let mut spans = vec![
        indent,
        Span::styled(format!("{mark} "), style),
        Span::styled(squeeze(first, room), body_style),
    ];
    spans.extend(suffix.map(|suffix| Span::styled(suffix, DIM)));
    fit(spans, width)
}

/// Where a call without a result is: waiting for a person, running, or never run (its
/// answer ended before the tools ran).
fn pending(message: &MessageInfo, waiting: bool) -> (&'static str, Style) {
    match message.status {
        _ if waiting => (
            "… waiting for approval",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        MessageStatus::Queued | MessageStatus::Streaming | MessageStatus::Complete => {
            ("… running", DIM)
        }
        MessageStatus::Error | MessageStatus::Cancelled | MessageStatus::Interrupted => {
            ("· not run", DIM)
        }
    }
}

/// The outcome of an unfolded call: the whole result behind a bar, or where the call is.
fn outcome_whole(
    message: &MessageInfo,
    result: Option<&Part>,
    waiting: bool,
    width: usize,
    lines: &mut Vec<Line<'static>>,
) {
    let Some(result) = result else {
        let (text, style) = pending(message, waiting);
        lines.push(Line::styled(text, style));
        return;
    };
    let (mark, style) = marks(result.error);
    let text = whole_text(&result.text);
    let count = text.lines().count();
    let noun = if count == 1 { "line" } else { "lines" };
    let what = if result.error { "error" } else { "result" };
    lines.push(Line::styled(
        format!("{mark} {what}, {count} {noun}"),
        style,
    ));
    block(&text, style_of(result.error), width, lines);
}

/// A result's whole text, made safe, or a word for an empty one.
fn whole_text(text: &str) -> String {
    let text = sanitize::text(text.trim_end());
    if text.is_empty() {
        "(no output)".into()
    } else {
        text.into_owned()
    }
}

/// `text` behind a dim bar, every character kept (indentation matters in JSON and logs),
/// cut to the width.
fn block(text: &str, style: Style, width: usize, lines: &mut Vec<Line<'static>>) {
    let bar = [Span::styled("┊ ", DIM)];
    for line in text.lines() {
        let spans = [Span::styled(line.to_string(), style)];
        lines.extend(wrap::cut(&spans, width, &bar));
    }
}

/// The arguments on one line: as the model wrote them when they are on one line (its order
/// of keys), else JSON re-written compactly (`{"command": "…", "gpus": 1}`), else (a call
/// still streaming) with the whitespace folded.
fn one_line(arguments: &str) -> String {
    let arguments = arguments.trim();
    let parsed = serde_json::from_str::<Value>(arguments).ok();
    match parsed.filter(|_| arguments.contains('\n')) {
        Some(value) => {
            let mut out = String::new();
            json_line(&value, &mut out);
            sanitize::line(&out).into_owned()
        }
        None => {
            let folded = arguments.split_whitespace().collect::<Vec<_>>().join(" ");
            sanitize::line(&folded).into_owned()
        }
    }
}

fn json_line(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                json_line(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_line(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The arguments pretty-printed when they are JSON, else as they came; made safe.
fn pretty(arguments: &str) -> String {
    let text = serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| arguments.to_string());
    whole_text(&text)
}

/// A call's id as results are paired by: the provider's id, when it gave one.
fn key(part: &Part) -> Option<&str> {
    part.call_id.as_deref().filter(|id| !id.is_empty())
}

/// The result of call `index`: the result with its id, or for calls without ids, the result
/// in the same place among those without ids.
fn result_of(message: &MessageInfo, index: usize) -> Option<&Part> {
    let parts = &message.parts;
    let mut results = parts.iter().filter(|p| p.kind == PartKind::ToolResult);
    match key(&parts[index]) {
        Some(id) => results.find(|p| key(p) == Some(id)),
        None => {
            let nth = (parts[..index].iter())
                .filter(|p| p.kind == PartKind::ToolCall && key(p).is_none())
                .count();
            results.filter(|p| key(p).is_none()).nth(nth)
        }
    }
}

/// Whether result `index` belongs to a call of its message (and so is shown under it).
fn has_call(message: &MessageInfo, index: usize) -> bool {
    let parts = &message.parts;
    let mut calls = parts.iter().filter(|p| p.kind == PartKind::ToolCall);
    match key(&parts[index]) {
        Some(id) => calls.any(|p| key(p) == Some(id)),
        None => {
            let nth = (parts[..index].iter())
                .filter(|p| p.kind == PartKind::ToolResult && key(p).is_none())
                .count();
            calls.filter(|p| key(p).is_none()).nth(nth).is_some()
        }
    }
}

/// `text` in at most `room` cells, its end replaced by `…` when cut.
fn squeeze(text: &str, room: usize) -> String {
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= room {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > room {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `spans` on one line of at most `width` cells, cut with `…` in the style of the span cut.
pub(super) fn fit(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let total: usize = spans.iter().map(Span::width).sum();
    if total <= width {
        return Line::from(spans);
    }
    let room = width.saturating_sub(1);
    let mut used = 0;
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let mut piece = String::new();
        let mut cut = false;
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > room {
                cut = true;
                break;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            out.push(Span::styled(piece, span.style));
        }
        if cut {
            out.push(Span::styled("…", span.style));
            break;
        }
    }
    Line::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_on_one_line_whatever_their_layout() {
        let text = "{\n  \"gpus\": 1,\n  \"command\": [\"python\", \"train.py\"]\n}";
        assert_eq!(
            one_line(text),
            r#"{"command": ["python", "train.py"], "gpus": 1}"#
        );
        assert_eq!(one_line("{\"comm"), "{\"comm", "a call still streaming");
        assert_eq!(one_line("{\"a\": \"\\u001b[2J\"}"), r#"{"a": "\u001b[2J"}"#);
        assert_eq!(one_line("not\x1b[2J json"), "not^[[2J json");
    }

    #[test]
    fn lines_are_cut_to_the_width_with_an_ellipsis() {
        let line = fit(vec![Span::raw("⚙ run_start "), Span::raw("{\"a\": 1}")], 14);
        assert_eq!(line.to_string(), "⚙ run_start {…");
        assert_eq!(line.width(), 14);
        assert_eq!(squeeze("abcdef", 4), "abc…");
        assert_eq!(squeeze("abc", 4), "abc");
    }
}
