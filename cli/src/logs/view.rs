//! What `engine logs` prints: raw bytes in write order, or (when a filter, tail or timestamps
//! are asked for) whole lines per stream, filtered by stream and time, optionally prefixed
//! with their RFC 3339 read time, optionally with control and non-UTF-8 bytes escaped; each
//! stream to its own writer ([`Outputs`]), as `docker logs` does, or both to one.

use logstore::{Line, LineJoiner, Run, Stream};
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

/// The printing options of `engine logs`.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// Only this stream.
    pub stream: Option<Stream>,
    /// Only lines read at or after this time, ns since the Unix epoch.
    pub since_ns: Option<u64>,
    /// Only lines read before this time, ns since the Unix epoch.
    pub until_ns: Option<u64>,
    /// Prefix each line with its read time.
    pub timestamps: bool,
    /// Escape control characters and bytes that are not UTF-8.
    pub escape: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
}

impl ViewOptions {
    /// Whether output must be cut into lines (any filter, tail or timestamps).
    pub fn line_mode(&self) -> bool {
        self.stream.is_some()
            || self.since_ns.is_some()
            || self.until_ns.is_some()
            || self.timestamps
            || self.tail.is_some()
    }

    fn keeps(&self, line: &Line) -> bool {
        self.stream.is_none_or(|s| line.stream == s)
            && self.since_ns.is_none_or(|s| line.timestamp_ns >= s)
            && self.until_ns.is_none_or(|u| line.timestamp_ns < u)
    }
}

/// Where printed output goes: the container's stderr to `err` and its stdout to `out` when
/// `split`, both to `out` otherwise. Byte order is kept within each stream; the writer left at
/// a change of stream is flushed first, so that both writers on one file (`2>&1`) show the
/// log's own order.
#[derive(Debug)]
pub struct Outputs<O, E> {
    /// Receives stdout (and stderr unless `split`).
    pub out: O,
    /// Receives stderr when `split`.
    pub err: E,
    /// Each stream to its own writer.
    pub split: bool,
    /// The stream written last while split.
    last: Option<Stream>,
}

impl<O: Write, E: Write> Outputs<O, E> {
    /// Outputs over these writers.
    pub fn new(out: O, err: E, split: bool) -> Self {
        Self {
            out,
            err,
            split,
            last: None,
        }
    }

    /// The writer of `stream`, after flushing the other one if it was written last.
    ///
    /// # Errors
    /// The flush's write error.
    pub fn to(&mut self, stream: Stream) -> std::io::Result<&mut dyn Write> {
        if !self.split {
            return Ok(&mut self.out);
        }
        if self.last.is_some_and(|l| l != stream) {
            self.flush()?;
        }
        self.last = Some(stream);
        Ok(match stream {
            Stream::Stderr => &mut self.err,
            Stream::Stdout => &mut self.out,
        })
    }

    /// Flushes both writers.
    ///
    /// # Errors
    /// Write errors.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

/// Writes bytes, escaped when asked: printable ASCII, tab and line feed as they are, valid
/// UTF-8 beyond ASCII as it is, everything else as `\xNN` (and `\\` for a backslash).
pub fn write_bytes(
    out: &mut (impl Write + ?Sized),
    data: &[u8],
    escape: bool,
) -> std::io::Result<()> {
    if !escape {
        return out.write_all(data);
    }
    for chunk in data.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\\' => out.write_all(b"\\\\")?,
                '\n' | '\t' => write!(out, "{ch}")?,
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(out, "\\x{b:02x}")?;
                    }
                }
                c => write!(out, "{c}")?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Prints runs as they come: raw bytes, or lines when [`ViewOptions::line_mode`].
#[derive(Debug)]
pub struct Printer {
    opts: ViewOptions,
    joiner: LineJoiner,
    /// Lines held back for `--tail` (only before following starts).
    held: std::collections::VecDeque<Line>,
    holding: bool,
}

impl Printer {
    /// A printer; with `--tail`, lines are held until [`Printer::release`].
    pub fn new(opts: ViewOptions) -> Self {
        let holding = opts.tail.is_some();
        Self {
            opts,
            joiner: LineJoiner::new(),
            held: Default::default(),
            holding,
        }
    }

    /// Takes one run.
    ///
    /// # Errors
    /// Write errors.
    pub fn push(
        &mut self,
        run: &Run,
        out: &mut Outputs<impl Write, impl Write>,
    ) -> std::io::Result<()> {
        if !self.opts.line_mode() {
            return write_bytes(out.to(run.stream)?, &run.data, self.opts.escape);
        }
        for line in self.joiner.push(run) {
            self.line(line, out)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        line: Line,
        outs: &mut Outputs<impl Write, impl Write>,
    ) -> std::io::Result<()> {
        if !self.opts.keeps(&line) {
            return Ok(());
        }
        if self.holding {
            self.held.push_back(line);
            if self.held.len() > self.opts.tail.unwrap_or(usize::MAX) {
                self.held.pop_front();
            }
            return Ok(());
        }
        let out = outs.to(line.stream)?;
        if self.opts.timestamps {
            let t = UNIX_EPOCH + Duration::from_nanos(line.timestamp_ns);
            write!(out, "{} ", humantime::format_rfc3339_nanos(t))?;
        }
        write_bytes(out, &line.data, self.opts.escape)
    }

    /// Prints the lines held for `--tail` and prints every later line at once.
    ///
    /// # Errors
    /// Write errors.
    pub fn release(&mut self, out: &mut Outputs<impl Write, impl Write>) -> std::io::Result<()> {
        self.holding = false;
        for line in std::mem::take(&mut self.held) {
            self.line(line, out)?;
        }
        Ok(())
    }

    /// The log is complete: prints unfinished last lines (no line feed) and anything held.
    ///
    /// # Errors
    /// Write errors.
    pub fn finish(&mut self, out: &mut Outputs<impl Write, impl Write>) -> std::io::Result<()> {
        for line in self.joiner.finish() {
            self.line(line, out)?;
        }
        self.release(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: Stream, ts: u64, data: &[u8]) -> Run {
        Run {
            stream,
            timestamp_ns: ts,
            data: data.to_vec(),
        }
    }

    /// (stdout, stderr) when split, else (both, nothing).
    fn print_to(opts: ViewOptions, runs: &[Run], split: bool) -> (Vec<u8>, Vec<u8>) {
        let mut p = Printer::new(opts);
        let mut outs = Outputs::new(Vec::new(), Vec::new(), split);
        for r in runs {
            p.push(r, &mut outs).unwrap();
        }
        p.finish(&mut outs).unwrap();
        (outs.out, outs.err)
    }

    fn print(opts: ViewOptions, runs: &[Run]) -> Vec<u8> {
        let (out, err) = print_to(opts, runs, false);
        assert!(err.is_empty());
        out
    }

    fn sample() -> Vec<Run> {
        vec![
            run(Stream::Stdout, 10, b"one\ntw"),
            run(Stream::Stderr, 20, b"err\n"),
            run(Stream::Stdout, 30, b"o\nthree"),
        ]
    }

    #[test]
    fn raw_mode_is_byte_for_byte() {
        assert_eq!(
            print(ViewOptions::default(), &sample()),
            b"one\ntwerr\no\nthree"
        );
    }

    #[test]
    fn split_output_keeps_each_streams_order() {
        let (out, err) = print_to(ViewOptions::default(), &sample(), true);
        assert_eq!(
            (&out[..], &err[..]),
            (&b"one\ntwo\nthree"[..], &b"err\n"[..])
        );
        let t = ViewOptions {
            tail: Some(3),
            timestamps: true,
            escape: true,
            ..Default::default()
        };
        let runs = [
            run(Stream::Stdout, 0, b"dropped\n"),
            run(Stream::Stderr, 0, b"e\x1b0\n"),
            run(Stream::Stdout, 0, b"o1\n"),
            run(Stream::Stderr, 0, b"e1\n"),
        ];
        let (out, err) = print_to(t, &runs, true);
        let z = "1970-01-01T00:00:00.000000000Z";
        assert_eq!(String::from_utf8(out).unwrap(), format!("{z} o1\n"));
        assert_eq!(
            String::from_utf8(err).unwrap(),
            format!("{z} e\\x1b0\n{z} e1\n")
        );
    }

    /// Both writers on one file see the log's order: the other writer is flushed at a change.
    #[test]
    fn a_change_of_stream_flushes_the_other_writer() {
        use std::io::BufWriter;
        let shared = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut outs = Outputs::new(
            BufWriter::new(Shared(shared.clone())),
            BufWriter::new(Shared(shared.clone())),
            true,
        );
        let mut p = Printer::new(ViewOptions::default());
        for r in sample() {
            p.push(&r, &mut outs).unwrap();
        }
        p.finish(&mut outs).unwrap();
        outs.flush().unwrap();
        assert_eq!(&shared.borrow()[..], b"one\ntwerr\no\nthree");
    }

    #[test]
    fn stream_filter_joins_lines_across_runs() {
        let o = ViewOptions {
            stream: Some(Stream::Stdout),
            ..Default::default()
        };
        assert_eq!(print(o, &sample()), b"one\ntwo\nthree");
        let e = ViewOptions {
            stream: Some(Stream::Stderr),
            ..Default::default()
        };
        assert_eq!(print(e, &sample()), b"err\n");
    }

    #[test]
    fn tail_since_until() {
        let t = ViewOptions {
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(print(t, &sample()), b"two\nthree");
        let s = ViewOptions {
            since_ns: Some(15),
            until_ns: Some(30),
            ..Default::default()
        };
        // "two" started at 10: a line carries its first byte's time.
        assert_eq!(print(s, &sample()), b"err\n");
    }

    #[test]
    fn timestamps_prefix_rfc3339_nanos() {
        let o = ViewOptions {
            timestamps: true,
            stream: Some(Stream::Stderr),
            ..Default::default()
        };
        let out = print(o, &[run(Stream::Stderr, 1_700_000_000_000_000_001, b"x\n")]);
        assert_eq!(out, b"2023-11-14T22:13:20.000000001Z x\n");
    }

    #[test]
    fn escaping_keeps_text_and_escapes_the_rest() {
        let mut out = Vec::new();
        write_bytes(&mut out, "a\u{e9}\t\x1b[0m\n\\".as_bytes(), true).unwrap();
        write_bytes(&mut out, b"\xff\xfe", true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\u{e9}\t\\x1b[0m\n\\\\\\xff\\xfe"
        );
    }
}
