//! The shell's loop: one `mio` poll over the control channel, a waker for sink threads, and
//! every container pipe. It turns control messages, readiness and sink-thread events into
//! [`Input`]s for the [`Core`], sends the reports it returns, and has [`Io`] carry out the
//! other effects, feeding their answers back (depth first, so that one stream's chain of
//! effects ends before the next stream's begins).

use crate::control::{Control, Packet};
use crate::core::route::index;
use crate::core::{Core, Effect, Input};
use crate::io::{token_stream, Io};
use crate::loader::SinkCatalog;
use crate::pipe::Scratch;
use crate::worker::{Notifier, WorkerEvent};
use crossbeam_channel::Receiver;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::router::{ChannelError, FromRouter, ToRouter};
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const CONTROL: Token = Token(0);
const WAKER: Token = Token(1);

/// Fatal errors of the router loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Runs the router on an inherited control socket until `Shutdown` (or the supervisor's end
/// closing) and every container drained. `dirs` are searched for built-in sinks.
///
/// # Errors
/// [`Error`] when the loop itself cannot run; per-container problems are reported to the
/// supervisor instead.
pub fn run(control: OwnedFd, dirs: Vec<PathBuf>) -> Result<(), Error> {
    let poll = Poll::new().map_err(io_err("creating the poller"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("creating the waker"))?);
    let (tx, events) = crossbeam_channel::unbounded();
    let control = Control::new(control).map_err(|source| Error::Control {
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
    let io = Io::new(
        poll.registry()
            .try_clone()
            .map_err(io_err("cloning the poll registry"))?,
        Scratch::new().map_err(io_err("creating the scratch pipe"))?,
        SinkCatalog::new(dirs),
        Notifier::new(tx, waker),
    );
    Shell {
        poll,
        control,
        control_open: true,
        core: Core::new(Instant::now()),
        io,
        events,
    }
    .run()
}

/// The loop's state: the poller, the control channel, the core and the effects' hands.
struct Shell {
    poll: Poll,
    control: Control,
    control_open: bool,
    core: Core,
    io: Io,
    events: Receiver<WorkerEvent>,
}

impl Shell {
    fn run(&mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(256);
        loop {
            let winding_down = self.core.shutting_down() || !self.control_open;
            if winding_down
                && self.core.is_empty()
                && (self.control.queued() == 0 || !self.control_open)
            {
                tracing::info!("log-router exiting: every container drained");
                return Ok(());
            }
            let timeout = self.core.next_timeout(Instant::now());
            match self.poll.poll(&mut events, Some(timeout)) {
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
                    token => {
                        if let Some((key, idx)) = token_stream(token) {
                            let hup = ev.is_read_closed();
                            self.feed(Input::Readable { key, idx, hup });
                        }
                    }
                }
            }
            while let Ok(ev) = self.events.try_recv() {
                self.feed(match ev {
                    WorkerEvent::Released { route, stream, seq } => Input::Released {
                        route,
                        idx: index(stream),
                        seq,
                    },
                    WorkerEvent::Failed {
                        route,
                        sink,
                        message,
                    } => Input::SinkFailed {
                        route,
                        sink,
                        message,
                    },
                    WorkerEvent::Finished { route, sink } => Input::SinkFinished { route, sink },
                });
            }
            self.feed(Input::Turn);
            self.feed(Input::Tick);
        }
    }

    /// Gives `input` to the core and carries out its effects, feeding each answer back at
    /// once (depth first).
    fn feed(&mut self, input: Input<'_>) {
        let mut stack = vec![self.core.on(input, Instant::now()).into_iter()];
        while let Some(top) = stack.last_mut() {
            let Some(effect) = top.next() else {
                stack.pop();
                continue;
            };
            match effect {
                Effect::Report(msg) => self.report(msg),
                other => {
                    if let Some(answer) = self.io.apply(other) {
                        stack.push(self.core.on(answer, Instant::now()).into_iter());
                    }
                }
            }
        }
    }

    fn on_packet(&mut self, p: Packet) {
        if p.fds_truncated {
            return match p.message {
                ToRouter::AddContainer { id, .. } => self.feed(Input::AddFdsLost { id }),
                other => {
                    tracing::error!(?other, "ignoring a control packet whose fds were cut off")
                }
            };
        }
        match p.message {
            ToRouter::Configure { sinks } => {
                let result = self.io.configure(&sinks);
                self.feed(Input::Configured(result));
            }
            ToRouter::Validate { sinks } => {
                let error = self.io.validate(&sinks);
                self.feed(Input::Validated(error));
            }
            ToRouter::AddContainer {
                id,
                log_path,
                sinks,
            } => {
                let fds = p.fds.len();
                self.io.begin_add(log_path, sinks, p.fds);
                self.feed(Input::AddRequested { id, fds });
                self.io.end_add();
            }
            ToRouter::Shutdown => {
                tracing::info!(containers = self.core.len(), "shutdown requested");
                self.feed(Input::Shutdown);
            }
        }
    }

    fn report(&mut self, msg: FromRouter) {
        if !self.control_open {
            return;
        }
        if let Err(e) = self.control.send(msg) {
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

    fn control_lost(&mut self, e: ChannelError) {
        if self.control_open {
            if self.core.shutting_down() {
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
                Err(e) if e.is_packet_error() => {
                    tracing::error!(error = %e, "ignoring a control packet");
                }
                Err(e) => self.control_lost(e),
            }
        }
    }
}
