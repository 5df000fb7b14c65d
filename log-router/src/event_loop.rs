//! The router loop: one `mio` poll over the control socket, a waker for sink threads, and every
//! container pipe. It peeks chunks, hands them to the sink threads, consumes them from the pipe
//! once stored, and reports `Drained` when a container's log is complete.

use crate::control::{Control, Packet};
use crate::instance::SinkInstance;
use crate::loader::Registry;
use crate::pipe::{self, Peek, Scratch};
use crate::plan::{self, SinkPlan};
use crate::records::{self, Chunk, Cut, PARTIAL_HOLD};
use crate::route::{self, Route, RouteId, STREAMS};
use crate::worker::{Notifier, SinkHandle, WorkerEvent};
use crossbeam_channel::Receiver;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::router::{FromRouter, SinkSpec, ToRouter};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONTROL: Token = Token(0);
const WAKER: Token = Token(1);
/// Chunks taken from one stream per turn before other streams get theirs.
const CHUNKS_PER_TURN: usize = 8;
/// How often changed drop counters are reported.
const DROPS_EVERY: Duration = Duration::from_secs(1);

/// Fatal errors of the router loop.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// Setting up or polling failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RouterError {
    move |source| RouterError::Io { what, source }
}

fn stream_token(route: usize, idx: usize) -> Token {
    Token(2 + route * 2 + idx)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The router's state.
struct Router {
    poll: Poll,
    control: Control,
    control_open: bool,
    shutting_down: bool,
    scratch: Scratch,
    registry: Registry,
    defaults: Option<Vec<SinkPlan>>,
    routes: Slab<Route>,
    ready: VecDeque<(usize, usize)>,
    /// Streams holding an unfinished line, to look at again at the given time.
    held: Vec<(Instant, usize, usize)>,
    events: Receiver<WorkerEvent>,
    notifier: Notifier,
    last_drops: Instant,
    /// Last route serial given out.
    serial: u64,
}

/// Runs the router on an inherited control socket until `Shutdown` (or the supervisor's end
/// closing) and every container drained. `dirs` are searched for built-in sinks.
///
/// # Errors
/// [`RouterError`] when the loop itself cannot run; per-container problems are reported to the
/// supervisor instead.
pub fn run(control: OwnedFd, dirs: Vec<PathBuf>) -> Result<(), RouterError> {
    let poll = Poll::new().map_err(io_err("creating the poller"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?);
    let (tx, events) = crossbeam_channel::unbounded();
    let control = Control::new(control).map_err(io_err("preparing the control socket"))?;
    poll.registry()
        .register(
            &mut SourceFd(&control.raw_fd()),
            CONTROL,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(io_err("registering the control socket"))?;
    let mut r = Router {
        poll,
        control,
        control_open: true,
        shutting_down: false,
        scratch: Scratch::new().map_err(io_err("creating the scratch pipe"))?,
        registry: Registry::new(dirs),
        defaults: None,
        routes: Slab::new(),
        ready: VecDeque::new(),
        held: Vec::new(),
        events,
        notifier: Notifier::new(tx, waker),
        last_drops: Instant::now(),
        serial: 0,
    };
    r.run()
}

impl Router {
    fn run(&mut self) -> Result<(), RouterError> {
        let mut events = Events::with_capacity(256);
        loop {
            let winding_down = self.shutting_down || !self.control_open;
            if winding_down
                && self.routes.is_empty()
                && (self.control.queued() == 0 || !self.control_open)
            {
                tracing::info!("log-router exiting: every container drained");
                return Ok(());
            }
            match self.poll.poll(&mut events, Some(self.next_timeout())) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("polling")(e)),
            }
            for ev in events.iter() {
                match ev.token() {
                    CONTROL => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read_control();
                        }
                        if ev.is_writable() {
                            self.flush_control();
                        }
                    }
                    WAKER => {}
                    Token(t) => {
                        let (key, idx) = ((t - 2) / 2, (t - 2) % 2);
                        if ev.is_read_closed() {
                            if let Some(r) = self.routes.get_mut(key) {
                                r.streams[idx].hup = true;
                            }
                        }
                        self.ready.push_back((key, idx));
                    }
                }
            }
            let now = Instant::now();
            let ready = &mut self.ready;
            self.held.retain(|&(at, key, idx)| {
                let due = at <= now;
                if due {
                    ready.push_back((key, idx));
                }
                !due
            });
            while let Ok(ev) = self.events.try_recv() {
                self.on_worker_event(ev);
            }
            for _ in 0..self.ready.len() {
                if let Some((route, idx)) = self.ready.pop_front() {
                    self.pump(route, idx);
                }
            }
            if self.last_drops.elapsed() >= DROPS_EVERY {
                self.last_drops = Instant::now();
                self.report_drops();
            }
            self.enforce_deadlines();
        }
    }

    /// How long the next poll may sleep: zero with streams ready, else until the next held
    /// line, sink deadline or drops report.
    fn next_timeout(&self) -> Duration {
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
    fn enforce_deadlines(&mut self) {
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

    fn report(&mut self, msg: FromRouter) {
        if !self.control_open {
            return;
        }
        if let Err(e) = self.control.send(&msg) {
            self.control_lost(e);
        }
    }

    fn flush_control(&mut self) {
        if self.control_open {
            if let Err(e) = self.control.flush() {
                self.control_lost(e);
            }
        }
    }

    fn control_lost(&mut self, e: io::Error) {
        if self.control_open {
            if self.shutting_down {
                tracing::debug!(error = %e, "control socket closed after shutdown");
            } else {
                tracing::warn!(error = %e, "control socket closed: draining every container, then exiting");
            }
            self.control_open = false;
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&self.control.raw_fd()));
        }
    }

    fn read_control(&mut self) {
        while self.control_open {
            match self.control.recv() {
                Ok(Some(p)) => self.on_packet(p),
                Ok(None) => return,
                Err(e) => self.control_lost(e),
            }
        }
    }

    fn on_packet(&mut self, p: Packet) {
        let msg = match p.message {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "ignoring a control packet");
                return;
            }
        };
        match msg {
            ToRouter::Configure { sinks } => {
                let answer = match self.plans(&sinks) {
                    Ok(plans) => {
                        tracing::info!(sinks = plans.len(), "configured");
                        self.defaults = Some(plans);
                        FromRouter::Ready
                    }
                    Err(message) => FromRouter::ConfigError { message },
                };
                self.report(answer);
            }
            ToRouter::AddContainer {
                id,
                log_path,
                sinks,
            } => self.add(id, log_path, &sinks, p.fds),
            ToRouter::Validate { sinks } => {
                let error = self.plans(&sinks).err();
                self.report(FromRouter::Validated { error });
            }
            ToRouter::Shutdown => {
                tracing::info!(containers = self.routes.len(), "shutdown requested");
                self.shutting_down = true;
            }
        }
    }

    /// Loads and validates specs.
    fn plans(&mut self, specs: &[SinkSpec]) -> Result<Vec<SinkPlan>, String> {
        specs
            .iter()
            .map(|s| plan::plan(s, &mut self.registry).map_err(|e| e.to_string()))
            .collect()
    }

    fn add(&mut self, id: String, log_path: String, specs: &[SinkSpec], fds: Vec<OwnedFd>) {
        let Ok::<[OwnedFd; 2], _>([stdout, stderr]) = fds.try_into() else {
            let message = "AddContainer must carry exactly two fds (stdout, stderr)".to_string();
            self.report(FromRouter::AddFailed { id, message });
            return;
        };
        if self.routes.iter().any(|(_, r)| r.id == id) {
            let message = format!("container {id} is already routed");
            self.report(FromRouter::AddFailed { id, message });
            return;
        }
        if let Err(e) = pipe::prepare(stdout.as_fd()).and_then(|()| pipe::prepare(stderr.as_fd())) {
            let message = format!("container fds are not usable pipes: {e}");
            self.report(FromRouter::AddFailed { id, message });
            return;
        }
        self.serial += 1;
        let rid = RouteId {
            key: self.routes.vacant_key(),
            serial: self.serial,
        };
        let key = rid.key;
        let sinks = match self.start_sinks(rid, &id, &log_path, specs) {
            Ok(s) => s,
            Err(message) => {
                tracing::error!(%id, %message, "container output will be discarded");
                self.report(FromRouter::AddFailed {
                    id: id.clone(),
                    message,
                });
                Vec::new()
            }
        };
        for (idx, fd) in [&stdout, &stderr].into_iter().enumerate() {
            let reg = self.poll.registry().register(
                &mut SourceFd(&fd.as_raw_fd()),
                stream_token(key, idx),
                Interest::READABLE,
            );
            if let Err(e) = reg {
                tracing::error!(%id, error = %e, "cannot poll a container pipe; it is read on every turn");
            }
            self.ready.push_back((key, idx));
        }
        tracing::debug!(%id, route = key, sinks = sinks.len(), "container added");
        let inserted = self
            .routes
            .insert(Route::new(id, rid.serial, stdout, stderr, sinks));
        debug_assert_eq!(inserted, key);
    }

    /// Creates the container's sink instances and their threads.
    fn start_sinks(
        &mut self,
        rid: RouteId,
        id: &str,
        log_path: &str,
        specs: &[SinkSpec],
    ) -> Result<Vec<SinkHandle>, String> {
        if !log_path.starts_with('/') {
            return Err(format!("log path `{log_path}` is not absolute"));
        }
        let plans = if specs.is_empty() {
            self.defaults
                .clone()
                .ok_or_else(|| "the router is not configured yet".to_string())?
        } else {
            self.plans(specs)?
        };
        let mut handles = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let inst = SinkInstance::create(plan.lib, &plan.create_config(id, log_path))
                .map_err(|m| format!("sink `{}`: {m}", plan.label))?;
            let h = SinkHandle::spawn(inst, plan, rid, i, self.notifier.clone())
                .map_err(|e| format!("sink `{}`: cannot start its thread: {e}", plan.label))?;
            handles.push(h);
        }
        Ok(handles)
    }

    /// Moves as much of one stream as allowed this turn.
    fn pump(&mut self, key: usize, idx: usize) {
        match self.turn(key, idx) {
            Turn::Idle => {}
            Turn::More => self.ready.push_back((key, idx)),
            Turn::Eof => self.close_stream(key, idx),
        }
    }

    /// Peeks chunks and hands them to the sinks until the pipe is empty, a chunk is in flight,
    /// or the turn is used up.
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
                return Turn::Idle;
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
            let (mut data, rest_of_pipe) = match self.scratch.peek(fd.as_fd()) {
                Ok(Peek::Data(d)) => (d, false),
                Ok(Peek::All(d)) => (d, true),
                Ok(Peek::Empty) => return Turn::Idle,
                Ok(Peek::Eof) => return Turn::Eof,
                Err(e) => {
                    tracing::error!(id = %route.id, error = %e, "reading a container pipe failed");
                    return Turn::Eof;
                }
            };
            let now = Instant::now();
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
            let chunk = Arc::new(Chunk::new(
                route.id.clone(),
                STREAMS[idx],
                now_ns(),
                seq,
                data,
                holders,
            ));
            for (s, hold) in route.sinks.iter().zip(holds) {
                if !s.offer(&chunk, hold) && hold {
                    chunk.release();
                }
            }
            if !chunk.release() {
                st.in_flight = Some((seq, len));
                return Turn::Idle;
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
    fn on_released(&mut self, key: usize, idx: usize, seq: u64) {
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
    fn close_stream(&mut self, key: usize, idx: usize) {
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
    fn maybe_complete(&mut self, key: usize) {
        if self
            .routes
            .get(key)
            .is_some_and(|r| r.finishing && r.sinks_done())
        {
            self.complete(key);
        }
    }

    /// Every sink of the route finished: the log is complete.
    fn complete(&mut self, key: usize) {
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

    fn on_worker_event(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::Released { route, stream, seq } => {
                if self.live(route) {
                    self.on_released(route.key, route::index(stream), seq);
                }
            }
            WorkerEvent::Failed {
                route,
                sink,
                message,
            } => {
                if !self.live(route) {
                    return;
                }
                let r = &self.routes[route.key];
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
            WorkerEvent::Finished { route, sink } => {
                if !self.live(route) {
                    return;
                }
                if let Some(f) = self.routes[route.key].finished.get_mut(sink) {
                    *f = true;
                }
                self.maybe_complete(route.key);
            }
        }
    }

    /// Whether an event's route is still the one at its key.
    fn live(&self, id: RouteId) -> bool {
        self.routes
            .get(id.key)
            .is_some_and(|r| r.serial == id.serial)
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
}

/// Outcome of one turn on a stream.
enum Turn {
    /// Nothing more to do until an event.
    Idle,
    /// The turn was used up with data possibly left.
    More,
    /// End of file (or an unrecoverable error on the pipe).
    Eof,
}
