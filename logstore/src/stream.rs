//! [`Stream`]: which output of a container a run of bytes came from, as the store records it
//! (the `stream` byte of an index entry, `docs/log-files.md`), and the one conversion from the
//! sink ABI's stream.

use std::fmt;
use std::str::FromStr;

/// Which output stream of the workload bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// File descriptor 1 (index byte 1).
    Stdout,
    /// File descriptor 2 (index byte 2).
    Stderr,
}

impl Stream {
    /// Both streams, stdout first.
    pub const ALL: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    /// The index byte: 1 stdout, 2 stderr (the same numbers as the sink ABI's).
    pub const fn byte(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    /// The stream of an index byte: 2 is stderr, anything else stdout (as the sink ABI reads a
    /// record's stream number).
    pub const fn from_byte(b: u8) -> Self {
        if b == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }

    /// `stdout` or `stderr`.
    pub const fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is neither `stdout` nor `stderr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream {0:?}: use stdout or stderr")]
pub struct UnknownStream(pub String);

impl FromStr for Stream {
    type Err = UnknownStream;

    /// Parses [`Stream::name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stream::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| UnknownStream(s.to_string()))
    }
}

/// The sink ABI's stream (`sink_abi::Stream`, whose C numbers are the index bytes): the one
/// place the two meet.
#[cfg(feature = "sink-abi")]
impl From<sink_abi::Stream> for Stream {
    fn from(s: sink_abi::Stream) -> Self {
        match s {
            sink_abi::Stream::Stdout => Stream::Stdout,
            sink_abi::Stream::Stderr => Stream::Stderr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_names_round_trip() {
        for s in Stream::ALL {
            assert_eq!(Stream::from_byte(s.byte()), s);
            assert_eq!(s.name().parse::<Stream>().unwrap(), s);
        }
        assert_eq!(Stream::from_byte(0), Stream::Stdout);
        assert_eq!(Stream::from_byte(2), Stream::Stderr);
        assert!("fd3".parse::<Stream>().is_err());
    }

    #[cfg(feature = "sink-abi")]
    #[test]
    fn the_sink_abi_numbers_are_the_index_bytes() {
        for s in [sink_abi::Stream::Stdout, sink_abi::Stream::Stderr] {
            assert_eq!(u32::from(Stream::from(s).byte()), s.as_u32());
        }
    }
}
