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

use reagent::run::OutputLoss;

use super::hub::{Hub, Out};
use super::job::now_ms;

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

/// Copies the PTY into the log until the PTY's end.
///
/// A failed write never stops the loop: the PTY is drained whatever happens, so the job never
/// blocks on a full disk. Bytes that could not be written are counted as a gap; each later
/// chunk first tries to write the gap's marker line, and once that succeeds logging resumes
/// where it stopped.
fn read_loop(hub: &Hub, mut reader: Box<dyn Read + Send>, mut log: File) {
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        // portable-pty's reader already maps EIO (the slave side closed) to Ok(0).
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => {
                diag!("reading the pty failed: {err}");
                break;
            }
        };
        let mut out = hub.lock();
        if out.sealed {
            return;
        }
        // Written under the lock so a sealed log never grows past the size it reported.
        let changed = append(&mut out, &mut log, &buf[..n]);
        let wake = changed || out.waiters > 0;
        drop(out);
        if wake {
            hub.wake();
        }
    }
    let mut out = hub.lock();
    if !out.sealed {
        close_gap(&mut out, &mut log);
    }
    out.eof = true;
    drop(out);
    hub.wake();
}

/// Appends one chunk, closing an open gap first; returns whether a gap began or ended.
pub(crate) fn append(out: &mut Out, log: &mut File, data: &[u8]) -> bool {
    let mut changed = false;
    if out.loss.as_ref().is_some_and(|loss| loss.ongoing) {
        if !close_gap(out, log) {
            lose(out, data.len(), None);
            return false;
        }
        changed = true;
    }
    let (wrote, err) = write_some(log, data);
    out.written += wrote as u64;
    if let Some(err) = err {
        lose(out, data.len() - wrote, Some(&err));
        changed = true;
    }
    changed
}

/// Writes the marker line of the open gap; on success the gap is closed.
///
/// The marker starts on a line of its own and ends with one, so what follows reads normally.
pub(crate) fn close_gap(out: &mut Out, log: &mut File) -> bool {
    let Some(loss) = out.loss.as_ref().filter(|loss| loss.ongoing) else {
        return true;
    };
    // The marker tells the gap as it stands once closed.
    let closed = OutputLoss {
        ongoing: false,
        ..loss.clone()
    };
    let marker = format!("\r\n[reagent: {}]\r\n", closed.describe());
    let (wrote, err) = write_some(log, marker.as_bytes());
    out.written += wrote as u64;
    if err.is_some() {
        return false;
    }
    diag!("logging resumed; {}", marker.trim());
    out.loss = Some(closed);
    out.loss_gen += 1;
    true
}

/// Counts `bytes` the log did not get; `err` starts a new gap.
fn lose(out: &mut Out, bytes: usize, err: Option<&std::io::Error>) {
    let bytes = bytes as u64;
    match (out.loss.as_mut(), err) {
        (Some(loss), None) => loss.bytes += bytes,
        (loss, Some(err)) => {
            let error = describe(err);
            diag!("writing output.log failed ({error}); counting what is lost until it works");
            let (total, gaps) = loss.map_or((0, 0), |loss| (loss.bytes, loss.gaps));
            out.loss = Some(OutputLoss {
                bytes: total + bytes,
                gaps: gaps + 1,
                at_ms: now_ms(),
                error,
                ongoing: true,
            });
            out.loss_gen += 1;
        }
        (None, None) => {}
    }
}

/// A write error in the words a user expects.
fn describe(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::StorageFull => "disk full".to_owned(),
        ErrorKind::QuotaExceeded => "disk quota exceeded".to_owned(),
        _ => format!("cannot write output.log: {err}"),
    }
}

/// Writes as much of `data` as the file takes; returns how much, and the error that stopped
/// it (a partial write is real output in the log, so it is counted, not retried).
fn write_some(log: &mut File, data: &[u8]) -> (usize, Option<std::io::Error>) {
    let mut wrote = 0;
    while wrote < data.len() {
        match log.write(&data[wrote..]) {
            Ok(0) => return (wrote, Some(ErrorKind::WriteZero.into())),
            Ok(n) => wrote += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return (wrote, Some(err)),
        }
    }
    (wrote, None)
}
