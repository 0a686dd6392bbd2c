//! Tailing live runs' metrics files: one thread for every run, with one inotify watcher.
//!
//! One thread, not one per run: a thread per run left each short run's stack and malloc
//! arena in the daemon's RSS (100 runs of `true` grew it by 3 MiB), and a daemon with
//! hundreds of runs would hold hundreds of idle threads.
//!
//! The thread wakes on inotify events for the file, once it exists (through `notify`), and
//! every [`POLL`] anyway: that finds the file's creation, its replacement and the trigger
//! file, and covers filesystems without inotify. Each
//! wake reads what was appended, a [`CHUNK`] at a time, from the saved byte offset; a partial
//! last line waits for its newline. A different inode at the path means the file was rotated:
//! the rest of the old file is read, then the new one from 0. A file shorter than the offset
//! was truncated: reading starts over from 0. Progress is saved at most once a second, after
//! the series files are flushed, so a restart resumes exactly.
//!
//! The same wake checks the run's `.alert_trigger` file and the stall rule, and sends the
//! coalesced `metrics` event.

use std::fs::File;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use reagent::protocol::EventKind;
use reagent::time::now_ms;
use rustix::fs::{Mode, OFlags};

use super::lock;
use super::run::{RunMetrics, Skipped};
use crate::alerts;
use crate::daemon::Daemon;

/// How long a wake waits for inotify before looking anyway.
const POLL: Duration = Duration::from_millis(250);
/// Bytes read and parsed under the run's lock at once. Small on purpose: every live run has a
/// tail thread, and a big buffer in each thread's malloc arena stays in the daemon's RSS
/// long after the thread is gone (1 MiB here made 100 short runs cost 22 MiB).
const CHUNK: usize = 64 << 10;
/// The least time between two `metrics` events of a run.
const EVENT_EVERY: Duration = Duration::from_millis(250);
/// The least time between two saves of the read offset.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// The least time between two log lines about malformed metrics lines of a run.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Starts tailing a live run's metrics file (a no-op for runs from before metrics).
pub fn start(daemon: &Arc<Daemon>, id: &str) {
    let metrics = match daemon.metrics.get(daemon, id) {
        Ok(Some(metrics)) => metrics,
        Ok(None) => return,
        Err(err) => {
            tracing::error!(run = %id, "cannot load the run's metrics: {err:#}");
            return;
        }
    };
    let Some(cwd) = daemon.state().run(id).map(|run| run.cwd.clone()) else {
        return;
    };
    let tail = Tail::new(daemon.clone(), id.to_string(), metrics, cwd);
    if let Some(tails) = tails() {
        // The thread lives as long as the process, so the send cannot fail.
        let _ = tails.send(Msg::Tail(Box::new(tail)));
    }
}

/// What the metrics thread hears.
enum Msg {
    /// A run to tail.
    Tail(Box<Tail>),
    /// inotify saw a watched file change.
    Wake,
}

/// The metrics thread's inbox, starting the thread on first use.
fn tails() -> Option<&'static mpsc::Sender<Msg>> {
    static TAILS: OnceLock<Option<mpsc::Sender<Msg>>> = OnceLock::new();
    TAILS
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let wake = tx.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || serve(&rx, wake))
                .map_err(|err| tracing::error!("cannot start the metrics thread: {err}"))
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// The metrics thread: services every tail on each wake-up, and at least every [`POLL`]
/// while any run lives.
fn serve(rx: &mpsc::Receiver<Msg>, wake: mpsc::Sender<Msg>) {
    let handler = move |_: notify::Result<notify::Event>| {
        let _ = wake.send(Msg::Wake);
    };
    let mut watcher = notify::recommended_watcher(handler)
        .map_err(|err| tracing::info!("polling metrics files: {err}"))
        .ok();
    let mut tails: Vec<Tail> = Vec::new();
    loop {
        let first = if tails.is_empty() {
            match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(POLL) {
                Ok(msg) => Some(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        for msg in first.into_iter().chain(rx.try_iter()) {
            if let Msg::Tail(tail) = msg {
                tails.push(*tail);
            }
        }
        tails.retain_mut(|tail| tail.step(&mut watcher));
    }
}

/// Opens a metrics file without ever waiting: with `O_NONBLOCK`, a FIFO swapped in after
/// the `stat` opens at once (and is then refused) instead of holding the metrics thread.
fn open_regular(path: &std::path::Path) -> std::io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::open(path, flags, Mode::empty())?);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

struct Tail {
    daemon: Arc<Daemon>,
    id: String,
    metrics: Arc<Mutex<RunMetrics>>,
    path: PathBuf,
    trigger: alerts::trigger::Trigger,
    file: Option<(File, u64)>,
    buf: Vec<u8>,
    last_event: Instant,
    last_save: Instant,
    dirty: bool,
    last_log: Option<Instant>,
    unlogged: u64,
    /// The inode of the metrics file being watched, if any.
    watched: Option<u64>,
    /// Whether the log already says the metrics path is not a regular file.
    warned_odd: bool,
}

impl Tail {
    fn new(daemon: Arc<Daemon>, id: String, metrics: Arc<Mutex<RunMetrics>>, cwd: PathBuf) -> Self {
        let path = lock(&metrics).record.path.clone();
        Self {
            daemon,
            id,
            metrics,
            path,
            trigger: alerts::trigger::Trigger::new(&cwd),
            file: None,
            // Allocated on the first read: most runs never write metrics.
            buf: Vec::new(),
            last_event: Instant::now(),
            last_save: Instant::now(),
            dirty: false,
            last_log: None,
            unlogged: 0,
            watched: None,
            warned_odd: false,
        }
    }

    /// Reads what is new, checks the trigger file and the rules; false once the run has
    /// ended and its last lines are in.
    fn step(&mut self, watcher: &mut Option<notify::RecommendedWatcher>) -> bool {
        let (alive, removed) = {
            let state = self.daemon.state();
            (
                state.live(&self.id).is_some(),
                state.run(&self.id).is_none(),
            )
        };
        if removed {
            // `reagent rm` took the run's folder: writing its series would bring it back.
            if let (Some(watcher), Some(_)) = (watcher.as_mut(), self.watched) {
                let _ = watcher.unwatch(&self.path);
            }
            return false;
        }
        let mut read = self.read_new();
        if !alive && read.is_ok() {
            read = self.finish();
        }
        if let Err(err) = read {
            tracing::warn!(run = %self.id, "cannot read {}: {err}", self.path.display());
        }
        self.trigger.check(&self.daemon, &self.id);
        self.tick(alive);
        if alive {
            self.rewatch(watcher);
        } else {
            self.save();
            if let (Some(watcher), Some(_)) = (watcher.as_mut(), self.watched) {
                let _ = watcher.unwatch(&self.path);
            }
            self.daemon.metrics.forget(&self.id);
        }
        alive
    }

    /// Watches the metrics file itself once it exists, again when it is replaced. Not its
    /// folder: that is usually the run's own, where `output.log` changes with every write of
    /// a flooding job, and each change would cost a wake-up. Creation, replacement and the
    /// trigger file are found by the poll, well within a second.
    fn rewatch(&mut self, watcher: &mut Option<notify::RecommendedWatcher>) {
        let (Some(watcher), Some((_, inode))) = (watcher.as_mut(), &self.file) else {
            return;
        };
        if self.watched == Some(*inode) {
            return;
        }
        let _ = watcher.unwatch(&self.path);
        if let Err(err) = watcher.watch(&self.path, notify::RecursiveMode::NonRecursive) {
            tracing::info!(run = %self.id, "polling {}: {err}", self.path.display());
        }
        self.watched = Some(*inode);
    }

    /// Reads everything appended since the last time, following rotation and truncation.
    fn read_new(&mut self) -> std::io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        if !meta.is_file() {
            // A FIFO or a folder: nothing to tail, and a FIFO's open could block this thread,
            // which serves every run. Said once, not on every wake.
            if !std::mem::replace(&mut self.warned_odd, true) {
                tracing::warn!(run = %self.id, "not reading {}: not a regular file", self.path.display());
            }
            return Ok(());
        }
        let known = lock(&self.metrics).record.inode;
        if known != 0 && known != meta.ino() {
            // Rotated: finish the old file if we have it open, then start the new one at 0.
            if let Some((old, _)) = self.file.take() {
                self.drain(&old)?;
            }
            tracing::info!(run = %self.id, "{} was replaced; reading it from the start", self.path.display());
            lock(&self.metrics).record.offset = 0;
        }
        if self.file.as_ref().is_none_or(|(_, ino)| *ino != meta.ino()) {
            self.file = Some((open_regular(&self.path)?, meta.ino()));
            lock(&self.metrics).record.inode = meta.ino();
            self.dirty = true;
        }
        let offset = lock(&self.metrics).record.offset;
        if meta.len() < offset {
            tracing::info!(run = %self.id, "{} was truncated; reading it from the start", self.path.display());
            lock(&self.metrics).record.offset = 0;
        }
        if let Some((file, ino)) = self.file.take() {
            let result = self.drain(&file);
            self.file = Some((file, ino));
            result?;
        }
        Ok(())
    }

    /// The run has ended, so nothing will complete a last line written without its newline:
    /// take it as it stands (the offset then stops at the file's end, as if it had one).
    fn finish(&mut self) -> std::io::Result<()> {
        let Some((file, _)) = &self.file else {
            return Ok(());
        };
        let mut metrics = lock(&self.metrics);
        let offset = metrics.record.offset;
        self.buf.resize(CHUNK, 0);
        let mut rest = std::mem::take(&mut self.buf);
        let read = file.read_at(&mut rest, offset)?;
        if read == 0 {
            return Ok(());
        }
        rest.truncate(read);
        rest.push(b'\n');
        let (mut alerts, mut skipped) = (Vec::new(), Vec::new());
        metrics.feed(&rest, now_ms(), &mut alerts, &mut skipped)?;
        metrics.record.offset = offset + read as u64;
        self.dirty = true;
        drop(metrics);
        self.report(&mut alerts, &mut skipped);
        Ok(())
    }

    /// Feeds the run every complete line from its offset to the end of `file`.
    fn drain(&mut self, file: &File) -> std::io::Result<()> {
        let mut alerts = Vec::new();
        let mut skipped = Vec::new();
        self.buf.resize(CHUNK, 0);
        loop {
            let mut metrics = lock(&self.metrics);
            let offset = metrics.record.offset;
            let read = file.read_at(&mut self.buf, offset)?;
            if read == 0 {
                break;
            }
            let consumed = metrics.feed(&self.buf[..read], now_ms(), &mut alerts, &mut skipped)?;
            if consumed == 0 {
                if read < CHUNK {
                    break; // a partial line waits for its newline
                }
                // A line longer than a chunk is no metrics line: skip this part; the rest,
                // up to its newline, is then counted as one malformed line.
                metrics.record.offset += read as u64;
            }
            self.dirty = true;
            drop(metrics);
            self.report(&mut alerts, &mut skipped);
        }
        Ok(())
    }

    fn report(
        &mut self,
        alerts: &mut Vec<crate::alerts::rules::Draft>,
        skipped: &mut Vec<Skipped>,
    ) {
        for draft in alerts.drain(..) {
            alerts::raise(&self.daemon, &self.id, draft);
        }
        if skipped.is_empty() {
            return;
        }
        let quiet = self.last_log.is_some_and(|at| at.elapsed() < LOG_EVERY);
        if quiet {
            self.unlogged += skipped.len() as u64;
        } else {
            let first = skipped[0];
            let more = self.unlogged + skipped.len() as u64 - 1;
            tracing::warn!(
                run = %self.id,
                "{}: line {} skipped: {}{}",
                self.path.display(),
                first.line,
                first.why.as_str(),
                if more > 0 { format!(" (and {more} more malformed lines)") } else { String::new() }
            );
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        }
        skipped.clear();
    }

    /// The stall rule, the `metrics` event and saving progress, each at its own pace.
    fn tick(&mut self, alive: bool) {
        let mut drafts = Vec::new();
        let changes = {
            let mut metrics = lock(&self.metrics);
            let last = metrics.last_metric_at;
            metrics.engine.tick(now_ms(), last, alive, &mut drafts);
            let due = self.last_event.elapsed() >= EVENT_EVERY || !alive;
            due.then(|| metrics.take_changes().map(|c| (metrics.points(), c)))
                .flatten()
        };
        for draft in drafts {
            alerts::raise(&self.daemon, &self.id, draft);
        }
        if let Some((points, changes)) = changes {
            self.last_event = Instant::now();
            let kind = EventKind::Metrics {
                run: self.id.clone(),
                points,
                last_step: changes.last_step,
                latest: changes.latest,
                trend: changes.trend,
            };
            self.daemon.state().bus.broadcast_ephemeral(kind);
        }
        if self.dirty && self.last_save.elapsed() >= SAVE_EVERY {
            self.save();
        }
    }

    fn save(&mut self) {
        let (record, trend) = {
            let mut metrics = lock(&self.metrics);
            (metrics.checkpoint(), metrics.trend())
        };
        let saved = record.map_err(anyhow::Error::from).and_then(|record| {
            (self.daemon.state()).save_metrics_progress(&self.id, &record, trend)
        });
        match saved {
            Ok(()) => {
                self.dirty = false;
                self.last_save = Instant::now();
            }
            Err(err) => tracing::warn!(run = %self.id, "cannot save metrics progress: {err:#}"),
        }
    }
}
