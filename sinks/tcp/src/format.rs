//! Encodings of one record: `json_lines` and `msgpack`, with an RFC 3339 time.
//!
//! One object per line. Fields: `container` (id), `stream` (`stdout`/`stderr`), `time`
//! (RFC 3339, UTC, nanoseconds), `log` (the line, line feed included), and `partial: true` for a
//! piece of a line without its line feed.
//! - `json_lines`: one JSON object and `\n` per record. `log` is the text; when the bytes are
//!   not valid UTF-8, `log` holds them with U+FFFD replacements and `log_base64` holds the exact
//!   bytes (standard base64), so nothing is lost.
//! - `msgpack`: one MessagePack map per record; `log` is `bin` (exact bytes).

use sink_abi::Record;

/// Wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// One MessagePack map per record.
    Msgpack,
}

impl Format {
    /// Parses the `format` option.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json_lines" => Some(Format::JsonLines),
            "msgpack" => Some(Format::Msgpack),
            _ => None,
        }
    }

    /// Appends the encoding of `r` to `out`: one object per line of the record (a record may
    /// hold several lines); a last piece without a line feed is marked partial.
    pub fn encode(self, r: &Record<'_>, out: &mut Vec<u8>) {
        self.encode_objects(r, out, |_| {});
    }

    /// As [`Format::encode`], calling `end(offset)` with the end offset in `out` of each
    /// object (one per line), in order.
    pub fn encode_objects(self, r: &Record<'_>, out: &mut Vec<u8>, mut end: impl FnMut(usize)) {
        for piece in r.data.split_inclusive(|&b| b == b'\n') {
            let line = Record {
                data: piece,
                partial: piece.last() != Some(&b'\n'),
                ..*r
            };
            match self {
                Format::JsonLines => json_line(&line, out),
                Format::Msgpack => msgpack(&line, out),
            }
            end(out.len());
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for nanoseconds since the Unix epoch.
pub fn rfc3339_ns(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ns % 1_000_000_000
    )
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(T[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Appends `s` as a JSON string literal.
fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn json_line(r: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"container\":");
    json_str(r.container_id, out);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(r.stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(rfc3339_ns(r.timestamp_ns).as_bytes());
    out.extend_from_slice(b"\",\"log\":");
    match std::str::from_utf8(r.data) {
        Ok(text) => json_str(text, out),
        Err(_) => {
            json_str(&String::from_utf8_lossy(r.data), out);
            out.extend_from_slice(b",\"log_base64\":\"");
            out.extend_from_slice(base64(r.data).as_bytes());
            out.push(b'"');
        }
    }
    if r.partial {
        out.extend_from_slice(b",\"partial\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// A MessagePack length header with the 8-, 16- and 32-bit length markers given.
fn mp_len(n: usize, markers: [u8; 3], out: &mut Vec<u8>) {
    if n < 256 {
        out.extend_from_slice(&[markers[0], n as u8]);
    } else if n < 65_536 {
        out.push(markers[1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// MessagePack str header + bytes.
fn mp_str(s: &str, out: &mut Vec<u8>) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else {
        mp_len(s.len(), [0xd9, 0xda, 0xdb], out);
    }
    out.extend_from_slice(s.as_bytes());
}

/// MessagePack bin header + bytes.
fn mp_bin(b: &[u8], out: &mut Vec<u8>) {
    mp_len(b.len(), [0xc4, 0xc5, 0xc6], out);
    out.extend_from_slice(b);
}

fn msgpack(r: &Record<'_>, out: &mut Vec<u8>) {
    out.push(0x80 | if r.partial { 5 } else { 4 });
    mp_str("container", out);
    mp_str(r.container_id, out);
    mp_str("stream", out);
    mp_str(r.stream.name(), out);
    mp_str("time", out);
    mp_str(&rfc3339_ns(r.timestamp_ns), out);
    mp_str("log", out);
    mp_bin(r.data, out);
    if r.partial {
        mp_str("partial", out);
        out.push(0xc3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sink_abi::Stream;

    fn rec(data: &[u8], partial: bool) -> Record<'_> {
        Record {
            container_id: "web",
            stream: Stream::Stderr,
            timestamp_ns: 1_700_000_000_123_456_789,
            partial,
            data,
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn json_lines_escape_losslessly() {
        let mut out = Vec::new();
        Format::JsonLines.encode(&rec(b"a \"q\" \x1b[0m\n", false), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"container\":\"web\",\"stream\":\"stderr\",\"time\":\"2023-11-14T22:13:20.123456789Z\",\"log\":\"a \\\"q\\\" \\u001b[0m\\n\"}\n"
        );
        let mut out = Vec::new();
        Format::JsonLines.encode(&rec(b"\xff\xfe", true), &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("\"log\":\"\u{fffd}\u{fffd}\",\"log_base64\":\"//4=\",\"partial\":true}"),
            "{s}"
        );
    }

    #[test]
    fn one_object_per_line() {
        let mut out = Vec::new();
        Format::JsonLines.encode(&rec(b"a\nb\nc", true), &mut out);
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].ends_with("\"log\":\"a\\n\"}")
                && lines[2].ends_with("\"log\":\"c\",\"partial\":true}"),
            "{s}"
        );
    }

    #[test]
    fn msgpack_map_with_bin_log() {
        let mut out = Vec::new();
        Format::Msgpack.encode(&rec(b"\xff\n", false), &mut out);
        assert_eq!(out[0], 0x84);
        assert!(out.ends_with(&[0xa3, b'l', b'o', b'g', 0xc4, 2, 0xff, b'\n']));
    }
}
