//! The `tcp` sink: sends each record to a TCP peer as `json_lines` or `msgpack` (see
//! [`format`]).
//!
//! Options:
//! - `address` (required): `host:port`.
//! - `format`: `json_lines` (default) or `msgpack`.
//! - `connect-timeout` (default `2s`), `write-timeout` (default `10s`).
//!
//! Connecting is lazy (`create` never blocks). Records are sent as they are written: a
//! `write`/`write_batch` returns once the kernel accepted their bytes, and keeps nothing
//! between calls, so a record is never queued twice. When the peer is down or goes away, the
//! call returns `ENGINE_SINK_RETRY` with the records not sent whole left untaken: the router
//! offers those again with capped exponential back-off (100 ms doubling to 5 s), and in
//! blocking mode keeps the container's output in its pipe meanwhile; in non-blocking mode the
//! queue fills and drops are counted. `flush` has nothing to store (it only notices a hang-up).
//!
//! Delivery guarantee, the same as Docker's fluentd/syslog drivers without application-level
//! acks:
//! - A record counts as delivered (taken) once the kernel accepted all of its bytes on a
//!   connection; every other record is sent again, whole and in order, on the next connection,
//!   and only if the router offers it again (it does not after it gave up: drain-timeout).
//!   Each line of a record is one object; objects of a record that a broken connection had
//!   already carried whole are not sent again (one cut in the middle is: the peer sees the cut
//!   piece, then the whole line).
//! - Before each send and at each `flush` the sink checks whether the peer hung up (FIN or
//!   reset); if so it closes its end and reconnects before sending, so a peer that hangs up
//!   and still reads what was in flight (half-close, or a clean close after draining its
//!   socket) loses nothing.
//! - The connection is closed when the container's streams end (`destroy`, after the final
//!   `flush`), so a peer always sees EOF then, even if it hung up after everything was sent.
//! - Not covered: bytes the kernel accepted that the peer never read — a peer that crashes or
//!   closes without draining its receive buffer loses them (TCP has no acknowledgement at
//!   this level).

pub mod format;

use format::Format;
use sink_abi::{Batch, BatchError, Config, ConfigError, Record, Sink, SinkError};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Options this sink accepts.
const KNOWN: [&str; 4] = ["address", "format", "connect-timeout", "write-timeout"];
/// Encoded bytes gathered before one send, in bytes.
const SEND_BYTES: usize = 64 * 1024;

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `host:port`.
    pub address: String,
    /// Wire format.
    pub format: Format,
    /// Longest wait for one connection attempt.
    pub connect_timeout: Duration,
    /// Longest wait for one send.
    pub write_timeout: Duration,
}

impl Options {
    /// Parses and checks the options (no name resolution, no connection).
    ///
    /// # Errors
    /// Unknown keys, a missing or malformed `address`, an unknown `format`, bad durations.
    pub fn parse(c: &Config) -> Result<Self, ConfigError> {
        c.check_known(&KNOWN)?;
        let address = c.require("address")?.to_string();
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(ConfigError(format!("address `{address}` is not host:port")));
        }
        let format = match c.get("format") {
            None => Format::JsonLines,
            Some(f) => Format::parse(f)
                .ok_or_else(|| ConfigError(format!("format `{f}` is not json_lines or msgpack")))?,
        };
        Ok(Self {
            address,
            format,
            connect_timeout: c.duration_or("connect-timeout", Duration::from_secs(2))?,
            write_timeout: c.duration_or("write-timeout", Duration::from_secs(10))?,
        })
    }
}

/// A connection (made lazily) and the scratch space of one call.
#[derive(Debug)]
pub struct TcpSink {
    opts: Options,
    conn: Option<TcpStream>,
    /// Encoded objects of the call being sent; empty between calls.
    buf: Vec<u8>,
    /// End offset in `buf` of each object.
    ends: Vec<usize>,
    /// Per record in `buf`: the number of objects up to and including it (index into `ends`).
    rec_ends: Vec<usize>,
    /// Objects of the next record offered that a broken connection already delivered whole
    /// (the router offers the same record again): not sent again.
    skip: usize,
}

/// Whether the peer closed (or broke) the connection, without blocking or consuming.
fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: recv into a valid 1-byte buffer on a live socket; MSG_PEEK consumes nothing.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock,
    }
}

/// Where a send cut after `sent` bytes leaves the records in the buffer: `(whole, skip)`, the
/// records sent whole, and the objects of the next record sent whole (`lead` of them by an
/// earlier call, when that record is the buffer's first). `ends`: end offset of each object;
/// `rec_ends`: per record, the number of objects up to and including it.
fn after_break(ends: &[usize], rec_ends: &[usize], sent: usize, lead: usize) -> (usize, usize) {
    let objects = ends.partition_point(|&e| e <= sent);
    let whole = rec_ends.partition_point(|&e| e <= objects);
    let skip = match whole {
        0 => lead + objects,
        w => objects - rec_ends[w - 1],
    };
    (whole, skip)
}

impl TcpSink {
    /// A sink that will connect to `opts.address` when it first has something to send.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            conn: None,
            buf: Vec::new(),
            ends: Vec::new(),
            rec_ends: Vec::new(),
            skip: 0,
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
        for addr in self.opts.address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.opts.connect_timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_write_timeout(Some(self.opts.write_timeout))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Closes a connection the peer hung up on.
    fn drop_closed(&mut self) {
        if self.conn.as_ref().is_some_and(peer_closed) {
            self.conn = None;
        }
    }

    /// Sends all of `buf` (connecting first if needed). On failure the connection is closed
    /// and the bytes the kernel accepted are returned with the reason.
    fn transmit(&mut self) -> Result<(), (usize, String)> {
        let addr = &self.opts.address;
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self
                .connect()
                .map_err(|e| (0, format!("cannot connect to {addr}: {e}")))?,
        };
        let mut sent = 0;
        while sent < self.buf.len() {
            match conn.write(&self.buf[sent..]) {
                Ok(0) => return Err((sent, format!("connection to {addr} closed; reconnecting"))),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err((
                        sent,
                        format!("connection to {addr} broke: {e}; reconnecting"),
                    ))
                }
            }
        }
        self.conn = Some(conn);
        Ok(())
    }

    /// Encodes and sends `count` records, [`SEND_BYTES`] at a time. Nothing is kept after the
    /// call.
    ///
    /// # Errors
    /// The number of records sent whole (taken) and [`SinkError::Retry`] when the peer
    /// cannot be reached or the connection broke; objects of the next record that went
    /// whole are remembered in `skip`.
    pub fn send<'a>(
        &mut self,
        count: usize,
        records: impl Iterator<Item = Record<'a>>,
    ) -> Result<(), (usize, SinkError)> {
        self.drop_closed();
        self.buf.clear();
        self.ends.clear();
        self.rec_ends.clear();
        let mut taken = 0;
        // Objects of the first record in `buf` that an earlier call delivered.
        let mut lead = 0;
        for (i, r) in records.enumerate() {
            let Self { buf, ends, .. } = self;
            self.opts.format.encode_objects(&r, buf, |e| ends.push(e));
            if i == 0 && self.skip > 0 {
                lead = self.skip.min(self.ends.len());
                let cut = self.ends[lead - 1];
                self.buf.drain(..cut);
                self.ends.drain(..lead);
                self.ends.iter_mut().for_each(|e| *e -= cut);
            }
            self.rec_ends.push(self.ends.len());
            if self.buf.len() < SEND_BYTES && i + 1 < count {
                continue;
            }
            if let Err((sent, message)) = self.transmit() {
                let (whole, skip) = after_break(&self.ends, &self.rec_ends, sent, lead);
                self.skip = skip;
                self.buf.clear();
                return Err((taken + whole, SinkError::Retry(message)));
            }
            taken += self.rec_ends.len();
            lead = 0;
            self.skip = 0;
            self.buf.clear();
            self.ends.clear();
            self.rec_ends.clear();
        }
        Ok(())
    }
}

impl Sink for TcpSink {
    fn validate(config: &Config) -> Result<(), ConfigError> {
        Options::parse(config).map(|_| ())
    }

    fn create(config: &Config) -> Result<Self, ConfigError> {
        Ok(TcpSink::new(Options::parse(config)?))
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        self.send(1, std::iter::once(*record)).map_err(|(_, e)| e)
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), BatchError> {
        self.send(batch.len(), batch.iter())
            .map_err(|(taken, error)| BatchError { taken, error })
    }

    /// Nothing is buffered between calls: closes a connection the peer hung up on, so that it
    /// does not sit in CLOSE-WAIT until the next record.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.drop_closed();
        Ok(())
    }
}

sink_abi::export_sink!(TcpSink, "tcp");

#[cfg(test)]
mod tests {
    use super::*;
    use sink_abi::Stream;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    fn rec(data: &[u8]) -> Record<'_> {
        Record {
            container_id: "t",
            stream: Stream::Stdout,
            timestamp_ns: 0,
            partial: false,
            data,
        }
    }

    #[test]
    fn options() {
        let c = Config::from_pairs([("address", "127.0.0.1:5170"), ("format", "msgpack")]);
        assert_eq!(Options::parse(&c).unwrap().format, Format::Msgpack);
        for bad in [
            vec![],
            vec![("address", "nohost")],
            vec![("address", "h:0")],
            vec![("address", "h:1"), ("format", "xml")],
            vec![("address", "h:1"), ("connect-timeout", "soon")],
            vec![("address", "h:1"), ("colour", "red")],
        ] {
            assert!(
                Options::parse(&Config::from_pairs(bad.clone())).is_err(),
                "{bad:?}"
            );
        }
    }

    /// Accepts one connection within 10 s and gives it a 10 s read timeout, so a test fails
    /// with a message instead of hanging.
    fn accept(l: &TcpListener) -> TcpStream {
        l.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match l.accept() {
                Ok((c, _)) => {
                    c.set_nonblocking(false).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    return c;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the sink did not connect within 10 s"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// A sink to a local port nothing listens on (yet), and that port's address.
    fn sink_to_closed_port() -> (TcpSink, String) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        (sink_to(&addr), addr)
    }

    fn sink_to(addr: &str) -> TcpSink {
        TcpSink::new(Options::parse(&Config::from_pairs([("address", addr)])).unwrap())
    }

    fn line(r: &mut impl BufRead) -> String {
        let mut line = String::new();
        r.read_line(&mut line)
            .expect("a line from the sink within 10 s");
        line
    }

    #[test]
    fn peer_down_is_retry_and_reconnects_after_a_clean_close() {
        let (mut s, addr) = sink_to_closed_port();
        assert!(matches!(s.write(&rec(b"one\n")), Err(SinkError::Retry(_))));
        let l = TcpListener::bind(&addr).unwrap();
        s.write(&rec(b"one\n")).unwrap();
        s.flush().unwrap();
        let mut r = BufReader::new(accept(&l));
        let one = line(&mut r);
        assert!(one.contains("\"log\":\"one\\n\""), "{one}");
        drop(r);
        std::thread::sleep(Duration::from_millis(50));
        s.write(&rec(b"two\n")).unwrap();
        s.flush().unwrap();
        let two = line(&mut BufReader::new(accept(&l)));
        assert!(two.contains("\"log\":\"two\\n\""), "{two}");
    }

    /// Records offered again after failed calls (as the router does while the peer is down)
    /// reach a peer that comes up later once each: a failed call keeps nothing.
    #[test]
    fn records_retried_while_the_peer_is_down_arrive_once() {
        let (mut s, addr) = sink_to_closed_port();
        // Big enough to be sent in several pieces of SEND_BYTES.
        let data: Vec<u8> = (0..1000)
            .flat_map(|n| format!("line {n:04} {}\n", "x".repeat(100)).into_bytes())
            .collect();
        // Records of 100 whole lines each.
        let line_len = data.len() / 1000;
        let chunk: Vec<&[u8]> = data.chunks(100 * line_len).collect();
        let recs: Vec<_> = chunk.iter().map(|d| rec(d).to_ffi()).collect();
        // SAFETY: the records point into `data`, consecutive slices of it, alive for the test.
        let batch = unsafe { Batch::from_ffi(&recs) };
        for _ in 0..10 {
            let e = s.write_batch(&batch).unwrap_err();
            assert_eq!(e.taken, 0);
            assert!(matches!(e.error, SinkError::Retry(_)));
            assert!(s.flush().is_ok());
        }
        let l = TcpListener::bind(&addr).unwrap();
        s.write_batch(&batch).unwrap();
        s.flush().unwrap();
        drop(s);
        let mut got = String::new();
        std::io::Read::read_to_string(&mut accept(&l), &mut got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 1000, "each line exactly once");
        for (n, l) in lines.iter().enumerate() {
            assert!(l.contains(&format!("\"log\":\"line {n:04} ")), "{n}: {l}");
        }
    }

    /// Where a broken connection left a call: records sent whole, and objects of the next
    /// one that went whole (plus those an earlier call had sent).
    #[test]
    fn a_break_takes_whole_records_and_remembers_whole_objects() {
        // Two records: objects end at 10, 20 | 30.
        let (ends, recs) = ([10, 20, 30], [2, 3]);
        assert_eq!(after_break(&ends, &recs, 0, 0), (0, 0));
        assert_eq!(after_break(&ends, &recs, 15, 0), (0, 1));
        assert_eq!(
            after_break(&ends, &recs, 15, 4),
            (0, 5),
            "earlier objects count"
        );
        assert_eq!(after_break(&ends, &recs, 20, 4), (1, 0));
        assert_eq!(after_break(&ends, &recs, 29, 0), (1, 0));
    }

    /// The objects a break had sent whole are not sent again with the record.
    #[test]
    fn objects_sent_whole_before_a_break_are_not_sent_again() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = sink_to(&l.local_addr().unwrap().to_string());
        s.skip = 1;
        s.write(&rec(b"a\nb\nc\n")).unwrap();
        assert_eq!(s.skip, 0);
        drop(s);
        let mut got = String::new();
        std::io::Read::read_to_string(&mut accept(&l), &mut got).unwrap();
        let logs: Vec<&str> = got.lines().collect();
        assert_eq!(logs.len(), 2, "{got}");
        assert!(logs[0].contains("\"log\":\"b\\n\""), "{got}");
        assert!(logs[1].contains("\"log\":\"c\\n\""), "{got}");
    }

    #[test]
    fn a_hang_up_after_everything_was_sent_is_closed_at_the_next_flush() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = sink_to(&l.local_addr().unwrap().to_string());
        s.write(&rec(b"one\n")).unwrap();
        s.flush().unwrap();
        let c = accept(&l);
        let mut r = BufReader::new(c.try_clone().unwrap());
        assert!(line(&mut r).contains("one"));
        c.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.flush().unwrap();
        assert_eq!(line(&mut r), "", "EOF: the sink closed its end");
        s.write(&rec(b"two\n")).unwrap();
        s.flush().unwrap();
        assert!(line(&mut BufReader::new(accept(&l))).contains("two"));
    }
}
