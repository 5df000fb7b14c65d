//! What the core knows of the log-router: its phase (up, starting, waiting to retry,
//! shutting down) and the starts whose `Validate` it has not answered yet (it answers in
//! order, so a FIFO matches answers to starts).

use crate::core::input::StartId;
use std::collections::VecDeque;
use std::time::Instant;

/// The log-router's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Configured and routing.
    Up,
    /// Started and sent `Configure`; `Ready` is awaited until `deadline`.
    Starting {
        /// When the start is given up (the router is killed, a retry follows).
        deadline: Instant,
    },
    /// A start failed; the next one is at `at`.
    Retry {
        /// When to start again.
        at: Instant,
    },
    /// Told to shut down; its socket's EOF is awaited until `deadline`.
    Stopping {
        /// When it is killed and the supervisor exits anyway.
        deadline: Instant,
    },
    /// Shut down (the supervisor exits).
    Done,
}

/// The log-router as the core sees it.
#[derive(Debug)]
pub struct RouterState {
    /// Its phase.
    pub phase: Phase,
    /// Starts whose `Validate` was sent and not answered, oldest first.
    pub validations: VecDeque<StartId>,
    /// Failed (re)starts since the router was last ready: each doubles the retry delay.
    pub failures: u32,
}

impl RouterState {
    /// A router that was started and configured before the loop began.
    pub fn up() -> Self {
        Self {
            phase: Phase::Up,
            validations: VecDeque::new(),
            failures: 0,
        }
    }

    /// When the phase wants attention.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Starting { deadline } | Phase::Stopping { deadline } => Some(deadline),
            Phase::Retry { at } => Some(at),
            Phase::Up | Phase::Done => None,
        }
    }
}
