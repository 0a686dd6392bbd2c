//! Setting a run up and recording its outcome: the spec, the control socket, the command,
//! the `Ready` line, `exit.json`, and the launch-failure path that fills all of them in.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::{Context, bail};
use portable_pty::CommandBuilder;
use rustix::fs::Mode;

use super::job::now_ms;
use super::wire::{ExitRecord, LaunchSpec, Ready, files};

/// Reads and parses `spec.json`.
pub(crate) fn read_spec(run_dir: &Path) -> anyhow::Result<LaunchSpec> {
    let path = run_dir.join(files::SPEC);
    let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("invalid {}", path.display()))
}

/// How a launch error names the job: its program, or "the job" when there is none.
pub(crate) fn job_name(spec: Option<&LaunchSpec>) -> String {
    match spec.and_then(|spec| spec.command.first()) {
        Some(program) => format!("`{program}`"),
        None => "the job".to_owned(),
    }
}

/// Builds the command, checking what portable-pty would otherwise paper over (it silently
/// falls back to `$HOME` for a missing working directory).
pub(crate) fn command(spec: &LaunchSpec) -> anyhow::Result<CommandBuilder> {
    let Some((program, args)) = spec.command.split_first() else {
        bail!("the command is empty");
    };
    match fs::metadata(&spec.cwd) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!(
            "working directory {} is not a directory",
            spec.cwd.display()
        ),
        Err(err) => bail!("working directory {}: {err}", spec.cwd.display()),
    }
    let mut cmd = CommandBuilder::new(program);
    cmd.args(args);
    cmd.cwd(&spec.cwd);
    // The user's file mask for the job, not the daemon's private one.
    cmd.umask(spec.umask);
    // Exactly the spec's environment: the supervisor's own is the daemon's, secrets and all.
    cmd.env_clear();
    if !spec.complete_env {
        for (key, value) in crate::runs::env::from_daemon(&[]) {
            cmd.env(key, value);
        }
    }
    if !spec.env.iter().any(|(key, _)| key == "TERM") {
        cmd.env("TERM", "xterm-256color");
    }
    for (key, value) in &spec.env {
        cmd.env(key, value);
    }
    Ok(cmd)
}

/// Longest single argument or `KEY=value` string Linux passes to a program (32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Refuses a command the kernel would refuse with "Argument list too long", naming what is too
/// long. portable-pty closes the forked child's descriptors before `exec`, including the one
/// std reports an `exec` error through, so such an error would only show as the child dying
/// of SIGABRT: it must be caught before.
pub(crate) fn check_exec_limits(cmd: &CommandBuilder) -> anyhow::Result<()> {
    let args = cmd.get_argv().iter().map(|arg| arg.len() + 1);
    let env: Vec<(&str, &str)> = cmd.iter_full_env_as_str().collect();
    if let Some(arg) = cmd
        .get_argv()
        .iter()
        .find(|arg| arg.len() >= MAX_ARG_STRLEN)
    {
        let start: String = arg.to_string_lossy().chars().take(20).collect();
        bail!(
            "argument list too long: an argument (`{start}…`) is {} bytes, over the \
             {MAX_ARG_STRLEN}-byte limit for one",
            arg.len()
        );
    }
    let long = env
        .iter()
        .find(|(key, value)| key.len() + value.len() + 1 >= MAX_ARG_STRLEN);
    if let Some((key, value)) = long {
        bail!(
            "argument list too long: environment variable {key} is {} bytes, over the \
             {MAX_ARG_STRLEN}-byte limit for one",
            key.len() + value.len() + 1
        );
    }
    let pointers = (cmd.get_argv().len() + env.len() + 2) * std::mem::size_of::<usize>();
    let total = args.sum::<usize>()
        + env
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
        + pointers;
    let limit = exec_limit();
    if total > limit {
        bail!(
            "argument list too long: the command and its environment take {total} bytes, over \
             the system's {limit}-byte limit"
        );
    }
    Ok(())
}

/// The room `exec` gives arguments and environment together: a quarter of the stack limit,
/// at most 6 MiB and at least 128 KiB (Linux's rule).
fn exec_limit() -> usize {
    let stack = rustix::process::getrlimit(rustix::process::Resource::Stack).current;
    let quarter = stack.map_or(usize::MAX, |bytes| {
        usize::try_from(bytes / 4).unwrap_or(usize::MAX)
    });
    quarter.clamp(MAX_ARG_STRLEN, 6 << 20)
}

/// Binds the control socket, replacing a stale one, readable by the owner only.
pub(crate) fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    remove_socket(path);
    // The umask closes the window between bind and chmod; nothing else runs yet.
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.with_context(|| format!("cannot bind {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    Ok(listener)
}

/// Removes the control socket if present.
pub(crate) fn remove_socket(path: &Path) {
    match fs::remove_file(path) {
        Err(err) if err.kind() != ErrorKind::NotFound => {
            diag!("cannot remove {}: {err}", path.display());
        }
        _ => {}
    }
}

/// Prints the one `Ready` line, then points stdout at /dev/null: the daemon's pipe sees EOF
/// and nothing can ever write to it again.
pub(crate) fn print_ready(ready: &Ready) {
    let result = serde_json::to_string(ready)
        .map_err(std::io::Error::other)
        .and_then(|line| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()
        });
    if let Err(err) = result {
        diag!("cannot report readiness: {err}");
    }
    match OpenOptions::new().write(true).open("/dev/null") {
        Ok(null) => {
            if let Err(err) = rustix::stdio::dup2_stdout(&null) {
                diag!("cannot detach stdout: {err}");
            }
        }
        Err(err) => diag!("cannot open /dev/null: {err}"),
    }
}

/// Writes `exit.json` atomically (temporary file, then rename), so a reader never sees half.
pub(crate) fn write_exit(run_dir: &Path, record: &ExitRecord) -> anyhow::Result<()> {
    let path = run_dir.join(files::EXIT);
    let tmp = run_dir.join(format!("{}.tmp", files::EXIT));
    let json = serde_json::to_vec_pretty(record)?;
    let mut file =
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(&json)?;
    file.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// The job could not start: says why in the log, in `exit.json` and in the `Ready` line, and
/// removes the socket. Fails only when the outcome could not be recorded.
pub(crate) fn fail_launch(run_dir: &Path, job: &str, reason: &anyhow::Error) -> anyhow::Result<()> {
    let reason = format!("{reason:#}").replace('\n', " ");
    let error = format!("cannot start {job}: {reason}");
    diag!("{error}");
    let log = run_dir.join(files::LOG);
    let logged = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(format!("reagent: {error}\r\n").as_bytes()));
    if let Err(err) = logged {
        diag!("cannot write {}: {err}", log.display());
    }
    let record = ExitRecord {
        exit_code: None,
        signal: None,
        stopped: false,
        error: Some(error.clone()),
        ended_at_ms: now_ms(),
        lost: None,
    };
    let written = write_exit(run_dir, &record);
    print_ready(&Ready::Failed { error });
    remove_socket(&run_dir.join(files::SOCKET));
    written
}
