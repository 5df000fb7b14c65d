//! Per-container routing state: the two read ends, the chunk in flight on each, the sink
//! threads, and the finish bookkeeping that decides when the log is complete.

use crate::worker::SinkHandle;
use proto::api::SinkDrops;
use sink_abi::Stream;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The streams of a route, in token order.
pub const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// Index of a stream in [`Route::streams`].
pub fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// One stream of a container.
#[derive(Debug)]
pub struct StreamState {
    /// The read end; `None` after end of file.
    pub fd: Option<OwnedFd>,
    /// Length of the chunk peeked and handed to sinks but not yet consumed, in bytes.
    pub in_flight: Option<usize>,
    /// Every writer closed (no more bytes will come after what the pipe holds).
    pub hup: bool,
    /// Since when an unfinished line has been waiting in the pipe for its line feed.
    pub held_since: Option<Instant>,
}

impl StreamState {
    fn new(fd: OwnedFd) -> Self {
        Self {
            fd: Some(fd),
            in_flight: None,
            hup: false,
            held_since: None,
        }
    }
}

/// One container being routed.
#[derive(Debug)]
pub struct Route {
    /// Container id.
    pub id: String,
    /// Stdout then stderr.
    pub streams: [StreamState; 2],
    /// Sink threads; empty when the output is discarded (sinks could not be created).
    pub sinks: Vec<SinkHandle>,
    /// Sinks asked to finish that have not reported `Finished` yet.
    pub unfinished: usize,
    /// Whether finishing has started.
    pub finishing: bool,
    /// Drop counters last reported, per sink.
    pub reported: Vec<(u64, u64)>,
}

impl Route {
    /// A route over the two read ends.
    pub fn new(id: String, stdout: OwnedFd, stderr: OwnedFd, sinks: Vec<SinkHandle>) -> Self {
        let reported = vec![(0, 0); sinks.len()];
        Self {
            id,
            streams: [StreamState::new(stdout), StreamState::new(stderr)],
            sinks,
            unfinished: 0,
            finishing: false,
            reported,
        }
    }

    /// Both streams reached end of file and nothing is in flight.
    pub fn streams_done(&self) -> bool {
        self.streams
            .iter()
            .all(|s| s.fd.is_none() && s.in_flight.is_none())
    }

    /// Drop counters that changed since the last call (all non-zero ones, as the report wants),
    /// or `None` when nothing changed.
    pub fn drops_changed(&mut self) -> Option<Vec<SinkDrops>> {
        let now: Vec<(u64, u64)> = self
            .sinks
            .iter()
            .map(|s| {
                (
                    s.shared.dropped_records.load(Ordering::Relaxed),
                    s.shared.dropped_bytes.load(Ordering::Relaxed),
                )
            })
            .collect();
        if now == self.reported {
            return None;
        }
        let drops = self
            .sinks
            .iter()
            .zip(&now)
            .filter(|(_, c)| c.0 > 0)
            .map(|(s, c)| SinkDrops {
                sink: s.label.clone(),
                dropped_records: c.0,
                dropped_bytes: c.1,
            })
            .collect();
        self.reported = now;
        Some(drops)
    }
}
