//! Which reagent run a GPU process belongs to: walk its parent chain (from `/proc/PID/stat`)
//! until a run's job pid appears.

use std::collections::HashMap;

/// Parent chains deeper than this are cut (a loop in a broken `/proc` must not hang us).
const MAX_DEPTH: usize = 64;

/// The run whose process tree holds `pid`, given each live run's job pid and a way to find a
/// process's parent.
pub fn owner(
    pid: u32,
    runs: &HashMap<u32, String>,
    parent: impl Fn(u32) -> Option<u32>,
) -> Option<&String> {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if let Some(run) = runs.get(&current) {
            return Some(run);
        }
        current = parent(current).filter(|&p| p > 1)?;
    }
    None
}

/// A process's parent, from `/proc/PID/stat`.
pub fn parent_of(pid: u32) -> Option<u32> {
    crate::process::stat_field(pid, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_maps_to_the_run_whose_tree_holds_it() {
        let runs = HashMap::from([(100, "run-a".to_string()), (200, "run-b".to_string())]);
        let parents = HashMap::from([(105, 101), (101, 100), (300, 1), (201, 200)]);
        let parent = |pid| parents.get(&pid).copied();
        assert_eq!(owner(105, &runs, parent).map(String::as_str), Some("run-a"));
        assert_eq!(owner(201, &runs, parent).map(String::as_str), Some("run-b"));
        assert_eq!(owner(200, &runs, parent).map(String::as_str), Some("run-b"));
        assert_eq!(owner(300, &runs, parent), None, "not under any run");
        assert_eq!(owner(999, &runs, parent), None, "unknown pid");
    }
}
