//! Finding one thing among many by what a person typed: its exact id, its name (the newest of
//! that name, since names repeat across reruns), or a unique prefix of its id.
//!
//! The daemon resolves every query with this rule; a client that must keep hold of a run
//! across daemon restarts (`reagent wait`) resolves it once with the same rule and then uses
//! the id, so a rerun of the same name started meanwhile cannot take its place.

use crate::protocol::{RpcError, codes};

/// Finds one of `items` (oldest first) by exact id, then by name, then by unique id prefix.
/// `keys` gives an item's id and name; `what` names the kind in errors ("run", "sweep").
pub fn resolve<'a, T>(
    items: &'a [T],
    query: &str,
    what: &str,
    keys: impl Fn(&T) -> (&str, Option<&str>),
) -> Result<&'a T, RpcError> {
    if let Some(item) = items.iter().find(|item| keys(item).0 == query) {
        return Ok(item);
    }
    if let Some(item) = items.iter().rev().find(|item| keys(item).1 == Some(query)) {
        return Ok(item);
    }
    let candidates: Vec<&T> = items
        .iter()
        .filter(|item| !query.is_empty() && keys(item).0.starts_with(query))
        .collect();
    match candidates[..] {
        [item] => Ok(item),
        [] => Err(RpcError::new(
            codes::NOT_FOUND,
            format!("no {what} matches `{query}`"),
        )),
        _ => {
            let ids: Vec<&str> = candidates.iter().map(|item| keys(item).0).collect();
            let message = format!("`{query}` matches several {what}s: {}", ids.join(", "));
            Err(RpcError::new(codes::AMBIGUOUS, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_prefers_id_then_newest_name_then_unique_prefix() {
        let items = [
            ("ab12", Some("train")),
            ("ab34", Some("train")),
            ("cd56", None),
        ];
        let find = |query| resolve(&items, query, "run", |(id, name)| (*id, *name)).map(|i| i.0);
        assert_eq!(find("ab12"), Ok("ab12"));
        assert_eq!(find("train"), Ok("ab34"), "the newest of that name");
        assert_eq!(find("cd"), Ok("cd56"));
        let ambiguous = find("ab").unwrap_err();
        assert_eq!(ambiguous.code, codes::AMBIGUOUS);
        assert!(ambiguous.message.contains("ab12, ab34"));
        assert_eq!(find("").unwrap_err().code, codes::NOT_FOUND);
        assert_eq!(find("zz").unwrap_err().message, "no run matches `zz`");
    }
}
