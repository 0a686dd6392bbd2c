//! One metric of one run as a growing list of `(step, value)` points, with a block-summary
//! pyramid so a chart of millions of points can be downsampled in microseconds.
//!
//! Both the daemon (which stores series) and the cockpit (which charts them) use it, so it lives
//! in the shared library and does no IO. Points take 16 bytes each (two `f64`); the pyramid
//! keeps, per block of 64 points (then 64 blocks, and so on), the smallest and largest finite
//! value and where they are, and the sum of the finite values: 32 bytes per 64 points at the
//! first level, about half a byte per point in all. The positions of non-finite points are kept
//! apart (4 bytes each, nothing for a series without any), so a chart can mark each NaN at its
//! step without a scan. Steps are expected to arrive in non-decreasing order, as training steps do; a point
//! whose step goes back is kept, but windows and columns are found by binary search on steps,
//! so such a series charts as if ordered by arrival.

use std::ops::Range;

/// How many entries of one level a block of the next level summarises.
const FANOUT: usize = 64;

/// Marks "no point" in [`Extremes`] (a block of only NaN or infinite values).
const NONE: u32 = u32::MAX;

/// Which part of a series to chart along the x axis (steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// Every point, from the first step to the last.
    All,
    /// Only the points within this many steps of the last one ("zoom to the last N steps").
    LastSteps(f64),
}

/// A growing series of `(step, value)` points of one metric.
#[derive(Debug, Clone, Default)]
pub struct Series {
    steps: Vec<f64>,
    values: Vec<f64>,
    /// `levels[k]` holds the extremes of each complete block of `FANOUT^(k+1)` points. They
    /// carry the values too, so a query never reads the (cold, huge) point arrays for them.
    levels: Vec<Vec<Extremes>>,
    /// The indexes of the non-finite points, in order.
    nonfinite: Vec<u32>,
}

/// The smallest and largest finite values of a range of points, where they are, and the sum
/// of its finite values (for means).
#[derive(Debug, Clone, Copy)]
struct Extremes {
    min: f64,
    max: f64,
    min_at: u32,
    max_at: u32,
    sum: f64,
}

impl Extremes {
    /// Nothing seen yet.
    const EMPTY: Self = Self {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        min_at: NONE,
        max_at: NONE,
        sum: 0.0,
    };

    /// Folds in another range's extremes; ties keep the earlier point.
    fn merge(&mut self, other: &Extremes) {
        if other.min_at == NONE {
            return;
        }
        self.sum += other.sum;
        if other.min < self.min || (other.min == self.min && other.min_at < self.min_at) {
            (self.min, self.min_at) = (other.min, other.min_at);
        }
        if other.max > self.max || (other.max == self.max && other.max_at < self.max_at) {
            (self.max, self.max_at) = (other.max, other.max_at);
        }
    }

    /// Folds in one point, skipping non-finite values.
    fn point(&mut self, at: u32, value: f64) {
        if value.is_finite() {
            self.merge(&Extremes {
                min: value,
                max: value,
                min_at: at,
                max_at: at,
                sum: value,
            });
        }
    }
}

impl Series {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one point; non-finite values are kept (a NaN is worth showing in a table) but
    /// ignored by the min/max summaries. Amortised O(1).
    pub fn push(&mut self, step: f64, value: f64) {
        if !value.is_finite() {
            self.nonfinite.push(index(self.values.len()));
        }
        self.steps.push(step);
        self.values.push(value);
        let mut len = self.values.len();
        let mut level = 0;
        // Close every block the new point completes, from the bottom level up.
        while len.is_multiple_of(FANOUT) {
            let start = len - FANOUT;
            let mut ext = Extremes::EMPTY;
            for i in start..len {
                self.fold(&mut ext, level, i);
            }
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(ext);
            len = self.levels[level].len();
            level += 1;
        }
    }

    /// How many points the series holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no point yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Up to `count` points before the first point at or after `step` and `count` from it,
    /// in order: what a series looked like around an event (steps are taken as increasing,
    /// which is how training logs them).
    pub fn around(&self, step: f64, count: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        let at = self.steps.partition_point(|&s| s < step);
        let range = at.saturating_sub(count)..(at + count).min(self.steps.len());
        self.steps[range.clone()]
            .iter()
            .copied()
            .zip(self.values[range].iter().copied())
    }

    /// The latest point, e.g. for a "current value" label.
    pub fn last(&self) -> Option<(f64, f64)> {
        Some((*self.steps.last()?, *self.values.last()?))
    }

    /// Reduces the points in `window` to at most two per pixel column: the smallest and the
    /// largest finite value of each of `columns` equal slices of the window's steps, in x order.
    /// A line drawn through them shows every spike a full-resolution line would, at a cost of
    /// O(columns × log n) whatever the length of the series.
    pub fn downsample(&self, window: Window, columns: usize) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(columns.min(self.len()) * 2);
        for slice in self.slices(window, columns) {
            let ext = self.extremes(slice.start, slice.end);
            if ext.min_at != NONE {
                let (a, b) = (ext.min_at.min(ext.max_at), ext.min_at.max(ext.max_at));
                out.push(self.point(a));
                if b != a {
                    out.push(self.point(b));
                }
            }
        }
        out
    }

    /// The whole series in at most `buckets` points, one per equal slice of its steps that
    /// has any: the slice's last step and the mean of its finite values (NaN when it has
    /// none). A trend at a glance, where the newest few points would only show noise;
    /// O(buckets × log n).
    pub fn trend(&self, buckets: usize) -> Vec<(f64, f64)> {
        self.slices(Window::All, buckets)
            .filter(|slice| !slice.is_empty())
            .map(|slice| {
                let finite = slice.len() - self.nonfinite_in(slice.clone()).len();
                let sum = self.extremes(slice.start, slice.end).sum;
                let mean = if finite == 0 {
                    f64::NAN
                } else {
                    sum / finite as f64
                };
                (self.steps[slice.end - 1], mean)
            })
            .collect()
    }

    /// The step of the first non-finite point in each of `columns` equal slices of `window`
    /// that has one, in order: where a chart marks NaNs, one per column at most however many
    /// there are. O(columns × log n).
    pub fn nonfinite_steps(&self, window: Window, columns: usize) -> Vec<f64> {
        if self.nonfinite.is_empty() {
            return Vec::new();
        }
        self.slices(window, columns)
            .filter_map(|slice| {
                let first = *self.nonfinite_in(slice).first()?;
                Some(self.steps[first as usize])
            })
            .collect()
    }

    /// The indexes of the non-finite points among `range`.
    fn nonfinite_in(&self, range: Range<usize>) -> &[u32] {
        let at = |i: usize| self.nonfinite.partition_point(|&n| (n as usize) < i);
        &self.nonfinite[at(range.start)..at(range.end)]
    }

    /// The points of each of `columns` equal slices of `window`'s steps, as index ranges in x
    /// order (some may be empty), up to the slice holding the last point.
    fn slices(&self, window: Window, columns: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let (first, last) = match (self.steps.first(), self.steps.last()) {
            (Some(&first), Some(&last)) => (first, last),
            _ => (0.0, 0.0),
        };
        let x0 = match window {
            Window::All => first,
            Window::LastSteps(n) => (last - n.max(0.0)).max(first),
        };
        let width = (last - x0) / columns as f64;
        let mut start = self.steps.partition_point(|&s| s < x0);
        (0..columns).map_while(move |column| {
            if start == self.steps.len() {
                return None;
            }
            let end = if column + 1 == columns || width <= 0.0 {
                self.steps.len()
            } else {
                let bound = x0 + width * (column + 1) as f64;
                self.steps.partition_point(|&s| s < bound).max(start)
            };
            let slice = start..end;
            start = end;
            Some(slice)
        })
    }

    /// The point at index `i`.
    fn point(&self, i: u32) -> (f64, f64) {
        (self.steps[i as usize], self.values[i as usize])
    }

    /// The extremes of the points `start..end`, using whole blocks wherever they fit.
    fn extremes(&self, mut start: usize, mut end: usize) -> Extremes {
        let mut ext = Extremes::EMPTY;
        let mut level = 0;
        while start < end {
            // Peel the unaligned ends at this level, then climb to the next one.
            while start < end && !start.is_multiple_of(FANOUT) {
                self.fold(&mut ext, level, start);
                start += 1;
            }
            while start < end && !end.is_multiple_of(FANOUT) {
                end -= 1;
                self.fold(&mut ext, level, end);
            }
            if start == end || self.levels.len() == level {
                for i in start..end {
                    self.fold(&mut ext, level, i);
                }
                break;
            }
            start /= FANOUT;
            end /= FANOUT;
            level += 1;
        }
        ext
    }

    /// Folds entry `i` of `level` (0: the points themselves) into `ext`.
    fn fold(&self, ext: &mut Extremes, level: usize, i: usize) {
        if level == 0 {
            ext.point(index(i), self.values[i]);
        } else {
            ext.merge(&self.levels[level - 1][i]);
        }
    }
}

/// A point index as stored in the summaries; a series holds fewer than 2^32 - 1 points
/// (64 GiB of points), far past what a chart or a run produces.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(NONE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same reduction done the slow way, point by point.
    fn naive(s: &Series, window: Window, columns: usize) -> Vec<(f64, f64)> {
        let Some((last, _)) = s.last() else {
            return Vec::new();
        };
        let first = s.steps[0];
        let x0 = match window {
            Window::All => first,
            Window::LastSteps(n) => (last - n).max(first),
        };
        let width = (last - x0) / columns as f64;
        let mut out = Vec::new();
        for c in 0..columns {
            let lo = x0 + width * c as f64;
            let hi = x0 + width * (c + 1) as f64;
            let last_col = c + 1 == columns || width <= 0.0;
            let idx: Vec<usize> = (0..s.len())
                .filter(|&i| s.values[i].is_finite())
                .filter(|&i| s.steps[i] >= lo && (last_col || s.steps[i] < hi))
                .collect();
            let Some(&f) = idx.first() else {
                if width <= 0.0 {
                    break;
                }
                continue;
            };
            let (mut mn, mut mx) = (f, f);
            for &i in &idx {
                if s.values[i] < s.values[mn] {
                    mn = i;
                }
                if s.values[i] > s.values[mx] {
                    mx = i;
                }
            }
            let (a, b) = (mn.min(mx), mn.max(mx));
            out.push((s.steps[a], s.values[a]));
            if b != a {
                out.push((s.steps[b], s.values[b]));
            }
            if width <= 0.0 {
                break;
            }
        }
        out
    }

    /// A deterministic wiggly series with a few NaNs and infinities.
    fn wiggly(n: usize) -> Series {
        let mut s = Series::new();
        let mut x: u64 = 12345;
        for i in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = match x >> 60 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                _ => (x >> 11) as f64 / (1u64 << 53) as f64 + (i as f64).sin(),
            };
            s.push(i as f64, v);
        }
        s
    }

    #[test]
    fn empty_series_has_nothing_to_chart() {
        let s = Series::new();
        assert!(s.is_empty());
        assert_eq!(s.last(), None);
        assert!(s.downsample(Window::All, 80).is_empty());
    }

    #[test]
    fn few_points_come_back_unchanged() {
        let mut s = Series::new();
        for (x, y) in [(0.0, 3.0), (1.0, 1.0), (2.0, 2.0)] {
            s.push(x, y);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.last(), Some((2.0, 2.0)));
        assert_eq!(
            s.downsample(Window::All, 80),
            vec![(0.0, 3.0), (1.0, 1.0), (2.0, 2.0)]
        );
    }

    #[test]
    fn pyramid_matches_point_by_point_reduction() {
        for n in [1, 63, 64, 65, 4095, 4096, 4097, 300_000] {
            let s = wiggly(n);
            for columns in [1, 7, 80, 200] {
                for window in [
                    Window::All,
                    Window::LastSteps(1000.0),
                    Window::LastSteps(5.0),
                ] {
                    assert_eq!(
                        s.downsample(window, columns),
                        naive(&s, window, columns),
                        "n={n} columns={columns} window={window:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn spikes_survive_downsampling() {
        let mut s = Series::new();
        for i in 0..1_000_000 {
            s.push(i as f64, if i == 777_777 { 50.0 } else { 1.0 });
        }
        let points = s.downsample(Window::All, 100);
        assert!(points.len() <= 200);
        assert!(
            points.contains(&(777_777.0, 50.0)),
            "the spike is lost: {points:?}"
        );
    }

    #[test]
    fn non_finite_values_are_kept_but_not_charted() {
        let mut s = Series::new();
        s.push(0.0, 1.0);
        s.push(1.0, f64::NAN);
        s.push(2.0, f64::NEG_INFINITY);
        assert_eq!(s.len(), 3);
        assert_eq!(s.last().map(|(x, _)| x), Some(2.0));
        assert_eq!(s.downsample(Window::All, 10), vec![(0.0, 1.0)]);
    }

    #[test]
    fn the_trend_is_the_mean_of_each_slice_of_the_whole_run() {
        let mut s = Series::new();
        for i in 0..1000 {
            // A falling line with noise that cancels out within each slice.
            let noise = if i % 2 == 0 { 0.5 } else { -0.5 };
            let value = if i == 510 {
                f64::NAN
            } else {
                100.0 - f64::from(i) / 10.0 + noise
            };
            s.push(f64::from(i), value);
        }
        let trend = s.trend(10);
        assert_eq!(trend.len(), 10);
        // Slices of 99.9 steps: bucket k holds steps 100k to 100k + 99.
        for (k, &(step, mean)) in trend.iter().enumerate() {
            let finite: Vec<f64> = s.values[k * 100..k * 100 + 100]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let naive = finite.iter().sum::<f64>() / finite.len() as f64;
            assert!((mean - naive).abs() < 1e-9, "bucket {k}: {mean} vs {naive}");
            assert_eq!(
                step,
                (k * 100 + 99) as f64,
                "each bucket ends at its last step"
            );
        }
        assert!(
            trend.windows(2).all(|w| w[1].1 < w[0].1),
            "it falls: {trend:?}"
        );
        let mut dead = Series::new();
        dead.push(0.0, 1.0);
        dead.push(1.0, f64::NAN);
        assert!(dead.trend(2)[1].1.is_nan(), "a slice of only NaN is NaN");
        assert!(Series::new().trend(16).is_empty());
    }

    #[test]
    fn every_nan_is_found_at_its_step_one_per_column() {
        let mut s = Series::new();
        for i in 0..10_000 {
            let value = match i {
                17 | 18 | 4000 => f64::NAN,
                9_999 => f64::INFINITY,
                _ => 1.0,
            };
            s.push(f64::from(i), value);
        }
        assert_eq!(
            s.nonfinite_steps(Window::All, 100),
            [17.0, 4000.0, 9_999.0],
            "17 and 18 share a column"
        );
        assert_eq!(s.nonfinite_steps(Window::LastSteps(100.0), 10), [9_999.0]);
        assert_eq!(wiggly(300_000).nonfinite_steps(Window::All, 50).len(), 50);
        assert!(Series::new().nonfinite_steps(Window::All, 10).is_empty());
    }

    #[test]
    fn last_steps_window_keeps_only_the_tail() {
        let s = wiggly(10_000);
        let points = s.downsample(Window::LastSteps(100.0), 50);
        assert!(points.iter().all(|&(x, _)| x >= 9_899.0), "{points:?}");
        assert!(!points.is_empty());
    }
}
