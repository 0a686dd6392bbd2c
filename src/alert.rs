//! Alerts: something about a run that a person (or the agent) should look at and answer.
//!
//! The daemon's alerts engine raises them from a run's metrics (NaN or infinity, a spike, a
//! threshold), its liveness (a stall, a failure), a `.alert_trigger` file the job wrote, or an
//! LLM judge. Each carries the choices it can be answered with; answering `stop` stops the
//! run, `chat` opens a chat session about it, `ignore` just closes it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// A metric was NaN or infinite.
    Nan,
    /// A metric jumped above a multiple of its previous value.
    Spike,
    /// No new metrics for a while, though the job still runs.
    Stall,
    /// A metric crossed a configured bound (`loss > 5`).
    Threshold,
    /// The run failed.
    RunFailed,
    /// The job wrote `.alert_trigger` in its working directory.
    Trigger,
    /// The LLM judge saw something.
    Judge,
    /// Output the job printed could not be written to its log (a full disk, say).
    OutputLost,
}

impl AlertRule {
    /// The lowercase name used on the wire and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nan => "nan",
            Self::Spike => "spike",
            Self::Stall => "stall",
            Self::Threshold => "threshold",
            Self::RunFailed => "run_failed",
            Self::Trigger => "trigger",
            Self::Judge => "judge",
            Self::OutputLost => "output_lost",
        }
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Info,
    /// Probably wrong.
    Warning,
    /// The run is likely wasting its compute.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// Whether an alert still waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Waiting for an answer.
    Open,
    /// Answered; `response` says how.
    Answered,
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Answered => "answered",
        })
    }
}

/// An answer to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Close it; nothing else happens.
    Ignore,
    /// Stop the run.
    Stop,
    /// Open a chat session seeded with the run's command, log tail and metrics.
    Chat,
}

impl Choice {
    /// Every choice, in the order offered.
    pub const ALL: [Choice; 3] = [Choice::Ignore, Choice::Stop, Choice::Chat];

    /// The lowercase name used on the wire and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "ignore",
            Self::Stop => "stop",
            Self::Chat => "chat",
        }
    }

    /// Parses [`Choice::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert as every client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    /// Short unique id (8 hex digits).
    pub id: String,
    /// The run's id.
    pub run: String,
    /// What raised it.
    pub rule: AlertRule,
    /// The metric (or threshold expression) it is about, when it is about one.
    #[serde(default)]
    pub subject: Option<String>,
    /// How urgent it is.
    pub severity: Severity,
    /// What happened, for a person.
    pub message: String,
    /// The step it happened at, when a metric raised it.
    #[serde(default)]
    pub step: Option<f64>,
    /// The answers it accepts.
    pub choices: Vec<Choice>,
    /// Open or answered.
    pub status: AlertStatus,
    /// The answer, once answered.
    #[serde(default)]
    pub response: Option<Choice>,
    /// The chat session an answer of `chat` opened.
    #[serde(default)]
    pub session: Option<String>,
    /// When it was raised (Unix ms).
    pub created_at: i64,
    /// When it was answered (Unix ms).
    #[serde(default)]
    pub answered_at: Option<i64>,
    /// The agent session it was handed to, to answer through its tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `[alerts]` in the config: the rules every run gets (a run adds its own with `--alert`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alert when any metric is NaN or infinite.
    pub nan: bool,
    /// The metric the spike rule watches.
    pub spike_metric: String,
    /// A spike is a value above this multiple of the previous one; 0 turns the rule off.
    pub spike_factor: f64,
    /// Minutes without new metrics (while the job lives, after its first metric) that make a
    /// stall; 0 turns the rule off.
    pub stall_minutes: f64,
    /// Alert when a run fails.
    pub run_failed: bool,
    /// Threshold rules for every run, as `METRIC OP VALUE` (`loss > 10`).
    pub thresholds: Vec<String>,
    /// The optional LLM judge.
    pub judge: JudgeConfig,
    /// `PROVIDER/MODEL` of an agent every new alert is handed to (in a session of its own)
    /// when its run names no agent session; alerts go only to people while this is unset.
    pub agent: Option<String>,
    /// Seconds an agent has to answer an alert handed to it before people are told as
    /// without one.
    pub agent_grace_secs: f64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            nan: true,
            spike_metric: "loss".into(),
            spike_factor: 3.0,
            stall_minutes: 30.0,
            run_failed: true,
            thresholds: Vec::new(),
            judge: JudgeConfig::default(),
            agent: None,
            agent_grace_secs: 300.0,
        }
    }
}

/// `[alerts.judge]`: an LLM that reads recent metrics and may raise an alert.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeConfig {
    /// `PROVIDER/MODEL`; the judge is off while this is unset.
    pub model: Option<String>,
    /// Seconds between looks at a live run.
    pub interval_secs: f64,
    /// How many recent metric lines it reads.
    pub lines: usize,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            model: None,
            interval_secs: 30.0,
            lines: 50,
        }
    }
}

/// A comparison in a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// A threshold rule: `METRIC OP VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The metric it watches.
    pub metric: String,
    /// The comparison.
    pub op: Op,
    /// The bound.
    pub value: f64,
}

impl Threshold {
    /// Parses `loss > 5` (spaces optional; ops `>`, `>=`, `<`, `<=`), naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let at = text
            .find(['>', '<'])
            .ok_or_else(|| format!("`{text}`: expected METRIC OP VALUE, e.g. `loss > 5`"))?;
        let (metric, rest) = text.split_at(at);
        let (op, value) = match rest.strip_prefix(">=").or(rest.strip_prefix("<=")) {
            Some(value) if rest.starts_with('>') => (Op::Ge, value),
            Some(value) => (Op::Le, value),
            None if rest.starts_with('>') => (Op::Gt, &rest[1..]),
            None => (Op::Lt, &rest[1..]),
        };
        let metric = metric.trim();
        if metric.is_empty() {
            return Err(format!("`{text}`: the metric name is missing"));
        }
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: `{}` is not a number", value.trim()))?;
        Ok(Self {
            metric: metric.to_string(),
            op,
            value,
        })
    }

    /// Whether `value` crosses the bound (NaN never does; the NaN rule covers it).
    pub fn crossed(&self, value: f64) -> bool {
        match self.op {
            Op::Gt => value > self.value,
            Op::Ge => value >= self.value,
            Op::Lt => value < self.value,
            Op::Le => value <= self.value,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        };
        write!(f, "{} {op} {}", self.metric, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_compare() {
        let t = Threshold::parse("loss > 5").unwrap();
        assert_eq!((t.metric.as_str(), t.op, t.value), ("loss", Op::Gt, 5.0));
        assert!(t.crossed(5.5) && !t.crossed(5.0) && !t.crossed(f64::NAN));
        let t = Threshold::parse("acc<=0.1").unwrap();
        assert_eq!((t.op, t.to_string().as_str()), (Op::Le, "acc <= 0.1"));
        assert!(
            Threshold::parse("loss 5")
                .unwrap_err()
                .contains("METRIC OP VALUE")
        );
        assert!(Threshold::parse("> 5").unwrap_err().contains("metric name"));
        assert!(
            Threshold::parse("loss > big")
                .unwrap_err()
                .contains("`big`")
        );
    }

    #[test]
    fn choices_round_trip() {
        for choice in Choice::ALL {
            assert_eq!(Choice::parse(choice.as_str()), Some(choice));
        }
        assert_eq!(Choice::parse("explode"), None);
    }
}
