//! The gateway usage view: the last day's requests totalled per token (requests, errors,
//! tokens, cost, median time to first byte, last request), the newest requests below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Text;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use reagent::gateway::{GatewayOutcome, GatewayRequest};
use reagent::time::{format_duration_ms, utc_time};

use super::border;
use crate::app::App;
use crate::app::gateway::{RECENT, TokenUsage, by_token, recent};
use crate::app::state::Focus;

/// Draws the gateway usage view in `area`.
pub fn render(app: &App, frame: &mut Frame<'_>, area: Rect, panel: Focus) {
    let block = |title: String| {
        Block::bordered()
            .title(title)
            .border_style(border(app, panel))
    };
    let Some(requests) = &app.gateway.requests else {
        let text = Paragraph::new("reading the gateway's request log…")
            .block(block(" Gateway · last 24 h · r refresh ".into()));
        frame.render_widget(text, area);
        return;
    };
    let title = format!(
        " Gateway · last 24 h · {} requests · r refresh ",
        requests.len()
    );
    if requests.is_empty() {
        let text = Paragraph::new(
            "no gateway requests in the last 24 h: clients reach /v1 with a token from \
             `reagent token create`",
        )
        .block(block(title));
        frame.render_widget(text, area);
        return;
    }
    let newest = recent(requests);
    let below = u16::try_from(newest.len().min(RECENT)).unwrap_or(0) + 3;
    let [tokens, listed] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(below)]).areas(area);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let rows = by_token(requests).into_iter().map(|t| token_row(app, t));
    let widths = [
        Constraint::Min(12),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(10),
    ];
    let header = Row::new([
        "token",
        "requests",
        "errors",
        "tokens in",
        "out",
        "cost",
        "p50 ttfb",
        "last",
    ])
    .style(bold);
    let table = Table::new(rows, widths).header(header).block(block(title));
    frame.render_widget(table, tokens);

    let rows = newest.into_iter().map(request_row);
    let widths = [
        Constraint::Length(12),
        Constraint::Min(10),
        Constraint::Min(10),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(14),
    ];
    let header = Row::new([
        "time", "token", "model", "route", "status", "duration", "outcome",
    ])
    .style(bold);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(" Newest requests ".into()));
    frame.render_widget(table, listed);
}

fn token_row(app: &App, usage: TokenUsage) -> Row<'static> {
    let error_style = if usage.errors > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    Row::new([
        Text::raw(usage.token),
        usage.requests.to_string().into(),
        Text::styled(usage.errors.to_string(), error_style),
        count(usage.tokens_in).into(),
        count(usage.tokens_out).into(),
        usage.cost.map_or("-".into(), |c| format!("${c:.4}")).into(),
        usage
            .p50_ttfb_ms
            .map_or("-".into(), |ms| format_duration_ms(ms.round() as i64))
            .into(),
        format!("{} ago", format_duration_ms(app.now - usage.last_ts)).into(),
    ])
}

fn request_row(request: &GatewayRequest) -> Row<'static> {
    let color = match request.outcome {
        GatewayOutcome::Ok => Color::Reset,
        GatewayOutcome::ClientGone | GatewayOutcome::Cancelled => Color::Yellow,
        _ => Color::Red,
    };
    Row::new([
        utc_time(request.ts),
        request.token.clone(),
        request.model.clone(),
        request.route.as_str().to_string(),
        request.status.to_string(),
        format_duration_ms(request.duration_ms.round() as i64),
        request.outcome.as_str().to_string(),
    ])
    .style(Style::new().fg(color))
}

/// A token count in thousands or millions past ten thousand, so columns stay narrow.
fn count(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..10_000_000 => format!("{}k", n / 1000),
        _ => format!("{}M", n / 1_000_000),
    }
}
