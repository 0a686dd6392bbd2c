//! The GPU panel (`p`): column headers, a row per GPU with utilisation and memory gauges,
//! temperature, power, a utilisation sparkline as wide as the row allows and the model server
//! and runs using it, then a line per compute process (its memory and run, or model); the
//! reason when there are no GPUs; and the compact summary the status bar shows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use reagent::gpu::{GpuInfo, GpuReport, GpuSourceKind};

use crate::app::App;

/// Cells of each gauge.
const GAUGE: usize = 10;
/// Columns before the sparkline: index, name, two gauges and the readings.
const FIXED: usize = 3 + 19 + GAUGE + 6 + GAUGE + 30;
/// Columns kept after the sparkline for the runs using the GPU.
const USERS: usize = 24;
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Draws the panel.
/// `panel` is the focus the panel takes as a side panel; the strip under the panes has none.
pub fn render(
    app: &App,
    frame: &mut Frame<'_>,
    area: Rect,
    panel: Option<crate::app::state::Focus>,
) {
    let report = &app.gpus;
    let fake = report.gpus.iter().any(|g| g.fake);
    let source = match report.source {
        GpuSourceKind::Nvml => "nvml",
        GpuSourceKind::NvidiaSmi => "nvidia-smi",
        GpuSourceKind::Fake => "FAKE",
        GpuSourceKind::None => "none",
    };
    let title = Line::from(vec![
        Span::raw(format!(" GPUs ({}) · ", report.gpus.len())),
        Span::styled(
            source,
            if fake {
                Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        ),
        Span::raw(" "),
    ]);
    let title = if matches!(app.link, crate::app::state::Link::Connected { .. }) {
        title
    } else {
        let mut title = title;
        title.push_span(Span::styled("· stale: not connected ", Color::Red));
        title
    };
    let style = panel.map_or(Style::new().fg(Color::DarkGray), |panel| {
        super::border(app, panel)
    });
    let block = Block::bordered().title(title).border_style(style);
    if report.gpus.is_empty() {
        let text = match &report.unavailable {
            Some(reason) => format!("No GPUs: {reason}"),
            None => "No GPU readings yet.".into(),
        };
        let paragraph = Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .style(Style::new().fg(Color::DarkGray))
            .block(block);
        frame.render_widget(paragraph, area);
        return;
    }
    let spark = usize::from(area.width.saturating_sub(2))
        .saturating_sub(FIXED + USERS)
        .max(8);
    let mut lines = vec![header(spark)];
    for (i, gpu) in report.gpus.iter().enumerate() {
        let history = report.history.get(i).map_or(&[][..], Vec::as_slice);
        lines.push(row(app, gpu, history, spark));
        lines.extend(gpu.processes.iter().map(|p| process(app, p)));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The column titles, aligned with [`row`].
fn header(spark: usize) -> Line<'static> {
    let text = format!(
        "{:>2} {:<18} {:<w$} {:>4} {:<w$} {:>10} {:>5} {:>9} {:<spark$} USED BY",
        "#",
        "NAME",
        "UTIL",
        "",
        "MEMORY",
        "",
        "TEMP",
        "POWER",
        "UTIL HISTORY",
        w = GAUGE,
    );
    Line::styled(text, Style::new().add_modifier(Modifier::BOLD))
}

/// One compute process on a GPU: its pid, memory and the run it belongs to.
fn process<'a>(app: &App, process: &'a reagent::gpu::GpuProcess) -> Line<'a> {
    let memory = process
        .used_mib
        .map_or_else(|| "-".into(), |mib| format!("{:.1}G", mib as f64 / 1024.0));
    let owner = match &process.run {
        Some(id) => match app.models.by_run(id) {
            Some(model) => format!("model {}", model.name),
            None => app
                .runs
                .iter()
                .find(|run| &run.id == id)
                .map_or(id.as_str(), |run| run.label())
                .to_string(),
        },
        None => "not a reagent run".into(),
    };
    Line::styled(
        format!("     └ pid {:<8} {memory:>7}  {owner}", process.pid),
        Color::DarkGray,
    )
}

fn row<'a>(app: &App, gpu: &'a GpuInfo, history: &[u8], spark: usize) -> Line<'a> {
    let util = gpu.util_pct.unwrap_or(0);
    let util_color = match util {
        0..=49 => Color::Green,
        50..=84 => Color::Yellow,
        _ => Color::Red,
    };
    let name = if gpu.fake {
        format!("{} FAKE", gpu.name)
    } else {
        gpu.name.clone()
    };
    let opt = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let power = match (gpu.power_w, gpu.power_limit_w) {
        (Some(w), Some(limit)) => format!("{w:>3.0}/{limit:.0}W"),
        (Some(w), None) => format!("{w:.0}W"),
        _ => "-".into(),
    };
    let start = history.len().saturating_sub(spark);
    let spark_text: String = history[start..]
        .iter()
        .map(|&u| LEVELS[usize::from(u.min(100)) * (LEVELS.len() - 1) / 100])
        .collect();
    vec![
        Span::raw(format!("{:>2} {name:<18.18} ", gpu.index)),
        Span::styled(bar(f64::from(util) / 100.0), util_color),
        Span::raw(format!(
            " {:>4} ",
            opt(gpu.util_pct.map(|u| format!("{u}%")))
        )),
        Span::styled(bar(gpu.mem_fraction()), Color::Cyan),
        Span::raw(format!(
            " {:>5.1}/{:.0}G {:>5} {power:>9} ",
            gpu.mem_used_mib as f64 / 1024.0,
            gpu.mem_total_mib as f64 / 1024.0,
            opt(gpu.temp_c.map(|t| format!("{t}°C"))),
        )),
        Span::styled(format!("{spark_text:<spark$}"), util_color),
        Span::raw(format!(" {}", users(app, gpu))),
    ]
    .into()
}

/// A gauge of `GAUGE` cells.
fn bar(fraction: f64) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * GAUGE as f64).round() as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(GAUGE - filled))
}

/// The model server holding a GPU, then the runs using it (handed it by the queue, or with
/// a process on it), by label. A model's server is a run too: it is named once, as the model.
fn users(app: &App, gpu: &GpuInfo) -> String {
    let mut ids: Vec<&str> = gpu
        .processes
        .iter()
        .filter_map(|p| p.run.as_deref())
        .collect();
    ids.extend(gpu.assigned_to.as_deref());
    ids.sort_unstable();
    ids.dedup();
    let mut names: Vec<String> = gpu
        .model
        .iter()
        .map(|name| format!("model {name}"))
        .collect();
    for id in ids {
        let name = match app.models.by_run(id) {
            Some(model) => format!("model {}", model.name),
            None => app
                .runs
                .iter()
                .find(|r| r.id == id)
                .map_or(id, |r| r.label())
                .to_string(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

/// `GPU×2 43% 12/160G` (with FAKE in front for fake GPUs), or nothing without GPUs.
pub fn compact(report: &GpuReport) -> Option<String> {
    let gpus = &report.gpus;
    if gpus.is_empty() {
        return None;
    }
    let util: u32 = gpus.iter().filter_map(|g| g.util_pct).sum::<u32>() / gpus.len() as u32;
    let used: u64 = gpus.iter().map(|g| g.mem_used_mib).sum();
    let total: u64 = gpus.iter().map(|g| g.mem_total_mib).sum();
    let fake = if gpus.iter().any(|g| g.fake) {
        "FAKE "
    } else {
        ""
    };
    Some(format!(
        "{fake}GPU×{} {util}% {:.0}/{:.0}G",
        gpus.len(),
        used as f64 / 1024.0,
        total as f64 / 1024.0
    ))
}
