//! The engine supervisor: a `mio` event loop that owns container state, spawns containers,
//! answers CLI requests, and talks to its actors (memory monitor, log-router link).

pub mod container;
pub mod monitor;
pub mod router_link;
