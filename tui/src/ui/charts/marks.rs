//! What a chart shows besides its lines: alerts and NaNs at their steps, the outlier clip of
//! the y range, and the value each line has at the cursor.

use ratatui::style::Color;
use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Severity};

use super::plot::Charted;

/// A step marked on the x axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    /// Where.
    pub step: f64,
    /// The symbol drawn on the axis line.
    pub symbol: &'static str,
    /// Its colour.
    pub color: Color,
}

/// The symbol of a NaN (or infinite) value.
pub const NAN: &str = "×";

/// The marks of the charted runs `runs`: each alert with a step (`×` for a NaN, `!` for the
/// rest, coloured by severity while open, grey once answered), then each step where a charted
/// line was NaN or infinite (the daemon sends only finite points, and those steps apart).
pub fn marks(alerts: &[AlertInfo], runs: &[&str], lines: &[Charted<'_>]) -> Vec<Mark> {
    let mut marks: Vec<Mark> = alerts
        .iter()
        .filter(|alert| runs.contains(&alert.run.as_str()))
        .filter_map(|alert| {
            let step = alert.step?;
            let symbol = if alert.rule == AlertRule::Nan {
                NAN
            } else {
                "!"
            };
            let color = match (alert.status, alert.severity) {
                (AlertStatus::Answered, _) => Color::DarkGray,
                (AlertStatus::Open, Severity::Critical) => Color::Red,
                (AlertStatus::Open, Severity::Warning) => Color::Yellow,
                (AlertStatus::Open, Severity::Info) => Color::Cyan,
            };
            Some(Mark {
                step,
                symbol,
                color,
            })
        })
        .collect();
    let nans = lines.iter().flat_map(|line| line.nans.iter());
    marks.extend(nans.map(|&step| Mark {
        step,
        symbol: NAN,
        color: Color::Red,
    }));
    marks
}

/// The y range without outliers: from the 1st to the 99th percentile of `ys` (nearest rank),
/// so one spike among hundreds of points no longer sets the scale. `None` without points.
pub fn clip_range(mut ys: Vec<f64>) -> Option<[f64; 2]> {
    ys.retain(|y| y.is_finite());
    let last = ys.len().checked_sub(1)?;
    let lo_at = (last as f64 * 0.01).floor() as usize;
    let hi_at = (last as f64 * 0.99).ceil() as usize;
    let (_, lo, _) = ys.select_nth_unstable_by(lo_at, f64::total_cmp);
    let lo = *lo;
    let (_, hi, _) = ys.select_nth_unstable_by(hi_at, f64::total_cmp);
    Some([lo, *hi])
}

/// The point of `points` (in step order) nearest to `step`, for the cursor's readout.
pub fn nearest(points: &[(f64, f64)], step: f64) -> Option<(f64, f64)> {
    let after = points.partition_point(|&(x, _)| x < step);
    let candidates = [after.checked_sub(1), Some(after)];
    candidates
        .into_iter()
        .flatten()
        .filter_map(|i| points.get(i).copied())
        .min_by(|a, b| (a.0 - step).abs().total_cmp(&(b.0 - step).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clip_leaves_out_the_top_and_bottom_percent() {
        let mut ys: Vec<f64> = (0..200).map(|i| f64::from(i % 10)).collect();
        ys[57] = 1e6;
        ys.push(f64::NAN);
        assert_eq!(clip_range(ys), Some([0.0, 9.0]));
        assert_eq!(clip_range(vec![3.0]), Some([3.0, 3.0]));
        assert_eq!(clip_range(Vec::new()), None);
    }

    #[test]
    fn the_cursor_reads_the_nearest_point() {
        let points = [(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)];
        assert_eq!(nearest(&points, 12.0), Some((10.0, 2.0)));
        assert_eq!(nearest(&points, 16.0), Some((20.0, 3.0)));
        assert_eq!(nearest(&points, 99.0), Some((20.0, 3.0)));
        assert_eq!(nearest(&points, -5.0), Some((0.0, 1.0)));
        assert_eq!(nearest(&[], 1.0), None);
    }
}
