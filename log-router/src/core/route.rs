//! Per-container routing state the core owns: each stream's phase (gathering, chunk in flight,
//! done), the container's sinks as the core sees them (label, mode, deadlines, counters), and
//! the finish bookkeeping that decides when the log is complete.

use crate::pipe::Discarded;
use crate::plan::Mode;
use crate::sink_shared::SinkShared;
use proto::api::{SinkDrops, SinkWait};
use sink_abi::Stream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sink name under which a route without sinks (they could not be created) reports the
/// output it read and threw away, in `Drops`.
pub const DISCARDED: &str = "discarded";

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

/// The streams of a route, in index order.
pub const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// Index of a stream in [`Route::streams`].
pub fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

/// A sink of a route as the core sees it (its thread belongs to the shell).
#[derive(Debug, Clone)]
pub struct SinkInfo {
    /// Sink label (name or path as configured), used in reports.
    pub label: String,
    /// The sink and its options as configured, router options left out.
    pub shown: String,
    /// Delivery mode.
    pub mode: Mode,
    /// How long the sink keeps retrying once asked to finish.
    pub drain_timeout: Duration,
    /// Counters shared with the sink's thread.
    pub shared: Arc<SinkShared>,
}

impl SinkInfo {
    /// Whether a new chunk must be held by this sink (blocking and healthy).
    pub fn holds(&self) -> bool {
        self.mode == Mode::Blocking && !self.shared.failing.load(Ordering::Acquire)
    }

    /// Bytes queued for the sink's thread, not yet settled.
    pub fn queued(&self) -> u64 {
        self.shared.queued_bytes()
    }
}

/// One stream of a container.
#[derive(Debug)]
pub struct StreamState {
    /// The pipe is still read (false after end of file).
    pub open: bool,
    /// The chunk peeked and handed to sinks but not yet consumed: (number, length in bytes).
    pub in_flight: Option<(u64, usize)>,
    /// Every writer closed (no more bytes will come after what the pipe holds).
    pub hup: bool,
    /// Since when an unfinished line has been waiting in the pipe for its line feed.
    pub held_since: Option<Instant>,
    /// Until when the bytes in the pipe are left to gather into a larger chunk (see
    /// [`super::rules::COALESCE_WAIT`]).
    pub gather_until: Option<Instant>,
    /// The last peek found a full chunk in the pipe: the writer is fast, what is left after
    /// it is taken at once rather than gathered.
    pub last_full: bool,
    /// Whether the poll reports the pipe's bytes (true), or only its hang-up (while a chunk is
    /// in flight or bytes gather: each write would wake the loop for nothing).
    pub armed: bool,
    /// Chunks the stream may still take in its current turn.
    pub turn_left: usize,
}

impl StreamState {
    fn new() -> Self {
        Self {
            open: true,
            in_flight: None,
            hup: false,
            held_since: None,
            gather_until: None,
            last_full: false,
            armed: true,
            turn_left: 0,
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
    /// Sinks; empty when the output is discarded (sinks could not be created).
    pub sinks: Vec<SinkInfo>,
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
    /// `Draining` was reported.
    pub draining_reported: bool,
    /// Output read and thrown away because the route has no sinks: (records, bytes).
    pub discarded: (u64, u64),
    /// Per stream: the last byte thrown away did not end a line (a record is open).
    pub discard_open: [bool; 2],
}

impl Route {
    /// A route with both streams open and no sinks yet.
    pub fn new(id: String, serial: u64) -> Self {
        Self {
            id,
            serial,
            streams: [StreamState::new(), StreamState::new()],
            sinks: Vec::new(),
            finished: Vec::new(),
            abandoned: Vec::new(),
            finishing: false,
            gone_at: None,
            next_seq: 0,
            reported: Vec::new(),
            draining_reported: false,
            discarded: (0, 0),
            discard_open: [false; 2],
        }
    }

    /// Counts output of stream `idx` thrown away for lack of sinks: each line is a record, and
    /// so is an unfinished one at end of file.
    pub fn count_discarded(&mut self, idx: usize, thrown: &Discarded) {
        let open = &mut self.discard_open[idx];
        if thrown.bytes > 0 {
            *open = thrown.open_line;
        }
        let unfinished = u64::from(thrown.eof && std::mem::take(open));
        self.discarded.0 += thrown.lines + unfinished;
        self.discarded.1 += thrown.bytes;
    }

    /// Gives the route its sinks.
    pub fn set_sinks(&mut self, sinks: Vec<SinkInfo>) {
        self.finished = vec![false; sinks.len()];
        self.abandoned = vec![false; sinks.len()];
        self.reported = vec![(0, 0); sinks.len()];
        self.sinks = sinks;
    }

    /// Every sink finished or was abandoned.
    pub fn sinks_done(&self) -> bool {
        self.finished
            .iter()
            .zip(&self.abandoned)
            .all(|(f, a)| *f || *a)
    }

    /// Deadlines of the sinks still waited for: `(index, deadline)`; empty before the writers
    /// are gone.
    pub fn sink_deadlines(&self) -> impl Iterator<Item = (usize, Instant)> + '_ {
        self.gone_at.into_iter().flat_map(move |t0| {
            self.sinks
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.finished[*i] && !self.abandoned[*i])
                .map(move |(i, s)| (i, t0 + s.drain_timeout + FINISH_SLACK))
        })
    }

    /// Once the writers are gone, the first time blocking sinks still waited for are stalled
    /// (failing): those sinks, which the container's end now waits for; `None` otherwise, and
    /// ever after.
    pub fn newly_draining(&mut self) -> Option<Vec<SinkWait>> {
        if self.gone_at.is_none() || self.draining_reported {
            return None;
        }
        let waits: Vec<SinkWait> = self
            .sinks
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.mode == Mode::Blocking
                    && !self.finished[*i]
                    && !self.abandoned[*i]
                    && s.shared.stalled.load(Ordering::Acquire)
            })
            .map(|(_, s)| SinkWait {
                sink: s.shown.clone(),
                timeout_ms: u64::try_from(s.drain_timeout.as_millis()).unwrap_or(u64::MAX),
            })
            .collect();
        self.draining_reported = !waits.is_empty();
        self.draining_reported.then_some(waits)
    }

    /// Every writer of both streams is gone (hang-up seen, or end of file reached).
    pub fn writers_gone(&self) -> bool {
        self.streams.iter().all(|s| s.hup || !s.open)
    }

    /// Both streams reached end of file and nothing is in flight.
    pub fn streams_done(&self) -> bool {
        self.streams
            .iter()
            .all(|s| !s.open && s.in_flight.is_none())
    }

    /// Drop counters that changed since the last call (all non-zero ones, as the report wants),
    /// or `None` when nothing changed. A route without sinks counts what it threw away, as
    /// sink [`DISCARDED`].
    pub fn drops_changed(&mut self) -> Option<Vec<SinkDrops>> {
        let mut labels: Vec<&str> = self.sinks.iter().map(|s| s.label.as_str()).collect();
        let mut now: Vec<(u64, u64)> = self
            .sinks
            .iter()
            .map(|s| {
                let d = s.shared.dropped();
                (d.records, d.bytes)
            })
            .collect();
        if self.sinks.is_empty() && self.discarded != (0, 0) {
            labels.push(DISCARDED);
            now.push(self.discarded);
        }
        if now == self.reported {
            return None;
        }
        let drops = labels
            .iter()
            .zip(&now)
            .filter(|(_, c)| c.0 > 0 || c.1 > 0)
            .map(|(label, c)| SinkDrops {
                sink: label.to_string(),
                dropped_records: c.0,
                dropped_bytes: c.1,
            })
            .collect();
        self.reported = now;
        Some(drops)
    }
}
