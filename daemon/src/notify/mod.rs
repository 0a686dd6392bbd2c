//! Notifications: word of alerts and run endings sent to Slack, Telegram or the desktop.
//!
//! [`Notifier::send`] only queues: a dispatcher task hands each notice to every sink the config
//! routes its kind to, one task per delivery, so a slow or failing endpoint never holds up the
//! daemon or the other sinks. A delivery is retried after 1, 2 and 4 seconds, then logged and
//! dropped. Webhook URLs and bot tokens stay in [`Secret`]s and are scrubbed from every error.

mod desktop;
mod slack;
mod telegram;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use reagent::config::Config;
use reagent::config::notify::Sink;
use reagent::run::{RunInfo, RunStatus};
use tokio::sync::mpsc;

use crate::secret::Secret;

/// Waits between attempts of one delivery; after the last, the notice is dropped.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// What a notice is about; the config routes each kind to its sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// An alert was raised on a run.
    Alert,
    /// A run failed.
    RunFailed,
    /// A run finished (exit code 0).
    RunFinished,
}

/// One message for people, whatever the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Which routing applies.
    pub kind: NoticeKind,
    /// One line: what happened to what.
    pub title: String,
    /// Details, a few lines at most.
    pub body: String,
}

/// The daemon's way out to people. Cheap to call from anywhere, even under the state lock.
pub struct Notifier {
    /// The dispatcher's queue; `None` when no kind is routed anywhere.
    queue: Option<mpsc::UnboundedSender<Notice>>,
}

/// Every usable sink, and the routes from kinds to sinks.
struct Sinks {
    http: reqwest::Client,
    slack: Option<slack::Slack>,
    telegram: Option<telegram::Telegram>,
    desktop: Option<desktop::Desktop>,
    routes: [(NoticeKind, Vec<Sink>); 3],
}

impl Notifier {
    /// Reads `[notify]`, loads the secrets and starts the dispatcher (on the current tokio
    /// runtime). A route to a sink with no table is an error; a sink whose secret cannot be
    /// read, or a desktop without its program, is logged and left out.
    pub fn from_config(config: &Config) -> anyhow::Result<Notifier> {
        let notify = &config.notify;
        let routes = [
            (NoticeKind::Alert, notify.alert.clone()),
            (NoticeKind::RunFailed, notify.run_failed.clone()),
            (NoticeKind::RunFinished, notify.run_finished.clone()),
        ];
        let used = |sink| routes.iter().any(|(_, sinks)| sinks.contains(&sink));
        if !Sink::ALL.into_iter().any(used) {
            return Ok(Notifier { queue: None });
        }
        let slack = match (&notify.slack, used(Sink::Slack)) {
            (Some(slack), true) => usable(Sink::Slack, slack::Slack::from_config(slack)?),
            (None, true) => bail!("[notify] sends to `slack`, but there is no [notify.slack]"),
            (_, false) => None,
        };
        let telegram = match (&notify.telegram, used(Sink::Telegram)) {
            (Some(tg), true) => usable(Sink::Telegram, telegram::Telegram::from_config(tg)?),
            (None, true) => {
                bail!("[notify] sends to `telegram`, but there is no [notify.telegram]")
            }
            (_, false) => None,
        };
        let desktop = if used(Sink::Desktop) {
            usable(
                Sink::Desktop,
                desktop::Desktop::from_config(&notify.desktop),
            )
        } else {
            None
        };
        // reqwest is built without a default TLS provider; ring is the one compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .build()?;
        let sinks = Sinks {
            http,
            slack,
            telegram,
            desktop,
            routes,
        };
        let (queue, notices) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(Arc::new(sinks), notices));
        Ok(Notifier { queue: Some(queue) })
    }

    /// Queues a notice for the sinks its kind is routed to; returns at once and never fails.
    pub fn send(&self, notice: Notice) {
        if let Some(queue) = &self.queue {
            // The dispatcher lives as long as the runtime; a send fails only at shutdown.
            let _ = queue.send(notice);
        }
    }

    /// Tells of a run that just failed or finished; other statuses say nothing.
    pub fn run_ended(&self, run: &RunInfo) {
        let (kind, verb) = match run.status {
            RunStatus::Failed => (NoticeKind::RunFailed, "failed"),
            RunStatus::Finished => (NoticeKind::RunFinished, "finished"),
            _ => return,
        };
        let mut body = format!("$ {}", run.command_line());
        if let Some(reason) = &run.reason {
            body = format!("{reason}\n{body}");
        }
        self.send(Notice {
            kind,
            title: format!("reagent: run {} {verb}", run.label()),
            body,
        });
    }
}

/// A sink that loaded, or `None` after logging why it did not.
fn usable<T>(sink: Sink, loaded: Result<T, String>) -> Option<T> {
    loaded
        .map_err(|why| tracing::warn!("notify: {} is off: {why}", sink.as_str()))
        .ok()
}

impl Sinks {
    fn routed(&self, kind: NoticeKind) -> &[Sink] {
        self.routes
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, sinks)| sinks.as_slice())
    }

    /// One attempt at one sink; the error is already free of secrets.
    async fn deliver(&self, sink: Sink, notice: &Notice) -> Option<Result<(), String>> {
        Some(match sink {
            Sink::Slack => self.slack.as_ref()?.send(&self.http, notice).await,
            Sink::Telegram => self.telegram.as_ref()?.send(&self.http, notice).await,
            Sink::Desktop => self.desktop.as_ref()?.send(notice).await,
        })
    }
}

async fn dispatch(sinks: Arc<Sinks>, mut notices: mpsc::UnboundedReceiver<Notice>) {
    while let Some(notice) = notices.recv().await {
        let notice = Arc::new(notice);
        for &sink in sinks.routed(notice.kind) {
            tokio::spawn(deliver_with_retries(sinks.clone(), sink, notice.clone()));
        }
    }
}

async fn deliver_with_retries(sinks: Arc<Sinks>, sink: Sink, notice: Arc<Notice>) {
    let name = sink.as_str();
    for attempt in 0..=BACKOFF.len() {
        match sinks.deliver(sink, &notice).await {
            // Left out at startup, with a log line then.
            None => return,
            Some(Ok(())) => {
                tracing::debug!("notify: {name} got `{}`", notice.title);
                return;
            }
            Some(Err(err)) => match BACKOFF.get(attempt) {
                Some(&wait) => {
                    tracing::info!("notify: {name} failed ({err}); retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
                None => tracing::warn!(
                    "notify: {name} failed {} times, dropping `{}`: {err}",
                    BACKOFF.len() + 1,
                    notice.title
                ),
            },
        }
    }
}

/// A request's error in words, with its causes, and with the URL and the secret left out.
fn http_error(err: reqwest::Error, secret: &Secret) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    // reqwest's own text is terse ("error sending request"); its causes say why.
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    secret.scrub(&text)
}

/// An HTTP answer's status as an error unless it is a success.
fn check_status(response: &reqwest::Response) -> Result<(), String> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[tokio::test]
    async fn notices_reach_the_sinks_their_kind_is_routed_to() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("shown");
        let script = dir.path().join("notifier");
        let body = format!("#!/bin/sh\necho \"$1\" >> {}\n", record.display());
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut config = Config::default();
        config.notify.run_failed = vec![Sink::Desktop];
        config.notify.desktop.command = script.display().to_string();
        let notifier = Notifier::from_config(&config).unwrap();
        for (kind, title) in [
            (NoticeKind::RunFinished, "not routed"),
            (NoticeKind::RunFailed, "routed"),
        ] {
            notifier.send(Notice {
                kind,
                title: title.into(),
                body: String::new(),
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !record.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "routed\n");
    }

    #[test]
    fn a_route_to_a_sink_without_its_table_is_an_error() {
        let mut config = Config::default();
        config.notify.alert = vec![Sink::Slack];
        let err = Notifier::from_config(&config).err().unwrap().to_string();
        assert!(err.contains("no [notify.slack]"), "{err}");
    }
}
