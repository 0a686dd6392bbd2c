//! Params and replies of the run methods: listing, starting again, tidying, stopping, typing,
//! resizing, renaming, reading the log, attaching and waiting.

use serde::{Deserialize, Serialize};

use super::{Base64Text, Blob};
use crate::run::{RunInfo, RunStatus};

/// `runs.list` params: every run by default; each filter given narrows the list, which stays
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListRuns {
    /// Only runs in this status.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Only runs whose name matches this pattern (`*` any text, `?` one character); runs
    /// without a name never match.
    #[serde(default)]
    pub name: Option<String>,
    /// Only the newest this many of the runs the other filters pick.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl ListRuns {
    /// Of `runs` (oldest first), those these filters pick, oldest first: the one rule every
    /// client and the daemon share.
    pub fn select(&self, runs: &[RunInfo]) -> Vec<RunInfo> {
        let picked: Vec<&RunInfo> = runs
            .iter()
            .filter(|run| self.status.is_none_or(|status| run.status == status))
            .filter(|run| {
                self.name.as_deref().is_none_or(|pattern| {
                    run.name
                        .as_deref()
                        .is_some_and(|name| crate::names::glob_match(pattern, name))
                })
            })
            .collect();
        let skip = self
            .limit
            .map_or(0, |limit| picked.len().saturating_sub(limit));
        picked.into_iter().skip(skip).cloned().collect()
    }
}

/// `run.rerun` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunRun {
    /// Id, name or unique id prefix of the run to start again.
    pub run: String,
    /// The new run's program and arguments; the old run's when absent.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

/// `runs.remove` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRuns {
    /// Ids, names or unique id prefixes; every one must name an ended run, or none is removed.
    pub runs: Vec<String>,
}

/// `runs.clean` params.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanRuns {
    /// Which ended runs go.
    #[serde(default)]
    pub which: CleanScope,
    /// Only runs that ended at least this many milliseconds ago.
    #[serde(default)]
    pub older_than_ms: Option<u64>,
}

/// Which ended runs `runs.clean` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanScope {
    /// Runs that exited with code 0: done with, their results elsewhere.
    #[default]
    Finished,
    /// Runs that failed.
    Failed,
    /// Every ended run: finished, failed, stopped or lost.
    Ended,
}

impl CleanScope {
    /// Whether a run in `status` is one this scope removes (never a live one).
    pub fn covers(self, status: RunStatus) -> bool {
        match self {
            Self::Finished => status == RunStatus::Finished,
            Self::Failed => status == RunStatus::Failed,
            Self::Ended => status.is_terminal(),
        }
    }
}

/// `run.stop` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Seconds between SIGTERM and SIGKILL; the config's default when absent.
    #[serde(default)]
    pub grace_secs: Option<f64>,
}

/// `run.input` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInput {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The bytes to type, passed on to the run's supervisor as they came.
    pub data: Base64Text,
}

/// `run.resize` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizeRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// New width.
    pub cols: u16,
    /// New height.
    pub rows: u16,
}

/// `run.rename` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameRun {
    /// Id, name or unique id prefix.
    pub run: String,
    /// The new name; empty clears it.
    pub name: String,
}

/// `run.log` params: either from `offset` or the last `tail_lines` lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadLog {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Byte offset to read from (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Start this many lines before the end instead.
    #[serde(default)]
    pub tail_lines: Option<usize>,
    /// At most this many bytes (the daemon caps it at 4 MiB).
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

/// `run.log` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// Offset of the first byte of `data`.
    pub offset: u64,
    /// The bytes.
    pub data: Blob,
    /// The log's size when read; `offset + data.len() == size` means nothing more, for now.
    pub size: u64,
}

/// `run.attach` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// Id, name or unique id prefix.
    pub run: String,
    /// Resize the run's terminal to this (cols, rows) first, as `reagent attach` does.
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// `run.attach` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attached {
    /// The run.
    pub run: RunInfo,
    /// Log offset the screen reflects; `output` notifications continue from here.
    pub offset: u64,
    /// Escape sequences that paint the current screen (and cursor and modes) on a blank
    /// terminal of the run's size.
    pub screen: Blob,
}

/// `run.detach` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detach {
    /// Id, name or unique id prefix.
    pub run: String,
}

/// `run.wait` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRun {
    /// Id, name or unique id prefix.
    pub run: String,
}
