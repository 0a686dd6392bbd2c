//! Polling a server's health path. The interval is short (50 ms by default) so a launch is
//! seen ready within a poll of the server answering healthy, not seconds later; each poll is
//! one GET on a kept-alive loopback connection, cheap for the daemon and the server.

use std::time::Duration;

/// How long one poll may take: a server busy loading can be slow to answer.
const POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns once `url` answers 200; polls every `interval` until then (forever: the caller
/// bounds it).
pub async fn until_healthy(http: &reqwest::Client, url: &str, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if is_healthy(http, url).await {
            return;
        }
    }
}

/// Whether `url` answers 200 now.
pub async fn is_healthy(http: &reqwest::Client, url: &str) -> bool {
    let answer = http.get(url).timeout(POLL_TIMEOUT).send().await;
    answer.is_ok_and(|response| response.status() == reqwest::StatusCode::OK)
}
