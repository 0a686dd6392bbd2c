//! Metrics: the numbers a run writes to its metrics file, as clients see them.
//!
//! A run appends one JSON object per line to `REAGENT_METRICS_FILE`; every numeric field is a
//! series over the steps (`step` when the line has one, else the line number). The daemon
//! tails the file and keeps the series; clients list them ([`MetricsList`]), ask for a chart's
//! worth of points ([`MetricsQueryReply`]) and hear of new ones through the `metrics` event.
//!
//! JSON has no NaN or infinity, yet those are exactly the values worth seeing, so the values
//! that may be non-finite travel through [`float`], as `"NaN"`, `"Infinity"`, `"-Infinity"`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a run's Weights & Biases data is, as found in its output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WandbInfo {
    /// The local run directory (`wandb/run-…`), as printed.
    #[serde(default)]
    pub dir: Option<String>,
    /// The run's page (`https://wandb.ai/…`).
    #[serde(default)]
    pub url: Option<String>,
}

/// One point: a step and the value there (which may be NaN or infinite).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The x axis: the line's `step`, else its line number.
    pub step: f64,
    /// The value.
    #[serde(with = "float")]
    pub value: f64,
}

/// One series of a run, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The field name in the metrics file.
    pub name: String,
    /// How many points it has.
    pub points: u64,
    /// The newest point.
    pub last: Option<Sample>,
}

/// `metrics.list` reply: what a run's metrics file held so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsList {
    /// The run's id.
    pub run: String,
    /// The metrics file the daemon tails.
    pub path: PathBuf,
    /// Lines read (valid and malformed).
    pub lines: u64,
    /// Lines that were not a JSON object and were skipped.
    pub malformed: u64,
    /// Every series, by name.
    pub metrics: Vec<MetricSummary>,
    /// W&B, when the run's output mentioned it.
    pub wandb: Option<WandbInfo>,
}

/// Which steps a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryWindow {
    /// Every step.
    All,
    /// The last N steps (by step value, counted back from the newest point).
    LastSteps(f64),
}

/// One series as a chart needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    /// The field name.
    pub name: String,
    /// Downsampled points (min and max per column, so at most 2 × columns), in step order.
    /// Non-finite values are left out; `last` shows them.
    pub points: Vec<(f64, f64)>,
    /// How many points the whole series has.
    pub total: u64,
    /// The newest point.
    pub last: Option<Sample>,
    /// Where the series was NaN or infinite within the window (the first such step of each
    /// column, so at most `columns`): `points` cannot carry them, and a chart marks each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nan_steps: Vec<f64>,
}

/// `metrics.query` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsQueryReply {
    /// The run's id.
    pub run: String,
    /// The series asked for, in the order asked (unknown names are left out).
    pub series: Vec<SeriesPoints>,
}

/// How many points a [`Trend`] has at most: one per column of the runs list's sparkline.
pub const TREND_POINTS: usize = 16;

/// A run's main metric over its whole run, in at most [`TREND_POINTS`] points (the mean of
/// each equal slice of its steps): what the runs list draws as a sparkline. The daemon keeps
/// it current and stores it, so it is there for ended runs and after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The metric (see [`main_metric`]).
    pub metric: String,
    /// Each slice's last step and mean (NaN when the slice held no finite value).
    pub points: Vec<Sample>,
}

/// The metric a run is summed up by, as an index into its series names: `loss` when it
/// reports one, else the first it reported. The daemon's trend and the cockpit's default chart
/// pick the same one.
pub fn main_metric<S: AsRef<str>>(names: &[S]) -> Option<usize> {
    let loss = names.iter().position(|name| name.as_ref() == "loss");
    loss.or_else(|| (!names.is_empty()).then_some(0))
}

/// A metric's newest value, as carried by the `metrics` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    /// The field name.
    pub name: String,
    /// Its newest value.
    #[serde(with = "float")]
    pub value: f64,
}

/// Serde for an `f64` that may be non-finite: numbers as numbers, NaN and the infinities as
/// the strings Python's `json` module writes (`"NaN"`, `"Infinity"`, `"-Infinity"`).
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, others as a string.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value > 0.0 {
            serializer.serialize_str("Infinity")
        } else {
            serializer.serialize_str("-Infinity")
        }
    }

    /// Reads a number, or one of the three strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Number(value) => Ok(value),
            Repr::Text(text) => match text.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!(
                    "`{other}` is not a number"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_survive_json() {
        for value in [1.5, f64::INFINITY, f64::NEG_INFINITY] {
            let sample = Sample { step: 3.0, value };
            let json = serde_json::to_string(&sample).unwrap();
            assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
        }
        let json = serde_json::to_string(&Sample {
            step: 1.0,
            value: f64::NAN,
        })
        .unwrap();
        assert_eq!(json, r#"{"step":1.0,"value":"NaN"}"#);
        assert!(
            serde_json::from_str::<Sample>(&json)
                .unwrap()
                .value
                .is_nan()
        );
    }

    #[test]
    fn windows_have_readable_json() {
        let json = serde_json::to_string(&QueryWindow::LastSteps(500.0)).unwrap();
        assert_eq!(json, r#"{"last_steps":500.0}"#);
        assert_eq!(
            serde_json::to_string(&QueryWindow::All).unwrap(),
            r#""all""#
        );
    }
}
