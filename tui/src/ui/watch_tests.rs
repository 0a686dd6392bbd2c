//! Snapshot tests of the charts and alerts views.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::metrics::{MetricsQueryReply, Sample, SeriesPoints, Trend};
use reagent::protocol::{Event, EventKind, QueryMetrics};
use reagent::run::RunStatus;
use reagent::sweep::SweepInfo;

use super::tests::{NOW, app_with_runs, draw};
use crate::app::App;
use crate::app::palette::execute;
use crate::app::state::View;
use crate::app::update::on_key;

/// A reply with a decaying `loss` (with a bump) and a constant `lr`.
fn reply(run: &str, scale: f64) -> MetricsQueryReply {
    let loss: Vec<(f64, f64)> = (0..200)
        .map(|i| {
            let x = f64::from(i) * 10.0;
            let bump = if (120..125).contains(&i) { 2.0 } else { 0.0 };
            (x, scale * (4.0 / (1.0 + x / 100.0)) + bump)
        })
        .collect();
    let series = |name: &str, points: Vec<(f64, f64)>| SeriesPoints {
        name: name.into(),
        total: points.len() as u64,
        last: points.last().map(|&(step, value)| Sample { step, value }),
        points,
        nan_steps: Vec::new(),
    };
    MetricsQueryReply {
        run: run.into(),
        series: vec![
            series("loss", loss),
            series(
                "lr",
                (0..200).map(|i| (f64::from(i) * 10.0, 3e-4)).collect(),
            ),
        ],
    }
}

fn charts_app() -> App {
    let mut app = app_with_runs();
    app.size = (100, 24);
    app.view = View::Charts;
    app.charts
        .data
        .insert("a1b2c3d4".into(), reply("a1b2c3d4", 1.0));
    app
}

#[test]
fn charts_of_one_run() {
    insta::assert_snapshot!(draw(&charts_app()));
}

#[test]
fn charts_overlay_two_runs() {
    let mut app = charts_app();
    app.charts
        .data
        .insert("e5f6a7b8".into(), reply("e5f6a7b8", 0.5));
    app.charts.marked.push("e5f6a7b8".into());
    insta::assert_snapshot!(draw(&app));
}

/// `:sweep lr` overlays the sweep's three runs; the side list ranks them by their newest
/// loss (the sweep made them in another order), and `o` puts the highest first.
#[test]
fn charts_overlay_a_sweep_ranked() {
    let mut app = charts_app();
    app.size = (110, 24);
    app.view = View::Runs;
    let ids = ["5a000001", "5a000002", "5a000003"];
    let names = ["lr-lr=1e-3", "lr-lr=3e-4", "lr-lr=1e-4"];
    for (id, name) in ids.iter().zip(names) {
        app.runs.push(super::tests::run(
            id,
            Some(name),
            RunStatus::Finished,
            Some(0),
            60,
        ));
    }
    app.sweeps.push(SweepInfo {
        id: "5eef0001".into(),
        name: "lr".into(),
        command: vec!["train".into(), "--lr".into(), "{lr}".into()],
        parallel: 2,
        runs: ids.iter().map(|id| id.to_string()).collect(),
        params: Vec::new(),
        created_at: NOW,
        stopped: false,
    });
    let effects = execute(&mut app, "sweep lr");
    let queried: Vec<&str> = effects
        .iter()
        .filter_map(|e| e.request::<QueryMetrics>())
        .map(|query| query.run.as_str())
        .collect();
    assert_eq!(queried, ids, "every run of the sweep, the first selected");
    assert_eq!(app.view, View::Charts);
    for (id, scale) in ids.iter().zip([1.0, 0.5, 2.0]) {
        app.charts.data.insert(id.to_string(), reply(id, scale));
    }
    let screen = draw(&app);
    let at = |screen: &str, name: &str| screen.find(name).expect(name);
    assert!(at(&screen, "1 ● lr-lr=3e-4") < at(&screen, "2 ● lr-lr=1e-3"));
    insta::assert_snapshot!(screen);
    on_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('o'), KeyModifiers::NONE),
    );
    let flipped = draw(&app);
    assert!(flipped.contains("1 ● lr-lr=1e-4"), "{flipped}");
    assert!(execute(&mut app, "sweep nope").is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("nope"))
    );
}

#[test]
fn charts_in_log_scale_smoothed_and_zoomed() {
    let mut app = charts_app();
    app.charts.log = true;
    app.charts.smoothing = 2;
    app.charts.zoom = 1;
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn charts_of_a_run_without_metrics() {
    let mut app = charts_app();
    app.charts.data.clear();
    insta::assert_snapshot!(draw(&app));
}

fn alert(id: &str, run: &str, rule: AlertRule, severity: Severity, message: &str) -> AlertInfo {
    AlertInfo {
        id: id.into(),
        run: run.into(),
        rule,
        subject: Some("loss".into()),
        severity,
        message: message.into(),
        step: Some(50.0),
        choices: Choice::ALL.to_vec(),
        status: AlertStatus::Open,
        response: None,
        session: None,
        created_at: NOW - 90_000,
        answered_at: None,
        agent: None,
    }
}

fn alerts_app() -> App {
    let mut app = app_with_runs();
    app.view = View::Alerts;
    for alert in [
        alert(
            "0a1b",
            "a1b2c3d4",
            AlertRule::Nan,
            Severity::Critical,
            "loss is NaN at step 50",
        ),
        alert(
            "2c3d",
            "a1b2c3d4",
            AlertRule::Spike,
            Severity::Warning,
            "loss jumped 5.0× at step 80",
        ),
        alert(
            "4e5f",
            "c9d0e1f2",
            AlertRule::RunFailed,
            Severity::Critical,
            "exited with code 3",
        ),
    ] {
        app.alerts.upsert(alert);
    }
    app
}

#[test]
fn alerts_none() {
    let mut app = app_with_runs();
    app.view = View::Alerts;
    insta::assert_snapshot!(draw(&app));
}

#[test]
fn alerts_several_with_the_badge() {
    insta::assert_snapshot!(draw(&alerts_app()));
}

#[test]
fn alerts_answered_with_details() {
    let mut app = alerts_app();
    let mut answered = app.alerts.alerts[1].clone();
    answered.status = AlertStatus::Answered;
    answered.response = Some(Choice::Chat);
    answered.session = Some("5e55".into());
    answered.answered_at = Some(NOW - 10_000);
    app.alerts.upsert(answered);
    app.alerts.selected = 1;
    app.alerts.detail = true;
    insta::assert_snapshot!(draw(&app));
}

/// A trend of `values` at steps 100, 200, …
fn trend(values: &[f64]) -> Trend {
    let points = (values.iter().enumerate())
        .map(|(i, &value)| Sample {
            step: (i as f64 + 1.0) * 100.0,
            value,
        })
        .collect();
    Trend {
        metric: "loss".into(),
        points,
    }
}

#[test]
fn runs_list_shows_each_runs_trend_over_its_whole_run() {
    let mut app = app_with_runs();
    // The ended run's trend came with the snapshot; the live one's with a `metrics` event,
    // which replaces what the snapshot said.
    let falling: Vec<f64> = (0..16).map(|i| 4.0 / (1.0 + f64::from(i))).collect();
    app.charts
        .sparks
        .insert("a1b2c3d4".into(), trend(&[1.0, 2.0]));
    let mut failed = vec![1.0, 1.1, 1.3, 2.0, 3.0, 2.0, 1.0, 1.0];
    failed.extend([f64::NAN; 8]);
    app.charts.sparks.insert("c9d0e1f2".into(), trend(&failed));
    app.apply_event(Event {
        seq: 1,
        ts: NOW,
        kind: EventKind::Metrics {
            run: "a1b2c3d4".into(),
            points: 16,
            last_step: 1600.0,
            latest: Vec::new(),
            trend: Some(trend(&falling)),
        },
    });
    insta::assert_snapshot!(draw(&app));
    // Wider, the column shows every point of the trend.
    app.runs_width = 72;
    let wide = draw(&app);
    let row = wide
        .lines()
        .find(|l| l.contains("c9d0e1f2"))
        .unwrap_or_default();
    assert!(row.contains("▁▁▂▅█▅▁▁!!!!!!!!"), "{row}");
}

#[test]
fn sparklines_scale_to_their_range_average_to_fit_and_flag_nan() {
    let points = trend(&[1.0, 2.0, f64::NAN, 8.0]).points;
    assert_eq!(super::runs_list::sparkline(&points, 16), "▁▂!█");
    assert_eq!(
        super::runs_list::sparkline(&points, 2),
        "▄!",
        "a NaN is not averaged away"
    );
    let flat = trend(&[5.0, 5.0]).points;
    assert_eq!(super::runs_list::sparkline(&flat, 8), "▄▄");
    assert_eq!(super::runs_list::sparkline(&[], 8), "");
}

#[test]
fn the_charted_metric_is_kept_by_name_across_runs() {
    let mut app = charts_app();
    let mut other = reply("e5f6a7b8", 2.0);
    // Another run reports its series in another order, with one more.
    other.series.reverse();
    other.series.insert(0, other.series[0].clone());
    other.series[0].name = "acc".into();
    app.charts.data.insert("e5f6a7b8".into(), other);
    let _ = on_key(
        &mut app,
        KeyEvent::new(KeyCode::Char(']'), KeyModifiers::NONE),
    );
    assert_eq!(app.charts.metric_name("a1b2c3d4"), Some("lr"));
    assert_eq!(
        app.charts.metric_name("e5f6a7b8"),
        Some("lr"),
        "moving to another run keeps the metric"
    );
    assert!(draw(&app).contains(" lr (2/2)"));
}
