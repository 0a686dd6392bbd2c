//! Each client's outgoing queue, capped in bytes.
//!
//! Broadcasting never waits on a client: it appends an already-encoded line to every
//! subscriber's outbox and moves on, and one writer task per connection drains it. A client
//! that stops reading fills its outbox; past the cap, what was queued for it is dropped and it
//! is told to resync. The daemon's memory stays bounded and nobody else slows down — unlike
//! tmux (which drops output silently) or a server that buffers without limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use reagent::connection::encode_line;
use reagent::protocol::{Notification, OutgoingNotification, Resync};
use tokio::sync::{Notify, watch};

/// One encoded line, shared by every outbox it is broadcast to.
pub type Line = Arc<[u8]>;

/// Encodes a notification once, for any number of outboxes.
pub fn encode_notification(notification: &Notification) -> Line {
    encode_line(&OutgoingNotification {
        jsonrpc: "2.0",
        notification,
    })
    .into()
}

/// Encodes an `output` notification straight into its line: the hot path of a flooding job,
/// where going through serde would copy the bytes and scan base64 for escapes it never needs.
/// Run ids are hex, so nothing here needs escaping either.
pub fn encode_output(run: &str, offset: u64, data: &[u8]) -> Line {
    use base64::Engine as _;
    let mut line = Vec::with_capacity(data.len() * 4 / 3 + 96);
    line.extend_from_slice(br#"{"jsonrpc":"2.0","method":"output","params":{"run":""#);
    line.extend_from_slice(run.as_bytes());
    line.extend_from_slice(format!(r#"","offset":{offset},"data":""#).as_bytes());
    let start = line.len();
    let encoded = base64::encoded_len(data.len(), true).unwrap_or(0);
    line.resize(start + encoded, 0);
    // The buffer is exactly the encoded length, so this cannot run short.
    let _ = base64::engine::general_purpose::STANDARD.encode_slice(data, &mut line[start..]);
    line.extend_from_slice(b"\"}}\n");
    line.into()
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Not queued: the client fell behind (or left) and must resync first.
    Dropped,
}

/// A connection's outgoing queue.
pub struct Outbox {
    inner: Mutex<Inner>,
    wake: Notify,
    cap: usize,
    /// Becomes true when the writer task has ended.
    done: watch::Sender<bool>,
}

#[derive(Default)]
struct Inner {
    /// Lines with whether they may be dropped on overflow (replies may not).
    queue: VecDeque<(Line, bool)>,
    bytes: usize,
    /// Set on overflow; droppable lines are refused until the client resyncs.
    lagging: bool,
    closed: bool,
}

impl Outbox {
    /// An empty outbox holding at most `cap` bytes of droppable lines.
    pub fn new(cap: usize) -> Arc<Self> {
        let done = watch::channel(false).0;
        Arc::new(Self {
            inner: Mutex::default(),
            wake: Notify::new(),
            cap,
            done,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a reply. Replies are never dropped: the client is waiting for them, and their
    /// number is bounded by the requests it sends.
    pub fn reply(&self, line: Line) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.bytes += line.len();
        inner.queue.push_back((line, false));
        drop(inner);
        self.wake.notify_one();
    }

    /// Queues an event or output line, or drops everything droppable and tells the client to
    /// resync when the cap would be exceeded.
    pub fn push(&self, line: &Line) -> Pushed {
        let mut inner = self.lock();
        if inner.closed || inner.lagging {
            return Pushed::Dropped;
        }
        if inner.bytes + line.len() > self.cap {
            inner.queue.retain(|(_, droppable)| !droppable);
            inner.bytes = inner.queue.iter().map(|(line, _)| line.len()).sum();
            inner.lagging = true;
            let reason = format!("client fell more than {} bytes behind", self.cap);
            let resync = encode_notification(&Notification::Resync(Resync { reason }));
            inner.bytes += resync.len();
            inner.queue.push_back((resync, false));
            drop(inner);
            self.wake.notify_one();
            return Pushed::Dropped;
        }
        inner.bytes += line.len();
        inner.queue.push_back((line.clone(), true));
        drop(inner);
        self.wake.notify_one();
        Pushed::Queued
    }

    /// The client resynced (said `hello` again): accept lines again.
    pub fn resume(&self) {
        self.lock().lagging = false;
    }

    /// Whether the connection is gone; subscribers use it to forget closed outboxes.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Accepts nothing more, but lets the writer send what is queued, then end.
    pub fn finish(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Marks the connection gone, drops what is queued, and wakes the writer so it can exit.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.queue.clear();
        inner.bytes = 0;
        drop(inner);
        self.wake.notify_one();
    }

    /// Waits for the next lines to write; `None` once closed and drained.
    pub async fn next_batch(&self, batch: &mut Vec<Line>) -> Option<()> {
        loop {
            {
                let mut inner = self.lock();
                if !inner.queue.is_empty() {
                    // Take a batch so one write syscall can carry many small lines.
                    let mut taken = 0;
                    while let Some((line, _)) = inner.queue.pop_front() {
                        taken += line.len();
                        batch.push(line);
                        if taken >= 256 * 1024 {
                            break;
                        }
                    }
                    inner.bytes -= taken;
                    return Some(());
                }
                if inner.closed {
                    return None;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Called by the writer task as it ends.
    pub fn writer_done(&self) {
        self.done.send_replace(true);
    }

    /// Waits until the writer has sent everything queued before [`Outbox::finish`] and ended.
    pub async fn flushed(&self) {
        let _ = self.done.subscribe().wait_for(|done| *done).await;
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Line {
        vec![b'x'; n].into()
    }

    #[tokio::test]
    async fn overflow_drops_events_keeps_replies_and_asks_for_resync() {
        let outbox = Outbox::new(100);
        outbox.reply(line(10));
        assert_eq!(outbox.push(&line(60)), Pushed::Queued);
        assert_eq!(outbox.push(&line(60)), Pushed::Dropped);
        assert_eq!(
            outbox.push(&line(1)),
            Pushed::Dropped,
            "lagging until resync"
        );
        let mut batch = Vec::new();
        outbox.next_batch(&mut batch).await.unwrap();
        assert_eq!(batch.len(), 2, "the reply and the resync notice");
        assert_eq!(batch[0].len(), 10);
        assert!(String::from_utf8_lossy(&batch[1]).contains("\"resync\""));
        assert_eq!(outbox.queued_bytes(), 0);
        outbox.resume();
        assert_eq!(outbox.push(&line(1)), Pushed::Queued);
    }

    #[test]
    fn hand_encoded_output_is_the_protocol_message() {
        use reagent::protocol::{Blob, Output};
        let data = vec![0u8, 255, b'"', b'\\', b'\n', 0x1b];
        let line = encode_output("ab12cd34", 42, &data);
        let expected = Notification::Output(Output {
            run: "ab12cd34".into(),
            offset: 42,
            data: Blob(data),
        });
        assert_eq!(line, encode_notification(&expected));
    }

    #[tokio::test]
    async fn a_closed_outbox_ends_the_writer() {
        let outbox = Outbox::new(100);
        outbox.close();
        assert_eq!(outbox.push(&line(1)), Pushed::Dropped);
        assert!(outbox.next_batch(&mut Vec::new()).await.is_none());
    }
}
