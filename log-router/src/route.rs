//! Per-container routing state: the two read ends, the chunk in flight on each, the sink
//! threads, and the finish bookkeeping that decides when the log is complete.

use crate::worker::SinkHandle;
use proto::api::SinkDrops;
use sink_abi::Stream;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Which route an event is about: the slab key plus a serial, so that an event from a sink
/// thread that outlived its route (abandoned at the finish deadline) never reaches a new route
/// that reuses the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId {
    /// Slab key.
    pub key: usize,
    /// Unique for the router's life.
    pub serial: u64,
}

impl std::fmt::Display for RouteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.key, self.serial)
    }
}

/// Extra time, beyond its drain timeout, a sink gets to catch up once its container's writers
/// are gone, before it is abandoned.
pub const FINISH_SLACK: Duration = Duration::from_secs(2);

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
    /// The chunk peeked and handed to sinks but not yet consumed: (number, length in bytes).
    pub in_flight: Option<(u64, usize)>,
    /// Every writer closed (no more bytes will come after what the pipe holds).
    pub hup: bool,
    /// Since when an unfinished line has been waiting in the pipe for its line feed.
    pub held_since: Option<Instant>,
    /// Until when the bytes in the pipe are left to gather into a larger chunk (see
    /// [`crate::flow::COALESCE_WAIT`]).
    pub gather_until: Option<Instant>,
    /// The last peek found a full chunk in the pipe: the writer is fast, what is left after
    /// it is taken at once rather than gathered.
    pub last_full: bool,
    /// Whether the poll reports the pipe's bytes (true), or only its hang-up (while a chunk is
    /// in flight or bytes gather: each write would wake the loop for nothing).
    pub armed: bool,
}

impl StreamState {
    fn new(fd: OwnedFd) -> Self {
        Self {
            fd: Some(fd),
            in_flight: None,
            hup: false,
            held_since: None,
            gather_until: None,
            last_full: false,
            armed: true,
        }
    }
}

/// One container being routed.
#[derive(Debug)]
pub struct Route {
    /// Container id.
    pub id: String,
    /// Serial of this route (see [`RouteId`]).
    pub serial: u64,
    /// Stdout then stderr.
    pub streams: [StreamState; 2],
    /// Sink threads; empty when the output is discarded (sinks could not be created).
    pub sinks: Vec<SinkHandle>,
    /// Per sink: reported `Finished`.
    pub finished: Vec<bool>,
    /// Per sink: given up on at the deadline (stuck in a call); no longer waited for.
    pub abandoned: Vec<bool>,
    /// Whether finishing has started.
    pub finishing: bool,
    /// When every writer of both streams was seen gone; from then each sink has its drain
    /// timeout plus slack to catch up, or it is abandoned.
    pub gone_at: Option<Instant>,
    /// Number of the next chunk.
    pub next_seq: u64,
    /// Drop counters last reported, per sink.
    pub reported: Vec<(u64, u64)>,
}

impl Route {
    /// A route over the two read ends.
    pub fn new(
        id: String,
        serial: u64,
        stdout: OwnedFd,
        stderr: OwnedFd,
        sinks: Vec<SinkHandle>,
    ) -> Self {
        let reported = vec![(0, 0); sinks.len()];
        Self {
            id,
            serial,
            streams: [StreamState::new(stdout), StreamState::new(stderr)],
            finished: vec![false; sinks.len()],
            abandoned: vec![false; sinks.len()],
            sinks,
            finishing: false,
            gone_at: None,
            next_seq: 0,
            reported,
        }
    }

    /// Every sink finished or was abandoned.
    pub fn sinks_done(&self) -> bool {
        self.finished
            .iter()
            .zip(&self.abandoned)
            .all(|(f, a)| *f || *a)
    }

    /// Deadlines of the sinks still waited for: `(index, deadline)`; `None` before the
    /// writers are gone.
    pub fn sink_deadline_list(&self) -> Option<Vec<(usize, Instant)>> {
        let t0 = self.gone_at?;
        Some(
            self.sinks
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.finished[*i] && !self.abandoned[*i])
                .map(|(i, s)| (i, t0 + s.drain_timeout + FINISH_SLACK))
                .collect(),
        )
    }

    /// The deadlines of [`Route::sink_deadline_list`], for the poll timeout.
    pub fn sink_deadlines(&self) -> Vec<Instant> {
        self.sink_deadline_list()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    /// Every writer of both streams is gone (hang-up seen, or end of file reached).
    pub fn writers_gone(&self) -> bool {
        self.streams.iter().all(|s| s.hup || s.fd.is_none())
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
        let sinks = std::mem::take(&mut self.sinks);
        let d = self.drops_from(&sinks);
        self.sinks = sinks;
        d
    }

    /// As [`Route::drops_changed`], for sinks already taken out of the route.
    pub fn drops_from(&mut self, sinks: &[SinkHandle]) -> Option<Vec<SinkDrops>> {
        let now: Vec<(u64, u64)> = sinks
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
        let drops = sinks
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
