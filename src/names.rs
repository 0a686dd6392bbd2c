//! The limit on names people give runs and sweeps.
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

#[cfg(test)]
mod tests {
    use super::*;

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
