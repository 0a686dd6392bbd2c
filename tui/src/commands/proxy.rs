//! `reagent proxy`: stdin/stdout bridged to the local daemon's socket, so
//! `reagent --remote HOST` can speak the protocol through `ssh HOST reagent proxy`.

use std::process::ExitCode;

use reagent::client::start_daemon;
use reagent::paths::Paths;
use tokio::net::UnixStream;

/// Bridges until either side closes.
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
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    tokio::select! {
        _ = tokio::io::copy(&mut stdin, &mut to_daemon) => {}
        _ = tokio::io::copy(&mut from_daemon, &mut stdout) => {}
    }
    Ok(ExitCode::SUCCESS)
}
