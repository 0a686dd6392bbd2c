//! How big a sweep may be, worked out from its spec before a single point is made.
//!
//! One request must not be able to take the daemon down. A sweep is small on the wire and
//! large once expanded: `count = 4294967295`, a grid of a hundred parameters with ten values
//! each, or a long command template repeated over ten thousand runs. So the number of runs
//! (the product of the grid's value counts, or the random `count`) and an upper bound on the
//! bytes its runs hold (names, rendered commands, parameter values and environments) are
//! computed first, in saturating arithmetic that cannot overflow, and a sweep over either
//! limit is refused before anything is allocated for it.

use super::{Method, Parameter, SweepSpec, placeholders};

/// The most runs one sweep may make: a typo in a grid should not queue a million runs.
pub const MAX_POINTS: u64 = 10_000;

/// The most bytes one sweep's runs may hold between them (names, commands, parameter
/// values, environments), so that even the largest allowed sweep stays a modest cost.
pub const MAX_BYTES: u64 = 128 << 20;

/// The longest value random search writes for a range (`{x:.4e}`, with room to spare).
const RANGE_VALUE_BYTES: u64 = 24;

/// Refuses a sweep that would make too many runs or too many bytes, saying which and by how
/// much; the spec's parameters must already have been checked to have values or a range.
pub(super) fn check(spec: &SweepSpec) -> Result<(), String> {
    let points = points(spec);
    if points > MAX_POINTS {
        return Err(format!(
            "the sweep would make {} runs; at most {MAX_POINTS} are allowed",
            at_least(points)
        ));
    }
    let bytes = per_run_bytes(spec).saturating_mul(points);
    if bytes > MAX_BYTES {
        return Err(format!(
            "the sweep's {points} runs would hold {} bytes of names, commands, parameters \
             and environment; at most {MAX_BYTES} are allowed: make fewer runs or shorter values",
            at_least(bytes)
        ));
    }
    Ok(())
}

/// How many runs the spec makes: the grid's product of value counts or the random `count`,
/// saturating at `u64::MAX`.
pub(super) fn points(spec: &SweepSpec) -> u64 {
    match spec.method {
        Method::Grid => spec.parameters.values().fold(1u64, |product, param| {
            product.saturating_mul(param.values.len() as u64)
        }),
        Method::Random => spec.count.map_or(0, u64::from),
    }
}

/// The longest value a parameter can take in a run.
fn longest(param: &Parameter) -> u64 {
    match param.values.iter().map(|value| value.len() as u64).max() {
        Some(longest) => longest,
        None => RANGE_VALUE_BYTES,
    }
}

/// An upper bound on the bytes one run of the sweep holds.
fn per_run_bytes(spec: &SweepSpec) -> u64 {
    let mut bytes = spec.name.as_ref().map_or(0, |name| name.len() as u64);
    for (name, param) in &spec.parameters {
        // The point's (name, value) and the run name's `name=value,`.
        bytes = bytes.saturating_add(2 * (name.len() as u64 + longest(param) + 2));
    }
    for arg in &spec.command {
        bytes = bytes.saturating_add(arg.len() as u64);
        for name in placeholders(arg, |name| spec.parameters.contains_key(name)) {
            let value = spec.parameters.get(name).map_or(0, longest);
            bytes = bytes.saturating_add(value);
        }
    }
    let env = spec.env.iter().chain(spec.client_env.iter().flatten());
    env.fold(bytes, |bytes, (key, value)| {
        bytes.saturating_add(key.len() as u64 + value.len() as u64 + 2)
    })
}

/// A saturated count reads as "more than" its ceiling rather than as an exact number.
fn at_least(n: u64) -> String {
    if n == u64::MAX {
        format!("more than {}", u64::MAX - 1)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Parameter, expand};
    use super::*;
    use std::time::Instant;

    fn values(n: usize) -> Parameter {
        Parameter {
            values: (0..n).map(|i| i.to_string()).collect(),
            ..Default::default()
        }
    }

    fn sweep(method: Method, parameters: &[(&str, Parameter)]) -> SweepSpec {
        SweepSpec {
            command: vec!["train".into(), "{a}".into()],
            method,
            parameters: parameters
                .iter()
                .map(|(name, param)| (name.to_string(), param.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_huge_random_count_is_refused_before_any_point_is_drawn() {
        let mut spec = sweep(Method::Random, &[("a", values(2))]);
        spec.count = Some(u32::MAX);
        let started = Instant::now();
        let err = expand(&spec).unwrap_err();
        assert!(err.contains("4294967295 runs"), "{err}");
        assert!(err.contains("at most 10000"), "{err}");
        // Drawing four billion points takes minutes and gigabytes; refusing takes nothing.
        assert!(
            started.elapsed().as_millis() < 1000,
            "{:?}",
            started.elapsed()
        );
        spec.count = Some(1_000_000);
        assert!(expand(&spec).unwrap_err().contains("1000000 runs"));
    }

    #[test]
    fn a_grid_product_that_overflows_is_refused_not_wrapped() {
        // 20 parameters of 16 values: 2^80 points, past u64, which must not wrap to 0.
        let params: Vec<(String, Parameter)> =
            (0..20).map(|i| (format!("p{i}"), values(16))).collect();
        let spec = SweepSpec {
            command: vec!["train".into()],
            parameters: params.into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(points(&spec), u64::MAX);
        let err = expand(&spec).unwrap_err();
        assert!(err.contains("more than"), "{err}");
        // 100 × 101 = 10,100: one over the limit, and the product, not the sum, is counted.
        let spec = sweep(Method::Grid, &[("a", values(100)), ("b", values(101))]);
        assert!(expand(&spec).unwrap_err().contains("10100 runs"));
        let spec = sweep(Method::Grid, &[("a", values(100)), ("b", values(100))]);
        assert_eq!(expand(&spec).unwrap().len(), 10_000);
    }

    #[test]
    fn runs_that_would_hold_too_many_bytes_are_refused() {
        // A megabyte value in every one of 1,000 commands: a gigabyte.
        let mut big = values(1);
        big.values[0] = "x".repeat(1 << 20);
        let spec = sweep(Method::Grid, &[("a", big), ("b", values(1000))]);
        let err = expand(&spec).unwrap_err();
        assert!(err.contains("bytes"), "{err}");
        // The same through a large environment, with a small command.
        let mut spec = sweep(Method::Grid, &[("a", values(1000))]);
        spec.client_env = Some(vec![("BIG".into(), "x".repeat(1 << 20))]);
        assert!(expand(&spec).unwrap_err().contains("bytes"));
    }
}
