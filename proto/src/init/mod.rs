//! The contract between the supervisor and `container-init`, both ends in one place:
//!
//! - [`args`]: the command line the supervisor execs and `container-init` parses;
//! - [`report`]: the ready pipe, written by `container-init` (and by the supervisor's cloned
//!   child before it) and decoded by the supervisor.
//!
//! `container-init`'s exit statuses are in [`crate::exit`].

pub mod args;
pub mod report;

pub use args::{ArgsError, InitArgs};
pub use report::Outcome;
