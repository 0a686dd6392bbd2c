//! One run's metrics in memory: its series, their files, its alert rules, and how far its
//! metrics file was read. Feeding it lines is the hot path of ingest: no allocation per line
//! once its series exist.

use std::collections::VecDeque;
use std::path::Path;

use crate::metrics::series::Series;
use reagent::metrics::{Latest, MetricSummary, Sample, TREND_POINTS, Trend, main_metric};

use super::files::{self, SeriesFiles};
use super::parse::{Malformed, parse_line};
use crate::alerts::rules::{Draft, Engine};
use crate::store::IngestRecord;

/// More series than this in one run is a script writing ids as keys; the rest are ignored.
const MAX_SERIES: usize = 1000;
/// Recent raw lines kept for the judge and for chats about an alert.
const RECENT_LINES: usize = 50;
/// Longest line kept among the recent ones.
const RECENT_BYTES: usize = 2048;

/// A line the feeder skipped, for the caller's (rate-limited) log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Its line number in the metrics file (1-based, counted across rotations).
    pub line: u64,
    /// Why.
    pub why: Malformed,
}

/// What a `metrics` event says of a run's new points.
#[derive(Debug)]
pub struct Changes {
    /// The newest step among the series that changed.
    pub last_step: f64,
    /// The newest value of each series that changed.
    pub latest: Vec<Latest>,
    /// The main metric's trend over the whole run, as it is now.
    pub trend: Option<Trend>,
}

/// One run's series and ingest state.
pub struct RunMetrics {
    /// Where it was read from and how far.
    pub record: IngestRecord,
    names: Vec<String>,
    keys: Vec<Box<[u8]>>,
    series: Vec<Series>,
    files: SeriesFiles,
    /// The run's alert rules and their state.
    pub engine: Engine,
    /// Series with points since the last `metrics` event.
    changed: Vec<bool>,
    recent: VecDeque<Vec<u8>>,
    /// Per line: (series index, value), reused.
    scratch: Vec<(usize, f64)>,
    /// When the newest line with a metric arrived (Unix ms).
    pub last_metric_at: Option<i64>,
}

impl RunMetrics {
    /// A run's metrics, loading what its series files hold up to the record.
    pub fn load(series_dir: &Path, record: IngestRecord, engine: Engine) -> std::io::Result<Self> {
        let loaded = files::load(series_dir, &record.lengths)?;
        let mut run = Self {
            record,
            names: Vec::new(),
            keys: Vec::new(),
            series: Vec::new(),
            files: SeriesFiles::new(series_dir),
            engine,
            changed: Vec::new(),
            recent: VecDeque::new(),
            scratch: Vec::new(),
            last_metric_at: None,
        };
        for (name, series) in loaded {
            run.add(&name, key_bytes(&name))?;
            let index = run.series.len() - 1;
            run.series[index] = series;
        }
        Ok(run)
    }

    /// Feeds complete lines (each ending in `\n`); returns the bytes consumed, which stop
    /// after the last newline. Alerts go to `alerts`, skipped lines to `skipped`.
    pub fn feed(
        &mut self,
        data: &[u8],
        now: i64,
        alerts: &mut Vec<Draft>,
        skipped: &mut Vec<Skipped>,
    ) -> std::io::Result<usize> {
        let mut consumed = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            let line = &data[consumed..end];
            consumed = end + 1;
            self.record.lines += 1;
            self.line(line, now, alerts, skipped)?;
        }
        self.record.offset += consumed as u64;
        Ok(consumed)
    }

    fn line(
        &mut self,
        line: &[u8],
        now: i64,
        alerts: &mut Vec<Draft>,
        skipped: &mut Vec<Skipped>,
    ) -> std::io::Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut step = None;
        // New series are rare: this only allocates on a line that brings some.
        let mut fresh: Vec<(Vec<u8>, f64)> = Vec::new();
        let parsed = parse_line(line, |key, value| {
            if key == b"step" {
                step = Some(value);
            } else if let Some(index) = find(&self.keys, key, scratch.len()) {
                scratch.push((index, value));
            } else {
                fresh.push((key.to_vec(), value));
            }
        });
        if let Err(why) = parsed {
            self.record.malformed += 1;
            skipped.push(Skipped {
                line: self.record.lines,
                why,
            });
            self.scratch = scratch;
            return Ok(());
        }
        for (key, value) in fresh {
            // A key repeated within the line is one series.
            let index = match find(&self.keys, &key, 0) {
                Some(index) => index,
                None if self.series.len() < MAX_SERIES => {
                    self.add(&key_name(&key), key.into_boxed_slice())?;
                    self.series.len() - 1
                }
                None => continue,
            };
            scratch.push((index, value));
        }
        let x = step
            .filter(|s| s.is_finite())
            .unwrap_or(self.record.lines as f64);
        for &(index, value) in &scratch {
            self.series[index].push(x, value);
            self.files.append(index, x, value)?;
            self.changed[index] = true;
            self.engine.observe(index, x, value, alerts);
        }
        if !scratch.is_empty() {
            self.last_metric_at = Some(now);
            self.remember(line);
        }
        self.scratch = scratch;
        Ok(())
    }

    fn add(&mut self, name: &str, key: Box<[u8]>) -> std::io::Result<()> {
        self.files.add(name)?;
        self.engine.add_series(name);
        self.names.push(name.to_string());
        self.keys.push(key);
        self.series.push(Series::new());
        self.changed.push(false);
        Ok(())
    }

    fn remember(&mut self, line: &[u8]) {
        let mut kept = if self.recent.len() == RECENT_LINES {
            self.recent.pop_front().unwrap_or_default()
        } else {
            Vec::with_capacity(256)
        };
        kept.clear();
        kept.extend_from_slice(&line[..line.len().min(RECENT_BYTES)]);
        self.recent.push_back(kept);
    }

    /// The record to save: offsets plus the points per series, after flushing the files so
    /// that the points it counts are on disk.
    pub fn checkpoint(&mut self) -> std::io::Result<IngestRecord> {
        self.files.flush()?;
        self.record.lengths = (self.names.iter().zip(&self.series))
            .map(|(name, series)| (name.clone(), series.len() as u64))
            .collect();
        Ok(self.record.clone())
    }

    /// Total points over every series.
    pub fn points(&self) -> u64 {
        self.series.iter().map(|s| s.len() as u64).sum()
    }

    /// What changed since the last call, for a `metrics` event; `None` when nothing did.
    pub fn take_changes(&mut self) -> Option<Changes> {
        let mut last_step = f64::NEG_INFINITY;
        let mut latest = Vec::new();
        for (index, changed) in self.changed.iter_mut().enumerate() {
            if std::mem::take(changed)
                && let Some((step, value)) = self.series[index].last()
            {
                last_step = last_step.max(step);
                let name = self.names[index].clone();
                latest.push(Latest { name, value });
            }
        }
        (!latest.is_empty()).then(|| Changes {
            last_step,
            latest,
            trend: self.trend(),
        })
    }

    /// Every series, summarised.
    pub fn summaries(&self) -> Vec<MetricSummary> {
        (self.names.iter().zip(&self.series))
            .map(|(name, series)| MetricSummary {
                name: name.clone(),
                points: series.len() as u64,
                last: series.last().map(|(step, value)| Sample { step, value }),
            })
            .collect()
    }

    /// The main metric over the whole run, for the runs list: O(log n) per point, so it can
    /// go out with every `metrics` event.
    pub fn trend(&self) -> Option<Trend> {
        let index = main_metric(&self.names)?;
        let points = (self.series[index].trend(TREND_POINTS).into_iter())
            .map(|(step, value)| Sample { step, value })
            .collect();
        Some(Trend {
            metric: self.names[index].clone(),
            points,
        })
    }

    /// A series by name.
    pub fn series(&self, name: &str) -> Option<&Series> {
        let index = self.names.iter().position(|n| n == name)?;
        Some(&self.series[index])
    }

    /// Every series name, in the order they appeared.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The metrics around `step` as JSON lines, one per step, `count` steps on either side:
    /// what a chat about an alert at that step needs to see (the newest lines may be long
    /// past it).
    pub fn lines_around(&self, step: f64, count: usize) -> Vec<String> {
        let mut by_step: Vec<(f64, serde_json::Map<String, serde_json::Value>)> = Vec::new();
        for (name, series) in self.names.iter().zip(&self.series) {
            for (at, value) in series.around(step, count) {
                let i = match by_step.iter().position(|(s, _)| *s == at) {
                    Some(i) => i,
                    None => {
                        let mut line = serde_json::Map::new();
                        line.insert("step".into(), at.into());
                        by_step.push((at, line));
                        by_step.len() - 1
                    }
                };
                // JSON has no NaN or infinity: those are written as strings ("NaN").
                let value = serde_json::Number::from_f64(value)
                    .map_or_else(|| format!("{value}").into(), serde_json::Value::Number);
                by_step[i].1.insert(name.clone(), value);
            }
        }
        by_step.sort_by(|a, b| a.0.total_cmp(&b.0));
        let near = by_step.partition_point(|(s, _)| *s < step);
        let keep = near.saturating_sub(count)..(near + count).min(by_step.len());
        by_step[keep]
            .iter()
            .map(|(_, line)| serde_json::Value::Object(line.clone()).to_string())
            .collect()
    }

    /// The most recent lines that carried metrics, oldest first, as text.
    pub fn recent_lines(&self, count: usize) -> Vec<String> {
        let skip = self.recent.len().saturating_sub(count);
        (self.recent.iter().skip(skip))
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }
}

/// Finds a key's series, trying first where it was on the previous line (`hint`): lines of
/// one script repeat their keys in the same order.
fn find(keys: &[Box<[u8]>], key: &[u8], hint: usize) -> Option<usize> {
    if keys.get(hint).is_some_and(|k| &**k == key) {
        return Some(hint);
    }
    keys.iter().position(|k| &**k == key)
}

/// A name's key as a JSON writer would put it between the quotes (the inverse of
/// [`key_name`]), so series loaded from files match the lines that follow.
fn key_bytes(name: &str) -> Box<[u8]> {
    let quoted = serde_json::to_string(name).unwrap_or_default();
    let inner = quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or(name);
    inner.as_bytes().into()
}

/// The metric's name from a key's raw bytes: JSON escapes decoded when there are any.
fn key_name(raw: &[u8]) -> String {
    if raw.contains(&b'\\') {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        if let Ok(name) = serde_json::from_slice::<String>(&quoted) {
            return name;
        }
    }
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::Rules;
    use reagent::alert::AlertsConfig;

    fn run(dir: &Path) -> RunMetrics {
        let rules = Rules::new(&AlertsConfig::default(), &[]).unwrap();
        RunMetrics::load(dir, IngestRecord::default(), Engine::new(rules)).unwrap()
    }

    #[test]
    fn lines_become_series_and_partial_or_malformed_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut metrics = run(dir.path());
        let (mut alerts, mut skipped) = (Vec::new(), Vec::new());
        let data =
            b"{\"loss\": 2, \"acc\": 0.5}\nnot json\n{\"step\": 10, \"loss\": NaN}\n{\"loss\": 1";
        let consumed = metrics.feed(data, 7, &mut alerts, &mut skipped).unwrap();
        assert_eq!(
            consumed,
            data.len() - b"{\"loss\": 1".len(),
            "the partial line waits"
        );
        assert_eq!((metrics.record.lines, metrics.record.malformed), (3, 1));
        assert_eq!(
            skipped,
            [Skipped {
                line: 2,
                why: Malformed::NotAnObject
            }]
        );
        assert_eq!(
            metrics.names(),
            ["loss", "acc"],
            "both keys of the first line"
        );
        let loss = metrics.series("loss").unwrap();
        assert_eq!(loss.len(), 2);
        assert_eq!(loss.last().unwrap().0, 10.0, "step when present");
        assert_eq!(
            metrics.series("acc").unwrap().last(),
            Some((1.0, 0.5)),
            "else the line number"
        );
        assert_eq!(alerts.len(), 1, "the NaN");
        assert_eq!(metrics.last_metric_at, Some(7));
        let changes = metrics.take_changes().unwrap();
        assert_eq!((changes.last_step, changes.latest.len()), (10.0, 2));
        assert_eq!(changes.trend.map(|t| t.metric).as_deref(), Some("loss"));
        assert!(metrics.take_changes().is_none(), "nothing new since");
        assert_eq!(metrics.recent_lines(1), ["{\"step\": 10, \"loss\": NaN}"]);
    }

    #[test]
    fn the_trend_follows_loss_over_the_whole_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut metrics = run(dir.path());
        let (mut alerts, mut skipped) = (Vec::new(), Vec::new());
        assert_eq!(metrics.trend(), None, "no metrics, no trend");
        metrics
            .feed(b"{\"acc\": 0.1}\n", 0, &mut alerts, &mut skipped)
            .unwrap();
        assert_eq!(
            metrics.trend().unwrap().metric,
            "acc",
            "the first series at first"
        );
        let mut data = String::new();
        for step in 1..=1000 {
            data.push_str(&format!(
                "{{\"step\": {step}, \"acc\": 0.5, \"loss\": {}}}\n",
                1000 - step
            ));
        }
        metrics
            .feed(data.as_bytes(), 0, &mut alerts, &mut skipped)
            .unwrap();
        let trend = metrics.trend().unwrap();
        assert_eq!(trend.metric, "loss", "then loss, once reported");
        assert_eq!(trend.points.len(), TREND_POINTS);
        assert_eq!(trend.points.last().map(|p| p.step), Some(1000.0));
        assert!(
            trend.points.windows(2).all(|w| w[1].value < w[0].value),
            "{trend:?}"
        );
    }

    #[test]
    fn the_lines_around_a_step_are_rebuilt_from_the_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut metrics = run(dir.path());
        let (mut alerts, mut skipped) = (Vec::new(), Vec::new());
        let mut data = String::new();
        for step in 1..=100 {
            let loss = if step == 50 {
                "NaN".to_string()
            } else {
                format!("{step}.5")
            };
            data.push_str(&format!(
                "{{\"step\": {step}, \"loss\": {loss}, \"lr\": 0.1}}\n"
            ));
        }
        metrics
            .feed(data.as_bytes(), 0, &mut alerts, &mut skipped)
            .unwrap();
        let lines = metrics.lines_around(50.0, 2);
        assert_eq!(
            lines,
            [
                r#"{"loss":48.5,"lr":0.1,"step":48.0}"#,
                r#"{"loss":49.5,"lr":0.1,"step":49.0}"#,
                r#"{"loss":"NaN","lr":0.1,"step":50.0}"#,
                r#"{"loss":51.5,"lr":0.1,"step":51.0}"#,
            ]
        );
        assert!(
            metrics.recent_lines(2)[1].contains("100"),
            "the newest are elsewhere"
        );
    }

    #[test]
    fn a_checkpoint_reloads_to_the_same_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut metrics = run(dir.path());
        let (mut alerts, mut skipped) = (Vec::new(), Vec::new());
        let data = b"{\"a\\\"b\": 1}\n{\"a\\\"b\": 2, \"c\": 3}\n";
        metrics.feed(data, 0, &mut alerts, &mut skipped).unwrap();
        let record = metrics.checkpoint().unwrap();
        assert_eq!(record.offset, data.len() as u64);
        let rules = Rules::new(&AlertsConfig::default(), &[]).unwrap();
        let mut reloaded = RunMetrics::load(dir.path(), record, Engine::new(rules)).unwrap();
        assert_eq!(
            reloaded.series("a\"b").unwrap().len(),
            2,
            "escapes decoded in names"
        );
        assert_eq!(reloaded.series("c").unwrap().len(), 1);
        let more = b"{\"a\\\"b\": 4}\n";
        reloaded.feed(more, 0, &mut alerts, &mut skipped).unwrap();
        assert_eq!(
            reloaded.names(),
            ["a\"b", "c"],
            "the same series after a reload"
        );
        assert_eq!(reloaded.series("a\"b").unwrap().len(), 3);
    }
}
