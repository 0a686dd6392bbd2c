//! The gateway usage view: the gateway's request log for the last day, as `gateway.log`
//! answered when the view opened (or `r` asked again), totalled per token, with the newest
//! requests below. The log is read, never followed: the view is a report, not a live feed.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use reagent::gateway::{GatewayOutcome, GatewayRequest};
use reagent::protocol::GatewayLog;

use super::keys;
use super::state::App;
use super::update::{Effect, act};

/// How far back the view reads, ms: one day.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// At most this many requests are asked for (the newest): a day of a busy gateway fits,
/// and a reply stays a reply.
pub const LIMIT: usize = 10_000;
/// Requests listed below the totals, newest first.
pub const RECENT: usize = 20;

/// The gateway usage view's state.
#[derive(Debug, Default)]
pub struct Gateway {
    /// The requests of the last answer, oldest first; `None` until one came.
    pub requests: Option<Vec<GatewayRequest>>,
}

/// One token's requests, totalled.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUsage {
    /// The token's name.
    pub token: String,
    /// Requests made with it.
    pub requests: usize,
    /// Those whose outcome was not `ok`.
    pub errors: usize,
    /// Prompt tokens, as the upstreams reported them.
    pub tokens_in: u64,
    /// Answer tokens, as the upstreams reported them.
    pub tokens_out: u64,
    /// What they cost; `None` when no request had a price.
    pub cost: Option<f64>,
    /// The median time to first byte, ms, of the requests that got one.
    pub p50_ttfb_ms: Option<f64>,
    /// When the newest arrived, ms since the epoch.
    pub last_ts: i64,
}

/// The `gateway.log` query the view makes at `now`: the last day, the newest [`LIMIT`].
pub fn query(now: i64) -> GatewayLog {
    GatewayLog {
        token: None,
        since_ms: Some(now - WINDOW_MS),
        limit: Some(LIMIT),
    }
}

/// Totals `requests` per token, the busiest token first (then by name).
pub fn by_token(requests: &[GatewayRequest]) -> Vec<TokenUsage> {
    let mut tokens: BTreeMap<&str, (TokenUsage, Vec<f64>)> = BTreeMap::new();
    for request in requests {
        let (usage, ttfbs) = tokens.entry(&request.token).or_insert_with(|| {
            let usage = TokenUsage {
                token: request.token.clone(),
                requests: 0,
                errors: 0,
                tokens_in: 0,
                tokens_out: 0,
                cost: None,
                p50_ttfb_ms: None,
                last_ts: request.ts,
            };
            (usage, Vec::new())
        });
        usage.requests += 1;
        usage.errors += usize::from(request.outcome != GatewayOutcome::Ok);
        usage.tokens_in += request.tokens_in.unwrap_or(0);
        usage.tokens_out += request.tokens_out.unwrap_or(0);
        if let Some(cost) = request.cost {
            usage.cost = Some(usage.cost.unwrap_or(0.0) + cost);
        }
        usage.last_ts = usage.last_ts.max(request.ts);
        ttfbs.extend(request.ttfb_ms.filter(|ms| ms.is_finite()));
    }
    let mut totals: Vec<TokenUsage> = tokens
        .into_values()
        .map(|(mut usage, mut ttfbs)| {
            ttfbs.sort_by(f64::total_cmp);
            usage.p50_ttfb_ms = median(&ttfbs);
            usage
        })
        .collect();
    totals.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.token.cmp(&b.token)));
    totals
}

/// The middle of sorted `values` (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => values.get(mid).copied(),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

/// The newest [`RECENT`] requests, newest first.
pub fn recent(requests: &[GatewayRequest]) -> Vec<&GatewayRequest> {
    let mut newest: Vec<&GatewayRequest> = requests.iter().collect();
    newest.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.id.cmp(&a.id)));
    newest.truncate(RECENT);
    newest
}

/// Opens the view (from the palette or its key) and asks for the log.
pub fn open(app: &mut App) -> Vec<Effect> {
    app.view = super::state::View::Gateway;
    app.focus = super::state::Focus::Runs;
    refresh(app)
}

/// Asks for the last day's log again.
pub fn refresh(app: &mut App) -> Vec<Effect> {
    vec![Effect::ask(query(app.now))]
}

/// A key in the gateway view: `r` reads the log again, then the cockpit-wide keys.
pub fn key(app: &mut App, key: &KeyEvent) -> Vec<Effect> {
    app.flash = None;
    if key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return Vec::new();
    }
    match (key.code, keys::action_for(key)) {
        (KeyCode::Char('r'), _) => refresh(app),
        (_, Some(action)) if action.is_global() => act(app, action),
        _ => Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use reagent::config::PrefixKey;
    use reagent::gateway::{GatewayOutcome, GatewayRequest, GatewayRoute};

    use super::{by_token, median, query, recent};
    use crate::app::App;
    use crate::app::conversation::Plain;
    use crate::app::palette::execute;
    use crate::app::state::View;
    use crate::app::update::{Effect, on_key};

    /// A request by `token` at `ts` that ended `outcome`, with usage and a price.
    pub(crate) fn request(
        id: i64,
        token: &str,
        ts: i64,
        outcome: GatewayOutcome,
    ) -> GatewayRequest {
        GatewayRequest {
            id,
            ts,
            token: token.into(),
            route: GatewayRoute::Local,
            model: "qwen-7b".into(),
            status: if outcome == GatewayOutcome::Ok {
                200
            } else {
                502
            },
            ttfb_ms: (outcome == GatewayOutcome::Ok).then_some(100.0 * id as f64),
            duration_ms: 1_000.0 + id as f64,
            tokens_in: Some(10),
            tokens_out: Some(20),
            cost: Some(0.5),
            outcome,
            detail: None,
            body: None,
        }
    }

    #[test]
    fn requests_total_per_token_busiest_first() {
        let mut free = request(4, "ci", 4_000, GatewayOutcome::Ok);
        free.cost = None;
        free.tokens_in = None;
        let log = vec![
            request(1, "alice", 1_000, GatewayOutcome::Ok),
            request(2, "ci", 2_000, GatewayOutcome::UpstreamError),
            request(3, "alice", 3_000, GatewayOutcome::Ok),
            free,
            request(5, "alice", 2_500, GatewayOutcome::ClientGone),
            request(6, "ci", 6_000, GatewayOutcome::Ok),
        ];
        let totals = by_token(&log);
        assert_eq!(totals.len(), 2);
        let (alice, ci) = (&totals[0], &totals[1]);
        assert_eq!((alice.token.as_str(), ci.token.as_str()), ("alice", "ci"));
        assert_eq!((alice.requests, alice.errors), (3, 1));
        assert_eq!((alice.tokens_in, alice.tokens_out), (30, 60));
        assert_eq!(alice.cost, Some(1.5));
        assert_eq!(
            alice.p50_ttfb_ms,
            Some(200.0),
            "ttfb of the two that got one"
        );
        assert_eq!(alice.last_ts, 3_000, "the newest, not the last listed");
        assert_eq!((ci.requests, ci.errors, ci.tokens_in), (3, 1, 20));
        assert_eq!(ci.cost, Some(1.0), "unpriced requests add nothing");
        assert_eq!(ci.p50_ttfb_ms, Some(500.0));
        assert!(by_token(&[]).is_empty());
    }

    #[test]
    fn unpriced_tokens_have_no_cost_and_medians_of_odd_counts_are_the_middle() {
        let mut unpriced = request(1, "bob", 1_000, GatewayOutcome::Refused);
        unpriced.cost = None;
        let totals = by_token(&[unpriced]);
        assert_eq!(totals[0].cost, None);
        assert_eq!(totals[0].p50_ttfb_ms, None);
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
    }

    #[test]
    fn recent_is_newest_first_and_the_query_is_the_last_day() {
        let log: Vec<_> = (0..30)
            .map(|i| request(i, "ci", i * 10, GatewayOutcome::Ok))
            .collect();
        let newest = recent(&log);
        assert_eq!(newest.len(), super::RECENT);
        assert_eq!(newest[0].id, 29);
        let asked = query(super::WINDOW_MS + 5);
        assert_eq!(asked.since_ms, Some(5));
        assert_eq!(asked.limit, Some(super::LIMIT));
    }

    #[test]
    fn the_view_asks_for_the_last_day_when_opened_and_on_r() {
        let now = 5 * super::WINDOW_MS;
        let mut app = App::new("local", PrefixKey('b'), (120, 30), now, Box::new(Plain));
        let asked = [Effect::ask(query(now))];
        assert_eq!(execute(&mut app, "gateway"), asked);
        assert_eq!(app.view, View::Gateway);
        let press =
            |app: &mut App, c| on_key(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        assert_eq!(press(&mut app, 'r'), asked, "r reads the log again");
        assert!(press(&mut app, 'U').is_empty(), "U goes back to the runs");
        assert_eq!(app.view, View::Runs);
        assert_eq!(press(&mut app, 'U'), asked);
        assert_eq!(app.view, View::Gateway);
    }
}
