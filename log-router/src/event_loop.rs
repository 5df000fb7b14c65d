//! The router loop: one `mio` poll over the control socket, a waker for sink threads, and every
//! container pipe. It peeks chunks, hands them to the sink threads, consumes them from the pipe
//! once stored, and reports `Drained` when a container's log is complete. Control messages are
//! handled in [`crate::commands`], the per-stream flow in [`crate::flow`].

use crate::control::Control;
use crate::loader::Registry;
use crate::pipe::Scratch;
use crate::plan::SinkPlan;
use crate::route::{self, Route, RouteId};
use crate::worker::{Notifier, WorkerEvent};
use crossbeam_channel::Receiver;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::router::{ChannelError, FromRouter};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONTROL: Token = Token(0);
const WAKER: Token = Token(1);
/// How often changed drop counters are reported.
pub(crate) const DROPS_EVERY: Duration = Duration::from_secs(1);

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
    /// The control socket cannot be used.
    #[error("{what}: {source}")]
    Control {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: ChannelError,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RouterError {
    move |source| RouterError::Io { what, source }
}

pub(crate) fn stream_token(route: usize, idx: usize) -> Token {
    Token(2 + route * 2 + idx)
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The router's state.
pub(crate) struct Router {
    pub(crate) poll: Poll,
    pub(crate) control: Control,
    pub(crate) control_open: bool,
    pub(crate) shutting_down: bool,
    pub(crate) scratch: Scratch,
    pub(crate) registry: Registry,
    pub(crate) defaults: Option<Vec<SinkPlan>>,
    pub(crate) routes: Slab<Route>,
    pub(crate) ready: VecDeque<(usize, usize)>,
    /// Streams holding an unfinished line, to look at again at the given time.
    pub(crate) held: Vec<(Instant, usize, usize)>,
    pub(crate) events: Receiver<WorkerEvent>,
    pub(crate) notifier: Notifier,
    pub(crate) last_drops: Instant,
    /// Last route serial given out.
    pub(crate) serial: u64,
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
    let control = Control::new(control).map_err(|source| RouterError::Control {
        what: "preparing the control socket",
        source,
    })?;
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

    pub(crate) fn report(&mut self, msg: FromRouter) {
        if !self.control_open {
            return;
        }
        if let Err(e) = self.control.send(msg) {
            self.control_lost(e);
        }
    }

    pub(crate) fn flush_control(&mut self) {
        if self.control_open {
            if let Err(e) = self.control.flush() {
                self.control_lost(e);
            }
        }
    }

    pub(crate) fn control_lost(&mut self, e: ChannelError) {
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

    pub(crate) fn read_control(&mut self) {
        while self.control_open {
            match self.control.recv() {
                Ok(Some(p)) => self.on_packet(p),
                Ok(None) => return,
                Err(e) if e.is_packet_error() => {
                    tracing::error!(error = %e, "ignoring a control packet");
                }
                Err(e) => self.control_lost(e),
            }
        }
    }

    pub(crate) fn on_worker_event(&mut self, ev: WorkerEvent) {
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
    pub(crate) fn live(&self, id: RouteId) -> bool {
        self.routes
            .get(id.key)
            .is_some_and(|r| r.serial == id.serial)
    }

    pub(crate) fn report_drops(&mut self) {
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
