//! The flow of one container's bytes: let small writes gather in the pipe (bounded), peek a
//! chunk, hand it to the sinks, consume it once every holder released it, end the streams, and
//! complete the route (`Drained`); plus the deadlines that keep a stuck sink from holding a
//! finished container forever.

use crate::event_loop::{now_ns, stream_token, Router, DROPS_EVERY};
use crate::pipe::{self, Peek};
use crate::records::{self, Chunk, Cut, PARTIAL_HOLD};
use crate::route::STREAMS;
use crate::worker::SinkHandle;
use mio::unix::SourceFd;
use mio::Interest;
use proto::router::FromRouter;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Chunks taken from one stream per turn before other streams get theirs.
const CHUNKS_PER_TURN: usize = 8;

/// Bytes in a pipe from which a chunk is taken at once; below, they are left to gather for up
/// to [`COALESCE_WAIT`] first.
pub const COALESCE_BYTES: usize = 64 * 1024;

/// Longest time bytes are left in a pipe to gather into a larger chunk. A container writing
/// many small pieces (one line per `write(2)`) would otherwise cost a hand-off to the sink
/// threads, a sink write and two thread wake-ups per few lines; a container's end (hang-up)
/// is never waited for. `mio` sleeps whole milliseconds, so a wait lasts 1–2 ms.
pub const COALESCE_WAIT: Duration = Duration::from_millis(1);

/// Whether to leave `pending` bytes in the pipe to gather (see [`COALESCE_WAIT`]): not after
/// the writers closed (`hup`), not once enough are there, not right after a full chunk
/// (`last_full`: the writer is fast; waiting could fill the pipe and stall it while the
/// router sleeps), not past `until` (the end of a gathering already begun).
pub fn gathers(
    pending: usize,
    hup: bool,
    last_full: bool,
    until: Option<Instant>,
    now: Instant,
) -> bool {
    !hup && !last_full && pending > 0 && pending < COALESCE_BYTES && until.is_none_or(|t| now < t)
}

impl Router {
    /// How long the next poll may sleep: zero with streams ready, else until the next held
    /// line, sink deadline or drops report.
    pub(crate) fn next_timeout(&self) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let deadlines = self
            .held
            .iter()
            .map(|h| h.0)
            .chain(self.routes.iter().flat_map(|(_, r)| r.sink_deadlines()))
            .filter(|d| *d > now)
            .chain(std::iter::once(self.last_drops + DROPS_EVERY));
        deadlines
            .map(|d| d.saturating_duration_since(now))
            .min()
            .unwrap_or(DROPS_EVERY)
    }

    /// Notes when a route's writers are gone, then gives each of its sinks that long plus its
    /// drain timeout plus [`crate::route::FINISH_SLACK`] to catch up. A sink still busy after that (stuck
    /// inside a call, or failing) is abandoned, so that it cannot keep a container from being
    /// reported ended: it holds nothing more, is no longer waited for, what it had queued is
    /// counted as dropped, and the chunk in flight is consumed (the other sinks have it).
    pub(crate) fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (key, r) in self.routes.iter_mut() {
            if r.gone_at.is_none() && r.writers_gone() {
                r.gone_at = Some(now);
            }
            let Some(deadlines) = r.sink_deadline_list() else {
                continue;
            };
            let mut changed = false;
            for (i, d) in deadlines {
                let s = &r.sinks[i];
                let busy = s.shared.queued_bytes.load(Ordering::Acquire) > 0;
                if d > now || !(busy || r.finishing) {
                    continue;
                }
                r.abandoned[i] = true;
                changed = true;
                s.shared.failing.store(true, Ordering::Release);
                let queued = s.shared.queued_bytes.load(Ordering::Acquire);
                s.shared.drop_records(1, queued as u64);
                tracing::error!(id = %r.id, sink = %s.label, "sink did not catch up in time; abandoned");
            }
            if changed {
                due.push(key);
            }
        }
        for key in due {
            for idx in 0..STREAMS.len() {
                let seq = self.routes[key].streams[idx].in_flight.map(|f| f.0);
                if let Some(seq) = seq {
                    self.on_released(key, idx, seq);
                }
            }
            self.maybe_complete(key);
        }
    }

    /// Moves as much of one stream as allowed this turn.
    pub(crate) fn pump(&mut self, key: usize, idx: usize) {
        match self.turn(key, idx) {
            Turn::Idle => self.arm(key, idx, true),
            Turn::Wait => self.arm(key, idx, false),
            Turn::More => self.ready.push_back((key, idx)),
            Turn::Eof => self.close_stream(key, idx),
        }
    }

    /// Makes the poll report a stream's bytes (`armed`) or only its hang-up. A pipe's read end
    /// is never writable, so polling it for `WRITABLE` alone reports just the hang-up (which
    /// epoll always reports). Re-arming reports bytes already there (epoll polls the file).
    fn arm(&mut self, key: usize, idx: usize, armed: bool) {
        let Some(st) = self.routes.get_mut(key).map(|r| &mut r.streams[idx]) else {
            return;
        };
        let Some(fd) = st.fd.as_ref() else {
            return;
        };
        if st.armed == armed {
            return;
        }
        let interest = if armed {
            Interest::READABLE
        } else {
            Interest::WRITABLE
        };
        match self.poll.registry().reregister(
            &mut SourceFd(&fd.as_raw_fd()),
            stream_token(key, idx),
            interest,
        ) {
            Ok(()) => st.armed = armed,
            Err(e) => {
                tracing::debug!(error = %e, "cannot change what a container pipe is polled for")
            }
        }
    }

    /// Peeks chunks and hands them to the sinks until the pipe is empty, a chunk is in flight,
    /// bytes are left to gather, or the turn is used up.
    fn turn(&mut self, key: usize, idx: usize) -> Turn {
        let Some(route) = self.routes.get_mut(key) else {
            return Turn::Idle;
        };
        for _ in 0..CHUNKS_PER_TURN {
            let st = &mut route.streams[idx];
            let Some(fd) = st.fd.as_ref() else {
                return Turn::Idle;
            };
            if st.in_flight.is_some() {
                return Turn::Wait;
            }
            if route.sinks.is_empty() {
                return match self.scratch.discard(fd.as_fd()) {
                    Ok(false) => Turn::Idle,
                    Ok(true) => Turn::Eof,
                    Err(e) => {
                        tracing::error!(id = %route.id, error = %e, "discarding failed");
                        Turn::Eof
                    }
                };
            }
            let now = Instant::now();
            let pending = pipe::pending(fd.as_fd()).unwrap_or(usize::MAX);
            if gathers(pending, st.hup, st.last_full, st.gather_until, now) {
                if st.gather_until.is_none() {
                    let until = now + COALESCE_WAIT;
                    st.gather_until = Some(until);
                    self.held.push((until, key, idx));
                }
                return Turn::Wait;
            }
            st.gather_until = None;
            let (mut data, rest_of_pipe) = match self.scratch.peek(fd.as_fd()) {
                Ok(Peek::Data(d)) => (d, false),
                Ok(Peek::All(d)) => (d, true),
                Ok(Peek::Empty) => {
                    st.last_full = false;
                    return Turn::Idle;
                }
                Ok(Peek::Eof) => return Turn::Eof,
                Err(e) => {
                    tracing::error!(id = %route.id, error = %e, "reading a container pipe failed");
                    return Turn::Eof;
                }
            };
            st.last_full = !rest_of_pipe;
            // After the writers closed, only the very last bytes may end inside a line.
            let last_bytes = st.hup && rest_of_pipe;
            match records::cut(&data, last_bytes, st.held_since, now) {
                Cut::All => {}
                Cut::Upto(n) => data.truncate(n),
                Cut::Hold => {
                    if st.held_since.is_none() {
                        st.held_since = Some(now);
                        self.held.push((now + PARTIAL_HOLD, key, idx));
                    }
                    return Turn::Idle;
                }
            }
            st.held_since = None;
            let len = data.len();
            let holds: Vec<bool> = route.sinks.iter().map(SinkHandle::holds).collect();
            let holders = 1 + holds.iter().filter(|h| **h).count();
            let seq = route.next_seq;
            route.next_seq += 1;
            let chunk = Arc::new(
                Chunk::new(route.id.clone(), STREAMS[idx], now_ns(), seq, data, holders)
                    .recycled_into(self.scratch.buffers()),
            );
            for (s, hold) in route.sinks.iter().zip(holds) {
                if !s.offer(&chunk, hold) && hold {
                    chunk.release();
                }
            }
            if !chunk.release() {
                st.in_flight = Some((seq, len));
                return Turn::Wait;
            }
            if let Err(e) = self.scratch.consume(fd.as_fd(), len) {
                tracing::error!(id = %route.id, error = %e, "consuming a container pipe failed");
                return Turn::Eof;
            }
        }
        Turn::More
    }

    /// Every holder released chunk `seq` of a stream (or the deadline passed): if it is the
    /// one in flight, consume it and go on.
    pub(crate) fn on_released(&mut self, key: usize, idx: usize, seq: u64) {
        let Some(route) = self.routes.get_mut(key) else {
            return;
        };
        let st = &mut route.streams[idx];
        if st.in_flight.is_none_or(|f| f.0 != seq) {
            return;
        }
        let (Some((_, len)), Some(fd)) = (st.in_flight.take(), st.fd.as_ref()) else {
            return;
        };
        match self.scratch.consume(fd.as_fd(), len) {
            Ok(()) => self.ready.push_back((key, idx)),
            Err(e) => {
                tracing::error!(id = %route.id, error = %e, "consuming a container pipe failed");
                self.close_stream(key, idx);
            }
        }
    }

    /// A stream reached end of file: stop polling it; finish the route when both did.
    pub(crate) fn close_stream(&mut self, key: usize, idx: usize) {
        let Some(route) = self.routes.get_mut(key) else {
            return;
        };
        if let Some(fd) = route.streams[idx].fd.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        route.streams[idx].in_flight = None;
        if !route.streams_done() || route.finishing {
            return;
        }
        route.finishing = true;
        for s in &route.sinks {
            s.finish();
        }
        self.maybe_complete(key);
    }

    /// Completes the route once its streams ended and every sink finished or was abandoned.
    pub(crate) fn maybe_complete(&mut self, key: usize) {
        if self
            .routes
            .get(key)
            .is_some_and(|r| r.finishing && r.sinks_done())
        {
            self.complete(key);
        }
    }

    /// Every sink of the route finished: the log is complete.
    pub(crate) fn complete(&mut self, key: usize) {
        let mut route = self.routes.remove(key);
        if !route.sinks.is_empty() {
            if let Some(drops) = route.drops_changed() {
                self.report(FromRouter::Drops {
                    id: route.id.clone(),
                    drops,
                });
            }
        }
        tracing::debug!(id = %route.id, "drained");
        let id = route.id.clone();
        // Finished threads are joined (they have returned); abandoned ones are let go.
        let abandoned = std::mem::take(&mut route.abandoned);
        let finished = std::mem::take(&mut route.finished);
        for ((s, a), f) in std::mem::take(&mut route.sinks)
            .into_iter()
            .zip(abandoned)
            .zip(finished)
        {
            if a && !f {
                s.abandon();
            }
        }
        drop(route);
        self.report(FromRouter::Drained { id });
    }
}

/// Outcome of one turn on a stream.
enum Turn {
    /// Nothing more to do until the pipe's next bytes (empty, or an unfinished line held).
    Idle,
    /// Nothing more to do until a release or a timer (chunk in flight, bytes gathering); only
    /// a hang-up needs to be seen meanwhile.
    Wait,
    /// The turn was used up with data possibly left.
    More,
    /// End of file (or an unrecoverable error on the pipe).
    Eof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pending_bytes_gather_for_a_bounded_time() {
        let now = Instant::now();
        let soon = Some(now + COALESCE_WAIT);
        assert!(gathers(100, false, false, None, now));
        assert!(gathers(100, false, false, soon, now));
        assert!(
            !gathers(100, false, false, Some(now), now),
            "the wait is over"
        );
        assert!(
            !gathers(100, true, false, None, now),
            "the writers are gone"
        );
        assert!(!gathers(100, false, true, None, now), "after a full chunk");
        assert!(!gathers(COALESCE_BYTES, false, false, None, now), "enough");
        assert!(!gathers(0, false, false, None, now), "nothing to gather");
    }
}
