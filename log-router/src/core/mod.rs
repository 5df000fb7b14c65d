//! The router's core: a state machine that decides and makes no system call.
//!
//! It owns every route (container): its streams' phases (gathering, chunk in flight, held
//! line, done), its sinks as seen from the loop (mode, deadlines, drop counters) and what to
//! report to the supervisor. The shell (the `event_loop` and `io` modules) turns readiness,
//! control messages and sink-thread events into [`Input`]s, feeds them to [`Core::on`], and
//! carries out the returned [`Effect`]s.
//!
//! - [`machine`]: [`Core`] and its rules of flow, completion and deadlines;
//! - [`events`]: [`Input`], [`Peeked`], [`Effect`];
//! - [`route`]: per-route state; [`rules`]: timing constants and the gather rule.

pub mod events;
pub mod machine;
pub mod route;
pub mod rules;
#[cfg(test)]
mod tests;

pub use events::{Effect, Input, Peeked};
pub use machine::Core;
pub use route::{RouteId, SinkInfo};
