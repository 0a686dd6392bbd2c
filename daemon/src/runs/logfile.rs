//! Reading a run's log file: slices for `run.log`, the tail for `--tail N`, and the bytes a
//! screen is rebuilt from.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The most `run.log` returns at once; clients page through larger logs.
pub const MAX_CHUNK: usize = 4 << 20;

/// Reads up to `max` bytes from `offset`; returns the bytes and the file's size.
/// A log that does not exist yet reads as empty.
pub fn read_at(path: &Path, offset: u64, max: usize) -> std::io::Result<(Vec<u8>, u64)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(err) => return Err(err),
    };
    let size = file.metadata()?.len();
    let len = usize::try_from(size.saturating_sub(offset))
        .unwrap_or(usize::MAX)
        .min(max);
    let mut data = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut data[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    data.truncate(filled);
    Ok((data, size))
}

/// The offset where the last `lines` lines start (a trailing partial line counts as one).
pub fn tail_offset(path: &Path, lines: usize) -> std::io::Result<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let size = file.metadata()?.len();
    if lines == 0 {
        return Ok(size);
    }
    let mut end = size;
    // A final newline ends the last line rather than starting an empty one.
    let mut newlines_to_skip = lines + 1;
    let mut last_byte = [0u8];
    if size > 0 {
        file.seek(SeekFrom::Start(size - 1))?;
        file.read_exact(&mut last_byte)?;
        if last_byte[0] != b'\n' {
            newlines_to_skip -= 1;
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (i, &byte) in chunk.iter().enumerate().rev() {
            if byte == b'\n' {
                newlines_to_skip -= 1;
                if newlines_to_skip == 0 {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(content: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), content).unwrap();
        file
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        let file = log(b"a\nb\nc\n");
        let tail = |n| tail_offset(file.path(), n).unwrap();
        assert_eq!(tail(1), 4);
        assert_eq!(tail(2), 2);
        assert_eq!(tail(3), 0);
        assert_eq!(tail(10), 0);
        assert_eq!(tail(0), 6);
    }

    #[test]
    fn a_partial_last_line_counts_as_a_line() {
        let file = log(b"a\nb\nprogress 50%");
        assert_eq!(tail_offset(file.path(), 1).unwrap(), 4);
        assert_eq!(tail_offset(file.path(), 2).unwrap(), 2);
    }

    #[test]
    fn reads_slices_and_reports_size() {
        let file = log(b"0123456789");
        assert_eq!(read_at(file.path(), 3, 4).unwrap(), (b"3456".to_vec(), 10));
        assert_eq!(read_at(file.path(), 12, 4).unwrap(), (Vec::new(), 10));
        assert_eq!(
            read_at(Path::new("/nonexistent/log"), 0, 4).unwrap(),
            (Vec::new(), 0)
        );
    }
}
