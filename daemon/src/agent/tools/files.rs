//! File tools: read, list, write and edit files under the session's working directory, and
//! nowhere else. A write or an edit is shown as a unified diff, both in its approval and in
//! its result, and every file written is a `file` event, so clients follow what the agent
//! changes.

use std::path::{Component, Path, PathBuf};

use reagent::agent::FileChange;
use reagent::protocol::EventKind;
use serde::Deserialize;
use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

use super::{Builtin, Ctx, Outcome, Run, args, clip, json};

/// The largest file the tools read or write whole.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// `path` inside `root`, with `.`, `..` and symlinks resolved; refused when it leads out.
/// The deepest part of the path that exists is resolved on disk (so a symlink pointing out
/// is caught), and the rest must not climb.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let root = root
        .canonicalize()
        .map_err(|err| format!("the session's directory {}: {err}", root.display()))?;
    let mut lexical = PathBuf::new();
    for part in root.join(path).components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name.to_os_string());
        existing = parent;
    }
    let mut resolved = existing
        .canonicalize()
        .map_err(|err| format!("{}: {err}", existing.display()))?;
    resolved.extend(rest.iter().rev());
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(format!(
            "{} is outside the session's directory {}: the file tools work only under it",
            path.display(),
            root.display()
        ))
    }
}

/// A file's text, refused when it is too big or not UTF-8.
fn read_text(path: &Path) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|err| format!("{}: {err}", path.display()))?
        .len();
    if size > MAX_FILE {
        return Err(format!(
            "{} is {size} bytes, more than the {MAX_FILE} the tools read",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// `file_read` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: PathBuf,
    /// The first line to show (1-based).
    #[serde(default)]
    offset: Option<usize>,
    /// How many lines.
    #[serde(default)]
    limit: Option<usize>,
}

/// `file_read`.
pub const READ: Builtin = Builtin {
    name: "file_read",
    description: "Read a text file under the session's directory, optionally lines `offset` \
                  (1-based) to `offset + limit`.",
    schema: || {
        json!({"type": "object", "properties": {
            "path": {"type": "string", "description": "relative to the session's directory"},
            "offset": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1}
        }, "required": ["path"]})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let read: ReadArgs = args(value)?;
        let text = read_text(&inside(&ctx.session.cwd, &read.path)?)?;
        if read.offset.is_none() && read.limit.is_none() {
            return Ok(clip(text));
        }
        let skip = read.offset.unwrap_or(1).saturating_sub(1);
        let lines = text
            .lines()
            .skip(skip)
            .take(read.limit.unwrap_or(usize::MAX));
        Ok(clip(lines.collect::<Vec<_>>().join("\n")))
    }),
};

/// `dir_list` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    path: Option<PathBuf>,
}

/// `dir_list`.
pub const LIST: Builtin = Builtin {
    name: "dir_list",
    description: "List a directory under the session's directory: names (a `/` after \
                  directories) and sizes.",
    schema: || {
        json!({"type": "object", "properties": {
            "path": {"type": "string", "description": "relative to the session's directory; itself when absent"}
        }})
    },
    action: None,
    run: Run::Now(|ctx, value| {
        let list: ListArgs = args(value)?;
        let dir = inside(
            &ctx.session.cwd,
            list.path.as_deref().unwrap_or(Path::new(".")),
        )?;
        let entries = std::fs::read_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let mut rows: Vec<(String, u64)> = entries
            .filter_map(Result::ok)
            .map(|entry| {
                let meta = entry.metadata().ok();
                let mut name = entry.file_name().to_string_lossy().into_owned();
                if meta.as_ref().is_some_and(std::fs::Metadata::is_dir) {
                    name.push('/');
                }
                (name, meta.map_or(0, |m| m.len()))
            })
            .collect();
        rows.sort();
        json(&rows)
    }),
};

/// `file_write` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: PathBuf,
    content: String,
}

/// `file_edit` arguments: replace one exact, unique piece of text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditArgs {
    path: PathBuf,
    old: String,
    new: String,
}

/// A change to one file, worked out before anyone approves it.
struct Change {
    path: PathBuf,
    before: String,
    after: String,
}

impl Change {
    fn write(ctx: &Ctx<'_>, value: Value) -> Result<Self, String> {
        let write: WriteArgs = args(value)?;
        let path = inside(&ctx.session.cwd, &write.path)?;
        if write.content.len() as u64 > MAX_FILE {
            return Err(format!("the content is more than {MAX_FILE} bytes"));
        }
        let before = match path.exists() {
            true => read_text(&path)?,
            false => String::new(),
        };
        Ok(Self {
            path,
            before,
            after: write.content,
        })
    }

    fn edit(ctx: &Ctx<'_>, value: Value) -> Result<Self, String> {
        let edit: EditArgs = args(value)?;
        let path = inside(&ctx.session.cwd, &edit.path)?;
        let before = read_text(&path)?;
        if edit.old.is_empty() {
            return Err("invalid arguments: `old` is empty".into());
        }
        let after = match before.matches(&edit.old).count() {
            1 => before.replacen(&edit.old, &edit.new, 1),
            0 => return Err(format!("`old` is not in {}", path.display())),
            n => {
                return Err(format!(
                    "`old` is in {} {n} times: give more of the text around it",
                    path.display()
                ));
            }
        };
        Ok(Self {
            path,
            before,
            after,
        })
    }

    /// The unified diff a person approves and the model reads back.
    fn diff(&self) -> String {
        let name = self.path.display().to_string();
        let diff = TextDiff::from_lines(&self.before, &self.after);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&name, &name)
            .to_string();
        if text.is_empty() {
            format!("{name}: no change")
        } else {
            text
        }
    }

    /// Lines added and removed.
    fn stat(&self) -> (u32, u32) {
        let diff = TextDiff::from_lines(&self.before, &self.after);
        let count = |tag| {
            let n = diff.iter_all_changes().filter(|c| c.tag() == tag).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        (count(ChangeTag::Insert), count(ChangeTag::Delete))
    }

    /// Writes the file (through a temporary file, so a reader never sees half of it) and
    /// tells every client.
    fn apply(self, ctx: &Ctx<'_>) -> Outcome {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| format!("{}: {err}", parent.display()))?;
        }
        let temp = self.path.with_extension("reagent-tmp");
        std::fs::write(&temp, &self.after)
            .and_then(|()| std::fs::rename(&temp, &self.path))
            .map_err(|err| format!("{}: {err}", self.path.display()))?;
        let (added, removed) = self.stat();
        let change = FileChange {
            session: ctx.session.id.clone(),
            path: self.path.clone(),
            bytes: self.after.len() as u64,
            added,
            removed,
        };
        // What a client missed it reads in the file itself: not kept for replay.
        (ctx.daemon.state().bus).broadcast_ephemeral(EventKind::File { change });
        Ok(clip(format!(
            "wrote {} ({} bytes, +{added} -{removed})\n{}",
            self.path.display(),
            self.after.len(),
            self.diff()
        )))
    }
}

/// `file_write`.
pub const WRITE: Builtin = Builtin {
    name: "file_write",
    description: "Write a whole text file under the session's directory (created, with its \
                  folders, if missing). The result is the diff.",
    schema: || {
        json!({"type": "object", "properties": {
            "path": {"type": "string", "description": "relative to the session's directory"},
            "content": {"type": "string"}
        }, "required": ["path", "content"]})
    },
    action: Some(|ctx, value| Ok(Change::write(ctx, value.clone())?.diff())),
    run: Run::Now(|ctx, value| Change::write(ctx, value)?.apply(ctx)),
};

/// `file_edit`.
pub const EDIT: Builtin = Builtin {
    name: "file_edit",
    description: "Edit a text file under the session's directory: replace the one place \
                  `old` occurs with `new`. The result is the diff.",
    schema: || {
        json!({"type": "object", "properties": {
            "path": {"type": "string", "description": "relative to the session's directory"},
            "old": {"type": "string", "description": "the exact text to replace; it must occur once"},
            "new": {"type": "string"}
        }, "required": ["path", "old", "new"]})
    },
    action: Some(|ctx, value| Ok(Change::edit(ctx, value.clone())?.diff())),
    run: Run::Now(|ctx, value| Change::edit(ctx, value)?.apply(ctx)),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_lead_out_of_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("work");
        std::fs::create_dir_all(root.join("src")).unwrap();
        let canonical = root.canonicalize().unwrap();
        assert_eq!(
            inside(&root, Path::new("src/new/file.py")).unwrap(),
            canonical.join("src/new/file.py")
        );
        assert_eq!(
            inside(&root, Path::new("src/../a.txt")).unwrap(),
            canonical.join("a.txt")
        );
        for out in ["../x", "/etc/passwd", "src/../../x", "/"] {
            let err = inside(&root, Path::new(out)).unwrap_err();
            assert!(
                err.contains("outside the session's directory"),
                "{out}: {err}"
            );
        }
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        assert!(
            inside(&root, Path::new("up/secret")).is_err(),
            "a symlink out is caught"
        );
    }

    #[test]
    fn an_edit_is_a_unified_diff_with_its_stat() {
        let change = Change {
            path: "/w/train.py".into(),
            before: "lr = 1e-3\nepochs = 3\n".into(),
            after: "lr = 3e-4\nepochs = 3\n".into(),
        };
        assert_eq!(
            change.diff(),
            "--- /w/train.py\n+++ /w/train.py\n@@ -1,2 +1,2 @@\n-lr = 1e-3\n+lr = 3e-4\n epochs = 3\n"
        );
        assert_eq!(change.stat(), (1, 1));
    }
}
