//! A writer of single lines to the kernel log (`/dev/kmsg`), so that `dmesg` shows them
//! next to the kernel module's own lines.
//!
//! The device is opened once (write-only, close-on-exec); each line is one `write(2)`, which
//! the kernel turns into one log record. When the device cannot be opened or written, that
//! is said once through `tracing` and the writer carries on silently.
//!
//! Note: unless `kernel.printk_devkmsg=on`, the kernel rate-limits writers of `/dev/kmsg`
//! (a burst of 10 records per 5 s per open file) and silently drops the excess.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Path of the kernel log device.
pub const KMSG_PATH: &str = "/dev/kmsg";

/// Syslog level prefix of every record: `<4>` is `KERN_WARNING`.
const LEVEL_PREFIX: &[u8] = b"<4>";

/// Writes lines to the kernel log. Never fails; problems are logged once.
#[derive(Debug)]
pub struct KmsgWriter {
    file: Option<File>,
    path: PathBuf,
    buf: Vec<u8>,
    write_error_reported: bool,
}

impl KmsgWriter {
    /// Opens [`KMSG_PATH`].
    pub fn open() -> Self {
        Self::open_path(Path::new(KMSG_PATH))
    }

    /// Opens `path` for writing (a test may pass a regular file). On failure, warns once
    /// and returns a writer that drops every line.
    pub fn open_path(path: &Path) -> Self {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "cannot open the kernel log; monitor lines go to the supervisor log only"
                );
                None
            }
        };
        Self {
            file,
            path: path.to_owned(),
            buf: Vec::with_capacity(160),
            write_error_reported: false,
        }
    }

    /// Whether the device is open (lines are written).
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Writes `line` (without its trailing newline) as one kernel log record.
    pub fn write_line(&mut self, line: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        self.buf.clear();
        self.buf.extend_from_slice(LEVEL_PREFIX);
        self.buf
            .extend_from_slice(line.trim_end_matches('\n').as_bytes());
        self.buf.push(b'\n');
        // One write(2) = one record; /dev/kmsg never writes a record partially.
        if let Err(e) = file.write(&self.buf) {
            if !self.write_error_reported {
                self.write_error_reported = true;
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write to the kernel log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_record_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(&path, b"").unwrap();
        let mut w = KmsgWriter::open_path(&path);
        assert!(w.is_open());
        w.write_line("first");
        w.write_line("second\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"<4>first\n<4>second\n");
    }

    #[test]
    fn missing_device_is_not_fatal() {
        let mut w = KmsgWriter::open_path(Path::new("/nonexistent/kmsg"));
        assert!(!w.is_open());
        w.write_line("dropped");
    }
}
