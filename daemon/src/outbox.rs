//! Each client's outgoing queue, bounded in bytes, replies included.
//!
//! Broadcasting never waits on a client: it appends an already-encoded line to every
//! subscriber's outbox and moves on, and one writer task per connection drains it. What one
//! client can make the daemon hold is bounded three ways:
//! - **Events and output** past the cap (`client_queue_bytes`) are dropped, and the client is
//!   told to resync: unlike tmux, which drops output silently, or a server that buffers without
//!   limit.
//! - **Replies** are never dropped while the connection lives: the client asked for them. Instead
//!   the connection stops reading its requests while more than [`Outbox::pause_at`] bytes wait
//!   for it (or [`MAX_PENDING`] answers are still being worked out), so a client that sends
//!   requests without reading the answers holds at most that much plus one reply.
//! - Replies that pile up anyway (answers worked out by tasks, such as `run.wait`) close the
//!   connection once a full event queue plus [`MAX_LINE_BYTES`] is waiting.
//!
//! Once the connection is closed its queue is dropped, so the memory comes back at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use reagent::connection::encode_line;
use reagent::protocol::{MAX_LINE_BYTES, Notification, OutgoingNotification, Resync};
use tokio::sync::{Notify, watch};

/// Bytes waiting for a client above which its connection stops reading requests. Small enough
/// that hundreds of stalled clients cost little, large enough for a burst of small replies.
pub const PAUSE_BYTES: usize = 1 << 20;
/// Answers a connection may have in the works (worked out by tasks, like `run.wait`) before
/// it stops reading requests.
pub const MAX_PENDING: usize = 1024;

/// One encoded line, shared by every outbox it is broadcast to: cloning it for another client
/// counts a reference, and making it from the encoder's `Vec` takes that buffer as it is.
pub type Line = Bytes;

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
    /// Wakes the writer: there are lines, or the outbox closed.
    wake: Notify,
    /// Wakes the reader: the queue shrank, an answer was worked out, or the outbox closed.
    room: Notify,
    cap: usize,
    /// Becomes true when the writer task has ended.
    done: watch::Sender<bool>,
}

/// One thing in the queue.
enum Entry {
    /// An event or output: dropped on overflow.
    Event(Line),
    /// A reply (or a notice the client must get): never dropped.
    Reply(Line),
    /// The place of a reply still being encoded ([`Outbox::hold`]); the writer stops here
    /// until it is filled, so nothing queued after it overtakes it.
    Held(u64),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Entry>,
    /// Bytes of the lines queued.
    bytes: usize,
    /// Bytes the writer took and has not yet handed to the socket: still this client's to
    /// read, so they count against pausing and closing (not against the event cap, which
    /// only decides what may still be dropped).
    in_flight: usize,
    /// Answers still being worked out (see [`Outbox::pending`]).
    pending: usize,
    /// Set on overflow; droppable lines are refused until the client resyncs.
    lagging: bool,
    closed: bool,
    /// The id of the next held place.
    next_place: u64,
}

/// An answer still being worked out, by a task that replies later. While one is held, the
/// connection keeps its place after the client half-closes (the answer is still owed), and
/// too many of them pause reading (see [`MAX_PENDING`]). Dropping it settles it, answered or
/// not.
pub struct Pending {
    outbox: Arc<Outbox>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut inner = self.outbox.lock();
        inner.pending = inner.pending.saturating_sub(1);
        drop(inner);
        self.outbox.room.notify_waiters();
    }
}

/// A place held in the queue for a reply being encoded; see [`Outbox::hold`]. Dropping it
/// unfilled gives the place up, so the writer never waits on it for ever.
pub struct Place {
    id: Option<u64>,
    pending: Pending,
}

impl Place {
    /// Puts the reply in its place.
    pub fn fill(mut self, line: Line) {
        if let Some(id) = self.id.take() {
            self.pending.outbox.fill(id, Some(line));
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.pending.outbox.fill(id, None);
        }
    }
}

impl Outbox {
    /// An empty outbox holding at most `cap` bytes of droppable lines.
    pub fn new(cap: usize) -> Arc<Self> {
        let done = watch::channel(false).0;
        Arc::new(Self {
            inner: Mutex::default(),
            wake: Notify::new(),
            room: Notify::new(),
            cap,
            done,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes waiting above which the connection stops reading requests.
    pub fn pause_at(&self) -> usize {
        self.cap.min(PAUSE_BYTES)
    }

    /// Bytes waiting past which one more reply closes the connection: a full event queue and
    /// the longest line, which no client that reads its answers comes near.
    fn close_at(&self) -> usize {
        self.cap + MAX_LINE_BYTES
    }

    /// Queues a reply. Replies are not dropped, since the client waits for them; but a client
    /// that lets more than [`Outbox::close_at`] bytes pile up is disconnected.
    pub fn reply(&self, line: Line) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        if inner.bytes + inner.in_flight > self.close_at() {
            tracing::warn!(
                queued = inner.bytes + inner.in_flight,
                "closing a connection that does not read its replies"
            );
            drop(inner);
            self.close();
            return;
        }
        inner.bytes += line.len();
        inner.queue.push_back(Entry::Reply(line));
        drop(inner);
        self.wake.notify_one();
    }

    /// Keeps the next place in the queue for a reply that is costly to encode (a snapshot),
    /// so it can be encoded away from the state lock and the async workers while whatever is
    /// queued after it waits its turn.
    pub fn hold(self: &Arc<Self>) -> Place {
        let pending = self.pending();
        let mut inner = self.lock();
        let id = inner.next_place;
        inner.next_place += 1;
        if !inner.closed {
            inner.queue.push_back(Entry::Held(id));
        }
        drop(inner);
        Place {
            id: Some(id),
            pending,
        }
    }

    /// Puts `line` (or, with `None`, nothing) in a held place and lets the writer go on.
    fn fill(&self, id: u64, line: Option<Line>) {
        let mut inner = self.lock();
        let Some(at) = inner
            .queue
            .iter()
            .position(|entry| matches!(entry, Entry::Held(held) if *held == id))
        else {
            // Closed meanwhile: the queue is gone.
            return;
        };
        match line {
            Some(line) => {
                inner.bytes += line.len();
                inner.queue[at] = Entry::Reply(line);
            }
            None => {
                inner.queue.remove(at);
            }
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Counts an answer that a task will send later; see [`Pending`].
    pub fn pending(self: &Arc<Self>) -> Pending {
        self.lock().pending += 1;
        Pending {
            outbox: self.clone(),
        }
    }

    /// Whether the connection may read its next request: few enough bytes wait for the client
    /// and few enough answers are in the works (or the outbox closed, which the reader must
    /// hear of).
    pub fn has_room(&self) -> bool {
        let inner = self.lock();
        inner.closed
            || (inner.bytes + inner.in_flight < self.pause_at() && inner.pending < MAX_PENDING)
    }

    /// Waits until [`Outbox::has_room`].
    pub async fn room(&self) {
        self.wait_for(Self::has_room).await;
    }

    /// Waits until no answer is in the works any more (or the outbox closed).
    pub async fn settled(&self) {
        self.wait_for(|outbox| {
            let inner = outbox.lock();
            inner.closed || inner.pending == 0
        })
        .await;
    }

    async fn wait_for(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake between the two is not lost.
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    /// Queues an event or output line, or drops everything droppable and tells the client to
    /// resync when the cap would be exceeded.
    pub fn push(&self, line: &Line) -> Pushed {
        let mut inner = self.lock();
        if inner.closed || inner.lagging {
            return Pushed::Dropped;
        }
        if inner.bytes + line.len() > self.cap {
            inner
                .queue
                .retain(|entry| !matches!(entry, Entry::Event(_)));
            inner.bytes = inner
                .queue
                .iter()
                .map(|entry| match entry {
                    Entry::Reply(line) => line.len(),
                    Entry::Event(_) | Entry::Held(_) => 0,
                })
                .sum();
            inner.lagging = true;
            let reason = format!("client fell more than {} bytes behind", self.cap);
            let resync = encode_notification(&Notification::Resync(Resync { reason }));
            inner.bytes += resync.len();
            inner.queue.push_back(Entry::Reply(resync));
            drop(inner);
            self.wake.notify_one();
            return Pushed::Dropped;
        }
        inner.bytes += line.len();
        inner.queue.push_back(Entry::Event(line.clone()));
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
        self.room.notify_waiters();
    }

    /// Marks the connection gone, drops what is queued, and wakes the writer and the reader
    /// so they can exit.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        // Taken out first: freeing a large queue need not hold the lock.
        let queue = std::mem::take(&mut inner.queue);
        inner.bytes = 0;
        drop(inner);
        drop(queue);
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Waits for the next lines to write; `None` once closed and drained.
    pub async fn next_batch(&self, batch: &mut Vec<Line>) -> Option<()> {
        loop {
            {
                let mut inner = self.lock();
                // Take a batch so one write syscall can carry many small lines, up to a place
                // still held for a reply.
                let mut taken = 0;
                while taken < 256 * 1024
                    && let Some(Entry::Event(_) | Entry::Reply(_)) = inner.queue.front()
                {
                    if let Some(Entry::Event(line) | Entry::Reply(line)) = inner.queue.pop_front() {
                        taken += line.len();
                        batch.push(line);
                    }
                }
                if !batch.is_empty() {
                    inner.bytes -= taken;
                    inner.in_flight += taken;
                    return Some(());
                }
                if inner.closed && inner.queue.is_empty() {
                    return None;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Called by the writer once the last batch is in the socket: the client has room again.
    pub fn sent(&self) {
        self.lock().in_flight = 0;
        self.room.notify_waiters();
    }

    /// Called by the writer task as it ends.
    pub fn writer_done(&self) {
        self.done.send_replace(true);
    }

    /// Waits until the writer has sent everything queued before [`Outbox::finish`] and ended.
    pub async fn flushed(&self) {
        let _ = self.done.subscribe().wait_for(|done| *done).await;
    }

    /// Takes every queued line without waiting, as the writer would.
    #[cfg(test)]
    pub fn drain(&self) -> Vec<Line> {
        let mut inner = self.lock();
        inner.bytes = 0;
        let lines = inner.queue.drain(..).filter_map(|entry| match entry {
            Entry::Event(line) | Entry::Reply(line) => Some(line),
            Entry::Held(_) => None,
        });
        lines.collect()
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
    async fn unread_replies_pause_reading_then_close_the_connection() {
        let outbox = Outbox::new(100);
        assert_eq!(outbox.pause_at(), 100);
        outbox.reply(line(99));
        assert!(outbox.has_room());
        outbox.reply(line(10));
        assert!(!outbox.has_room(), "109 bytes wait: stop reading requests");
        // Only answers worked out meanwhile can pile up further; past the limit, the
        // connection goes and its memory with it.
        outbox.reply(line(MAX_LINE_BYTES));
        assert!(!outbox.is_closed());
        outbox.reply(line(1));
        assert!(outbox.is_closed());
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(
            outbox.has_room(),
            "a closed outbox lets the reader run into its end"
        );
    }

    #[tokio::test]
    async fn room_comes_once_the_writer_has_sent_the_lines() {
        let outbox = Outbox::new(100);
        outbox.reply(line(150));
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        outbox.next_batch(&mut Vec::new()).await.unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "taken, but not yet in the socket");
        outbox.sent();
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn answers_in_the_works_hold_the_connection_until_settled() {
        let outbox = Outbox::new(100);
        let first = outbox.pending();
        let second = outbox.pending();
        let settled = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.settled().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!settled.is_finished(), "one answer is still owed");
        drop(second);
        settled.await.unwrap();
        let many: Vec<Pending> = (0..MAX_PENDING).map(|_| outbox.pending()).collect();
        assert!(!outbox.has_room());
        drop(many);
        assert!(outbox.has_room());
    }

    #[tokio::test]
    async fn a_held_place_keeps_what_follows_behind_it() {
        let outbox = Outbox::new(100);
        outbox.reply(line(1));
        let place = outbox.hold();
        assert_eq!(outbox.push(&line(3)), Pushed::Queued);
        let mut batch = Vec::new();
        outbox.next_batch(&mut batch).await.unwrap();
        assert_eq!(batch.len(), 1, "the writer stops at the held place");
        batch.clear();
        place.fill(line(2));
        outbox.next_batch(&mut batch).await.unwrap();
        let sizes: Vec<usize> = batch.iter().map(|line| line.len()).collect();
        assert_eq!(sizes, [2, 3]);
        // A place given up unfilled does not stop the writer.
        drop(outbox.hold());
        assert_eq!(outbox.push(&line(4)), Pushed::Queued);
        batch.clear();
        outbox.next_batch(&mut batch).await.unwrap();
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn a_closed_outbox_ends_the_writer() {
        let outbox = Outbox::new(100);
        outbox.close();
        assert_eq!(outbox.push(&line(1)), Pushed::Dropped);
        assert!(outbox.next_batch(&mut Vec::new()).await.is_none());
    }
}
