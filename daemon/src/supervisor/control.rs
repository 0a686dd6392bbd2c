//! The control socket: accepting daemon connections and obeying their `ControlMsg` lines.
//!
//! The newest connection wins (a restarted daemon re-adopts the run): it becomes the one the
//! notifier writes to, and the previous one is shut down. Each connection has its own reader
//! thread. Input goes through a bounded queue to a dedicated PTY-writer thread, because a job
//! that never reads its terminal makes PTY writes block, and that must not block control.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use portable_pty::{MasterPty, PtySize};

use super::hub::{Hub, lock};
use super::job::Job;
use super::wire::ControlMsg;

/// Longest control line accepted; a longer one is a broken peer, whose connection is dropped.
const MAX_LINE: u64 = 16 * 1024 * 1024;
/// Input chunks queued for a job that does not read its terminal before new ones are dropped.
const INPUT_QUEUE: usize = 1024;

/// What the control readers act on.
pub(crate) struct Control {
    /// Shared output/connection state.
    pub hub: Arc<Hub>,
    /// The job, for stop requests.
    pub job: Arc<Job>,
    /// The PTY master, for resizes (and kept open for the job's whole life).
    pub master: Mutex<Box<dyn MasterPty + Send>>,
    /// The PTY writer thread's queue.
    pub input: SyncSender<Vec<u8>>,
}

/// Starts the thread that writes queued input to the PTY, returning its queue.
pub(crate) fn spawn_input_writer(
    mut writer: Box<dyn Write + Send>,
) -> std::io::Result<SyncSender<Vec<u8>>> {
    let (tx, rx) = sync_channel::<Vec<u8>>(INPUT_QUEUE);
    thread::Builder::new()
        .name("pty-write".into())
        .spawn(move || {
            for bytes in rx {
                if let Err(err) = writer.write_all(&bytes).and_then(|()| writer.flush()) {
                    diag!("writing input to the pty failed: {err}");
                }
            }
        })?;
    Ok(tx)
}

/// Starts the accept thread; it runs until the process exits.
pub(crate) fn spawn_acceptor(listener: UnixListener, ctl: Arc<Control>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => attach(&ctl, stream),
                    Err(err) => {
                        diag!("accept failed: {err}");
                        // Out of fds or similar: do not spin.
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .map(drop)
}

/// Makes `stream` the current connection and starts its reader.
fn attach(ctl: &Arc<Control>, stream: UnixStream) {
    let reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(err) => {
            diag!("cannot use a new connection: {err}");
            return;
        }
    };
    let old = {
        let mut out = ctl.hub.lock();
        out.conn_gen += 1;
        out.conn.replace(Arc::new(stream))
    };
    ctl.hub.wake();
    if let Some(old) = old {
        // Also unblocks a notifier stuck writing to a stalled previous daemon.
        let _ = old.shutdown(Shutdown::Both);
    }
    let ctl = Arc::clone(ctl);
    let spawned = thread::Builder::new()
        .name("control".into())
        .spawn(move || read_commands(&ctl, reader));
    if let Err(err) = spawned {
        diag!("no reader for a connection: {err}");
    }
}

/// Obeys one connection's lines until it closes.
fn read_commands(ctl: &Control, stream: UnixStream) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_LINE {
            diag!("control line too long; dropping the connection");
            let _ = reader.get_ref().shutdown(Shutdown::Both);
            return;
        }
        if !line.trim_ascii().is_empty() {
            obey(ctl, &line);
        }
    }
}

fn obey(ctl: &Control, line: &[u8]) {
    let msg = match serde_json::from_slice::<ControlMsg>(line) {
        Ok(msg) => msg,
        Err(err) => {
            diag!("ignoring a malformed control line: {err}");
            return;
        }
    };
    match msg {
        ControlMsg::Input { data } => match BASE64.decode(data.as_bytes()) {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => match ctl.input.try_send(bytes) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    diag!("the job does not read its input; dropped some");
                }
                Err(TrySendError::Disconnected(_)) => {
                    diag!("the pty writer is gone; input dropped");
                }
            },
            Err(err) => diag!("ignoring input that is not base64: {err}"),
        },
        ControlMsg::Resize { cols, rows } => {
            if cols == 0 || rows == 0 {
                diag!("ignoring resize to {cols}x{rows}");
                return;
            }
            let size = PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            };
            if let Err(err) = lock(&ctl.master).resize(size) {
                diag!("resize failed: {err:#}");
            }
        }
        ControlMsg::Stop { grace_ms } => ctl.job.stop(grace_ms),
        ControlMsg::Settled => {
            ctl.hub.lock().settled = true;
            ctl.hub.wake();
        }
    }
}
