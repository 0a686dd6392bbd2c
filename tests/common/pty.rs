//! Drives a real `reagent` client inside a PTY and reads its screen the way a person would:
//! the bytes go through a terminal emulator, and tests assert on what it shows.

use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

use super::{Env, bin_dir, within_timeout};

/// A `reagent` process on a PTY of a given size.
pub struct PtyClient {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl PtyClient {
    /// Starts `reagent ARGS` for `env` on a `cols` x `rows` terminal.
    pub fn start(env: &Env, args: &[&str], cols: u16, rows: u16) -> Self {
        Self::start_with(env, args, &[], cols, rows)
    }

    /// Like [`PtyClient::start`], with extra environment variables for the client.
    pub fn start_with(
        env: &Env,
        args: &[&str],
        vars: &[(&str, &str)],
        cols: u16,
        rows: u16,
    ) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(bin_dir().join("reagent"));
        cmd.args(args);
        cmd.env("REAGENT_DIR", env.path());
        cmd.env("REAGENTD", bin_dir().join("reagentd"));
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("REAGENT_CONFIG");
        for (key, value) in vars {
            cmd.env(key, value);
        }
        let child = pair.slave.spawn_command(cmd).expect("spawn reagent");
        drop(pair.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("screen").process(&buf[..n]);
            }
        });
        let writer = pair.master.take_writer().expect("pty writer");
        Self {
            screen,
            writer,
            child,
            _master: pair.master,
        }
    }

    /// What the terminal shows now.
    pub fn contents(&self) -> String {
        self.screen.lock().expect("screen").screen().contents()
    }

    /// Waits until the screen shows `text`; on a timeout the failure shows the screen.
    pub fn wait_for(&self, text: &str) {
        let shown = || self.contents().contains(text);
        if !within_timeout(shown) {
            panic!(
                "the screen never showed {text:?}; it shows:\n{}",
                self.contents()
            );
        }
    }

    /// Waits until the screen no longer shows `text` (an overlay closed, a mode ended).
    pub fn wait_gone(&self, text: &str) {
        let gone = || !self.contents().contains(text);
        if !within_timeout(gone) {
            panic!("the screen still shows {text:?}:\n{}", self.contents());
        }
    }

    /// Types bytes as a person would.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("type into the pty");
        self.writer.flush().expect("flush");
    }

    /// Waits for the client to exit; returns whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        self.wait_exit_code() == Some(0)
    }

    /// Waits for the client to exit; its exit code.
    pub fn wait_exit_code(&mut self) -> Option<u32> {
        let mut status = None;
        let exited = within_timeout(|| {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        if !exited {
            panic!(
                "the client did not exit; its screen shows:\n{}",
                self.contents()
            );
        }
        status.map(|s| s.exit_code())
    }
}

impl Drop for PtyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
