//! Names and moves of rotated log files: `<log>` is the current file, `<log>.1` the newest
//! rotated one, up to `<log>.<max-file - 1>`; a rotated file may be compressed to `.gz`. Each
//! keeps its index as `<log>.N.idx` (uncompressed; offsets refer to the uncompressed bytes).

use crate::index::index_path;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
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

/// Moves one numbered generation (plain or compressed, with its index) to another number.
fn move_generation(from: &Path, to: &Path) -> io::Result<()> {
    rename(from, to)?;
    rename(&gz(from), &gz(to))?;
    rename(&index_path(from), &index_path(to))
}

/// Deletes one generation (plain, compressed, index).
fn delete_generation(path: &Path) -> io::Result<()> {
    remove_file(path)?;
    remove_file(&gz(path))?;
    remove_file(&index_path(path))
}

/// Makes room for a new current file, keeping at most `max_file` files in all: drops the
/// oldest generation, renames `.i` to `.i+1`, and the current file (with its index) to `.1`.
/// With `max_file == 1` the current file is deleted. The caller must have closed (stored) the
/// current file.
///
/// # Errors
/// Errors of renaming or removing.
pub fn shift(log: &Path, max_file: u32) -> io::Result<()> {
    if max_file <= 1 {
        return delete_generation(log);
    }
    delete_generation(&numbered(log, max_file - 1))?;
    for i in (1..max_file - 1).rev() {
        move_generation(&numbered(log, i), &numbered(log, i + 1))?;
    }
    rename(&index_path(log), &index_path(&numbered(log, 1)))?;
    rename(log, &numbered(log, 1))
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
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The index of a log file, for a compressed one the index of its uncompressed name.
pub fn index_of(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix(".gz")) {
        Some(plain) => index_path(Path::new(plain)),
        None => index_path(path),
    }
}

/// The files of a rotated log, oldest first: `<log>.N[.gz]`, …, `<log>.1[.gz]`, `<log>` (those
/// that exist; a plain file wins over a `.gz` of the same generation, which is a compression
/// in progress).
pub fn files(log: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..)
        .map(|n| numbered(log, n))
        .map_while(|p| {
            if p.exists() {
                Some(p)
            } else {
                let z = gz(&p);
                z.exists().then_some(z)
            }
        })
        .collect();
    out.reverse();
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
}
