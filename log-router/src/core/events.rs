//! What goes into the core ([`Input`]) and what it asks the shell to do ([`Effect`]).
//!
//! Routes are named by their slab key (`key`) and streams by index (`idx`: 0 stdout,
//! 1 stderr); events from sink threads carry a [`RouteId`] (key plus serial) so that a late
//! event never reaches a newer route at the same key.

use super::route::{RouteId, SinkInfo};
pub use crate::pipe::Discarded;
use proto::router::FromRouter;

/// Something that happened, for [`super::Core::on`].
#[derive(Debug)]
pub enum Input<'a> {
    /// `Configure` was handled: the default sinks load and validate, or why not.
    Configured(Result<(), String>),
    /// `Validate` was handled: `None` when every sink is usable, else why not.
    Validated(Option<String>),
    /// `AddContainer` arrived with `fds` file descriptors.
    AddRequested {
        /// Container id.
        id: String,
        /// Number of fds in the packet (two expected: stdout, stderr).
        fds: usize,
    },
    /// `AddContainer` arrived without its fds: the kernel cut them off (`MSG_CTRUNC`, this
    /// process is out of descriptors); the ones that came were closed. It is refused.
    AddFdsLost {
        /// Container id.
        id: String,
    },
    /// The shell set up a route asked for by [`Effect::SetUp`]: its pipes are usable and
    /// polled; its sinks started (answered `Added`), or why they could not be (answered
    /// `AddFailed`; the output is then discarded).
    SetUp {
        /// The route.
        route: RouteId,
        /// Its sinks, or the one-line reason they could not be created.
        sinks: Result<Vec<SinkInfo>, String>,
    },
    /// The container's fds are not usable pipes: the route is dropped.
    SetUpFailed {
        /// The route.
        route: RouteId,
        /// One-line reason.
        message: String,
    },
    /// `Shutdown` arrived: finish every stream, then exit.
    Shutdown,
    /// The poll reported a stream (bytes, or `hup`: every writer closed).
    Readable {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// Every writer closed.
        hup: bool,
    },
    /// Answer to [`Effect::Measure`]: bytes in the pipe (`usize::MAX` when unknown).
    Pending {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// Bytes buffered.
        bytes: usize,
    },
    /// Answer to [`Effect::Peek`].
    Peeked {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// What the peek found.
        peek: Peeked<'a>,
    },
    /// Answer to [`Effect::Deliver`]: the chunk went to the sinks; `released` when no sink
    /// holds it (its bytes may be consumed now).
    Delivered {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// The chunk's number.
        seq: u64,
        /// The chunk's length, in bytes.
        len: usize,
        /// Every hold was released already.
        released: bool,
    },
    /// [`Effect::Consume`] failed: the pipe is unusable.
    ConsumeFailed {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
    },
    /// Answer to [`Effect::Discard`]: what was thrown away, and whether the pipe reached end
    /// of file (or failed).
    Discarded {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// What was thrown away; `eof` at end of file.
        thrown: Discarded,
    },
    /// A sink thread released the last hold of chunk `seq`.
    Released {
        /// The route.
        route: RouteId,
        /// Stream index.
        idx: usize,
        /// The chunk's number.
        seq: u64,
    },
    /// A sink failed (first failure of an episode, or fatally).
    SinkFailed {
        /// The route.
        route: RouteId,
        /// Index of the sink in the route.
        sink: usize,
        /// One-line reason.
        message: String,
    },
    /// A sink thread flushed, destroyed its instance and ended.
    SinkFinished {
        /// The route.
        route: RouteId,
        /// Index of the sink in the route.
        sink: usize,
    },
    /// A loop turn: due timers make their streams ready, and every ready stream takes its turn.
    Turn,
    /// After a turn: report changed drop counters (every [`super::rules::DROPS_EVERY`]) and
    /// abandon sinks past their deadline.
    Tick,
}

/// What a peek found.
#[derive(Debug, Clone, Copy)]
pub enum Peeked<'a> {
    /// Bytes at the head of the pipe (still in it); `rest_of_pipe` when the pipe held nothing
    /// more (the chunk limit was not reached).
    Data {
        /// The bytes.
        bytes: &'a [u8],
        /// The pipe held nothing more.
        rest_of_pipe: bool,
    },
    /// Nothing buffered right now.
    Empty,
    /// Every writer closed and the pipe is empty.
    Eof,
    /// Reading the pipe failed (treated as end of file).
    Failed,
}

/// What the shell is to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a report to the supervisor.
    Report(FromRouter),
    /// Set up the route just added: prepare its pipes, start its sinks, poll its pipes; answer
    /// with [`Input::SetUp`] or [`Input::SetUpFailed`].
    SetUp {
        /// The route.
        route: RouteId,
        /// Container id.
        id: String,
    },
    /// Count the bytes in the pipe; answer with [`Input::Pending`].
    Measure {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
    },
    /// Copy up to one chunk from the head of the pipe without consuming it; answer with
    /// [`Input::Peeked`].
    Peek {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
    },
    /// Make a chunk of the first `len` peeked bytes and hand it to every sink of the route,
    /// held by those marked in `holds`; answer with [`Input::Delivered`].
    Deliver {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// Container id.
        id: String,
        /// The chunk's number.
        seq: u64,
        /// Bytes of the peek to deliver.
        len: usize,
        /// Per sink: whether it holds the chunk.
        holds: Vec<bool>,
    },
    /// Remove `len` peeked bytes from the pipe; answer [`Input::ConsumeFailed`] on failure.
    Consume {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// Bytes, all delivered already.
        len: usize,
    },
    /// Throw away what the pipe holds (a route without sinks); answer with
    /// [`Input::Discarded`].
    Discard {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
    },
    /// Poll the pipe for its bytes (`armed`) or only for its hang-up.
    Arm {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
        /// Bytes wanted.
        armed: bool,
    },
    /// Stop polling the pipe and close it (end of file).
    ClosePipe {
        /// Route key.
        key: usize,
        /// Stream index.
        idx: usize,
    },
    /// The route's writers are gone: its sinks' drain began (noted in their shared state);
    /// wake every sink thread waiting to retry, so that it looks at its drain deadline.
    DrainSinks {
        /// Route key.
        key: usize,
    },
    /// Ask every sink thread of the route to flush and end.
    FinishSinks {
        /// Route key.
        key: usize,
    },
    /// The route is complete: drop what the shell holds for it; threads marked in `abandon`
    /// are let go (stuck), the others joined (they ended).
    RemoveRoute {
        /// Route key.
        key: usize,
        /// Per sink: let its thread go.
        abandon: Vec<bool>,
    },
}
