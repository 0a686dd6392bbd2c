//! One client connection: a task reading its requests, and one writing its outbox.
//!
//! Bad input never takes the daemon down and never breaks other clients: each bad line gets
//! its JSON-RPC error and the connection stays usable, except a line over the size limit,
//! after which the stream cannot be trusted and that connection is closed.
//!
//! The reader stops reading while the client leaves its replies unread (see
//! `crate::outbox`), so a client that only writes cannot grow the daemon's memory.
//!
//! End of input is a half-close: the client has nothing more to ask but may still be
//! reading. The connection stops its events and output, answers what it was asked (answers
//! worked out later, like `run.wait`, included), and then closes. A client that closes its
//! end for good is noticed even while nothing is read or written, so such a connection does
//! not keep its place until a run ends.

use std::sync::Arc;
use std::time::Duration;

use reagent::connection::{Frame, read_message};
use reagent::protocol::{RequestId, RpcError, codes};
use tokio::io::{AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;

use crate::daemon::Daemon;
pub(crate) use crate::handlers::handle_line;
use crate::handlers::{self, Conn};
use crate::outbox::Outbox;

/// Socket buffers per connection. Lines longer than these pass through in pieces, so they
/// bound only what an idle connection costs: hundreds of them, a few megabytes.
const BUFFER_BYTES: usize = 8 * 1024;
/// How often a connection that is waiting rather than reading checks whether its client
/// has gone altogether.
const HANGUP_CHECK: Duration = Duration::from_millis(500);
/// How long a leaving connection's writer may take to send what is still queued.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// Serves one client until it leaves; `_slot` is its place under `max_clients`.
#[tracing::instrument(skip(daemon, stream, _slot), fields(conn = id))]
pub async fn serve(daemon: Arc<Daemon>, id: u64, stream: UnixStream, _slot: OwnedSemaphorePermit) {
    let (reader, writer) = stream.into_split();
    let outbox = Outbox::new(daemon.config.daemon.client_queue_bytes);
    let writing = tokio::spawn(write_loop(outbox.clone(), writer));
    daemon.state().bus.connect(id, outbox.clone());
    let conn = Conn {
        id,
        daemon,
        outbox,
        attached: Default::default(),
    };
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, reader);
    let mut buf = Vec::new();
    loop {
        if !conn.outbox.has_room() {
            // Backpressure: not another request until the client reads its replies.
            tokio::select! {
                () = conn.outbox.room() => {}
                () = hung_up(reader.get_ref()) => break,
            }
        }
        if conn.outbox.is_closed() {
            break;
        }
        match read_message(&mut reader, &mut buf).await {
            Ok(Frame::Line(line)) if line.iter().all(u8::is_ascii_whitespace) => {}
            Ok(Frame::Line(line)) => handle_line(&conn, line),
            Ok(Frame::TooLong) => {
                tracing::warn!("closing a connection that sent a line over 16 MiB");
                let message = "message longer than 16 MiB: closing the connection";
                conn.respond(
                    Some(RequestId::null()),
                    Err(RpcError::new(codes::INVALID_REQUEST, message)),
                );
                conn.outbox.finish();
                let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
                handlers::disconnect(&conn);
                return;
            }
            Ok(Frame::Eof) => {
                answer_then_close(&conn, reader.get_ref()).await;
                break;
            }
            Err(err) => {
                tracing::debug!("read failed: {err}");
                break;
            }
        }
    }
    // What is still queued goes out before the connection is dropped: an outbox finished by
    // the daemon's goodbye holds the reply to `daemon.shutdown`, and closing it first would
    // drop that. A client that does not read gets `FLUSH_GRACE`, then is cut off.
    conn.outbox.finish();
    let mut writing = writing;
    let _ = tokio::time::timeout(FLUSH_GRACE, &mut writing).await;
    handlers::disconnect(&conn);
    writing.abort();
}

/// The client half-closed: no more events or output, only the replies it is owed, then the
/// writer sends what is queued and the connection ends.
async fn answer_then_close(conn: &Conn, reader: &OwnedReadHalf) {
    handlers::unsubscribe(conn);
    tokio::select! {
        () = conn.outbox.settled() => {}
        () = hung_up(reader) => return,
    }
    conn.outbox.finish();
    tokio::select! {
        () = conn.outbox.flushed() => {}
        () = hung_up(reader) => {}
    }
}

/// Resolves once the client has closed its end for good (not only its writing half). Needed
/// where nothing is read or written that would notice: a reply still being worked out, or a
/// paused reader.
async fn hung_up(reader: &OwnedReadHalf) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stream: &UnixStream = reader.as_ref();
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        tokio::time::sleep(HANGUP_CHECK).await;
        // Asking for no events still reports hang-ups and errors, without reading a byte.
        let mut fds = [PollFd::new(stream, PollFlags::empty())];
        let gone = rustix::event::poll(&mut fds, Some(&now)).is_ok()
            && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR);
        if gone {
            return;
        }
    }
}

async fn write_loop(outbox: Arc<Outbox>, writer: OwnedWriteHalf) {
    write_all(&outbox, writer).await;
    outbox.writer_done();
}

async fn write_all(outbox: &Outbox, writer: OwnedWriteHalf) {
    let mut writer = BufWriter::with_capacity(BUFFER_BYTES, writer);
    let mut batch = Vec::new();
    while outbox.next_batch(&mut batch).await.is_some() {
        for line in batch.drain(..) {
            if writer.write_all(&line).await.is_err() {
                outbox.close();
                return;
            }
        }
        if writer.flush().await.is_err() {
            outbox.close();
            return;
        }
        outbox.sent();
    }
    // Everything queued went out: tell the client we are done too.
    let _ = writer.shutdown().await;
}
