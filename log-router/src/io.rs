//! The shell's hands: carries out the core's [`Effect`]s on container pipes (peek, consume,
//! discard, poll interest, close) and sink threads (start, hand chunks over, finish, join or
//! let go), and loads sink plans for `Configure`, `Validate` and `AddContainer`. Effects that
//! the core waits on are answered with the next [`Input`].

use crate::core::route::{RouteId, STREAMS};
use crate::core::{Effect, Input, Peeked};
use crate::instance::SinkInstance;
use crate::loader::SinkCatalog;
use crate::pipe::{self, Peek, Scratch};
use crate::plan::{self, SinkPlan};
use crate::records::Chunk;
use crate::worker::{Notifier, SinkHandle};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use proto::router::SinkSpec;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// First poll token of container pipes; below are the control socket and the waker.
const FIRST_STREAM_TOKEN: usize = 2;

/// The poll token of stream `idx` (0 stdout, 1 stderr) of route `key`.
pub fn stream_token(key: usize, idx: usize) -> Token {
    Token(FIRST_STREAM_TOKEN + key * 2 + idx)
}

/// The (route key, stream index) of a stream token, `None` for the tokens below.
pub fn token_stream(token: Token) -> Option<(usize, usize)> {
    let t = token.0.checked_sub(FIRST_STREAM_TOKEN)?;
    Some((t / 2, t % 2))
}

/// Now, in nanoseconds since the Unix epoch (chunk timestamps).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The open pipe of stream `idx` of route `key`.
fn pipe_of(routes: &[Option<Held>], key: usize, idx: usize) -> Option<BorrowedFd<'_>> {
    routes.get(key)?.as_ref()?.pipes[idx]
        .as_ref()
        .map(AsFd::as_fd)
}

/// What the shell holds for one route: its pipes and its sink threads.
#[derive(Debug)]
struct Held {
    id: String,
    pipes: [Option<OwnedFd>; 2],
    sinks: Vec<SinkHandle>,
}

/// An `AddContainer` being handled: what [`Effect::SetUp`] needs.
#[derive(Debug)]
struct Adding {
    log_path: String,
    specs: Vec<SinkSpec>,
    fds: Vec<OwnedFd>,
}

/// Pipes, sink threads and sink plans.
#[derive(Debug)]
pub struct Io {
    registry: mio::Registry,
    scratch: Scratch,
    catalog: SinkCatalog,
    notifier: Notifier,
    defaults: Option<Vec<SinkPlan>>,
    /// By route key.
    routes: Vec<Option<Held>>,
    /// The last chunk peeked, until delivered.
    peeked: Vec<u8>,
    adding: Option<Adding>,
}

impl Io {
    /// Carries out effects with `registry` (the loop's poller), `scratch`, sinks from
    /// `catalog`, and threads that report through `notifier`.
    pub fn new(
        registry: mio::Registry,
        scratch: Scratch,
        catalog: SinkCatalog,
        notifier: Notifier,
    ) -> Self {
        Self {
            registry,
            scratch,
            catalog,
            notifier,
            defaults: None,
            routes: Vec::new(),
            peeked: Vec::new(),
            adding: None,
        }
    }

    /// Loads and validates the default sinks and keeps them.
    ///
    /// # Errors
    /// The one-line reason for the supervisor.
    pub fn configure(&mut self, specs: &[SinkSpec]) -> Result<(), String> {
        let plans = self.plans(specs)?;
        tracing::info!(sinks = plans.len(), "configured");
        self.defaults = Some(plans);
        Ok(())
    }

    /// Loads and validates sinks, keeping nothing: `None` when usable, else why not.
    pub fn validate(&mut self, specs: &[SinkSpec]) -> Option<String> {
        self.plans(specs).err()
    }

    /// Keeps an `AddContainer`'s details and fds for the [`Effect::SetUp`] that may follow.
    pub fn begin_add(&mut self, log_path: String, specs: Vec<SinkSpec>, fds: Vec<OwnedFd>) {
        self.adding = Some(Adding {
            log_path,
            specs,
            fds,
        });
    }

    /// Closes the fds of an `AddContainer` the core refused.
    pub fn end_add(&mut self) {
        self.adding = None;
    }

    /// Carries out `effect`; returns the input that answers it, if any. Reports are the
    /// loop's to send: ignored here.
    pub fn apply(&mut self, effect: Effect) -> Option<Input<'_>> {
        match effect {
            Effect::Report(_) => None,
            Effect::SetUp { route, id } => Some(self.set_up(route, id)),
            Effect::Measure { key, idx } => {
                let bytes = pipe::pending(self.pipe(key, idx)?).unwrap_or(usize::MAX);
                Some(Input::Pending { key, idx, bytes })
            }
            Effect::Peek { key, idx } => {
                let peek = match self.peek(key, idx)? {
                    Ok(rest_of_pipe) => Peeked::Data {
                        bytes: &self.peeked,
                        rest_of_pipe,
                    },
                    Err(other) => other,
                };
                Some(Input::Peeked { key, idx, peek })
            }
            Effect::Deliver {
                key,
                idx,
                id,
                seq,
                len,
                holds,
            } => {
                let released = self.deliver(key, idx, id, seq, len, holds)?;
                Some(Input::Delivered {
                    key,
                    idx,
                    seq,
                    len,
                    released,
                })
            }
            Effect::Consume { key, idx, len } => {
                let fd = pipe_of(&self.routes, key, idx)?;
                match self.scratch.consume(fd, len) {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::error!(id = %self.id(key), error = %e, "consuming a container pipe failed");
                        Some(Input::ConsumeFailed { key, idx })
                    }
                }
            }
            Effect::Discard { key, idx } => {
                let fd = pipe_of(&self.routes, key, idx)?;
                let thrown = match self.scratch.discard(fd) {
                    Ok(thrown) => thrown,
                    Err(e) => {
                        tracing::error!(id = %self.id(key), error = %e, "discarding failed");
                        crate::pipe::Discarded {
                            eof: true,
                            ..Default::default()
                        }
                    }
                };
                Some(Input::Discarded { key, idx, thrown })
            }
            Effect::Arm { key, idx, armed } => {
                self.arm(key, idx, armed);
                None
            }
            Effect::ClosePipe { key, idx } => {
                let held = self.routes.get_mut(key)?.as_mut()?;
                if let Some(fd) = held.pipes[idx].take() {
                    let _ = self.registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
                }
                None
            }
            Effect::DrainSinks { key } => {
                for s in &self.routes.get(key)?.as_ref()?.sinks {
                    s.poke();
                }
                None
            }
            Effect::FinishSinks { key } => {
                for s in &self.routes.get(key)?.as_ref()?.sinks {
                    s.finish();
                }
                None
            }
            Effect::RemoveRoute { key, abandon } => {
                let held = self.routes.get_mut(key)?.take()?;
                tracing::debug!(id = %held.id, "drained");
                // Finished threads are joined (they have returned); abandoned ones are let go.
                for (i, s) in held.sinks.into_iter().enumerate() {
                    if abandon.get(i).copied().unwrap_or(false) {
                        s.abandon();
                    }
                }
                None
            }
        }
    }

    fn id(&self, key: usize) -> &str {
        self.routes
            .get(key)
            .and_then(Option::as_ref)
            .map_or("", |h| h.id.as_str())
    }

    fn pipe(&self, key: usize, idx: usize) -> Option<BorrowedFd<'_>> {
        pipe_of(&self.routes, key, idx)
    }

    /// Peeks a chunk of a stream into `peeked` (the previous buffer goes back to the stock):
    /// `Ok(rest_of_pipe)` when bytes came, else what the peek found instead. `None`: no such
    /// pipe.
    fn peek(&mut self, key: usize, idx: usize) -> Option<Result<bool, Peeked<'static>>> {
        let fd = pipe_of(&self.routes, key, idx)?;
        let (data, rest_of_pipe) = match self.scratch.peek(fd) {
            Ok(Peek::Data(d)) => (d, false),
            Ok(Peek::All(d)) => (d, true),
            Ok(Peek::Empty) => return Some(Err(Peeked::Empty)),
            Ok(Peek::Eof) => return Some(Err(Peeked::Eof)),
            Err(e) => {
                tracing::error!(id = %self.id(key), error = %e, "reading a container pipe failed");
                return Some(Err(Peeked::Failed));
            }
        };
        let old = std::mem::replace(&mut self.peeked, data);
        self.scratch.buffers().give(old);
        Some(Ok(rest_of_pipe))
    }

    /// Hands the first `len` peeked bytes to the route's sinks as chunk `seq`; returns whether
    /// every hold is already released.
    fn deliver(
        &mut self,
        key: usize,
        idx: usize,
        id: String,
        seq: u64,
        len: usize,
        holds: Vec<bool>,
    ) -> Option<bool> {
        let held = self.routes.get(key)?.as_ref()?;
        let mut data = std::mem::take(&mut self.peeked);
        data.truncate(len);
        let holders = 1 + holds.iter().filter(|h| **h).count();
        let chunk = Arc::new(
            Chunk::new(id, STREAMS[idx], now_ns(), seq, data, holders)
                .recycled_into(self.scratch.buffers()),
        );
        for (s, hold) in held.sinks.iter().zip(holds) {
            if !s.offer(&chunk, hold) && hold {
                chunk.release();
            }
        }
        Some(chunk.release())
    }

    /// Makes the poll report a stream's bytes (`armed`) or only its hang-up. A pipe's read end
    /// is never writable, so polling it for `WRITABLE` alone reports just the hang-up (which
    /// epoll always reports). Re-arming reports bytes already there (epoll polls the file).
    fn arm(&self, key: usize, idx: usize, armed: bool) {
        let Some(fd) = self.pipe(key, idx) else {
            return;
        };
        let interest = if armed {
            Interest::READABLE
        } else {
            Interest::WRITABLE
        };
        if let Err(e) = self.registry.reregister(
            &mut SourceFd(&fd.as_raw_fd()),
            stream_token(key, idx),
            interest,
        ) {
            tracing::debug!(error = %e, "cannot change what a container pipe is polled for");
        }
    }

    /// Prepares the pipes of the container being added, starts its sinks and polls its pipes.
    fn set_up(&mut self, route: RouteId, id: String) -> Input<'static> {
        let Some(Adding {
            log_path,
            specs,
            fds,
        }) = self.adding.take()
        else {
            let message = "no container fds to route".to_string();
            return Input::SetUpFailed { route, message };
        };
        let Ok::<[OwnedFd; 2], _>([stdout, stderr]) = fds.try_into() else {
            let message = "AddContainer must carry exactly two fds (stdout, stderr)".to_string();
            return Input::SetUpFailed { route, message };
        };
        if let Err(e) = pipe::prepare(stdout.as_fd()).and_then(|()| pipe::prepare(stderr.as_fd())) {
            let message = format!("container fds are not usable pipes: {e}");
            return Input::SetUpFailed { route, message };
        }
        let (handles, sinks) = match self.start_sinks(route, &id, &log_path, &specs) {
            Ok(handles) => {
                let infos = handles.iter().map(SinkHandle::info).collect();
                (handles, Ok(infos))
            }
            Err(message) => {
                tracing::error!(%id, %message, "container output will be discarded");
                (Vec::new(), Err(message))
            }
        };
        let key = route.key;
        for (idx, fd) in [&stdout, &stderr].into_iter().enumerate() {
            let reg = self.registry.register(
                &mut SourceFd(&fd.as_raw_fd()),
                stream_token(key, idx),
                Interest::READABLE,
            );
            if let Err(e) = reg {
                tracing::error!(%id, error = %e, "cannot poll a container pipe; it is read on every turn");
            }
        }
        tracing::debug!(%id, route = key, sinks = handles.len(), "container added");
        if self.routes.len() <= key {
            self.routes.resize_with(key + 1, || None);
        }
        self.routes[key] = Some(Held {
            id,
            pipes: [Some(stdout), Some(stderr)],
            sinks: handles,
        });
        Input::SetUp { route, sinks }
    }

    /// Loads and validates a set of specs (at most one writing the log file).
    fn plans(&mut self, specs: &[SinkSpec]) -> Result<Vec<SinkPlan>, String> {
        plan::plan_all(specs, &mut self.catalog).map_err(|e| e.to_string())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_tokens_round_trip_and_skip_the_fixed_ones() {
        assert_eq!(token_stream(Token(0)), None);
        assert_eq!(token_stream(Token(1)), None);
        for key in [0, 1, 7] {
            for idx in [0, 1] {
                assert_eq!(token_stream(stream_token(key, idx)), Some((key, idx)));
            }
        }
    }
}
