//! Rendering tests of the charts: axes and their ticks, marks, the cursor, the outlier clip,
//! the grid and the numbers shown.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::alert::{AlertInfo, AlertRule, AlertStatus, Choice, Severity};
use reagent::metrics::{MetricsQueryReply, Sample, SeriesPoints};

use crate::app::App;
use crate::app::state::View;
use crate::app::update::on_key;
use crate::ui::tests::{NOW, app_with_runs, draw};

/// The selected run of [`app_with_runs`].
const RUN: &str = "a1b2c3d4";

fn series(name: &str, points: Vec<(f64, f64)>) -> SeriesPoints {
    SeriesPoints {
        name: name.into(),
        total: points.len() as u64,
        last: points.last().map(|&(step, value)| Sample { step, value }),
        points,
        nan_steps: Vec::new(),
    }
}

/// `loss` decaying from 4 over steps 0..1990, a spike of 1000 at step 1000, `lr` from 1e-4
/// to 10, and two more metrics for the grid.
fn reply() -> MetricsQueryReply {
    let steps = || (0..200).map(|i| f64::from(i) * 10.0);
    let loss = steps()
        .map(|x| {
            (
                x,
                if x == 1000.0 {
                    1000.0
                } else {
                    4.0 / (1.0 + x / 100.0)
                },
            )
        })
        .collect();
    let lr = steps().map(|x| (x, 1e-4 * 10f64.powf(x / 398.0))).collect();
    let acc = steps().map(|x| (x, x / 2000.0)).collect();
    let grad = steps().map(|x| (x, 1.0 + (x / 100.0).sin())).collect();
    MetricsQueryReply {
        run: RUN.into(),
        series: vec![
            series("loss", loss),
            series("lr", lr),
            series("acc", acc),
            series("grad_norm", grad),
        ],
    }
}

fn charts_app() -> App {
    let mut app = app_with_runs();
    app.size = (100, 24);
    app.view = View::Charts;
    app.charts.data.insert(RUN.into(), reply());
    app
}

fn press(app: &mut App, code: KeyCode) {
    let _ = on_key(app, KeyEvent::new(code, KeyModifiers::NONE));
}

fn alert(id: &str, rule: AlertRule, step: f64) -> AlertInfo {
    AlertInfo {
        id: id.into(),
        run: RUN.into(),
        rule,
        subject: None,
        severity: Severity::Warning,
        message: String::new(),
        step: Some(step),
        choices: Choice::ALL.to_vec(),
        status: AlertStatus::Open,
        response: None,
        session: None,
        created_at: NOW,
        answered_at: None,
        agent: None,
    }
}

/// The screen's rows (the `draw` snapshot has one quoted row per line).
fn rows(screen: &str) -> Vec<&str> {
    screen.lines().collect()
}

#[test]
fn the_axes_have_ticks_the_x_axis_says_step_and_alerts_are_marked() {
    let mut app = charts_app();
    app.alerts.upsert(alert("a1", AlertRule::Spike, 500.0));
    app.alerts.upsert(alert("a2", AlertRule::Nan, 1500.0));
    let screen = draw(&app);
    let rows = rows(&screen);
    let labels = rows[rows.len() - 3];
    assert!(labels.contains("step"), "{screen}");
    for tick in ["500", "1000", "1500"] {
        assert!(labels.contains(tick), "x tick {tick}: {screen}");
    }
    // The spike sets the scale: several round ticks up to 1000.
    for tick in ["200", "400", "600", "800", "1000"] {
        assert!(
            rows.iter().any(|row| row.contains(&format!("{tick}┤"))),
            "y tick {tick}: {screen}"
        );
    }
    let axis = rows[rows.len() - 4];
    assert!(axis.contains('!') && axis.contains('×'), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn the_outlier_clip_keeps_one_spike_from_flattening_the_curve() {
    let mut app = charts_app();
    press(&mut app, KeyCode::Char('C'));
    assert!(app.charts.clip);
    let screen = draw(&app);
    assert!(screen.contains("· clip"), "{screen}");
    assert!(!screen.contains("1000┤"), "the spike is clipped: {screen}");
    for tick in ["1┤", "2┤", "3┤"] {
        assert!(screen.contains(tick), "{tick}: {screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn log_ticks_are_powers_of_ten_in_the_metrics_units() {
    let mut app = charts_app();
    press(&mut app, KeyCode::Char(']'));
    press(&mut app, KeyCode::Char('l'));
    let screen = draw(&app);
    for tick in ["0.001┤", "0.01┤", "0.1┤", "1┤", "10┤"] {
        assert!(screen.contains(tick), "{tick}: {screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn the_cursor_reads_out_values_and_moves_over_steps() {
    let mut app = charts_app();
    press(&mut app, KeyCode::Char('.'));
    assert_eq!(
        app.charts.cursor,
        Some(1990.0),
        "it starts on the newest point"
    );
    let screen = draw(&app);
    // 4 / 20.9 = 0.19138755980861244, shown at five significant digits.
    assert!(
        screen.contains("step 1990 · ● train-gpt 0.19139"),
        "{screen}"
    );
    assert!(screen.contains('▲'), "{screen}");
    for _ in 0..10 {
        press(&mut app, KeyCode::Char(','));
    }
    let at = app.charts.cursor.unwrap_or_default();
    assert!((1700.0..1900.0).contains(&at), "about a column a key: {at}");
    insta::assert_snapshot!(draw(&app));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.charts.cursor, None);
    assert!(!draw(&app).contains("step 1"));
}

#[test]
fn the_grid_shows_four_metrics_at_once() {
    let mut app = charts_app();
    press(&mut app, KeyCode::Char('#'));
    let screen = draw(&app);
    for name in [" loss ", " lr ", " acc ", " grad_norm "] {
        assert!(screen.contains(name), "{name}: {screen}");
    }
    assert!(screen.contains("· grid"));
    insta::assert_snapshot!(screen);
    // `]` moves the grid along the run's metrics.
    press(&mut app, KeyCode::Char(']'));
    assert_eq!(
        app.charts.grid_metrics(RUN),
        ["lr", "acc", "grad_norm", "loss"]
    );
}

#[test]
fn values_in_the_ranking_have_five_significant_digits() {
    let mut app = charts_app();
    let mut other = reply();
    other.run = "e5f6a7b8".into();
    other.series[0].last = Some(Sample {
        step: 1990.0,
        value: 6.2092542530000046,
    });
    app.charts.data.insert("e5f6a7b8".into(), other);
    app.charts.marked.push("e5f6a7b8".into());
    let screen = draw(&app);
    assert!(screen.contains("6.2093"), "{screen}");
    assert!(!screen.contains("6.20925"), "{screen}");
}

#[test]
fn every_nan_step_is_marked_even_past_the_last_finite_point() {
    let mut app = charts_app();
    if let Some(reply) = app.charts.data.get_mut(RUN) {
        // NaNs mid-run, and a run that went NaN for good after its last finite point (1990).
        reply.series[0].nan_steps = vec![300.0, 1200.0, 2500.0];
        reply.series[0].last = Some(Sample {
            step: 2500.0,
            value: f64::NAN,
        });
    }
    let screen = draw(&app);
    let rows = rows(&screen);
    let axis = rows[rows.len() - 4];
    assert_eq!(axis.matches('×').count(), 3, "{screen}");
    assert!(
        axis.trim_end_matches(['"', '│']).ends_with('×'),
        "the x axis reaches the last NaN: {screen}"
    );
    insta::assert_snapshot!(screen);
}
