//! The `file` sink: appends each container's bytes, unchanged, to its log file
//! (`log-path`, normally `<state-dir>/logs/<id>.log`).
//!
//! No framing and no timestamps are added: the file holds exactly what the container wrote,
//! stdout and stderr interleaved in the order the router read them. Records are buffered in
//! memory and written with `write(2)` on `flush`, which the router calls after each group of
//! records it read together and before it reports a container's log as complete.
//!
//! Options: none (besides the router's own `mode` and `max-buffer-size`).

use sink_abi::{Config, ConfigError, Record, Sink, SinkError};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Buffered bytes above which `write` stores them without waiting for `flush`.
const BUFFER_BYTES: usize = 256 * 1024;

/// Options this sink accepts.
const KNOWN: [&str; 0] = [];

/// Appends bytes to one file, buffering between flushes.
#[derive(Debug)]
pub struct FileSink {
    file: File,
    buf: Vec<u8>,
}

impl FileSink {
    /// Opens (creating it and its directory if needed) `path` for appending, mode 0640.
    ///
    /// # Errors
    /// Any error from creating the directory or opening the file.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)?;
        Ok(Self {
            file,
            buf: Vec::with_capacity(BUFFER_BYTES),
        })
    }

    /// Appends bytes (buffered).
    ///
    /// # Errors
    /// Errors of writing out a full buffer; the bytes not yet stored stay buffered.
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BUFFER_BYTES {
            self.store()?;
        }
        Ok(())
    }

    /// Writes every buffered byte with `write(2)`. On error, the bytes already written are
    /// dropped from the buffer and the rest stays, so a retry neither loses nor repeats bytes.
    ///
    /// # Errors
    /// The first write error.
    pub fn store(&mut self) -> io::Result<()> {
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match self.file.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..done);
        result
    }
}

impl Sink for FileSink {
    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.check_known(&KNOWN)
    }

    fn create(config: &Config) -> Result<Self, ConfigError> {
        Self::validate(config)?;
        let path = config.require(sink_abi::config::KEY_LOG_PATH)?;
        if !path.starts_with('/') {
            return Err(ConfigError(format!("log-path `{path}` is not absolute")));
        }
        FileSink::open(Path::new(path)).map_err(|e| ConfigError(format!("cannot open {path}: {e}")))
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        Ok(self.append(record.data)?)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.store()?)
    }
}

sink_abi::export_sink!(FileSink, "file");

#[cfg(test)]
mod tests {
    use super::*;
    use sink_abi::Stream;

    fn rec(data: &[u8]) -> Record<'_> {
        Record {
            container_id: "c",
            stream: Stream::Stdout,
            timestamp_ns: 0,
            partial: false,
            data,
        }
    }

    fn config(path: &Path) -> Config {
        Config::from_pairs([("container-id", "c"), ("log-path", path.to_str().unwrap())])
    }

    #[test]
    fn bytes_are_appended_unchanged_and_only_stored_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/c.log");
        let mut s = FileSink::create(&config(&path)).unwrap();
        s.write(&rec(b"one\n")).unwrap();
        s.write(&rec(b"\xff\xfe\x00bin")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        s.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n\xff\xfe\x00bin");
        drop(s);
        let mut again = FileSink::create(&config(&path)).unwrap();
        again.write(&rec(b"!")).unwrap();
        again.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n\xff\xfe\x00bin!");
    }

    #[test]
    fn large_writes_go_out_before_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut s = FileSink::create(&config(&path)).unwrap();
        let big = vec![b'x'; BUFFER_BYTES + 1];
        s.write(&rec(&big)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), big.len() as u64);
    }

    #[test]
    fn options_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(&dir.path().join("c.log"));
        assert!(FileSink::validate(&c).is_ok());
        c.push("max-size", "1m");
        assert!(FileSink::validate(&c).unwrap_err().0.contains("max-size"));
        let rel = Config::from_pairs([("log-path", "rel.log")]);
        assert!(FileSink::create(&rel).is_err());
        assert!(FileSink::create(&Config::default())
            .unwrap_err()
            .0
            .contains("log-path"));
    }

    #[test]
    fn write_error_is_reported_and_bytes_stay_buffered() {
        let mut s = FileSink::open(Path::new("/dev/full")).unwrap();
        s.write(&rec(b"abc")).unwrap();
        assert!(matches!(s.flush(), Err(SinkError::Failed(_))));
        assert_eq!(s.buf, b"abc");
    }
}
