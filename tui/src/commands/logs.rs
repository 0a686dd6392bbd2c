//! `reagent logs RUN [-f] [--tail N] [--plain]`: the log from the daemon, so it works
//! remotely too; raw by default, as the terminal would have shown it with `--plain`.
//! Following a run exits with the run's own code, like `wait`.

use std::process::ExitCode;

use reagent::client::{Client, Update};
use reagent::protocol::{Attach, EventKind, ReadLog};
use reagent::run::RunInfo;
use tokio::io::{AsyncWriteExt as _, Stdout};

use super::Ctx;
use crate::exit::Unreachable;
use crate::plain::Plain;

/// Prints the log, then (with `follow`) what the run prints until it ends.
pub async fn logs(
    ctx: &Ctx,
    run: &str,
    follow: bool,
    tail: Option<usize>,
    plain: bool,
) -> anyhow::Result<ExitCode> {
    let (client, notes) = ctx.connect().await?;
    let mut out = Sink {
        out: tokio::io::stdout(),
        plain: plain.then(Plain::default),
    };
    let start = match tail {
        Some(lines) => {
            let probe = ReadLog {
                run: run.into(),
                offset: None,
                tail_lines: Some(lines),
                max_bytes: Some(0),
            };
            client.call(&probe).await?.offset
        }
        None => 0,
    };
    if !follow {
        copy_log(&client, run, start, None, &mut out).await?;
        out.finish().await?;
        return Ok(ExitCode::SUCCESS);
    }
    let (_, mut updates) = client.subscribe(notes, "reagent logs -f").await?;
    // Attach first, so nothing printed between reading the log and following it is missed.
    let attached = client
        .call(&Attach {
            run: run.into(),
            size: None,
        })
        .await?;
    let id = attached.run.id.clone();
    let mut offset = copy_log(&client, &id, start, Some(attached.offset), &mut out).await?;
    if attached.run.status.is_terminal() {
        return finish(&client, &attached.run, offset, &mut out).await;
    }
    while let Some(update) = updates.next().await? {
        match update {
            Update::Output(output) if output.run == id => {
                let end = output.offset + output.data.0.len() as u64;
                if end > offset {
                    let skip = usize::try_from(offset.saturating_sub(output.offset)).unwrap_or(0);
                    out.write(&output.data.0[skip..]).await?;
                    offset = end;
                }
            }
            Update::Event(event) => {
                if let EventKind::Run { run } = event.kind
                    && run.id == id
                    && run.status.is_terminal()
                {
                    return finish(&client, &run, offset, &mut out).await;
                }
            }
            Update::Resynced(_) => {
                // We fell behind and were detached, output dropped: the log has it all.
                let attached = client
                    .call(&Attach {
                        run: id.clone(),
                        size: None,
                    })
                    .await?;
                offset = copy_log(&client, &id, offset, Some(attached.offset), &mut out).await?;
                if attached.run.status.is_terminal() {
                    return finish(&client, &attached.run, offset, &mut out).await;
                }
            }
            Update::Output(_) => {}
        }
    }
    Err(Unreachable(format!(
        "the daemon went away while following {id}; its log is complete, run `reagent logs {id}` later"
    ))
    .into())
}

/// The run ended: prints the rest of its log; exits with the run's own code.
async fn finish(
    client: &Client,
    run: &RunInfo,
    offset: u64,
    out: &mut Sink,
) -> anyhow::Result<ExitCode> {
    copy_log(client, &run.id, offset, None, out).await?;
    out.finish().await?;
    Ok(crate::exit::of_run(run))
}

/// Copies the log from `offset` up to `until` (or its current end) to stdout; returns where
/// it stopped.
async fn copy_log(
    client: &Client,
    run: &str,
    mut offset: u64,
    until: Option<u64>,
    out: &mut Sink,
) -> anyhow::Result<u64> {
    loop {
        let want = until.map(|until| until.saturating_sub(offset));
        if want == Some(0) {
            return Ok(offset);
        }
        let max_bytes = want.map(|w| usize::try_from(w).unwrap_or(usize::MAX));
        let read = ReadLog {
            run: run.into(),
            offset: Some(offset),
            tail_lines: None,
            max_bytes,
        };
        let chunk = client.call(&read).await?;
        if chunk.data.0.is_empty() {
            return Ok(offset);
        }
        out.write(&chunk.data.0).await?;
        offset += chunk.data.0.len() as u64;
    }
}

/// Where the log goes: stdout as it is, or through the plain renderer.
struct Sink {
    out: Stdout,
    plain: Option<Plain>,
}

impl Sink {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.plain.as_mut() {
            Some(plain) => {
                let mut lines = String::new();
                plain.feed(bytes, &mut lines);
                self.out.write_all(lines.as_bytes()).await?;
            }
            None => self.out.write_all(bytes).await?,
        }
        self.out.flush().await
    }

    /// Writes what the renderer still holds (a last line without its newline).
    async fn finish(&mut self) -> std::io::Result<()> {
        if let Some(plain) = self.plain.as_mut() {
            let mut rest = String::new();
            plain.finish(&mut rest);
            self.out.write_all(rest.as_bytes()).await?;
        }
        self.out.flush().await
    }
}
