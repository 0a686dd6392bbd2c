//! The notifier: the only thread that writes to the daemon.
//!
//! It says `Hello` on each new connection, then `Written` whenever the log grew since its last
//! message (coalesced, and at most one per [`THROTTLE`]), `Lost` when a gap in the log began
//! or ended, and finally `Exited`, to every connection until the process exits (the daemon
//! may restart while the supervisor waits for it to take the exit record). A blocked write
//! only blocks this thread; the read loop never waits on the daemon. A failed write drops that
//! connection and supervising goes on.

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::hub::Hub;
use super::wire::SupervisorMsg;

/// Minimum spacing of `Written` messages: invisible to a user, spares the daemon a wake-up
/// per PTY chunk when a job floods its output.
const THROTTLE: Duration = Duration::from_millis(5);

/// What the notifier does next, decided under the hub's lock and done outside it.
enum Step {
    /// Greet connection `gen`.
    Hello(Arc<UnixStream>, u64, u64),
    /// Report the log's new size.
    Written(Arc<UnixStream>, u64),
    /// Report that a gap began or ended (its generation, then the message).
    Lost(Arc<UnixStream>, u64, SupervisorMsg),
    /// Deliver the final message to connection `gen` (greeting it first if it is new).
    Farewell(Arc<UnixStream>, u64, SupervisorMsg, u64),
}

/// Starts the notifier thread.
pub(crate) fn spawn_notifier(hub: Arc<Hub>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("notify".into())
        .spawn(move || run(&hub))
        .map(drop)
}

fn run(hub: &Hub) {
    // Generation of the connection we greeted, the size we last told it, and the generation
    // of the loss we last reported.
    let mut greeted = 0u64;
    let mut sent = 0u64;
    let mut loss_sent = 0u64;
    let mut last_sent_at: Option<Instant> = None;
    loop {
        match next_step(hub, greeted, sent, loss_sent, last_sent_at) {
            Step::Hello(conn, generation, written) => {
                greeted = generation;
                sent = written;
                // A new daemon has not heard of any loss yet.
                loss_sent = 0;
                deliver(hub, &conn, generation, &hello(hub.pid, written));
            }
            Step::Written(conn, written) => {
                sent = written;
                last_sent_at = Some(Instant::now());
                deliver(hub, &conn, greeted, &SupervisorMsg::Written { written });
            }
            Step::Lost(conn, generation, msg) => {
                loss_sent = generation;
                deliver(hub, &conn, greeted, &msg);
            }
            Step::Farewell(conn, generation, msg, written) => {
                let ok = generation == greeted
                    || deliver(hub, &conn, generation, &hello(hub.pid, written));
                greeted = generation;
                if ok {
                    deliver(hub, &conn, generation, &msg);
                }
                hub.lock().farewell_sent = Some(generation);
                hub.wake();
            }
        }
    }
}

fn hello(pid: u32, written: u64) -> SupervisorMsg {
    SupervisorMsg::Hello { pid, written }
}

/// Waits until there is something to say.
fn next_step(
    hub: &Hub,
    greeted: u64,
    sent: u64,
    loss_sent: u64,
    last_sent_at: Option<Instant>,
) -> Step {
    let mut out = hub.lock();
    loop {
        let Some(conn) = out.conn.clone() else {
            out = hub.wait(out, None);
            continue;
        };
        if let Some(msg) = &out.farewell {
            if out.farewell_sent != Some(out.conn_gen) {
                return Step::Farewell(conn, out.conn_gen, msg.clone(), out.written);
            }
            out = hub.wait(out, None);
            continue;
        }
        if out.conn_gen != greeted {
            return Step::Hello(conn, out.conn_gen, out.written);
        }
        if let Some(loss) = out.loss.as_ref().filter(|_| out.loss_gen != loss_sent) {
            let msg = SupervisorMsg::Lost { loss: loss.clone() };
            return Step::Lost(conn, out.loss_gen, msg);
        }
        if out.written == sent {
            out = hub.wait(out, None);
            continue;
        }
        let since = last_sent_at.map_or(THROTTLE, |at| at.elapsed());
        if since >= THROTTLE {
            return Step::Written(conn, out.written);
        }
        out = hub.wait(out, Some(THROTTLE - since));
    }
}

/// Writes one message line; on failure drops connection `generation` (if still current).
fn deliver(hub: &Hub, conn: &UnixStream, generation: u64, msg: &SupervisorMsg) -> bool {
    let result = serde_json::to_vec(msg)
        .map_err(std::io::Error::other)
        .and_then(|mut line| {
            line.push(b'\n');
            let mut stream = conn;
            stream.write_all(&line)
        });
    match result {
        Ok(()) => true,
        Err(_) => {
            // A gone or replaced daemon; it can reconnect and catch up from the log.
            let mut out = hub.lock();
            if out.conn_gen == generation {
                out.conn = None;
            }
            drop(out);
            let _ = conn.shutdown(Shutdown::Both);
            false
        }
    }
}
