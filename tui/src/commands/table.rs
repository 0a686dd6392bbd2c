//! The CLI's aligned tables, total for any input.
//!
//! Every cell is made safe for the terminal ([`sanitize::line`]: a newline in a name cannot
//! forge a row, an escape sequence cannot reach the terminal), cut with an ellipsis to
//! [`MAX_CELL`] columns ([`MAX_LAST`] for the last cell of a row, where a command or a message
//! is what one reads), and padded by its display width. Padding is written out rather than
//! asked of `format!`, whose widths stop at 65,535: a 70,000-character name once made
//! `reagent runs` panic here. `--json` carries every value whole.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use crate::sanitize;

/// The widest a cell is shown, in terminal columns, except the last of its row.
pub const MAX_CELL: usize = 60;

/// The widest the last cell of a row is shown.
pub const MAX_LAST: usize = 200;

/// Rows as aligned columns (the last cell of a row is not padded), one line each.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let fitted: Vec<Vec<(Cow<'_, str>, usize)>> = rows
        .iter()
        .map(|row| {
            let last = row.len().saturating_sub(1);
            let max = |col| if col == last { MAX_LAST } else { MAX_CELL };
            row.iter()
                .enumerate()
                .map(|(col, cell)| fit(cell, max(col)))
                .collect()
        })
        .collect();
    let columns = fitted.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|col| {
            fitted
                .iter()
                .filter_map(|row| row.get(col))
                .map(|&(_, width)| width)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &fitted {
        let last = row.len().saturating_sub(1);
        for (col, (cell, width)) in row.iter().enumerate() {
            out.push_str(cell);
            if col != last {
                let pad = widths.get(col).map_or(0, |w| w.saturating_sub(*width)) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// A cell made safe and at most `max` columns wide, an ellipsis marking a cut; with its width.
pub fn fit(cell: &str, max: usize) -> (Cow<'_, str>, usize) {
    let safe = sanitize::line(cell);
    let width = safe.width();
    if width <= max {
        return (safe, width);
    }
    // Leave a column for the ellipsis; a wide character that would straddle the cut goes.
    let budget = max.saturating_sub(1);
    let mut cut = String::new();
    let mut used = 0;
    for c in safe.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        cut.push(c);
        used += w;
    }
    if max > 0 {
        cut.push('…');
        used += 1;
    }
    (Cow::Owned(cut), used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width() {
        let rows = vec![
            vec!["ID".into(), "NAME".into(), "CMD".into()],
            vec!["a1".into(), "日本".into(), "x y".into()],
        ];
        assert_eq!(aligned(&rows), "ID  NAME  CMD\na1  日本  x y\n");
    }

    #[test]
    fn any_cell_lays_out_without_panic_and_is_cut_with_an_ellipsis() {
        let huge = "n".repeat(70_000);
        let rows = vec![
            vec!["ID".into(), "NAME".into(), "COMMAND".into()],
            vec!["a1".into(), huge.clone(), huge],
            vec![String::new()],
            Vec::new(),
        ];
        let text = aligned(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let name = format!("{}…", "n".repeat(MAX_CELL - 1));
        let command = format!("{}…", "n".repeat(MAX_LAST - 1));
        assert_eq!(lines[1], format!("a1  {name}  {command}"));
        let column = |line: &str, cell: &str| line.find(cell).map(|at| line[..at].chars().count());
        assert_eq!(column(lines[0], "COMMAND"), column(lines[1], &command));
    }

    #[test]
    fn a_newline_or_escape_in_a_cell_cannot_make_a_row_or_reach_the_terminal() {
        let rows = vec![vec![
            "a1".into(),
            "x\n2  fake  row\x1b]52;c;aGk=\x07\x1b[2J".into(),
        ]];
        let text = aligned(&rows);
        assert_eq!(text.lines().count(), 1);
        assert!(!text.contains('\x1b'));
        assert_eq!(text, "a1  x^J2  fake  row^[]52;c;aGk=^G^[[2J\n");
    }

    #[test]
    fn cuts_respect_wide_characters_and_tiny_widths() {
        assert_eq!(fit("日本語", 4), (Cow::Owned("日…".into()), 3));
        assert_eq!(fit("abc", 1), (Cow::Owned("…".into()), 1));
        assert_eq!(fit("abc", 0), (Cow::Owned(String::new()), 0));
        assert_eq!(fit("abc", 3), (Cow::Borrowed("abc"), 3));
    }
}
