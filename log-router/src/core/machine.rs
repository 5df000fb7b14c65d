//! The core state machine: every route, each stream's phase, which streams are ready and which
//! wait for a timer; [`Core::on`] takes one [`Input`] and returns the [`Effect`]s the shell
//! carries out, some of which it answers with a further input (see [`super::events`]).
//!
//! A stream's turn goes `Measure` -> `Pending` -> (gather, or) `Peek` -> `Peeked` -> (hold an
//! unfinished line, or) `Deliver` -> `Delivered` -> `Consume` at once when no sink holds the
//! chunk, else when the last holder releases it. Both streams at end of file: the sinks are
//! asked to finish; when each finished or was abandoned, `Drops` (if changed) then `Drained`.

use super::events::{Effect, Input, Peeked};
use super::route::{Route, RouteId, SinkInfo};
use super::rules::{gathers, CHUNKS_PER_TURN, COALESCE_WAIT, DROPS_EVERY};
use crate::records::{self, Cut, PARTIAL_HOLD};
use proto::router::FromRouter;
use slab::Slab;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The router's decisions and all routing state; makes no system call.
#[derive(Debug)]
pub struct Core {
    routes: Slab<Route>,
    /// Streams to give a turn: (route key, stream index).
    ready: VecDeque<(usize, usize)>,
    /// Streams to look at again at the given time (unfinished line, gathering bytes).
    held: Vec<(Instant, usize, usize)>,
    last_drops: Instant,
    /// Last route serial given out.
    serial: u64,
    shutting_down: bool,
    out: Vec<Effect>,
}

impl Core {
    /// An empty core; drop counters are first reported [`DROPS_EVERY`] after `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            routes: Slab::new(),
            ready: VecDeque::new(),
            held: Vec::new(),
            last_drops: now,
            serial: 0,
            shutting_down: false,
            out: Vec::new(),
        }
    }

    /// Handles one input at time `now`; returns what to do, in order.
    pub fn on(&mut self, input: Input<'_>, now: Instant) -> Vec<Effect> {
        match input {
            Input::Configured(result) => self.report(match result {
                Ok(()) => FromRouter::Ready,
                Err(message) => FromRouter::ConfigError { message },
            }),
            Input::Validated(error) => self.report(FromRouter::Validated { error }),
            Input::AddRequested { id, fds } => self.add(id, fds),
            Input::AddFdsLost { id } => {
                let message = "the log-router could not receive the container's output fds \
                               (control message truncated: out of file descriptors)"
                    .to_string();
                self.report(FromRouter::AddFailed { id, message });
            }
            Input::SetUp { route, sinks } => self.set_up(route, sinks),
            Input::SetUpFailed { route, message } => {
                if self.live(route) {
                    let r = self.routes.remove(route.key);
                    self.report(FromRouter::AddFailed { id: r.id, message });
                }
            }
            Input::Shutdown => self.shutting_down = true,
            Input::Readable { key, idx, hup } => {
                if let Some(r) = self.routes.get_mut(key) {
                    r.streams[idx].hup |= hup;
                }
                self.ready.push_back((key, idx));
            }
            Input::Pending { key, idx, bytes } => self.on_pending(key, idx, bytes, now),
            Input::Peeked { key, idx, peek } => self.on_peeked(key, idx, peek, now),
            Input::Delivered {
                key,
                idx,
                seq,
                len,
                released,
            } => self.on_delivered(key, idx, seq, len, released),
            Input::ConsumeFailed { key, idx } => self.close_stream(key, idx),
            Input::Discarded { key, idx, thrown } => {
                if let Some(r) = self.routes.get_mut(key) {
                    r.count_discarded(idx, &thrown);
                }
                if thrown.eof {
                    self.close_stream(key, idx);
                } else {
                    self.arm(key, idx, true);
                }
            }
            Input::Released { route, idx, seq } => {
                if self.live(route) {
                    self.on_released(route.key, idx, seq);
                }
            }
            Input::SinkFailed {
                route,
                sink,
                message,
            } => {
                if let Some(r) = self.routes.get(route.key).filter(|_| self.live(route)) {
                    let msg = FromRouter::SinkError {
                        id: r.id.clone(),
                        sink: r
                            .sinks
                            .get(sink)
                            .map_or_else(String::new, |s| s.label.clone()),
                        message,
                    };
                    self.report(msg);
                }
            }
            Input::SinkFinished { route, sink } => {
                if self.live(route) {
                    if let Some(f) = self.routes[route.key].finished.get_mut(sink) {
                        *f = true;
                    }
                    self.maybe_complete(route.key);
                }
            }
            Input::Turn => self.turn(now),
            Input::Tick => {
                if now.saturating_duration_since(self.last_drops) >= DROPS_EVERY {
                    self.last_drops = now;
                    self.report_drops();
                }
                self.enforce_deadlines(now);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// `Shutdown` was received.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// No container is being routed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Containers being routed.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// How long the loop may sleep after `now`: zero with streams ready, else until the next
    /// held stream, sink deadline or drops report.
    pub fn next_timeout(&self, now: Instant) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        self.held
            .iter()
            .map(|h| h.0)
            .chain(
                self.routes
                    .iter()
                    .flat_map(|(_, r)| r.sink_deadlines().map(|(_, d)| d)),
            )
            .filter(|d| *d > now)
            .chain(std::iter::once(self.last_drops + DROPS_EVERY))
            .map(|d| d.saturating_duration_since(now))
            .min()
            .unwrap_or(DROPS_EVERY)
    }

    fn report(&mut self, msg: FromRouter) {
        self.out.push(Effect::Report(msg));
    }

    /// Whether an event's route is still the one at its key.
    fn live(&self, id: RouteId) -> bool {
        self.routes
            .get(id.key)
            .is_some_and(|r| r.serial == id.serial)
    }

    fn add(&mut self, id: String, fds: usize) {
        if fds != 2 {
            let message = "AddContainer must carry exactly two fds (stdout, stderr)".to_string();
            return self.report(FromRouter::AddFailed { id, message });
        }
        if self.routes.iter().any(|(_, r)| r.id == id) {
            let message = format!("container {id} is already routed");
            return self.report(FromRouter::AddFailed { id, message });
        }
        self.serial += 1;
        let key = self.routes.insert(Route::new(id.clone(), self.serial));
        let route = RouteId {
            key,
            serial: self.serial,
        };
        self.out.push(Effect::SetUp { route, id });
    }

    fn set_up(&mut self, route: RouteId, sinks: Result<Vec<SinkInfo>, String>) {
        if !self.live(route) {
            return;
        }
        let r = &mut self.routes[route.key];
        match sinks {
            Ok(sinks) => {
                r.set_sinks(sinks);
                let id = r.id.clone();
                self.report(FromRouter::Added { id });
            }
            Err(message) => {
                let id = r.id.clone();
                self.report(FromRouter::AddFailed { id, message });
            }
        }
        self.ready.push_back((route.key, 0));
        self.ready.push_back((route.key, 1));
    }

    /// Makes due held streams ready, then gives every ready stream its turn (streams made
    /// ready during the turn wait for the next one).
    fn turn(&mut self, now: Instant) {
        let ready = &mut self.ready;
        self.held.retain(|&(at, key, idx)| {
            let due = at <= now;
            if due {
                ready.push_back((key, idx));
            }
            !due
        });
        for _ in 0..self.ready.len() {
            if let Some((key, idx)) = self.ready.pop_front() {
                if let Some(st) = self.routes.get_mut(key).map(|r| &mut r.streams[idx]) {
                    st.turn_left = CHUNKS_PER_TURN;
                    self.step(key, idx);
                }
            }
        }
    }

    /// The next move of a stream in its turn.
    fn step(&mut self, key: usize, idx: usize) {
        let Some(route) = self.routes.get_mut(key) else {
            return;
        };
        let st = &mut route.streams[idx];
        if !st.open {
            return;
        }
        if st.turn_left == 0 {
            self.ready.push_back((key, idx));
        } else if st.in_flight.is_some() {
            self.arm(key, idx, false);
        } else if route.sinks.is_empty() {
            self.out.push(Effect::Discard { key, idx });
        } else {
            self.out.push(Effect::Measure { key, idx });
        }
    }

    /// A stream may be given two turns at once (two readiness events): the answers of the
    /// second are ignored while the first one's chunk is in flight.
    fn on_pending(&mut self, key: usize, idx: usize, bytes: usize, now: Instant) {
        let Some(st) = self.stream(key, idx).filter(|s| s.in_flight.is_none()) else {
            return;
        };
        if gathers(bytes, st.hup, st.last_full, st.gather_until, now) {
            if st.gather_until.is_none() {
                let until = now + COALESCE_WAIT;
                st.gather_until = Some(until);
                self.held.push((until, key, idx));
            }
            return self.arm(key, idx, false);
        }
        st.gather_until = None;
        self.out.push(Effect::Peek { key, idx });
    }

    fn on_peeked(&mut self, key: usize, idx: usize, peek: Peeked<'_>, now: Instant) {
        let Some(route) = self.routes.get_mut(key) else {
            return;
        };
        let st = &mut route.streams[idx];
        if !st.open || st.in_flight.is_some() {
            return;
        }
        let (bytes, rest_of_pipe) = match peek {
            Peeked::Data {
                bytes,
                rest_of_pipe,
            } => (bytes, rest_of_pipe),
            Peeked::Empty => {
                st.last_full = false;
                return self.arm(key, idx, true);
            }
            Peeked::Eof | Peeked::Failed => return self.close_stream(key, idx),
        };
        st.last_full = !rest_of_pipe;
        // After the writers closed, only the very last bytes may end inside a line.
        let last_bytes = st.hup && rest_of_pipe;
        let len = match records::cut(bytes, last_bytes, st.held_since, now) {
            Cut::All => bytes.len(),
            Cut::Upto(n) => n,
            Cut::Hold => {
                if st.held_since.is_none() {
                    st.held_since = Some(now);
                    self.held.push((now + PARTIAL_HOLD, key, idx));
                }
                return self.arm(key, idx, true);
            }
        };
        st.held_since = None;
        let seq = route.next_seq;
        route.next_seq += 1;
        let holds = route.sinks.iter().map(SinkInfo::holds).collect();
        self.out.push(Effect::Deliver {
            key,
            idx,
            id: route.id.clone(),
            seq,
            len,
            holds,
        });
    }

    fn on_delivered(&mut self, key: usize, idx: usize, seq: u64, len: usize, released: bool) {
        let Some(st) = self.stream(key, idx) else {
            return;
        };
        if !released {
            st.in_flight = Some((seq, len));
            return self.arm(key, idx, false);
        }
        st.turn_left = st.turn_left.saturating_sub(1);
        self.out.push(Effect::Consume { key, idx, len });
        self.step(key, idx);
    }

    /// Every holder released chunk `seq` of a stream (or the deadline passed): if it is the
    /// one in flight, consume it and make the stream ready.
    fn on_released(&mut self, key: usize, idx: usize, seq: u64) {
        let Some(st) = self.stream(key, idx) else {
            return;
        };
        let Some((_, len)) = st.in_flight.filter(|f| f.0 == seq) else {
            return;
        };
        st.in_flight = None;
        self.out.push(Effect::Consume { key, idx, len });
        self.ready.push_back((key, idx));
    }

    /// An open stream of a live route.
    fn stream(&mut self, key: usize, idx: usize) -> Option<&mut super::route::StreamState> {
        self.routes
            .get_mut(key)
            .map(|r| &mut r.streams[idx])
            .filter(|s| s.open)
    }

    /// Polls a stream for its bytes (`armed`) or only its hang-up, if that changes.
    fn arm(&mut self, key: usize, idx: usize, armed: bool) {
        if let Some(st) = self.stream(key, idx) {
            if st.armed != armed {
                st.armed = armed;
                self.out.push(Effect::Arm { key, idx, armed });
            }
        }
    }

    /// A stream reached end of file: close it; finish the route when both did.
    fn close_stream(&mut self, key: usize, idx: usize) {
        let Some(route) = self.routes.get_mut(key) else {
            return;
        };
        let st = &mut route.streams[idx];
        if st.open {
            st.open = false;
            self.out.push(Effect::ClosePipe { key, idx });
        }
        st.in_flight = None;
        if !route.streams_done() || route.finishing {
            return;
        }
        route.finishing = true;
        self.out.push(Effect::FinishSinks { key });
        self.maybe_complete(key);
    }

    /// Completes the route once its streams ended and every sink finished or was abandoned:
    /// its last drop counters if they changed, then `Drained`.
    fn maybe_complete(&mut self, key: usize) {
        if !self
            .routes
            .get(key)
            .is_some_and(|r| r.finishing && r.sinks_done())
        {
            return;
        }
        let mut route = self.routes.remove(key);
        if let Some(drops) = route.drops_changed() {
            let id = route.id.clone();
            self.report(FromRouter::Drops { id, drops });
        }
        let abandon = route
            .abandoned
            .iter()
            .zip(&route.finished)
            .map(|(a, f)| *a && !*f)
            .collect();
        self.out.push(Effect::RemoveRoute { key, abandon });
        self.report(FromRouter::Drained { id: route.id });
    }

    fn report_drops(&mut self) {
        let changed: Vec<FromRouter> = self
            .routes
            .iter_mut()
            .filter_map(|(_, r)| {
                r.drops_changed().map(|drops| FromRouter::Drops {
                    id: r.id.clone(),
                    drops,
                })
            })
            .collect();
        for m in changed {
            self.report(m);
        }
    }

    /// Notes when a route's writers are gone — the sinks' drain begins: each sink thread
    /// retries a failing sink until its drain timeout after that (blocking mode; not at all in
    /// non-blocking mode), then gives up and counts what it did not store. A sink still busy
    /// [`super::route::FINISH_SLACK`] after its drain timeout is stuck inside a call: it is
    /// abandoned, so that it cannot keep a container from being reported ended: it holds
    /// nothing more, is no longer waited for or called, what it had queued is counted as
    /// dropped, and the chunk in flight is consumed (the other sinks have it).
    fn enforce_deadlines(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (key, r) in self.routes.iter_mut() {
            if r.gone_at.is_none() && r.writers_gone() {
                r.gone_at = Some(now);
                r.sinks.iter().for_each(|s| s.shared.start_drain(now));
                if !r.sinks.is_empty() {
                    self.out.push(Effect::DrainSinks { key });
                }
            }
            if let Some(sinks) = r.newly_draining() {
                let id = r.id.clone();
                self.out
                    .push(Effect::Report(FromRouter::Draining { id, sinks }));
            }
            let late: Vec<usize> = r
                .sink_deadlines()
                .filter(|&(i, d)| d <= now && (r.sinks[i].queued() > 0 || r.finishing))
                .map(|(i, _)| i)
                .collect();
            for &i in &late {
                let s = &r.sinks[i];
                r.abandoned[i] = true;
                s.shared.abandon();
                tracing::error!(id = %r.id, sink = %s.label, "sink did not catch up in time; abandoned");
            }
            if !late.is_empty() {
                due.push(key);
            }
        }
        for key in due {
            for idx in 0..2 {
                let seq = self.routes[key].streams[idx].in_flight.map(|f| f.0);
                if let Some(seq) = seq {
                    self.on_released(key, idx, seq);
                }
            }
            self.maybe_complete(key);
        }
    }
}
