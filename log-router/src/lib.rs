//! The log-router: a separate process that reads every container's stdout and stderr pipes
//! and writes their bytes to sink plugins (`.so` files speaking the ABI of `sink_abi`).
//!
//! The supervisor starts it as `log-router --control-fd N` with one end of a `SOCK_SEQPACKET`
//! socketpair; the protocol is `proto::router`. Modules:
//! - [`event_loop`]: the `mio` loop; `commands` (control messages) and `flow` (gather small
//!   writes, peek, hand over, consume, complete; deadlines for stuck sinks) extend it;
//! - [`control`]: the control socket (packets with fds, outgoing queue);
//! - [`pipe`]: peek (`tee`) then consume, so a killed router loses nothing still unstored;
//! - [`records`]: chunks and their split into line records; [`buffers`]: their reused memory;
//! - [`worker`]: one thread per sink instance, back-off and hold release;
//! - [`loader`], [`instance`], [`plan`]: loading sinks, calling them, and their options.

pub mod buffers;
mod commands;
pub mod control;
pub mod event_loop;
mod flow;
pub mod instance;
pub mod loader;
pub mod pipe;
pub mod plan;
pub mod records;
pub mod route;
pub mod worker;

pub use event_loop::{run, RouterError};
