//! Removing a log: its current file, its index and every rotated generation, plain or
//! compressed (names in [`crate::rotate`] and [`crate::index`]).

use crate::rotate::{self, remove_file};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Removes the log whose current file is `log` (`<state-dir>/logs/<id>.log`): `<log>`,
/// `<log>.idx` and, for every `N`, `<log>.N`, `<log>.N.gz`, `<log>.N.idx` and a compression
/// left unfinished (`<log>.N.gz.tmp`). The directory is listed, so a generation behind a gap
/// (a rotation interrupted half way) goes too. Files already gone, or no directory, are fine.
///
/// # Errors
/// Errors of listing the directory or removing a file; `InvalidInput` when `log` has no file
/// name.
pub fn remove(log: &Path) -> io::Result<()> {
    let Some(name) = log.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a log path names a file",
        ));
    };
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        entries => entries?,
    };
    for entry in entries {
        let entry = entry?;
        if is_part_of(name.as_bytes(), entry.file_name().as_bytes()) {
            remove_file(&entry.path())?;
        }
    }
    Ok(())
}

/// Whether the file name `file` is one of the files of the log named `log`.
fn is_part_of(log: &[u8], file: &[u8]) -> bool {
    matches!(file.strip_prefix(log), Some(b"" | b".idx"))
        || rotate::generation_number(log, file).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;
    use crate::writer::LogWriter;

    #[test]
    fn removes_every_file_of_the_log_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        for round in 0..3 {
            let (mut w, _) = LogWriter::open(&log).unwrap();
            w.append(Stream::Stdout, round, b"x\n").unwrap();
            w.store().unwrap();
            drop(w);
            rotate::shift(&log, 10).unwrap();
        }
        rotate::compress(&rotate::numbered(&log, 2)).unwrap();
        LogWriter::open(&log).unwrap();
        // Behind a gap, and a compression cut short.
        std::fs::write(rotate::numbered(&log, 7), b"old").unwrap();
        std::fs::write(dir.path().join("a.log.1.gz.tmp"), b"").unwrap();
        let others = [
            "b.log",
            "a.log.1.log",
            "a.logx",
            "a.log.gz",
            "a.log.1.idx.bak",
        ];
        for o in others {
            std::fs::write(dir.path().join(o), b"keep").unwrap();
        }
        remove(&log).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = others.map(String::from).to_vec();
        expected.sort();
        assert_eq!(left, expected);
        remove(&log).unwrap();
        remove(&dir.path().join("gone/a.log")).unwrap();
    }
}
