//! `reagent attach RUN`: the run's terminal, full-screen in this one, as `tmux attach` does.
//! Keys go to the job; the prefix (`Ctrl-b`) then `d` detaches, the prefix twice sends it.
//!
//! Size policy (tmux's `window-size latest`): attaching to type takes the run's terminal to
//! this one's size and follows its resizes; detaching gives the run back the size it had
//! (unless another client resized it meanwhile). `--watch` takes nothing: no keys reach the
//! job, its size stays, and a run larger than this terminal is drawn from a local copy of
//! its screen, anchored at its cursor, so the newest lines are always in view.

use std::process::ExitCode;

use crossterm::terminal;
use reagent::client::Update;
use reagent::config::Config;
use reagent::lookup::resolve;
use reagent::paths::Paths;
use reagent::protocol::{Attach, Base64Text, EventKind, ListRuns, ResizeRun, SendInput};
use reagent::run::RunInfo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal};

use super::Ctx;
use crate::sanitize;

/// Attaches until the user detaches, the run ends or the daemon goes away.
pub async fn attach(ctx: &Ctx, run: &str, watch: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Paths::from_env()?.config_file)?;
    let (client, notes) = ctx.connect().await?;
    let (_, mut updates) = client.subscribe(notes, "reagent attach").await?;
    let size = terminal::size()
        .ok()
        .filter(|&(cols, rows)| cols > 1 && rows > 1);
    // The size to give back on detach: the run's before this client took it.
    let runs = client.call(&ListRuns::default()).await?;
    let before = resolve(&runs, run, "run", |r| (r.id.as_str(), r.name.as_deref()))
        .ok()
        .map(|r| (r.cols, r.rows));
    let attached = client
        .call(&Attach {
            run: run.into(),
            size: size.filter(|_| !watch),
        })
        .await?;
    let id = attached.run.id.clone();
    let mut mirror = watch.then(|| Mirror::new(attached.run.rows, attached.run.cols));
    if attached.run.status.is_terminal() {
        anyhow::bail!(
            "run {} is not running (it is {}); see `reagent logs {id}`",
            attached.run.label(),
            attached.run.status
        );
    }
    let mut keys = PrefixFilter::new(config.tui.prefix.byte());
    let mut out = tokio::io::stdout();
    let mut stdin = tokio::io::stdin();
    let mut winch = signal(SignalKind::window_change())?;
    let guard = RawTerminal::enter()?;
    show(&mut out, mirror.as_mut(), &attached.screen.0, true).await?;
    let mut buf = [0u8; 4096];
    // The run, once it ended while attached: its code is this command's.
    let mut ended = None;
    let farewell = loop {
        tokio::select! {
            read = stdin.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    break format!("[detached from {}]", attached.run.label());
                }
                let (input, detach) = keys.feed(&buf[..n]);
                if !input.is_empty() && !watch {
                    client.call(&SendInput { run: id.clone(), data: Base64Text::encode(&input) }).await?;
                }
                if detach {
                    break format!("[detached from {}]", attached.run.label());
                }
            }
            update = updates.next() => match update? {
                Some(Update::Output(output)) if output.run == id => {
                    show(&mut out, mirror.as_mut(), &output.data.0, false).await?;
                }
                Some(Update::Event(event)) => {
                    if let EventKind::Run { run } = event.kind
                        && run.id == id
                        && run.status.is_terminal()
                    {
                        break ended_with(&mut ended, run);
                    }
                }
                // We fell behind and were detached: attach again and repaint.
                Some(Update::Resynced(_)) => {
                    let again = client.call(&Attach { run: id.clone(), size: None }).await?;
                    if again.run.status.is_terminal() {
                        break ended_with(&mut ended, again.run);
                    }
                    if let Some(mirror) = mirror.as_mut() {
                        *mirror = Mirror::new(again.run.rows, again.run.cols);
                    }
                    show(&mut out, mirror.as_mut(), &again.screen.0, true).await?;
                }
                Some(Update::Output(_)) => {}
                None => break "[the daemon went away; the run goes on]".to_string(),
            },
            _ = winch.recv() => {
                match (terminal::size(), mirror.as_mut()) {
                    (Ok(_), Some(mirror)) => show(&mut out, Some(mirror), &[], true).await?,
                    (Ok((cols, rows)), None) => {
                        client.call(&ResizeRun { run: id.clone(), cols, rows }).await?;
                    }
                    (Err(_), _) => {}
                }
            }
        }
    };
    // Give the run back its size, unless it ended or another client took it since.
    if let (false, Some((cols, rows)), Some(taken)) = (watch, before, size) {
        let now = client
            .call(&ListRuns::default())
            .await
            .ok()
            .and_then(|runs| {
                runs.into_iter()
                    .find(|r| r.id == id)
                    .filter(|r| !r.status.is_terminal())
            });
        if now.is_some_and(|r| (r.cols, r.rows) == taken) && (cols, rows) != taken {
            let _ = client
                .call(&ResizeRun {
                    run: id.clone(),
                    cols,
                    rows,
                })
                .await;
        }
    }
    drop(guard);
    println!("{}", sanitize::line(&farewell));
    Ok(ended.map_or(ExitCode::SUCCESS, |run| crate::exit::of_run(&run)))
}

/// Keeps the run that ended while attached (its code is the command's) and says how it ended.
fn ended_with(ended: &mut Option<RunInfo>, run: RunInfo) -> String {
    let how = run.reason.clone().unwrap_or_else(|| run.status.to_string());
    let line = format!("[{} ended: {how}]", run.label());
    *ended = Some(run);
    line
}

/// Writes the run's bytes to this terminal: as they are, or through the watch mirror.
async fn show(
    out: &mut tokio::io::Stdout,
    mirror: Option<&mut Mirror>,
    bytes: &[u8],
    repaint: bool,
) -> anyhow::Result<()> {
    match mirror {
        Some(mirror) => {
            mirror.parser.process(bytes);
            let (cols, rows) = terminal::size().unwrap_or((80, 24));
            out.write_all(&mirror.paint(cols, rows)).await?;
        }
        None => {
            if repaint {
                out.write_all(b"\x1b[H\x1b[2J").await?;
            }
            out.write_all(bytes).await?;
        }
    }
    out.flush().await?;
    Ok(())
}

/// A watcher's own copy of the run's screen, drawn anchored at its cursor.
struct Mirror {
    parser: vt100::Parser,
}

impl Mirror {
    fn new(rows: u16, cols: u16) -> Self {
        Self {
            parser: vt100::Parser::new(rows.max(1), cols.max(1), 0),
        }
    }

    /// The escape sequences that draw the screen's rows at the cursor on a `cols` x `rows`
    /// terminal (the rows above go off the top, as in a terminal that shrank).
    fn paint(&self, cols: u16, rows: u16) -> Vec<u8> {
        let screen = self.parser.screen();
        let top = crate::ui::pane::anchor_top(screen, rows);
        let mut bytes = b"\x1b[?25l\x1b[H\x1b[2J".to_vec();
        let shown = screen.rows_formatted(0, cols).skip(usize::from(top));
        for (i, row) in shown.take(usize::from(rows)).enumerate() {
            bytes.extend_from_slice(format!("\x1b[{};1H\x1b[0m", i + 1).as_bytes());
            bytes.extend_from_slice(&row);
        }
        let (row, col) = screen.cursor_position();
        let row = row.saturating_sub(top) + 1;
        bytes.extend_from_slice(format!("\x1b[0m\x1b[{row};{}H", col + 1).as_bytes());
        if !screen.hide_cursor() {
            bytes.extend_from_slice(b"\x1b[?25h");
        }
        bytes
    }
}

/// Raw mode and the alternate screen, restored on drop (also on error paths).
struct RawTerminal;

impl RawTerminal {
    fn enter() -> anyhow::Result<Self> {
        terminal::enable_raw_mode()?;
        crossterm::execute!(std::io::stdout(), terminal::EnterAlternateScreen)?;
        Ok(Self)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = crossterm::execute!(std::io::stdout(), terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// Splits typed bytes into what goes to the job and a detach request.
struct PrefixFilter {
    prefix: u8,
    pending: bool,
}

impl PrefixFilter {
    fn new(prefix: u8) -> Self {
        Self {
            prefix,
            pending: false,
        }
    }

    /// Returns the bytes to forward, and whether `prefix d` was typed (bytes after it are
    /// dropped, as the client is leaving).
    fn feed(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        let mut forward = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            if self.pending {
                self.pending = false;
                match byte {
                    b'd' => return (forward, true),
                    // The prefix twice types the prefix itself.
                    b if b == self.prefix => forward.push(b),
                    // Anything else after the prefix is not bound here: swallow it, like tmux.
                    _ => {}
                }
            } else if byte == self.prefix {
                self.pending = true;
            } else {
                forward.push(byte);
            }
        }
        (forward, false)
    }
}

#[cfg(test)]
mod tests {
    use super::PrefixFilter;

    #[test]
    fn a_watcher_smaller_than_the_run_sees_its_newest_lines() {
        let mut mirror = super::Mirror::new(50, 200);
        let lines: String = (1..=400).map(|i| format!("line {i}\r\n")).collect();
        mirror.parser.process(lines.as_bytes());
        let mut terminal = vt100::Parser::new(24, 80, 0);
        terminal.process(&mirror.paint(80, 24));
        let shown = terminal.screen().contents();
        assert!(shown.contains("line 400"), "{shown}");
        assert!(!shown.contains("line 370"), "{shown}");
    }

    #[test]
    fn prefix_d_detaches_and_prefix_twice_sends_it() {
        let mut keys = PrefixFilter::new(0x02);
        assert_eq!(keys.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(keys.feed(b"\x02\x02x"), (b"\x02x".to_vec(), false));
        assert_eq!(keys.feed(b"a\x02"), (b"a".to_vec(), false));
        assert_eq!(
            keys.feed(b"dzzz"),
            (Vec::new(), true),
            "prefix split across reads"
        );
    }
}
