//! The `file` sink: appends each container's bytes, unchanged, to its log file
//! (`log-path`, normally `<state-dir>/logs/<id>.log`), and records in `<log>.idx` which stream
//! each run of bytes came from and when (format: the `logstore` crate, `docs/log-files.md`).
//!
//! No framing and no timestamps are added to the log itself: it holds exactly what the
//! container wrote, stdout and stderr interleaved in the order the router read them. Records
//! are buffered and written with `write(2)` on `flush`, which the router calls after each chunk
//! and before it reports a container's log as complete. Reopening a log after a router crash
//! cuts a write that was interrupted (the router delivers those bytes again).
//!
//! Options: none (besides the router's own `mode` and `max-buffer-size`).

use logstore::LogWriter;
use sink_abi::{Batch, BatchError, Config, ConfigError, Record, Sink, SinkError};
use std::path::Path;

/// Options this sink accepts.
const KNOWN: [&str; 0] = [];

/// Opens the log named by `log-path` (absolute) for a sink.
///
/// # Errors
/// A one-line message when the option is missing, relative, or the file cannot be opened.
pub fn open_log(config: &Config) -> Result<LogWriter, ConfigError> {
    let path = config.require(sink_abi::config::KEY_LOG_PATH)?;
    if !path.starts_with('/') {
        return Err(ConfigError(format!("log-path `{path}` is not absolute")));
    }
    let (w, repair) = LogWriter::open(Path::new(path))
        .map_err(|e| ConfigError(format!("cannot open {path}: {e}")))?;
    if repair.changed() {
        eprintln!("file sink: repaired {path}: {repair:?}");
    }
    Ok(w)
}

/// Appends one record to a log writer. The record is always taken: when storing a full buffer
/// fails, its bytes stay buffered and the error comes back from the next store (`flush`).
/// Failing here instead would make the router offer the record again, and the retry would
/// store it a second time.
pub fn append(w: &mut LogWriter, record: &Record<'_>) {
    w.append_span(record.stream.into(), record.timestamp_ns, record.data);
}

/// Appends bytes to one log file and its index, buffering between flushes.
#[derive(Debug)]
pub struct FileSink {
    log: LogWriter,
}

impl Sink for FileSink {
    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.check_known(&KNOWN)
    }

    fn create(config: &Config) -> Result<Self, ConfigError> {
        Self::validate(config)?;
        Ok(FileSink {
            log: open_log(config)?,
        })
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        append(&mut self.log, record);
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), BatchError> {
        match batch.uniform_span() {
            Some((stream, ts, span)) => {
                self.log.append_span(stream.into(), ts, span);
                Ok(())
            }
            None => {
                batch.iter().for_each(|r| append(&mut self.log, &r));
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.log.store()?)
    }
}

sink_abi::export_sink!(FileSink, "file");

#[cfg(test)]
mod tests {
    use super::*;
    use sink_abi::Stream;

    fn rec(stream: Stream, data: &[u8]) -> Record<'_> {
        Record {
            container_id: "c",
            stream,
            timestamp_ns: 9,
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
        s.write(&rec(Stream::Stdout, b"one\n")).unwrap();
        s.write(&rec(Stream::Stderr, b"\xff\xfe\x00bin")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        s.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n\xff\xfe\x00bin");
        drop(s);
        let mut again = FileSink::create(&config(&path)).unwrap();
        again.write(&rec(Stream::Stdout, b"!")).unwrap();
        again.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n\xff\xfe\x00bin!");
        let runs = logstore::read_runs(&path).unwrap();
        let streams: Vec<u8> = runs.iter().map(|r| r.stream.byte()).collect();
        assert_eq!(streams, [1, 2, 1]);
        assert!(runs.iter().all(|r| r.timestamp_ns == 9));
    }

    /// A write whose store fails still takes the record (it is stored by a later flush), so
    /// the router never offers it again to be stored twice; the flush reports the failure.
    #[test]
    fn a_failed_store_takes_the_record_and_fails_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut s = FileSink::create(&config(&path)).unwrap();
        let big = vec![b'x'; 16 * 1024];
        for _ in 0..(logstore::writer::BUFFER_BYTES / big.len() + 1) {
            s.write(&rec(Stream::Stdout, &big))
                .expect("the record is taken although the store failed");
        }
        assert!(s.flush().is_err(), "the flush reports the failed store");
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
}
