//! Sweeps: one command template expanded over parameter values into many runs.
//!
//! The expansion is pure (and seeded for random search), so the daemon and tests agree on
//! exactly which runs a spec makes: grid search takes the cartesian product of every
//! parameter's `values`; random search draws `count` points, each parameter from its `values`
//! or between `min` and `max` (`uniform` or `log_uniform`), in the spirit of W&B sweep configs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod limits;

pub use limits::{MAX_BYTES, MAX_POINTS};
// Their params live with every other method's; the old paths keep working.
pub use crate::protocol::{ListSweeps, SweepRef};

/// How points are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every combination of values.
    #[default]
    Grid,
    /// `count` random points.
    Random,
}

/// How a range is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Evenly between min and max.
    #[default]
    Uniform,
    /// Evenly in log space (learning rates).
    LogUniform,
}

/// One parameter: a list of values, or a range for random search.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The values, as they go into the command.
    #[serde(default)]
    pub values: Vec<String>,
    /// Range start (random search).
    #[serde(default)]
    pub min: Option<f64>,
    /// Range end (random search).
    #[serde(default)]
    pub max: Option<f64>,
    /// How the range is sampled.
    #[serde(default)]
    pub distribution: Distribution,
}

/// `sweep.start` params, and what a sweep file deserializes into.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The sweep's name; run names are `NAME-k=v,k=v`.
    #[serde(default)]
    pub name: Option<String>,
    /// The command; `{param}` is replaced by the parameter's value.
    pub command: Vec<String>,
    /// Grid or random.
    #[serde(default)]
    pub method: Method,
    /// Points for random search.
    #[serde(default)]
    pub count: Option<u32>,
    /// Seed for random search (the time when absent).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Parameters by name, in name order.
    pub parameters: BTreeMap<String, Parameter>,
    /// At most this many of its runs at once (0 = no limit).
    #[serde(default)]
    pub parallel: u32,
    /// GPUs each run needs.
    #[serde(default)]
    pub gpus: u32,
    /// Queue priority of its runs.
    #[serde(default)]
    pub priority: i32,
    /// Working directory of its runs.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment of its runs.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The submitting client's environment, which its runs start from (see
    /// [`RunSpec::client_env`](crate::run::RunSpec::client_env)).
    #[serde(default)]
    pub client_env: Option<Vec<(String, String)>>,
    /// Variables the daemon reads secrets from that its runs may have all the same (see
    /// [`RunSpec::pass_env`](crate::run::RunSpec::pass_env)).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// The chat session whose agent is handed the alerts of the sweep's runs.
    #[serde(default)]
    pub agent_session: Option<String>,
    /// Run its points on Slurm (`--on slurm`, or a `[slurm]` table in a sweep file), each
    /// with these requests; here when absent.
    #[serde(default)]
    pub slurm: Option<crate::slurm::SlurmSpec>,
}

/// A sweep as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepInfo {
    /// Short unique id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The command template.
    pub command: Vec<String>,
    /// At most this many runs at once (0 = no limit).
    pub parallel: u32,
    /// Its runs' ids, in expansion order.
    pub runs: Vec<String>,
    /// Each run's parameter values, in the same order as `runs` (empty for sweeps made
    /// before the daemon kept them), so a ranking can show which values did best.
    #[serde(default)]
    pub params: Vec<Point>,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// Whether a user stopped it.
    pub stopped: bool,
}

/// One point: parameter values by name, in name order.
pub type Point = Vec<(String, String)>;

/// The points a spec makes, or what is wrong with it.
pub fn expand(spec: &SweepSpec) -> Result<Vec<Point>, String> {
    if spec.command.first().is_none_or(String::is_empty) {
        return Err("`command` is empty: give the command to sweep after `--`".into());
    }
    if spec.parameters.is_empty() {
        return Err("no parameters: give at least one, e.g. --grid lr=1e-3,1e-4".into());
    }
    for (name, param) in &spec.parameters {
        if name.is_empty() || name.contains(['{', '}', '=', ',']) {
            return Err(format!("`{name}` is not a usable parameter name"));
        }
        let range = param.min.is_some() || param.max.is_some();
        if param.values.is_empty() && !range {
            return Err(format!("parameter `{name}` has no values and no min/max"));
        }
        if range && spec.method == Method::Grid && param.values.is_empty() {
            return Err(format!(
                "parameter `{name}`: a grid needs `values`; min/max need method = \"random\""
            ));
        }
    }
    // Counted (and sized) before anything is generated: drawing first and counting after
    // let one request for four billion points take the daemon's memory.
    limits::check(spec)?;
    match spec.method {
        Method::Grid => Ok(grid(&spec.parameters)),
        Method::Random => {
            let count = spec.count.filter(|&c| c > 0).ok_or_else(|| {
                "random search needs `count` (how many runs), e.g. count = 8".to_string()
            })?;
            let seed = spec.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
            let mut rng = SplitMix(seed);
            (0..count)
                .map(|_| random_point(&spec.parameters, &mut rng))
                .collect()
        }
    }
}

fn grid(parameters: &BTreeMap<String, Parameter>) -> Vec<Point> {
    let mut points: Vec<Point> = vec![Vec::new()];
    for (name, param) in parameters {
        points = points
            .into_iter()
            .flat_map(|point| {
                param.values.iter().map(move |value| {
                    let mut next = point.clone();
                    next.push((name.clone(), value.clone()));
                    next
                })
            })
            .collect();
    }
    points
}

fn random_point(
    parameters: &BTreeMap<String, Parameter>,
    rng: &mut SplitMix,
) -> Result<Point, String> {
    let mut point = Vec::new();
    for (name, param) in parameters {
        let value = if param.values.is_empty() {
            let (Some(min), Some(max)) = (param.min, param.max) else {
                return Err(format!("parameter `{name}` needs both min and max"));
            };
            if min > max {
                return Err(format!("parameter `{name}`: min {min} is above max {max}"));
            }
            let u = rng.unit();
            let x = match param.distribution {
                Distribution::Uniform => min + u * (max - min),
                Distribution::LogUniform => {
                    if min <= 0.0 {
                        return Err(format!("parameter `{name}`: log_uniform needs min > 0"));
                    }
                    (min.ln() + u * (max.ln() - min.ln())).exp()
                }
            };
            format!("{x:.4e}")
        } else {
            let i = (rng.next() % param.values.len() as u64) as usize;
            param.values[i].clone()
        };
        point.push((name.clone(), value));
    }
    Ok(point)
}

/// The command with `{name}` replaced by the point's values (which are in name order, as
/// [`expand`] makes them). One pass: a value is never searched for placeholders itself, so
/// values cannot expand one another (`a = "{b}{b}"`, `b = "{c}{c}"`, … would double each time).
pub fn render(command: &[String], point: &Point) -> Vec<String> {
    let value = |name: &str| {
        point
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|i| point[i].1.as_str())
    };
    command
        .iter()
        .map(|arg| {
            let mut out = String::with_capacity(arg.len());
            let mut rest = arg.as_str();
            while let Some((start, name)) = next_placeholder(rest, |name| value(name).is_some()) {
                out.push_str(&rest[..start]);
                out.push_str(value(name).unwrap_or_default());
                rest = &rest[start + name.len() + 2..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// The names of the `{name}` placeholders in `arg` that `known` accepts, left to right.
fn placeholders(arg: &str, known: impl Fn(&str) -> bool + Copy) -> impl Iterator<Item = &str> {
    let mut rest = arg;
    std::iter::from_fn(move || {
        let (start, name) = next_placeholder(rest, known)?;
        rest = &rest[start + name.len() + 2..];
        Some(name)
    })
}

/// The first `{name}` in `text` whose name `known` accepts: its byte offset and the name.
/// Parameter names hold no braces, so a name runs from a `{` to the next `}`.
fn next_placeholder(text: &str, known: impl Fn(&str) -> bool) -> Option<(usize, &str)> {
    let mut from = 0;
    while let Some(open) = text[from..].find('{').map(|i| from + i) {
        let close = text[open + 1..].find('}')? + open + 1;
        let name = &text[open + 1..close];
        match name.rfind('{') {
            // Only the last `{` before this `}` can open a name: skip to it (linear time
            // even for a template of a million `{`).
            Some(inner) => from = open + 1 + inner,
            None if known(name) => return Some((open, name)),
            None => from = close + 1,
        }
    }
    None
}

/// `sweepname-lr=1e-3,bs=32`
pub fn run_name(sweep: &str, point: &Point) -> String {
    let values: Vec<String> = point.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{sweep}-{}", values.join(","))
}

/// Orders two metric values best first: the lower first, or the higher with `max`; a run
/// with no value (or NaN) goes last, so unfinished or diverged runs never top a ranking.
pub fn by_best(a: Option<f64>, b: Option<f64>, max: bool) -> std::cmp::Ordering {
    let a = a.filter(|v| !v.is_nan());
    let b = b.filter(|v| !v.is_nan());
    match (a, b) {
        (Some(a), Some(b)) if max => b.total_cmp(&a),
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// A small, seeded generator (SplitMix64): enough for picking sweep points reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(params: &[(&str, &[&str])]) -> SweepSpec {
        SweepSpec {
            name: Some("s".into()),
            command: vec![
                "train".into(),
                "--lr".into(),
                "{lr}".into(),
                "--bs={bs}".into(),
            ],
            parameters: params
                .iter()
                .map(|(name, values)| {
                    let values = values.iter().map(|v| v.to_string()).collect();
                    (
                        name.to_string(),
                        Parameter {
                            values,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_grid_is_the_cartesian_product_with_templated_commands_and_names() {
        let spec = spec(&[("lr", &["1e-3", "1e-4"]), ("bs", &["32", "64"])]);
        let points = expand(&spec).unwrap();
        assert_eq!(points.len(), 4);
        let commands: Vec<String> = points
            .iter()
            .map(|p| render(&spec.command, p).join(" "))
            .collect();
        assert!(commands.contains(&"train --lr 1e-3 --bs=32".to_string()));
        assert!(commands.contains(&"train --lr 1e-4 --bs=64".to_string()));
        assert_eq!(run_name("s", &points[0]), "s-bs=32,lr=1e-3");
    }

    #[test]
    fn random_search_is_seeded_and_stays_in_range() {
        let mut spec = spec(&[("bs", &["32", "64"])]);
        spec.method = Method::Random;
        spec.count = Some(20);
        spec.seed = Some(7);
        spec.parameters.insert(
            "lr".into(),
            Parameter {
                min: Some(1e-5),
                max: Some(1e-2),
                distribution: Distribution::LogUniform,
                ..Default::default()
            },
        );
        let points = expand(&spec).unwrap();
        assert_eq!(points.len(), 20);
        assert_eq!(points, expand(&spec).unwrap(), "same seed, same points");
        for point in &points {
            let lr: f64 = point[1].1.parse().unwrap();
            assert!((1e-5..=1e-2).contains(&lr), "{lr}");
        }
    }

    #[test]
    fn values_are_substituted_once_and_never_expand_each_other() {
        let point: Point = vec![("a".into(), "{b}{b}".into()), ("b".into(), "x".into())];
        let command = vec!["{a}-{b}".into(), "{{b}}".into(), "{c}{a".into()];
        assert_eq!(render(&command, &point), ["{b}{b}-x", "{x}", "{c}{a"]);
    }

    #[test]
    fn rankings_put_the_best_first_and_runs_without_a_value_last() {
        let mut values = [None, Some(0.5), Some(f64::NAN), Some(0.1), Some(2.0)];
        values.sort_by(|a, b| by_best(*a, *b, false));
        assert_eq!(values[..3], [Some(0.1), Some(0.5), Some(2.0)]);
        assert!(values[3..].iter().all(|v| v.is_none_or(f64::is_nan)));
        values.sort_by(|a, b| by_best(*a, *b, true));
        assert_eq!(values[..3], [Some(2.0), Some(0.5), Some(0.1)]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |spec: &SweepSpec| expand(spec).unwrap_err();
        assert!(err(&spec(&[])).contains("no parameters"));
        assert!(err(&spec(&[("lr", &[])])).contains("`lr` has no values"));
        let mut random = spec(&[("lr", &["1"])]);
        random.method = Method::Random;
        assert!(err(&random).contains("count"));
        let mut empty = spec(&[("lr", &["1"])]);
        empty.command.clear();
        assert!(err(&empty).contains("`command` is empty"));
    }
}
