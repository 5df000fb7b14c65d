//! The contract between the supervisor and `container-init`, both ends in one place:
//!
//! - [`args`]: the command line the supervisor execs and `container-init` parses;
//! - [`report`]: the ready pipe, written by `container-init` (and by the supervisor's cloned
//!   child before it) and decoded by the supervisor;
//! - [`STOP_SIGNAL`]: the signal that asks `container-init` to stop the container;
//! - [`FORWARDED_SIGNALS`]: the signals `container-init` passes on to the container.
//!
//! `container-init`'s exit statuses are in [`crate::exit`].

pub mod args;
pub mod report;

pub use args::{ArgsError, InitArgs};
pub use report::Outcome;

/// The signal the supervisor sends `container-init` to stop the container (`SIGTERM`, as
/// `docker stop` and runc's `kill` default). `container-init` forwards it to every process of
/// the PID namespace and then exits only when the namespace is empty; the supervisor bounds
/// this grace period with a `SIGKILL` to `container-init`. See `docs/container-init.md`.
pub const STOP_SIGNAL: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGTERM;

/// The signals `container-init` forwards to every process of the container (`kill(-1, sig)`
/// as PID 1), and so the only ones a client may send it (`Request::Kill`, `engine run`'s
/// signal proxy, as `docker run`'s). [`STOP_SIGNAL`] among them also starts a stop.
pub const FORWARDED_SIGNALS: [nix::sys::signal::Signal; 7] = {
    use nix::sys::signal::Signal::*;
    [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGWINCH]
};
