//! The alert rules of one run, as a pure state machine: samples and clock ticks go in, alert
//! drafts come out. No IO, so every rule is unit-tested as a sequence of inputs.
//!
//! **Dedup.** A rule fires on an edge (its condition turning true: a NaN after finite values,
//! a crossing of a threshold, a jump), and never while an alert of the same rule and subject
//! is still open on the run. NaN alerts share one subject per run (a NaN usually spreads to
//! every metric at once). Answering the alert re-arms its rule; a condition that stays true
//! after the answer does not fire again until it clears and recurs.

use std::collections::HashSet;

use reagent::alert::{AlertRule, AlertsConfig, Severity, Threshold};
use reagent::number::Short;

/// An alert the engine wants raised; the caller gives it an id, choices and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// What raised it.
    pub rule: AlertRule,
    /// The metric or threshold it is about (its dedup key together with `rule`).
    pub subject: Option<String>,
    /// How urgent.
    pub severity: Severity,
    /// What happened.
    pub message: String,
    /// The step, when a metric raised it.
    pub step: Option<f64>,
}

/// The rules that apply to one run: the config's plus the run's own thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    nan: bool,
    spike: Option<(String, f64)>,
    stall_ms: Option<i64>,
    thresholds: Vec<Threshold>,
}

impl Rules {
    /// Combines the config with a run's own rules; a bad rule is an error naming it.
    pub fn new(config: &AlertsConfig, own: &[String]) -> Result<Self, String> {
        let thresholds = config
            .thresholds
            .iter()
            .chain(own)
            .map(|text| Threshold::parse(text))
            .collect::<Result<_, _>>()?;
        let spike =
            (config.spike_factor > 0.0).then(|| (config.spike_metric.clone(), config.spike_factor));
        // Truncation is intended: the stall limit is whole milliseconds.
        #[allow(clippy::cast_possible_truncation)]
        let stall_ms =
            (config.stall_minutes > 0.0).then_some((config.stall_minutes * 60_000.0) as i64);
        Ok(Self {
            nan: config.nan,
            spike,
            stall_ms,
            thresholds,
        })
    }
}

/// Per series: which rules watch it and their edge state.
#[derive(Debug, Clone, Default)]
struct Watch {
    spike: bool,
    previous: Option<f64>,
    nan_active: bool,
    /// Indices into `Rules::thresholds` on this metric, with whether each is crossed now.
    thresholds: Vec<(usize, bool)>,
}

/// One run's rules and their state.
#[derive(Debug, Clone)]
pub struct Engine {
    rules: Rules,
    watches: Vec<Watch>,
    names: Vec<String>,
    open: HashSet<(AlertRule, Option<String>)>,
    stalled: bool,
}

impl Engine {
    /// An engine with no series yet.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            watches: Vec::new(),
            names: Vec::new(),
            open: HashSet::new(),
            stalled: false,
        }
    }

    /// Registers the next series (series are numbered in the order they appear).
    pub fn add_series(&mut self, name: &str) {
        let thresholds = (self.rules.thresholds.iter().enumerate())
            .filter(|(_, t)| t.metric == name)
            .map(|(i, _)| (i, false))
            .collect();
        self.watches.push(Watch {
            spike: self.rules.spike.as_ref().is_some_and(|(m, _)| m == name),
            thresholds,
            ..Watch::default()
        });
        self.names.push(name.to_string());
    }

    /// Checks one new point of series `index`; appends any alert to `out`.
    pub fn observe(&mut self, index: usize, step: f64, value: f64, out: &mut Vec<Draft>) {
        let watch = &mut self.watches[index];
        let finite = value.is_finite();
        let nan_edge = !finite && !watch.nan_active;
        watch.nan_active = !finite;
        let mut spike = None;
        if watch.spike && finite {
            if let (Some(previous), Some((_, factor))) = (watch.previous, &self.rules.spike)
                && previous > 0.0
                && value > factor * previous
            {
                spike = Some((previous, *factor));
            }
            watch.previous = Some(value);
        }
        let mut crossed = Vec::new();
        for (t, active) in &mut watch.thresholds {
            let now = self.rules.thresholds[*t].crossed(value);
            if now && !*active {
                crossed.push(*t);
            }
            *active = now;
        }
        let name = &self.names[index];
        // People read these messages: five significant digits, as every table shows them.
        let (shown, at) = (Short(value), Short(step));
        if nan_edge && self.rules.nan {
            let message = format!("{name} is {} at step {at}", describe(value));
            let draft = draft(AlertRule::Nan, None, Severity::Critical, message, step);
            raise(&mut self.open, draft, out);
        }
        if let Some((previous, factor)) = spike {
            let message = format!(
                "{name} jumped to {shown} at step {at}, over {}× its previous {}",
                Short(factor),
                Short(previous)
            );
            let draft = draft(
                AlertRule::Spike,
                Some(name.clone()),
                Severity::Warning,
                message,
                step,
            );
            raise(&mut self.open, draft, out);
        }
        for t in crossed {
            let threshold = self.rules.thresholds[t].to_string();
            let message = format!("{name} is {shown} at step {at}: {threshold}");
            let draft = draft(
                AlertRule::Threshold,
                Some(threshold),
                Severity::Warning,
                message,
                step,
            );
            raise(&mut self.open, draft, out);
        }
    }

    /// Checks the stall rule at `now`: `last_metric` is when the newest metric arrived (`None`
    /// before the first), `alive` whether the job still runs.
    pub fn tick(&mut self, now: i64, last_metric: Option<i64>, alive: bool, out: &mut Vec<Draft>) {
        let (Some(limit), Some(last)) = (self.rules.stall_ms, last_metric) else {
            return;
        };
        let stalled = alive && now - last >= limit;
        if stalled && !self.stalled {
            let minutes = (now - last) / 60_000;
            let message = format!("no new metrics for {minutes} min while the job runs");
            let stall = draft(AlertRule::Stall, None, Severity::Warning, message, None);
            raise(&mut self.open, stall, out);
        }
        self.stalled = stalled;
    }

    /// Marks an alert as open (one the judge raised, or one still open from before a
    /// restart), so that its rule does not fire again meanwhile; false when it was already.
    pub fn claim(&mut self, rule: AlertRule, subject: Option<&str>) -> bool {
        self.open.insert((rule, subject.map(str::to_string)))
    }

    /// Re-arms a rule once its alert was answered.
    pub fn answered(&mut self, rule: AlertRule, subject: Option<&str>) {
        self.open.remove(&(rule, subject.map(str::to_string)));
    }
}

/// Emits a draft unless an alert of its rule and subject is open; marks it open.
fn raise(open: &mut HashSet<(AlertRule, Option<String>)>, draft: Draft, out: &mut Vec<Draft>) {
    if open.insert((draft.rule, draft.subject.clone())) {
        out.push(draft);
    }
}

fn draft(
    rule: AlertRule,
    subject: Option<String>,
    severity: Severity,
    message: String,
    step: impl Into<Option<f64>>,
) -> Draft {
    Draft {
        rule,
        subject,
        severity,
        message,
        step: step.into(),
    }
}

fn describe(value: f64) -> &'static str {
    if value.is_nan() {
        "NaN"
    } else if value > 0.0 {
        "infinite"
    } else {
        "-infinite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(own: &[&str]) -> Engine {
        let own: Vec<String> = own.iter().map(|s| s.to_string()).collect();
        let mut engine = Engine::new(Rules::new(&AlertsConfig::default(), &own).unwrap());
        engine.add_series("loss");
        engine.add_series("acc");
        engine
    }

    fn feed(engine: &mut Engine, points: &[(usize, f64, f64)]) -> Vec<Draft> {
        let mut out = Vec::new();
        for &(index, step, value) in points {
            engine.observe(index, step, value, &mut out);
        }
        out
    }

    #[test]
    fn a_nan_fires_once_until_answered() {
        let mut e = engine(&[]);
        let out = feed(
            &mut e,
            &[(0, 1.0, 1.0), (0, 2.0, f64::NAN), (1, 2.0, f64::NAN)],
        );
        assert_eq!(out.len(), 1, "one NaN alert per run while open: {out:?}");
        assert_eq!((out[0].rule, out[0].step), (AlertRule::Nan, Some(2.0)));
        assert_eq!(out[0].message, "loss is NaN at step 2");
        assert!(feed(&mut e, &[(0, 3.0, 1.0), (0, 4.0, f64::INFINITY)]).is_empty());
        e.answered(AlertRule::Nan, None);
        assert!(
            feed(&mut e, &[(0, 5.0, f64::NAN)]).is_empty(),
            "still NaN: no new edge"
        );
        let out = feed(&mut e, &[(0, 6.0, 1.0), (0, 7.0, f64::NAN)]);
        assert_eq!(out.len(), 1, "a new NaN after the answer fires again");
    }

    #[test]
    fn a_spike_compares_with_the_previous_value() {
        let mut e = engine(&[]);
        let out = feed(&mut e, &[(0, 1.0, 1.0), (0, 2.0, 2.9), (1, 3.0, 100.0)]);
        assert!(
            out.is_empty(),
            "2.9× is no spike, and acc is not watched: {out:?}"
        );
        let out = feed(&mut e, &[(0, 3.0, 14.5), (0, 4.0, 14.0), (0, 5.0, 50.0)]);
        assert_eq!(
            out.len(),
            1,
            "the second spike waits for an answer: {out:?}"
        );
        assert_eq!(out[0].subject.as_deref(), Some("loss"));
        assert_eq!(out[0].step, Some(3.0));
    }

    #[test]
    fn thresholds_fire_on_crossing() {
        let mut e = engine(&["acc < 0.5"]);
        let out = feed(&mut e, &[(1, 1.0, 0.9), (1, 2.0, 0.4), (1, 3.0, 0.3)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].subject.as_deref(), Some("acc < 0.5"));
        e.answered(AlertRule::Threshold, Some("acc < 0.5"));
        assert!(feed(&mut e, &[(1, 4.0, 0.2)]).is_empty());
        assert_eq!(feed(&mut e, &[(1, 5.0, 0.8), (1, 6.0, 0.1)]).len(), 1);
    }

    #[test]
    fn messages_show_five_significant_digits() {
        let mut e = engine(&["loss > 5"]);
        let out = feed(
            &mut e,
            &[
                (0, 1.0, 1.0000000000000002),
                (0, 123456.0, 6.2092542530000046),
            ],
        );
        let messages: Vec<&str> = out.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "loss jumped to 6.2093 at step 123456, over 3× its previous 1",
                "loss is 6.2093 at step 123456: loss > 5",
            ]
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let err = Rules::new(&AlertsConfig::default(), &["loss >> 2".into()]).unwrap_err();
        assert!(err.contains("loss >> 2"), "{err}");
    }

    #[test]
    fn a_stall_needs_a_first_metric_and_a_live_job() {
        let mut e = engine(&[]);
        let mut out = Vec::new();
        let limit = 30 * 60_000;
        e.tick(limit * 2, None, true, &mut out);
        e.tick(limit * 2, Some(0), false, &mut out);
        assert!(out.is_empty());
        e.tick(limit, Some(0), true, &mut out);
        e.tick(limit + 1000, Some(0), true, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, AlertRule::Stall);
    }
}
