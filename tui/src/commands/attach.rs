//! `reagent attach RUN`: the run's terminal, full-screen in this one, as `tmux attach` does.
//! Keys go to the job; the prefix (`Ctrl-b`) then `d` detaches, the prefix twice sends it.

use std::process::ExitCode;

use crossterm::terminal;
use reagent::config::Config;
use reagent::paths::Paths;
use reagent::protocol::{Attach, Blob, EventKind, Notification, ResizeRun, SendInput};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal};

use super::Ctx;
use crate::sanitize;

/// Attaches until the user detaches, the run ends or the daemon goes away.
pub async fn attach(ctx: &Ctx, run: &str) -> anyhow::Result<ExitCode> {
    let config = Config::load(&Paths::from_env()?.config_file)?;
    let (client, mut notes) = ctx.connect().await?;
    client.hello("reagent attach", None).await?;
    let size = terminal::size()
        .ok()
        .filter(|&(cols, rows)| cols > 1 && rows > 1);
    let attached = client
        .call(&Attach {
            run: run.into(),
            size,
        })
        .await?;
    let id = attached.run.id.clone();
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
    out.write_all(b"\x1b[H\x1b[2J").await?;
    out.write_all(&attached.screen.0).await?;
    out.flush().await?;
    let mut buf = [0u8; 4096];
    let farewell = loop {
        tokio::select! {
            read = stdin.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    break format!("[detached from {}]", attached.run.label());
                }
                let (input, detach) = keys.feed(&buf[..n]);
                if !input.is_empty() {
                    client.call(&SendInput { run: id.clone(), data: Blob(input) }).await?;
                }
                if detach {
                    break format!("[detached from {}]", attached.run.label());
                }
            }
            note = notes.recv() => match note {
                Some(Notification::Output(output)) if output.run == id => {
                    out.write_all(&output.data.0).await?;
                    out.flush().await?;
                }
                Some(Notification::Event(event)) => {
                    if let EventKind::Run { run } = event.kind
                        && run.id == id
                        && run.status.is_terminal()
                    {
                        let how = run.reason.clone().unwrap_or_else(|| run.status.to_string());
                        break format!("[{} ended: {how}]", run.label());
                    }
                }
                Some(Notification::Resync(_)) => {
                    client.hello("reagent attach", None).await?;
                    let again = client.call(&Attach { run: id.clone(), size: None }).await?;
                    out.write_all(b"\x1b[H\x1b[2J").await?;
                    out.write_all(&again.screen.0).await?;
                    out.flush().await?;
                }
                Some(Notification::Output(_)) => {}
                Some(Notification::Shutdown(_)) | None => {
                    break "[the daemon went away; the run goes on]".to_string();
                }
            },
            _ = winch.recv() => {
                if let Ok((cols, rows)) = terminal::size() {
                    client.call(&ResizeRun { run: id.clone(), cols, rows }).await?;
                }
            }
        }
    };
    drop(guard);
    println!("{}", sanitize::line(&farewell));
    Ok(ExitCode::SUCCESS)
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
