//! `reagent proxy`: stdin/stdout bridged to the local daemon's socket, so
//! `reagent --remote HOST` can speak the protocol through `ssh HOST reagent proxy`, and a
//! script can `echo REQUEST | ssh HOST reagent proxy`.
//!
//! The end of stdin is a half-close, not the end: the proxy shuts down its writing half of the
//! socket and goes on copying until the daemon, having answered what it was asked, closes.
//! The other way round, a proxy whose stdout goes away (the remote client left) exits at
//! once, even when nothing is being written, so it never lingers on the remote host.

use std::process::ExitCode;

use reagent::client::start_daemon;
use reagent::paths::Paths;
use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream;

/// Bridges until the daemon closes the connection or stdout goes away.
pub async fn proxy() -> anyhow::Result<ExitCode> {
    let socket = Paths::from_env()?.socket();
    let stream = match UnixStream::connect(&socket).await {
        Ok(stream) => stream,
        Err(err) if reagent::client::no_daemon(&err) => {
            start_daemon().await?;
            UnixStream::connect(&socket).await?
        }
        Err(err) => return Err(err.into()),
    };
    let (mut from_daemon, mut to_daemon) = stream.into_split();
    let mut stdout = tokio::io::stdout();
    let requests = async {
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut to_daemon).await;
        // Nothing more to ask: say so, and let the replies finish.
        let _ = to_daemon.shutdown().await;
        std::future::pending::<()>().await;
    };
    let replies = async {
        let _ = tokio::io::copy(&mut from_daemon, &mut stdout).await;
        let _ = stdout.flush().await;
    };
    tokio::select! {
        () = requests => {}
        () = replies => {}
        () = stdout_gone() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves when the reader of stdout has gone (a pipe's reader closed, a terminal hung up).
/// A blocking `poll` on a thread of its own notices at once, where a write would only fail
/// the next time the daemon had something to say. The thread ends with the process.
async fn stdout_gone() {
    let (gone, wait) = tokio::sync::oneshot::channel();
    let watcher = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            use rustix::event::{PollFd, PollFlags};
            let stdout = std::io::stdout();
            loop {
                // Asking for no events still reports hang-ups, errors and a closed fd.
                let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) if !fds[0].revents().is_empty() => {
                        let _ = gone.send(());
                        return;
                    }
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    // Not something poll can watch: a failing write will tell instead.
                    Err(_) => return,
                }
            }
        });
    if watcher.is_err() || wait.await.is_err() {
        std::future::pending::<()>().await;
    }
}
