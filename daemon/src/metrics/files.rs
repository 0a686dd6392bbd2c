//! Series files: each metric of a run as an append-only file of `(step, value)` pairs.
//!
//! `runs/<id>/series/<name>.bin` holds 16 bytes per point (two little-endian `f64`s). A row
//! per point in SQLite would not keep up with a million lines a second; appending to a file
//! does. The store records how many points of each file were flushed when it last saved the
//! run's read offset, and loading cuts every file back to that length, so the points and the
//! offset always agree after a crash: what was cut is read again from the metrics file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::metrics::series::Series;

/// Bytes per stored point.
const POINT: usize = 16;

/// The open series files of one run, in the order their series were created.
pub struct SeriesFiles {
    dir: PathBuf,
    writers: Vec<BufWriter<File>>,
}

impl SeriesFiles {
    /// Files in `dir` (created on the first series).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            writers: Vec::new(),
        }
    }

    /// Opens (appending) the file of the next series.
    pub fn add(&mut self, name: &str) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file_name(name)))?;
        self.writers.push(BufWriter::with_capacity(4096, file));
        Ok(())
    }

    /// Appends a point to series `index`.
    pub fn append(&mut self, index: usize, step: f64, value: f64) -> io::Result<()> {
        let mut point = [0u8; POINT];
        point[..8].copy_from_slice(&step.to_le_bytes());
        point[8..].copy_from_slice(&value.to_le_bytes());
        self.writers[index].write_all(&point)
    }

    /// Writes everything buffered to the files.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writers.iter_mut().try_for_each(BufWriter::flush)
    }
}

/// Loads the series of a run, cutting each file back to the points recorded in `lengths`
/// (name → points); series the record does not name are not loaded.
pub fn load(dir: &Path, lengths: &BTreeMap<String, u64>) -> io::Result<Vec<(String, Series)>> {
    let mut loaded = Vec::with_capacity(lengths.len());
    for (name, &points) in lengths {
        let path = dir.join(file_name(name));
        let mut series = Series::new();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                loaded.push((name.clone(), series));
                continue;
            }
            Err(err) => return Err(err),
        };
        let bytes = points * POINT as u64;
        if file.metadata()?.len() > bytes {
            file.set_len(bytes)?;
        }
        let mut reader = io::BufReader::with_capacity(1 << 16, file.take(bytes));
        let mut point = [0u8; POINT];
        while reader.read_exact(&mut point).is_ok() {
            let (step, value) = point.split_at(8);
            series.push(f64_le(step), f64_le(value));
        }
        loaded.push((name.clone(), series));
    }
    Ok(loaded)
}

fn f64_le(bytes: &[u8]) -> f64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(bytes);
    f64::from_le_bytes(raw)
}

/// A file name for any metric name: letters, digits, `.`, `_` and `-` as they are, every
/// other byte as `%XX` (so `train/loss` cannot escape the folder).
fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'_' | b'-')
            || (byte == b'.' && !out.is_empty())
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out.push_str(".bin");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_folder() {
        assert_eq!(file_name("loss"), "loss.bin");
        assert_eq!(file_name("train/loss"), "train%2Floss.bin");
        assert_eq!(file_name(".."), "%2E..bin");
        assert_eq!(file_name(""), ".bin");
    }

    #[test]
    fn points_round_trip_and_unrecorded_tails_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = SeriesFiles::new(dir.path());
        files.add("loss").unwrap();
        files.append(0, 1.0, 0.5).unwrap();
        files.append(0, 2.0, f64::NAN).unwrap();
        files.append(0, 3.0, 0.25).unwrap();
        files.flush().unwrap();
        let lengths = BTreeMap::from([("loss".to_string(), 2)]);
        let loaded = load(dir.path(), &lengths).unwrap();
        assert_eq!(loaded.len(), 1);
        let series = &loaded[0].1;
        assert_eq!(series.len(), 2);
        assert!(series.last().unwrap().1.is_nan());
        let size = std::fs::metadata(dir.path().join("loss.bin"))
            .unwrap()
            .len();
        assert_eq!(size, 32, "the third point was never recorded, so it is cut");
    }
}
