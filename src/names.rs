//! The limit on names people give runs and sweeps, and the patterns that pick runs by name.
//!
//! A name is shown in every table, log line and event that mentions its run, so one without
//! bound (70,000 characters in a hostile test) made every listing useless and, once, crashed
//! it. 200 characters is far beyond any name a person types or a sweep derives, and small
//! enough that a name never dominates what carries it. The daemon enforces it on every path
//! that names something: `run.start`, `run.submit`, `run.rename` and `sweep.start` (the
//! sweep's name and each run name it derives).

use crate::protocol::{RpcError, codes};

/// The longest name, in characters (not bytes), the daemon accepts.
pub const MAX_NAME_CHARS: usize = 200;

/// Refuses a name longer than [`MAX_NAME_CHARS`] with a -32602 error naming `field` and the
/// limit, so a client can say exactly what to shorten.
pub fn check(field: &str, name: &str) -> Result<(), RpcError> {
    // Counting stops just past the limit: a hostile name costs no more than a legal one.
    let chars = name.chars().take(MAX_NAME_CHARS + 1).count();
    if chars <= MAX_NAME_CHARS {
        return Ok(());
    }
    let length = name.chars().count();
    Err(RpcError::new(
        codes::INVALID_PARAMS,
        format!("`{field}`: {length} characters, over the limit of {MAX_NAME_CHARS}"),
    ))
}

/// Whether `text` matches a shell-like `pattern`: `*` stands for any text (none included),
/// `?` for one character, anything else for itself. How `reagent runs --name` picks runs.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Greedy with one backtrack point (the last `*`): linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((star_p, star_t)) => {
                    (p, t) = (star_p + 1, star_t + 1);
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("lr-*", "lr-0.01"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*b*", "abc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("é?", "éa"), "characters, not bytes");
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("lr-*", "train"));
        assert!(!glob_match("abc", "abcd"));
        assert!(!glob_match("a*c", "abd"));
    }

    #[test]
    fn names_up_to_the_limit_pass_and_longer_ones_are_refused_by_field() {
        assert!(check("name", "").is_ok());
        assert!(
            check("name", &"é".repeat(MAX_NAME_CHARS)).is_ok(),
            "characters, not bytes"
        );
        let err = check("name", &"x".repeat(70_000)).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PARAMS);
        assert_eq!(
            err.message,
            "`name`: 70000 characters, over the limit of 200"
        );
    }
}
