//! Names and moves of rotated log files: `<log>` is the current file, `<log>.1` the newest
//! rotated one, up to `<log>.<max-file - 1>`; a rotated file may be compressed to `.gz`. Each
//! keeps its index as `<log>.N.idx` (uncompressed; offsets refer to the uncompressed bytes).

use crate::index::index_path;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `<log>.<n>`.
pub fn numbered(log: &Path, n: u32) -> PathBuf {
    let mut s = log.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `<path>.gz`.
pub fn gz(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".gz");
    PathBuf::from(s)
}

/// The number `N` of a file named `file` that belongs to generation `N` of the log named
/// `log`: `<log>.N`, `<log>.N.gz`, `<log>.N.idx` or a compression left unfinished
/// (`<log>.N.gz.tmp`); `None` for any other name. A number past `u32::MAX` reads as that.
pub(crate) fn generation_number(log: &[u8], file: &[u8]) -> Option<u32> {
    let rest = file.strip_prefix(log)?.strip_prefix(b".")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || !matches!(&rest[digits..], b"" | b".gz" | b".idx" | b".gz.tmp") {
        return None;
    }
    Some(rest[..digits].iter().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// The highest generation number among the files of `log` in its directory (0 for none);
/// see [`generation_number`].
///
/// # Errors
/// Errors of listing the directory (a missing one holds none).
pub(crate) fn highest_number(log: &Path) -> io::Result<u32> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Ok(0);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        entries => entries?,
    };
    let mut top = 0;
    for entry in entries {
        let file = entry?.file_name();
        if let Some(n) = generation_number(name.as_bytes(), file.as_bytes()) {
            top = top.max(n);
        }
    }
    Ok(top)
}

/// Removes a file; a missing file is fine.
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames a file if it exists.
fn rename(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One file operation of a [`shift`]; a missing file is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShiftOp {
    /// Remove the file.
    Remove(PathBuf),
    /// Rename the first file to the second.
    Rename(PathBuf, PathBuf),
}

impl ShiftOp {
    /// Carries the operation out.
    pub(crate) fn apply(&self) -> io::Result<()> {
        match self {
            Self::Remove(p) => remove_file(p),
            Self::Rename(from, to) => rename(from, to),
        }
    }
}

/// The operations of a [`shift`], in order: the oldest generation's files removed, then each
/// generation from the oldest to the current file moved up one number, its data (plain, then
/// `.gz`) before its index.
///
/// Readers rely on this order (`docs/log-files.md`, "Rotation"): a file only ever moves to a
/// higher number; while a generation's index is still at `N`, nothing below `N` (the current
/// file included) has moved yet; and a generation half moved has its data at `N + 1` and its
/// index at `N`.
pub(crate) fn shift_ops(log: &Path, max_file: u32) -> Vec<ShiftOp> {
    let slot = |n: u32| {
        if n == 0 {
            log.to_path_buf()
        } else {
            numbered(log, n)
        }
    };
    let files = |p: &Path| [p.to_path_buf(), gz(p), index_path(p)];
    let top = max_file.max(1) - 1;
    let mut ops: Vec<ShiftOp> = files(&slot(top)).into_iter().map(ShiftOp::Remove).collect();
    for n in (0..top).rev() {
        let (from, to) = (files(&slot(n)), files(&slot(n + 1)));
        // The current file is never compressed (`<log>.gz` is not one of the log's files).
        let skip_gz = |i: &usize| n > 0 || *i != 1;
        ops.extend(
            from.into_iter()
                .zip(to)
                .enumerate()
                .filter(|(i, _)| skip_gz(i))
                .map(|(_, (from, to))| ShiftOp::Rename(from, to)),
        );
    }
    ops
}

/// Makes room for a new current file, keeping at most `max_file` files in all: drops the
/// oldest generation, renames `.i` to `.i+1`, and the current file (with its index) to `.1`,
/// in the order of [`shift_ops`]. With `max_file == 1` the current file is deleted. The caller
/// must have closed (stored) the current file.
///
/// # Errors
/// Errors of renaming or removing.
pub fn shift(log: &Path, max_file: u32) -> io::Result<()> {
    shift_ops(log, max_file).iter().try_for_each(ShiftOp::apply)
}

/// Compresses `path` to `path.gz` (through a temporary file), then removes `path`.
///
/// # Errors
/// Errors of reading, compressing or writing.
pub fn compress(path: &Path) -> io::Result<()> {
    let mut tmp = gz(path).into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut input = BufReader::new(File::open(path)?);
    let out = BufWriter::new(File::create(&tmp)?);
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    io::copy(&mut input, &mut enc)?;
    enc.finish()?.flush()?;
    std::fs::rename(&tmp, gz(path))?;
    std::fs::remove_file(path)
}

/// Reads a log file's bytes, decompressing a `.gz` one.
///
/// # Errors
/// Errors of reading or decompressing.
pub fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    read_all(
        &File::open(path)?,
        path.extension().is_some_and(|e| e == "gz"),
    )
}

/// Reads an open log file's bytes from its start, decompressing them when `gz`.
pub(crate) fn read_all(file: &File, gz: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if gz {
        io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(BufReader::new(file)),
            &mut out,
        )?;
    } else {
        io::Read::read_to_end(&mut BufReader::new(file), &mut out)?;
    }
    Ok(out)
}

/// The index of a log file, for a compressed one the index of its uncompressed name.
pub fn index_of(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix(".gz")) {
        Some(plain) => index_path(Path::new(plain)),
        None => index_path(path),
    }
}

/// The files of a rotated log, oldest first: `<log>.N[.gz]`, …, `<log>.1[.gz]`, `<log>` (those
/// that exist, also past a gap that a rotation cut short left; a plain file wins over a `.gz`
/// of the same generation, which is a compression in progress). One look, file by file: for a
/// log being rotated meanwhile, read through [`crate::follow::Follower`].
pub fn files(log: &Path) -> Vec<PathBuf> {
    let top = highest_number(log).unwrap_or(0);
    let mut out: Vec<PathBuf> = (1..=top)
        .rev()
        .map(|n| numbered(log, n))
        .filter_map(|p| {
            if p.exists() {
                Some(p)
            } else {
                let z = gz(&p);
                z.exists().then_some(z)
            }
        })
        .collect();
    if log.exists() {
        out.push(log.to_path_buf());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn shift_keeps_max_file_generations() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        for round in 0..4 {
            std::fs::write(&log, format!("gen{round}")).unwrap();
            std::fs::write(index_path(&log), b"i").unwrap();
            shift(&log, 3).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            ["a.log.1", "a.log.1.idx", "a.log.2", "a.log.2.idx"]
        );
        assert_eq!(std::fs::read(numbered(&log, 1)).unwrap(), b"gen3");
        assert_eq!(std::fs::read(numbered(&log, 2)).unwrap(), b"gen2");
        std::fs::write(&log, b"x").unwrap();
        shift(&log, 1).unwrap();
        assert!(!log.exists());
    }

    #[test]
    fn compressed_generations_move_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"old \xff bytes\n").unwrap();
        shift(&log, 3).unwrap();
        compress(&numbered(&log, 1)).unwrap();
        std::fs::write(&log, b"new\n").unwrap();
        shift(&log, 3).unwrap();
        assert_eq!(names(dir.path()), ["a.log.1", "a.log.2.gz"]);
        let f = files(&log);
        assert_eq!(f, vec![gz(&numbered(&log, 2)), numbered(&log, 1)]);
        assert_eq!(read_bytes(&f[0]).unwrap(), b"old \xff bytes\n");
        assert_eq!(index_of(&f[0]), dir.path().join("a.log.2.idx"));
    }

    #[test]
    fn a_shift_moves_data_before_index_from_the_oldest_down() {
        let log = Path::new("/l/a.log");
        let p = |s: &str| PathBuf::from(format!("/l/a.log{s}"));
        let rename = |a: &str, b: &str| ShiftOp::Rename(p(a), p(b));
        assert_eq!(
            shift_ops(log, 3),
            [
                ShiftOp::Remove(p(".2")),
                ShiftOp::Remove(p(".2.gz")),
                ShiftOp::Remove(p(".2.idx")),
                rename(".1", ".2"),
                rename(".1.gz", ".2.gz"),
                rename(".1.idx", ".2.idx"),
                rename("", ".1"),
                rename(".idx", ".1.idx"),
            ]
        );
        assert_eq!(
            shift_ops(log, 1),
            [
                ShiftOp::Remove(p("")),
                ShiftOp::Remove(p(".gz")),
                ShiftOp::Remove(p(".idx")),
            ]
        );
    }

    #[test]
    fn generation_numbers_and_files_past_a_gap() {
        let n = |f: &str| generation_number(b"a.log", f.as_bytes());
        assert_eq!(n("a.log.12"), Some(12));
        assert_eq!(n("a.log.3.gz"), Some(3));
        assert_eq!(n("a.log.3.idx"), Some(3));
        assert_eq!(n("a.log.3.gz.tmp"), Some(3));
        assert_eq!(n("a.log.99999999999"), Some(u32::MAX));
        for other in [
            "a.log",
            "a.log.idx",
            "a.log.gz",
            "a.log.x",
            "a.log.1.log",
            "b.log.1",
        ] {
            assert_eq!(n(other), None, "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        for name in ["a.log", "a.log.1", "a.log.3.gz", "a.log.3.idx"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(highest_number(&log).unwrap(), 3);
        assert_eq!(
            files(&log),
            [gz(&numbered(&log, 3)), numbered(&log, 1), log]
        );
        assert_eq!(highest_number(&dir.path().join("gone/a.log")).unwrap(), 0);
    }
}
