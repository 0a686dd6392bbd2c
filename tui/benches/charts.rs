//! `charts`: what one frame of the charts view costs when the charted series holds 10 million
//! points, against the same chart of 100 points — the promise that a long run charts
//! as fast as a short one.
//!
//! Each iteration does what the daemon and the cockpit do together for one chart refresh:
//! [`Series::downsample`] of the whole series to 2 points per column of a 200-column chart
//! (the daemon's half of `metrics.query`), then [`reagent_tui::ui::render`] of a 200x50
//! cockpit in the charts view with that reply, on a `ratatui::Terminal<TestBackend>` (the
//! cockpit's half). The 10M and the 100-point charts run in interleaved rounds, so machine
//! noise hits both alike. Target: mean < 5 ms per chart of 10M points. The downsample alone
//! is reported too, to show where the time goes.
//!
//! Run with `cargo bench -p reagent-tui --bench charts [-- --quick]` (`--quick`: fewer
//! rounds). Exits with status 1 when the target fails.

#[path = "../../benches/support.rs"]
mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use reagent::config::PrefixKey;
use reagent::metrics::{MetricsQueryReply, SeriesPoints};
use reagent::run::{RunInfo, RunStatus};
use reagent_tui::app::App;
use reagent_tui::app::state::{Link, View};
use reagentd::metrics::series::{Series, Window};
use support::{Stats, Table};

/// Screen width and height.
const SIZE: (u16, u16) = (200, 50);
/// The target for one chart of the big series, in milliseconds.
const TARGET_MS: f64 = 5.0;

fn main() -> ExitCode {
    support::exit_code("charts", bench())
}

fn bench() -> anyhow::Result<bool> {
    let rounds = if support::quick() { 20 } else { 200 };
    println!("building a series of 10,000,000 points…");
    let big = wiggly(10_000_000);
    let small = wiggly(100);
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1))?;
    let mut app = cockpit();
    let (mut big_times, mut small_times, mut downsample_times) = (vec![], vec![], vec![]);
    for round in 0..rounds + 5 {
        let (b, d) = chart(&big, &mut app, &mut terminal)?;
        let (s, _) = chart(&small, &mut app, &mut terminal)?;
        // The first rounds warm caches and the allocator.
        if round >= 5 {
            big_times.push(b);
            downsample_times.push(d);
            small_times.push(s);
        }
    }
    let (big, small, down) = (
        Stats::of_ms(&big_times),
        Stats::of_ms(&small_times),
        Stats::of_ms(&downsample_times),
    );
    let mut table = Table::default();
    table.check(
        "chart of 10M points (downsample + draw 200x50), mean",
        format!("{:.3} ms (p95 {:.3})", big.mean, big.p95),
        format!("< {TARGET_MS} ms"),
        big.mean < TARGET_MS,
    );
    table.info(
        "baseline: the same chart of 100 points, mean",
        format!("{:.3} ms (p95 {:.3})", small.mean, small.p95),
    );
    table.info("ratio 10M / 100", format!("{:.2}×", big.mean / small.mean));
    table.info(
        "of which: downsample of 10M points, mean",
        format!("{:.3} ms", down.mean),
    );
    table.info("rounds", rounds.to_string());
    Ok(table.print())
}

/// One chart refresh of `series`: its downsampled reply, then a frame. Returns the whole
/// time and the downsample's share.
fn chart(
    series: &Series,
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    let columns = usize::from(SIZE.0) * 2;
    let points = series.downsample(Window::All, columns);
    let nan_steps = series.nonfinite_steps(Window::All, columns);
    let downsampled = start.elapsed();
    let reply = MetricsQueryReply {
        run: "a1b2c3d4".into(),
        series: vec![SeriesPoints {
            name: "loss".into(),
            points,
            total: series.len() as u64,
            last: None,
            nan_steps,
        }],
    };
    app.charts.data.insert(reply.run.clone(), reply);
    terminal.draw(|frame| reagent_tui::ui::render(app, frame))?;
    Ok((start.elapsed(), downsampled))
}

/// A noisy decaying loss curve with occasional spikes.
fn wiggly(n: usize) -> Series {
    let mut series = Series::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x >> 11) as f64 / (1u64 << 53) as f64;
        let spike = if x.is_multiple_of(100_003) { 5.0 } else { 1.0 };
        series.push(
            i as f64,
            spike * (4.0 / (1.0 + i as f64 / 1e3) + 0.1 * noise),
        );
    }
    series
}

/// A cockpit in the charts view with one run selected.
fn cockpit() -> App {
    let now = 1_800_000_000_000;
    let mut app = App::new(
        "local",
        PrefixKey('b'),
        SIZE,
        now,
        reagent_tui::ui::typesetter(),
    );
    app.link = Link::Connected { clients: 1 };
    app.view = View::Charts;
    app.runs = vec![RunInfo {
        id: "a1b2c3d4".into(),
        name: Some("train".into()),
        command: vec!["python".into(), "train.py".into()],
        cwd: "/".into(),
        env_keys: Vec::new(),
        status: RunStatus::Running,
        exit_code: None,
        signal: None,
        reason: None,
        pid: None,
        cols: 80,
        rows: 24,
        created_at: now,
        started_at: Some(now),
        ended_at: None,
        log_path: "/x".into(),
        wandb: None,
        lost_output: None,
        agent_session: None,
        executor: Default::default(),
    }];
    app
}
