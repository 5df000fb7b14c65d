//! The `rotating` sink: the `file` sink's format (raw bytes plus index, see
//! `docs/log-files.md`), rotated by size as Docker's `json-file` and `local` drivers do.
//!
//! Options:
//! - `max-size` (default `20m`): largest size of one file, in bytes (`10m`, `512k`, …).
//! - `max-file` (default `5`): files kept in all, the current one included; `1` keeps none
//!   rotated (the file starts over).
//! - `compress` (default `false`): gzip rotated files (`<log>.N.gz`) in the background.
//!
//! Rotation happens only between records and only where no line of either stream is
//! unfinished, so a record is never split across two files and no line is lost or repeated by a
//! rotation (a single line larger than twice `max-size` is the one exception: it rotates at a
//! record boundary inside the line).

use logstore::rotate;
use logstore::LogWriter;
use sink_abi::{Batch, BatchError, Config, ConfigError, Record, Sink, SinkError, Stream};
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Options this sink accepts.
const KNOWN: [&str; 3] = ["max-size", "max-file", "compress"];
/// Default `max-size`, in bytes.
pub const DEFAULT_MAX_SIZE: u64 = 20 << 20;
/// Default `max-file`.
pub const DEFAULT_MAX_FILE: u64 = 5;

/// Parsed options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Largest file, in bytes.
    pub max_size: u64,
    /// Files kept, current included.
    pub max_file: u32,
    /// Gzip rotated files.
    pub compress: bool,
}

impl Options {
    /// Parses and checks the options.
    ///
    /// # Errors
    /// Unknown keys, malformed values, `max-size` or `max-file` of 0.
    pub fn parse(c: &Config) -> Result<Self, ConfigError> {
        c.check_known(&KNOWN)?;
        let max_size = c.size_or("max-size", DEFAULT_MAX_SIZE)?;
        let max_file = c.u64_or("max-file", DEFAULT_MAX_FILE)?;
        if max_size == 0 {
            return Err(ConfigError(
                "option `max-size` must be at least 1 byte".into(),
            ));
        }
        if max_file == 0 || max_file > 1000 {
            return Err(ConfigError("option `max-file` must be 1..=1000".into()));
        }
        Ok(Self {
            max_size,
            max_file: max_file as u32,
            compress: c.bool_or("compress", false)?,
        })
    }
}

/// A log file rotated by size.
#[derive(Debug)]
pub struct RotatingSink {
    path: PathBuf,
    opts: Options,
    log: LogWriter,
    /// Per stream: the last record ended inside a line.
    open_line: [bool; 2],
    compressing: Option<JoinHandle<io::Result<()>>>,
}

impl RotatingSink {
    /// Opens (repairing) the current file at `path`.
    ///
    /// # Errors
    /// Errors of opening the file.
    pub fn open(path: &Path, opts: Options) -> io::Result<Self> {
        let (log, repair) = LogWriter::open(path)?;
        if repair.changed() {
            eprintln!("rotating sink: repaired {}: {repair:?}", path.display());
        }
        Ok(Self {
            path: path.to_path_buf(),
            opts,
            log,
            open_line: [false; 2],
            compressing: None,
        })
    }

    /// Whether `len` more bytes call for a rotation first.
    fn must_rotate(&self, len: usize) -> bool {
        let size = self.log.size();
        if size == 0 || size + len as u64 <= self.opts.max_size {
            return false;
        }
        !self.open_line.iter().any(|&o| o) || size >= self.opts.max_size.saturating_mul(2)
    }

    /// Stores the current file, shifts the generations and starts a new file.
    fn rotate(&mut self) -> io::Result<()> {
        self.log.store()?;
        self.wait_compression();
        rotate::shift(&self.path, self.opts.max_file)?;
        let (log, _) = LogWriter::open(&self.path)?;
        self.log = log;
        if self.opts.compress && self.opts.max_file > 1 {
            let first = rotate::numbered(&self.path, 1);
            self.compressing = Some(std::thread::spawn(move || rotate::compress(&first)));
        }
        Ok(())
    }

    /// Waits for a background compression, reporting its failure (the file stays uncompressed).
    fn wait_compression(&mut self) {
        if let Some(h) = self.compressing.take() {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("rotating sink: compression failed: {e}"),
                Err(_) => eprintln!("rotating sink: compression thread panicked"),
            }
        }
    }

    /// Appends one record, rotating before it when needed. Once the rotation is done the
    /// record is taken: when storing a full buffer fails, its bytes stay buffered and the
    /// error comes back from the next store (`flush`), so a retry never stores it twice.
    ///
    /// # Errors
    /// Errors of rotating (the record is not taken; a retry is safe).
    pub fn append(&mut self, record: &Record<'_>) -> io::Result<()> {
        if self.must_rotate(record.data.len()) {
            self.rotate()?;
        }
        let idx = usize::from(record.stream == Stream::Stderr);
        self.log
            .append_span(record.stream.into(), record.timestamp_ns, record.data);
        self.open_line[idx] = record.partial;
        Ok(())
    }
}

impl Drop for RotatingSink {
    fn drop(&mut self) {
        self.wait_compression();
    }
}

impl Sink for RotatingSink {
    fn validate(config: &Config) -> Result<(), ConfigError> {
        Options::parse(config).map(|_| ())
    }

    fn create(config: &Config) -> Result<Self, ConfigError> {
        let opts = Options::parse(config)?;
        let path = config.require(sink_abi::config::KEY_LOG_PATH)?;
        if !path.starts_with('/') {
            return Err(ConfigError(format!("log-path `{path}` is not absolute")));
        }
        RotatingSink::open(Path::new(path), opts)
            .map_err(|e| ConfigError(format!("cannot open {path}: {e}")))
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        Ok(self.append(record)?)
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), BatchError> {
        // The whole batch fits in the current file: one write, straight from the router's
        // buffer. Otherwise record by record, rotating where needed.
        if let Some((stream, ts, span)) = batch.uniform_span() {
            let last = batch.get(batch.len() - 1).map(|r| r.partial);
            if !self.must_rotate(span.len())
                && self.log.size() + span.len() as u64 <= self.opts.max_size
            {
                self.log.append_span(stream.into(), ts, span);
                self.open_line[usize::from(stream == Stream::Stderr)] = last.unwrap_or(false);
                return Ok(());
            }
        }
        for (taken, r) in batch.iter().enumerate() {
            self.append(&r).map_err(|e| BatchError {
                taken,
                error: e.into(),
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.log.store()?)
    }
}

sink_abi::export_sink!(RotatingSink, "rotating");

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &Path, opts: &[(&str, &str)]) -> RotatingSink {
        let log = dir.join("r.log");
        let mut c = Config::from_pairs(opts.iter().copied());
        c.push("log-path", log.to_str().unwrap());
        RotatingSink::create(&c).unwrap()
    }

    fn rec(stream: Stream, data: &[u8]) -> Record<'_> {
        Record {
            container_id: "r",
            stream,
            timestamp_ns: 1,
            partial: data.last() != Some(&b'\n'),
            data,
        }
    }

    /// All bytes of all generations, oldest first.
    fn all(dir: &Path) -> Vec<u8> {
        rotate::files(&dir.join("r.log"))
            .iter()
            .flat_map(|f| rotate::read_bytes(f).unwrap())
            .collect()
    }

    /// A write whose store fails still takes the record, so the router never offers it again
    /// to be stored twice; the flush reports the failure.
    #[test]
    fn a_failed_store_takes_the_record_and_fails_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join("r.log")).unwrap();
        let mut s = sink(dir.path(), &[("max-size", "1g")]);
        let big = vec![b'x'; 16 * 1024];
        for _ in 0..(logstore::writer::BUFFER_BYTES / big.len() + 1) {
            s.write(&rec(Stream::Stdout, &big))
                .expect("the record is taken although the store failed");
        }
        assert!(s.flush().is_err(), "the flush reports the failed store");
    }

    #[test]
    fn options() {
        let ok = Options::parse(&Config::from_pairs([
            ("max-size", "10m"),
            ("max-file", "3"),
        ]))
        .unwrap();
        assert_eq!(
            (ok.max_size, ok.max_file, ok.compress),
            (10 << 20, 3, false)
        );
        for bad in [
            ("max-size", "0"),
            ("max-file", "0"),
            ("max-size", "ten"),
            ("compress", "yes"),
            ("colour", "x"),
        ] {
            assert!(
                Options::parse(&Config::from_pairs([bad])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rotates_between_whole_lines_and_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), &[("max-size", "100"), ("max-file", "3")]);
        let mut want = Vec::new();
        for i in 0..100 {
            let line = format!("line {i:03}\n");
            s.write(&rec(Stream::Stdout, line.as_bytes())).unwrap();
            want.extend_from_slice(line.as_bytes());
            s.flush().unwrap();
        }
        let files = rotate::files(&dir.path().join("r.log"));
        assert_eq!(files.len(), 3);
        for f in &files {
            let b = std::fs::read(f).unwrap();
            assert!(
                b.len() <= 100 && b.ends_with(b"\n"),
                "{}: {}",
                f.display(),
                b.len()
            );
            assert_eq!(
                logstore::read_runs(f)
                    .unwrap()
                    .iter()
                    .map(|r| r.data.len())
                    .sum::<usize>(),
                b.len()
            );
        }
        let got = all(dir.path());
        assert!(
            want.ends_with(&got),
            "the kept files are the newest bytes, in order"
        );
    }

    #[test]
    fn an_unfinished_line_is_not_split_by_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), &[("max-size", "10"), ("max-file", "10")]);
        s.write(&rec(Stream::Stdout, b"0123456")).unwrap();
        s.write(&rec(Stream::Stderr, b"err\n")).unwrap();
        s.write(&rec(Stream::Stdout, b"789\n")).unwrap();
        s.write(&rec(Stream::Stdout, b"next\n")).unwrap();
        s.flush().unwrap();
        let files = rotate::files(&dir.path().join("r.log"));
        let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        assert_eq!(
            contents,
            vec![b"0123456err\n789\n".to_vec(), b"next\n".to_vec()]
        );
    }

    #[test]
    fn rotated_files_are_compressed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(
            dir.path(),
            &[("max-size", "1k"), ("max-file", "4"), ("compress", "true")],
        );
        let mut want = Vec::new();
        for i in 0..200 {
            let line = format!("{i:05} \u{fffd} compressible compressible\n");
            s.write(&rec(Stream::Stdout, line.as_bytes())).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        s.flush().unwrap();
        drop(s);
        let files = rotate::files(&dir.path().join("r.log"));
        assert_eq!(files.len(), 4);
        assert!(
            files[..3].iter().all(|f| f.extension().unwrap() == "gz"),
            "{files:?}"
        );
        assert!(want.ends_with(&all(dir.path())));
        let runs = logstore::read_runs(&files[0]).unwrap();
        assert_eq!(
            runs.iter().map(|r| r.data.len()).sum::<usize>(),
            rotate::read_bytes(&files[0]).unwrap().len()
        );
    }
}
