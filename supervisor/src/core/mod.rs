//! The supervisor's core: a state machine that owns all container state (records, starts in
//! flight, waiters, stop deadlines, the log-router's phase, shutdown) and makes no system
//! call. The shell feeds it [`Input`]s with the time, and carries out the [`Effect`]s it
//! returns; [`Core::next_deadline`] tells the shell how long it may sleep.
//!
//! The exit-status rules (128+signal, stop vs hard-limit attribution, 126/127) are
//! [`proto::exit`]'s. Rules live one concern per module: `requests` (client requests),
//! `start` (the two-phase start), `ending` (stops, exits, drained logs), `router` (the
//! log-router's reports, death and restart), `shutdown`; they share the state in `world`.

pub mod config;
pub mod effect;
mod ending;
pub mod input;
pub mod records;
mod requests;
mod router;
pub mod router_state;
mod shutdown;
mod start;
pub mod starts;
mod world;

#[cfg(test)]
mod tests;

pub use config::CoreConfig;
pub use effect::{Effect, SpawnSpec};
pub use input::{ConnId, Input, Now, StartId};

use crate::monitor::MonitorEvent;
use records::Records;
use router_state::Phase;
use std::time::Instant;
use world::World;

/// The supervisor's decisions, without I/O.
#[derive(Debug)]
pub struct Core {
    w: World,
}

impl Core {
    /// A core with no containers and a configured log-router, at `now`.
    pub fn new(cfg: CoreConfig, now: Now) -> Self {
        Self {
            w: World::new(cfg, now),
        }
    }

    /// Handles one input at `now` and returns what the shell must do, in order.
    pub fn on(&mut self, input: Input, now: Now) -> Vec<Effect> {
        let w = &mut self.w;
        w.now = now;
        if w.router.phase == Phase::Done {
            return Vec::new();
        }
        match input {
            Input::Request { conn, frame } => requests::handle(w, conn, frame),
            Input::Disconnected { conn } => requests::forget_conn(w, conn),
            Input::RootfsChecked { start, result } => start::on_checked(w, start, result),
            Input::InitSpawned { start, pid } => start::on_spawned(w, start, pid),
            Input::SpawnFailed { start, error } => start::on_spawn_failed(w, start, error),
            Input::InitReport { start, outcome } => start::on_report(w, start, outcome),
            Input::ReadyLost { start, error } => start::on_ready_lost(w, start, &error),
            Input::ChildExited { pid, exit } => {
                if let Some(s) = w.starts.by_pid(pid) {
                    start::on_exit(w, s, exit);
                } else if let Some(id) = w.records.id_by_pid(pid) {
                    ending::on_exit(w, &id, exit);
                } else {
                    tracing::debug!(pid, "reaped unknown child");
                }
            }
            Input::LogsRemoved { id, result } => requests::on_logs_removed(w, &id, result),
            Input::Router(msg) => router::on_message(w, msg),
            Input::RouterClosed => router::on_closed(w),
            Input::RouterExited => router::on_exited(w),
            Input::RouterStartFailed(e) => router::on_start_failed(w, &e),
            Input::Monitor(MonitorEvent::Registered { id, pid, error }) => {
                start::on_registered(w, &id, pid, error)
            }
            Input::Monitor(ev) => ending::on_monitor(w, ev),
            Input::Tick => {}
            Input::Shutdown { signal } => shutdown::begin(w, signal),
        }
        // Every input may have passed a deadline: the shell ticks only when idle.
        start::on_deadlines(w);
        ending::on_deadlines(w);
        router::on_deadlines(w);
        shutdown::maybe_finish(w);
        std::mem::take(&mut w.out)
    }

    /// The earliest deadline (stop grace, start timeout, router phase), for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        let w = &self.w;
        let kills = w
            .records
            .live()
            .filter(|c| c.init_exit.is_none())
            .filter_map(|c| c.kill_deadline);
        let starts = w
            .starts
            .iter()
            .filter(|(_, p)| !p.abandoned)
            .map(|(_, p)| p.deadline);
        kills.chain(starts).chain(w.router.deadline()).min()
    }

    /// The container records (for tests and diagnostics).
    pub fn records(&self) -> &Records {
        &self.w.records
    }

    /// Whether the core has asked to exit.
    pub fn exited(&self) -> bool {
        self.w.router.phase == Phase::Done
    }
}
