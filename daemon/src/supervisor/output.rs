//! The PTY read loop: the job's only backpressure and the supervisor's hot path.
//!
//! It copies the PTY into `output.log` and publishes the new size, nothing else: no parsing,
//! no socket writes. It blocks in `read` on a dedicated thread, so it runs exactly as fast as
//! a bare PTY reader; every chunk goes straight to the file (a page-cache copy), which is
//! what makes the published size safe for the daemon to read up to. Waking the notifier is
//! skipped when nobody waits, so a fast job costs one read and one write per chunk.
//!
//! Why not O_NONBLOCK + poll: portable-pty only hands out the master as a raw fd number,
//! and turning that into a pollable `AsFd` needs `unsafe` (denied here). A blocking reader
//! gives the same behaviour; the final drain's idle timeout lives in [`Hub::drain_and_seal`]
//! instead of in a poll timeout, and a reader still blocked then is simply abandoned.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::thread;

use super::hub::Hub;

/// Read buffer size: a PTY rarely returns more than a few KiB per read, this never limits.
const BUF_SIZE: usize = 64 * 1024;

/// Starts the read loop on its own thread; it ends at the PTY's end or when the log is
/// sealed.
pub(crate) fn spawn_reader(
    hub: Arc<Hub>,
    reader: Box<dyn Read + Send>,
    log: File,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("pty-read".into())
        .spawn(move || read_loop(&hub, reader, log))
        .map(drop)
}

fn read_loop(hub: &Hub, mut reader: Box<dyn Read + Send>, mut log: File) {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut log_ok = true;
    loop {
        // portable-pty's reader already maps EIO (the slave side closed) to Ok(0).
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                eprintln!("reagentd supervise: reading the pty failed: {err}");
                break;
            }
        };
        let mut out = hub.lock();
        if out.sealed {
            return;
        }
        if log_ok {
            // Written under the lock so a sealed log never grows past the size it reported.
            match log.write_all(&buf[..n]) {
                Ok(()) => out.written += n as u64,
                Err(err) => {
                    // Keep draining the PTY so the job never blocks on a full disk.
                    eprintln!("reagentd supervise: writing output.log failed: {err}");
                    log_ok = false;
                }
            }
        }
        let wake = out.waiters > 0;
        drop(out);
        if wake {
            hub.wake();
        }
    }
    hub.lock().eof = true;
    hub.wake();
}
