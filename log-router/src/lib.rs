//! The log-router: a separate process that reads every container's stdout and stderr pipes
//! and writes their bytes to sink plugins (`.so` files speaking the ABI of `sink_abi`).
//!
//! The supervisor starts it as `log-router --control-fd N` with one end of a `SOCK_SEQPACKET`
//! socketpair; the protocol is `proto::router`. A core decides, a shell does the I/O:
//! - [`core`]: the state machine (routes, streams' phases, drops, deadlines, reports); no
//!   system call;
//! - [`event_loop`]: the shell's `mio` loop, feeding the core and sending its reports;
//!   [`io`]: carries out the core's effects on pipes and sink threads;
//! - [`control`]: the control channel with its outgoing queue;
//! - [`pipe`]: peek (`tee`) then consume, so a killed router loses nothing still unstored;
//! - [`records`]: chunks and their split into line records; [`buffers`]: their reused memory;
//! - [`worker`]: one thread per sink instance, back-off and hold release; [`sink_shared`]:
//!   the counters a sink thread shares with the core;
//! - [`loader`], [`instance`], [`plan`]: loading sinks, calling them, and their options.

pub mod buffers;
pub mod control;
pub mod core;
pub mod event_loop;
pub mod instance;
pub mod io;
pub mod loader;
pub mod pipe;
pub mod plan;
pub mod records;
pub mod sink_shared;
pub mod worker;

pub use event_loop::{run, Error};
