//! The models view (`L`, `:models`, or a side panel): a block per model server with its
//! state, GPUs and port; a progress bar while it launches (with why it waits); sparklines of
//! generated tokens/s and KV-cache use, the current figures and the peaks while it serves;
//! the reason, with the end of the server's log, when it failed. The footer names the keys.
//! Also the launch picker, a popup listing the recipes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use reagent::model::{GpuSelect, ModelInfo, ModelState, Recipe};
use reagent::time::format_duration_ms;

use super::border;
use super::overlays::centered;
use crate::app::App;
use crate::app::models::ServingSample;
use crate::app::state::{Focus, Link};
use crate::sanitize;

/// Cells of the launch progress bar.
const PROGRESS: usize = 20;
/// Lines of a failure's reason shown for the highlighted model, and for the others: the
/// reason can hold a hundred lines of the server's log, which the log pane shows whole.
const REASON_LINES: (usize, usize) = (8, 3);
/// Columns of a sparkline row around the line itself: its label, the value, the peak.
const SPARK_AROUND: usize = 8 + 8 + 12;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Draws the view in `area`; `panel` is the focus that lights its border.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let models = &app.models;
    let recipes = match models.recipes.len() {
        1 => "1 recipe".to_string(),
        n => format!("{n} recipes"),
    };
    let mut title = Line::raw(format!(" Models ({}) · {recipes} ", models.models.len()));
    if !matches!(app.link, Link::Connected { .. }) {
        title.push_span(Span::styled("· stale: not connected ", Color::Red));
    }
    let footer = " n launch · s stop · Enter its log · j/k move ";
    let block = Block::bordered()
        .title(title)
        .title_bottom(footer)
        .border_style(border(app, panel));
    let width = usize::from(area.width.saturating_sub(2));
    if models.models.is_empty() {
        frame.render_widget(Paragraph::new(empty(app)).block(block), area);
        return;
    }
    let mut lines = Vec::new();
    let mut shown = (0, 0);
    for (i, model) in models.models.iter().enumerate() {
        let selected = i == models.selected;
        let start = lines.len();
        lines.extend(block_of(app, model, selected, width));
        if selected {
            shown = (start, lines.len());
        }
    }
    // Scrolled so the highlighted model's block is whole on screen, its top first.
    let height = usize::from(area.height.saturating_sub(2));
    let scroll = shown.1.saturating_sub(height).min(shown.0);
    let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

/// What the view says without models: how to launch one.
fn empty(app: &App) -> Vec<Line<'static>> {
    let grey = Style::new().fg(Color::DarkGray);
    let recipes = &app.models.recipes;
    let hint = if recipes.is_empty() {
        "No recipes either: add them with `reagent recipe add FILE.toml`.".to_string()
    } else {
        let names: Vec<String> = recipes
            .iter()
            .map(|r| sanitize::line(&r.name).into_owned())
            .collect();
        format!("n launches one of: {}.", names.join(", "))
    };
    vec![
        Line::styled("No model servers.", grey),
        Line::styled(hint, grey),
    ]
}

/// A model's lines: its header, then what its state calls for.
fn block_of(app: &App, model: &ModelInfo, selected: bool, width: usize) -> Vec<Line<'static>> {
    let mut lines = vec![header(model, selected)];
    match model.state {
        ModelState::Ready => lines.extend(serving(app, model, width)),
        ModelState::Failed => lines.extend(failure(app, model, selected)),
        ModelState::Stopped | ModelState::Cancelled => {
            let mut facts = Vec::new();
            if let Some(ended) = model.ended_at {
                facts.push(format!("ended {} ago", format_duration_ms(app.now - ended)));
            }
            facts.extend(first_line(model.reason.as_deref()));
            if !facts.is_empty() {
                lines.push(Line::styled(
                    format!("  {}", facts.join(": ")),
                    Color::DarkGray,
                ));
            }
        }
        _ => lines.extend(launching(app, model)),
    }
    lines
}

/// The symbol and colour of a state.
fn badge(state: ModelState) -> (&'static str, Color) {
    match state {
        ModelState::Ready => ("●", Color::Green),
        ModelState::Failed => ("✗", Color::Red),
        ModelState::Stopped | ModelState::Cancelled => ("■", Color::DarkGray),
        ModelState::Requested | ModelState::WaitingLock => ("…", Color::Gray),
        _ => ("◌", Color::Yellow),
    }
}

/// `● qwen-7b  ready · vllm · GPUs 0,1 · port 8001`, reversed when highlighted.
fn header(model: &ModelInfo, selected: bool) -> Line<'static> {
    let (symbol, color) = badge(model.state);
    let mut facts = vec![model.state.to_string(), model.backend.to_string()];
    facts.push(match model.gpus[..] {
        [] => "no GPU".into(),
        [gpu] => format!("GPU {gpu}"),
        _ => format!("GPUs {}", ids(&model.gpus)),
    });
    if let Some(port) = model.port {
        facts.push(format!("port {port}"));
    }
    let name = Style::new().add_modifier(Modifier::BOLD);
    let mut line = Line::from(vec![
        Span::styled(format!("{symbol} "), color),
        Span::styled(sanitize::line(&model.name).into_owned(), name),
        Span::raw(format!("  {}", facts.join(" · "))),
    ]);
    if selected {
        line = line.style(Style::new().add_modifier(Modifier::REVERSED));
    }
    line
}

/// A launch in flight: the progress bar (under the header naming the state) with the time
/// since it was asked for, then why it waits, when it says.
fn launching(app: &App, model: &ModelInfo) -> Vec<Line<'static>> {
    let progress = usize::from(model.progress.min(100));
    let filled = progress * PROGRESS / 100;
    let elapsed = format_duration_ms(app.now - model.requested_at);
    let mut lines = vec![Line::from(vec![
        Span::raw("  "),
        Span::styled("█".repeat(filled), Color::Yellow),
        Span::styled("░".repeat(PROGRESS - filled), Color::DarkGray),
        Span::raw(format!(" {progress:>3}% · {elapsed}")),
    ])];
    if let Some(reason) = first_line(model.reason.as_deref()) {
        lines.push(Line::styled(format!("  {reason}"), Color::Yellow));
    }
    lines
}

/// A ready model: its sparklines with the current value and the peak, the queue and
/// latency, the requests served.
fn serving(app: &App, model: &ModelInfo, width: usize) -> Vec<Line<'static>> {
    let empty = Default::default();
    let history = app.models.history.get(&model.name).unwrap_or(&empty);
    let stats = model.serving.as_ref();
    let spark = width.saturating_sub(SPARK_AROUND).min(60);
    let gen_tps: Vec<Option<f64>> = history.iter().map(|s: &ServingSample| s.gen_tps).collect();
    let kv: Vec<Option<f64>> = history.iter().map(|s| s.kv_cache).collect();
    // Tokens/s are scaled to the highest seen, so the line shows the shape of the load; the
    // KV cache to its whole, so a full cache reads full.
    let top = gen_tps
        .iter()
        .flatten()
        .fold(model.peaks.gen_tps, |top, v| top.max(*v));
    let percent = |v: f64| format!("{:.0}%", v * 100.0);
    let peaks = &model.peaks;
    let mut lines = vec![
        spark_row(
            "tok/s",
            &sparkline(&gen_tps, top, spark),
            stats.and_then(|s| s.gen_tps).map(rate),
            (peaks.gen_tps > 0.0).then(|| rate(peaks.gen_tps)),
            Color::Green,
        ),
        spark_row(
            "KV",
            &sparkline(&kv, 1.0, spark),
            stats.and_then(|s| s.kv_cache).map(percent),
            (peaks.kv_cache > 0.0).then(|| percent(peaks.kv_cache)),
            Color::Cyan,
        ),
    ];
    let mut figures = Vec::new();
    if let Some(stats) = stats {
        if let Some(running) = stats.running {
            figures.push(format!("{running:.0} running"));
        }
        if let Some(waiting) = stats.waiting {
            let peak = if peaks.waiting > waiting {
                format!(" (peak {:.0})", peaks.waiting)
            } else {
                String::new()
            };
            figures.push(format!("{waiting:.0} waiting{peak}"));
        }
        if let Some(ttft) = stats.ttft_p50_ms {
            figures.push(format!("TTFT {ttft:.0} ms"));
        }
        if let Some(prompt) = stats.prompt_tps {
            figures.push(format!("prompt {} tok/s", rate(prompt)));
        }
    }
    if figures.is_empty() {
        figures.push("no serving figures yet".into());
    }
    lines.push(Line::raw(format!("  {}", figures.join(" · "))));
    let mut usage = vec![match model.requests {
        1 => "1 request".to_string(),
        n => format!("{n} requests"),
    }];
    if let Some(last) = model.last_request_at {
        usage.push(format!("last {} ago", format_duration_ms(app.now - last)));
    }
    if let Some(ready) = model.ready_at {
        usage.push(format!("up {}", format_duration_ms(app.now - ready)));
    }
    lines.push(Line::styled(
        format!("  {}", usage.join(" · ")),
        Color::DarkGray,
    ));
    lines
}

/// `  tok/s ▁▂▅▇  312  peak 540`.
fn spark_row(
    label: &str,
    line: &str,
    now: Option<String>,
    peak: Option<String>,
    color: Color,
) -> Line<'static> {
    let now = now.unwrap_or_else(|| "-".into());
    let peak = peak.map(|p| format!("  peak {p}")).unwrap_or_default();
    Line::from(vec![
        Span::raw(format!("  {label:<6}")),
        Span::styled(line.to_string(), color),
        Span::raw(format!(" {now:>6}{peak}")),
    ])
}

/// The newest of `values` in at most `width` eighth blocks scaled from 0 to `top`, oldest
/// first, padded to `width` so the figures after it stay in their column; a scrape without
/// the figure is a gap.
fn sparkline(values: &[Option<f64>], top: f64, width: usize) -> String {
    let start = values.len().saturating_sub(width);
    let shown = &values[start..];
    let mut line: String = shown
        .iter()
        .map(|value| match value {
            Some(v) if top > 0.0 => {
                let level = (v / top).clamp(0.0, 1.0) * (BARS.len() - 1) as f64;
                BARS[level.round() as usize]
            }
            Some(_) => BARS[0],
            None => ' ',
        })
        .collect();
    line.push_str(&" ".repeat(width - shown.len()));
    line
}

/// A rate in few characters: `8.5`, `312`, `1.8k`.
fn rate(value: f64) -> String {
    match value {
        v if v >= 1_000.0 => format!("{:.1}k", v / 1000.0),
        v if v >= 100.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// A failed model: the reason's first line, then the end of what follows it (a failure at
/// start carries the last lines of the server's log, and a log's end is where the error is),
/// each line as a terminal showed it and made safe to print.
fn failure(app: &App, model: &ModelInfo, selected: bool) -> Vec<Line<'static>> {
    let reason = model.reason.as_deref().unwrap_or("no reason given");
    let mut plain = crate::plain::Plain::default();
    let mut text = String::new();
    plain.feed(reason.as_bytes(), &mut text);
    plain.finish(&mut text);
    let mut rest = text.lines().filter(|line| !line.trim().is_empty());
    let first = rest.next().unwrap_or("no reason given");
    let when = match model.ended_at {
        Some(ended) => format!("ended {} ago: ", format_duration_ms(app.now - ended)),
        None => String::new(),
    };
    let red = Style::new().fg(Color::Red);
    let mut lines = vec![Line::styled(
        format!("  {when}{}", sanitize::line(first.trim())),
        red,
    )];
    let rest: Vec<&str> = rest.collect();
    let keep = if selected {
        REASON_LINES.0
    } else {
        REASON_LINES.1
    };
    let skipped = rest.len().saturating_sub(keep);
    if skipped > 0 {
        let hint = if model.run.is_some() {
            " · Enter shows its whole log"
        } else {
            ""
        };
        lines.push(Line::styled(
            format!("  │ … {skipped} earlier lines{hint}"),
            Color::DarkGray,
        ));
    }
    lines.extend(rest[skipped..].iter().map(|line| {
        Line::styled(
            format!("  │ {}", sanitize::line(line.trim_end())),
            Color::DarkGray,
        )
    }));
    lines
}

/// The first non-empty line of a reason, made safe to print.
fn first_line(reason: Option<&str>) -> Option<String> {
    let line = reason?.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(sanitize::line(line).into_owned())
}

/// `0,1`.
fn ids(gpus: &[u32]) -> String {
    let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
    ids.join(",")
}

/// The launch picker: every recipe, with what it serves on which GPUs and whether its model
/// already runs (a launch of a ready model returns it; of a launching one, joins it).
pub fn picker(app: &App, selected: usize, frame: &mut Frame<'_>) {
    let recipes = &app.models.recipes;
    let height = u16::try_from(recipes.len().clamp(1, 14) + 2).unwrap_or(16);
    let width = frame.area().width.min(72);
    let area = centered(frame.area(), width, height);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Launch a model — Enter launches, P preempts, Esc closes ")
        .border_style(Color::Cyan);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if recipes.is_empty() {
        let text = "no recipes: add them with `reagent recipe add FILE.toml`";
        frame.render_widget(Paragraph::new(text).style(Color::DarkGray), inner);
        return;
    }
    let items = recipes.iter().map(|recipe| recipe_item(app, recipe));
    let list = List::new(items)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▸ ");
    let selected = selected.min(recipes.len() - 1);
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, inner, &mut state);
}

/// `qwen-7b      vllm      2 GPUs   Qwen/Qwen2.5-7B-Instruct   (ready)`.
fn recipe_item(app: &App, recipe: &Recipe) -> ListItem<'static> {
    let gpus = match &recipe.gpus {
        GpuSelect::Count(0) => "CPU".to_string(),
        GpuSelect::Count(1) => "1 GPU".to_string(),
        GpuSelect::Count(n) => format!("{n} GPUs"),
        GpuSelect::Ids(list) if list.len() == 1 => format!("GPU {}", ids(list)),
        GpuSelect::Ids(list) => format!("GPUs {}", ids(list)),
    };
    let mut spans = vec![
        Span::styled(
            format!("{:<16} ", sanitize::line(&recipe.name)),
            Modifier::BOLD,
        ),
        Span::raw(format!("{:<9}{gpus:<9}", recipe.backend.as_str())),
        Span::styled(sanitize::line(&recipe.model).into_owned(), Color::DarkGray),
    ];
    let state = app
        .models
        .get(&recipe.name)
        .map(|m| m.state)
        .filter(|state| !state.is_terminal());
    if let Some(state) = state {
        let (_, color) = badge(state);
        let word = if state == ModelState::Ready {
            "ready"
        } else {
            "launching"
        };
        spans.push(Span::styled(format!("  ({word})"), color));
    }
    ListItem::new(Line::from(spans))
}
