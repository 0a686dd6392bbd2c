//! A stand-in webhook endpoint (Slack, Telegram) on loopback: real HTTP, every request
//! recorded, every answer the status the test chose (`200 OK`, or `500` to test retries).

use std::sync::{Arc, Mutex};

use super::http::{self, Seen};

/// The server; it lives as long as the test process.
pub struct MockHook {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every request so far.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockHook {
    /// Starts a server that answers every request with `status`, e.g. `200 OK`.
    pub fn start(status: &'static str) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let url = http::serve(move |stream| {
            if let Some(request) = http::read_request(&stream) {
                log.lock().expect("log").push(request);
                http::respond(&stream, status, r#"{"ok":true}"#);
            }
        });
        Self { url, seen }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }
}
