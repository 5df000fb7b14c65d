//! The `tcp` sink: sends each record to a TCP peer as `json_lines` or `msgpack` (see
//! [`format`]).
//!
//! Options:
//! - `address` (required): `host:port`.
//! - `format`: `json_lines` (default) or `msgpack`.
//! - `connect-timeout` (default `2s`), `write-timeout` (default `10s`).
//!
//! Connecting is lazy (`create` never blocks). When the peer is down or goes away, `flush`
//! returns `ENGINE_SINK_RETRY`: the router retries with capped exponential back-off (100 ms
//! doubling to 5 s) and, in blocking mode, keeps the container's output in its pipe meanwhile,
//! so nothing is dropped; in non-blocking mode the queue fills and drops are counted.
//!
//! Delivery guarantee (blocking mode), the same as Docker's fluentd/syslog drivers without
//! application-level acks:
//! - A record counts as delivered once the kernel accepted all of its bytes on a connection;
//!   every other record (including one cut in the middle by a broken connection) is sent
//!   again, whole and in order, on the next connection.
//! - Before each send and at each `flush` (even with nothing to send) the sink checks whether
//!   the peer hung up (FIN or reset); if so it closes its end and reconnects before sending, so
//!   a peer that hangs up and still reads what was in flight (half-close, or a clean close
//!   after draining its socket) loses nothing.
//! - The connection is closed when the container's streams end (`destroy`, after the final
//!   `flush`), so a peer always sees EOF then, even if it hung up after everything was sent.
//! - Not covered: bytes the kernel accepted that the peer never read — a peer that crashes or
//!   closes without draining its receive buffer loses them (TCP has no acknowledgement at
//!   this level).

pub mod format;

use format::Format;
use sink_abi::{Config, ConfigError, Record, Sink, SinkError};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Options this sink accepts.
const KNOWN: [&str; 4] = ["address", "format", "connect-timeout", "write-timeout"];
/// Encoded bytes buffered before sending without waiting for `flush`.
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

/// A connection (made lazily) and the encoded records not yet sent.
#[derive(Debug)]
pub struct TcpSink {
    opts: Options,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    /// End offset in `buf` of each encoded record.
    ends: Vec<usize>,
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

impl TcpSink {
    /// A sink that will connect to `opts.address` when it first has something to send.
    pub fn new(opts: Options) -> Self {
        Self {
            opts,
            conn: None,
            buf: Vec::new(),
            ends: Vec::new(),
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

    /// Sends everything buffered. On a broken connection, records sent whole are dropped from
    /// the buffer and the rest (including a record cut in the middle) stays for the next
    /// connection.
    ///
    /// # Errors
    /// [`SinkError::Retry`] when the peer cannot be reached or the connection broke.
    pub fn send(&mut self) -> Result<(), SinkError> {
        // Checked even with nothing to send, so a connection the peer hung up on is closed at
        // the next flush instead of sitting in CLOSE-WAIT until the next record.
        if self.conn.as_ref().is_some_and(peer_closed) {
            self.conn = None;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let addr = &self.opts.address;
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self
                .connect()
                .map_err(|e| SinkError::Retry(format!("cannot connect to {addr}: {e}")))?,
        };
        let mut sent = 0;
        while sent < self.buf.len() {
            match conn.write(&self.buf[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if sent == self.buf.len() {
            self.buf.clear();
            self.ends.clear();
            self.conn = Some(conn);
            return Ok(());
        }
        let whole = self.ends.partition_point(|&e| e <= sent);
        let cut = if whole == 0 { 0 } else { self.ends[whole - 1] };
        self.buf.drain(..cut);
        self.ends.drain(..whole);
        self.ends.iter_mut().for_each(|e| *e -= cut);
        Err(SinkError::Retry(format!(
            "connection to {addr} broke; reconnecting"
        )))
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
        self.opts.format.encode(record, &mut self.buf);
        self.ends.push(self.buf.len());
        if self.buf.len() >= SEND_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.send()
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

    fn line(r: &mut impl BufRead) -> String {
        let mut line = String::new();
        r.read_line(&mut line)
            .expect("a line from the sink within 10 s");
        line
    }

    #[test]
    fn peer_down_is_retry_and_reconnects_after_a_clean_close() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let mut s = TcpSink::new(
            Options::parse(&Config::from_pairs([("address", addr.as_str())])).unwrap(),
        );
        s.write(&rec(b"one\n")).unwrap();
        assert!(matches!(s.flush(), Err(SinkError::Retry(_))));
        let l = TcpListener::bind(&addr).unwrap();
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

    #[test]
    fn a_hang_up_after_everything_was_sent_is_closed_at_the_next_flush() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut s = TcpSink::new(
            Options::parse(&Config::from_pairs([("address", addr.as_str())])).unwrap(),
        );
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
