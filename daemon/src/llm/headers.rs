//! What a response's headers say about waiting and limits.
//!
//! `retry_after` tells the driver how long a 429 or 529 asks it to wait; `rate_limit_headers`
//! picks the headers worth showing in the TUI (remaining requests and tokens, reset times,
//! request ids for a bug report, LiteLLM's cost). Both take the headers as plain strings, so
//! they work with any HTTP client and are tested without one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the server asks us to wait before retrying, from `retry-after-ms` (OpenAI's, more
/// precise) or `retry-after` (seconds, or an HTTP date). `headers` looks a header up by its
/// lower-case name. Reads the clock only for the HTTP-date form.
pub fn retry_after(headers: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with the current time given, so the HTTP-date form can be tested.
pub fn retry_after_at(
    headers: impl Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = headers("retry-after-ms").and_then(|v| seconds(&v)) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers("retry-after")?;
    if let Some(secs) = seconds(&value) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = UNIX_EPOCH + Duration::from_secs(http_date(&value)?);
    // A date already past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-negative, finite number of seconds (or milliseconds), as the SDKs accept it.
fn seconds(value: &str) -> Option<f64> {
    let number: f64 = value.trim().parse().ok()?;
    // Far-future values are capped at a day: nobody waits longer, and it keeps the
    // conversion to a `Duration` in range.
    (number.is_finite() && number >= 0.0).then_some(number.min(86_400.0))
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only
/// HTTP-date form servers send today.
fn http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let (_weekday, day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if zone != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|n| n.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

/// Exact names worth showing: retry hints and request ids (quoted in a bug report).
const NAMES: [&str; 6] = [
    "retry-after",
    "retry-after-ms",
    "x-request-id",
    "request-id",
    "openai-processing-ms",
    "x-should-retry",
];

/// Name prefixes worth showing: OpenAI's and Anthropic's rate limits, the ChatGPT/Codex plan
/// windows, and LiteLLM's cost and timing.
const PREFIXES: [&str; 8] = [
    "x-ratelimit-",
    "anthropic-ratelimit-",
    "x-codex-primary-",
    "x-codex-secondary-",
    "x-litellm-response-cost",
    "x-litellm-overhead-duration-ms",
    "x-litellm-response-duration-ms",
    "x-litellm-key-spend",
];

/// What LiteLLM prefixes to each upstream header it echoes.
const LITELLM_ECHO: &str = "llm_provider-";

fn worth_showing(name: &str) -> bool {
    NAMES.contains(&name) || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// The (lower-case name, value) pairs worth showing in the TUI, sorted by name so the display
/// does not jump around. LiteLLM's `llm_provider-` echoes are kept only when the header
/// itself did not come through, so nothing shows twice.
pub fn rate_limit_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let all: Vec<(String, &str)> = headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let mut shown: Vec<(String, String)> = all
        .iter()
        .filter(|(name, _)| match name.strip_prefix(LITELLM_ECHO) {
            Some(inner) => worth_showing(inner) && !all.iter().any(|(n, _)| n == inner),
            None => worth_showing(name),
        })
        .map(|(name, value)| (name.clone(), (*value).to_owned()))
        .collect();
    shown.sort();
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30
        let at = |pairs: &[(&str, &str)]| retry_after_at(lookup(pairs), now);
        assert_eq!(at(&[("retry-after", "20")]), Some(Duration::from_secs(20)));
        assert_eq!(
            at(&[("retry-after", " 1.5 ")]),
            Some(Duration::from_millis(1500))
        );
        let both = [("retry-after", "2"), ("retry-after-ms", "250")];
        assert_eq!(at(&both), Some(Duration::from_millis(250)));
        let bad_ms = [("retry-after", "2"), ("retry-after-ms", "soon")];
        assert_eq!(at(&bad_ms), Some(Duration::from_secs(2)));
        let date = [("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")];
        assert_eq!(at(&date), Some(Duration::from_secs(7)));
        let past = [("retry-after", "Sat, 05 Nov 1994 08:49:37 GMT")];
        assert_eq!(at(&past), Some(Duration::ZERO));
        for bad in [
            "-1",
            "NaN",
            "inf",
            "",
            "tomorrow",
            "Sun, 06 Nov 1994 08:49:37 PST",
        ] {
            assert_eq!(at(&[("retry-after", bad)]), None, "{bad}");
        }
        assert_eq!(at(&[]), None);
        assert_eq!(
            at(&[("retry-after", "1e30")]),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn http_dates_match_known_epochs() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000)
        );
        assert_eq!(http_date("Thu, 29 Foo 2024 12:00:00 GMT"), None);
    }

    #[test]
    fn only_the_headers_worth_showing() {
        let headers = [
            ("content-type", "text/event-stream"),
            ("X-RateLimit-Remaining-Requests", "59"),
            ("x-ratelimit-reset-tokens", "1m0s"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2024-01-01T00:00:00Z",
            ),
            ("request-id", "req_1"),
            ("x-should-retry", "true"),
            ("x-codex-primary-used-percent", "42"),
            ("x-codex-secondary-reset-after-seconds", "3600"),
            ("x-litellm-response-cost", "0.0012"),
            ("llm_provider-x-ratelimit-remaining-requests", "59"),
            ("llm_provider-anthropic-ratelimit-tokens-limit", "80000"),
            ("llm_provider-content-type", "text/event-stream"),
            ("set-cookie", "secret"),
        ];
        let names: Vec<String> = rate_limit_headers(headers)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "anthropic-ratelimit-output-tokens-reset",
                "llm_provider-anthropic-ratelimit-tokens-limit",
                "request-id",
                "x-codex-primary-used-percent",
                "x-codex-secondary-reset-after-seconds",
                "x-litellm-response-cost",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-tokens",
                "x-should-retry",
            ]
        );
    }
}
