//! How containers end: stop requests (SIGTERM, then SIGKILL at the deadline), reaped inits,
//! drained logs, and memory monitor events. The record becomes final in
//! [`World::finalize`] once reaped and drained, in either order.

use crate::core::effect::Effect;
use crate::core::world::World;
use crate::monitor::{MonitorCommand, MonitorEvent};
use nix::sys::signal::Signal;
use proto::exit::InitExit;
use std::time::Duration;

/// Marks a stop and sends SIGTERM to container-init, which forwards it to every process of
/// the container; SIGKILL follows after `grace` (the earliest deadline of several stops wins).
pub fn request_stop(w: &mut World, id: &str, grace: Duration) {
    let now = w.now.at;
    let Some(c) = w.records.get_mut(id) else {
        return;
    };
    if !c.is_live() || c.init_exit.is_some() {
        c.stop_requested |= c.is_live();
        return;
    }
    let deadline = now + grace;
    if !c.stop_requested {
        c.stop_requested = true;
        tracing::info!(
            container = id,
            grace_ms = grace.as_millis() as u64,
            "stopping"
        );
        let pid = c.info.pid;
        w.out.push(Effect::Kill {
            pid,
            signal: Signal::SIGTERM,
        });
    }
    let c = w.records.get_mut(id).expect("looked up above");
    c.kill_deadline = Some(c.kill_deadline.map_or(deadline, |d| d.min(deadline)));
}

/// SIGKILL to every container whose stop grace period is over.
pub fn on_deadlines(w: &mut World) {
    let now = w.now.at;
    let mut kills = Vec::new();
    for c in w.records.live_mut() {
        if c.kill_deadline.is_some_and(|d| d <= now) && c.init_exit.is_none() {
            tracing::info!(container = %c.info.id, "grace period over: SIGKILL");
            kills.push(c.info.pid);
            c.kill_deadline = None;
        }
    }
    for pid in kills {
        w.out.push(Effect::Kill {
            pid,
            signal: Signal::SIGKILL,
        });
    }
}

/// container-init of container `id` was reaped.
pub fn on_exit(w: &mut World, id: &str, exit: InitExit) {
    let Some(c) = w.records.get_mut(id) else {
        return;
    };
    c.init_exit = Some(exit);
    c.kill_deadline = None;
    let (pid, hard) = (c.info.pid, c.hard_limit_killed);
    tracing::info!(container = %id, ?exit, "container init exited");
    if !hard {
        w.out.push(Effect::Monitor(MonitorCommand::Unregister {
            id: id.to_string(),
            pid,
        }));
    }
    w.finalize(id);
}

/// The log-router stored every byte of container `id`.
pub fn on_drained(w: &mut World, id: &str) {
    let Some(c) = w.records.get_mut(id) else {
        // Still starting, added by the router and waiting for the monitor: kept for its
        // record. (A drain before `Added` is an earlier route's: the router reports `Added`
        // before the `Drained` of the same route.)
        let pending = w.starts.by_container(id);
        if let Some(p) = pending.and_then(|s| w.starts.get_mut(s)) {
            p.drained |= !p.abandoned && p.routing == crate::core::starts::Routing::Added;
        }
        return;
    };
    if c.drained {
        return;
    }
    c.drained = true;
    c.set_draining(Vec::new());
    w.out.push(Effect::ForgetOutput { id: id.to_string() });
    w.finalize(id);
}

/// An event of the memory monitor: RSS figures and hard-limit kills.
pub fn on_monitor(w: &mut World, ev: crate::monitor::MonitorEvent) {
    match ev {
        MonitorEvent::Rss { id, rss_bytes } | MonitorEvent::SoftLimit { id, rss_bytes, .. } => {
            if let Some(c) = w.records.get_mut(&id) {
                c.info.rss_bytes = Some(rss_bytes);
            }
        }
        MonitorEvent::HardLimitKilled { id, rss_bytes, .. } => {
            if let Some(c) = w.records.get_mut(&id) {
                c.info.rss_bytes = Some(rss_bytes);
                c.hard_limit_killed = true;
            }
        }
        // Answered by the start rules.
        MonitorEvent::Registered { .. } => {}
        MonitorEvent::Error { id, message } => {
            // A container that ended before the monitor saw it is not a monitor fault.
            let ended = id
                .as_deref()
                .and_then(|i| w.records.get(i))
                .is_some_and(|c| c.init_exit.is_some());
            if ended {
                tracing::debug!(container = ?id, %message, "memory monitor: container already ended");
            } else {
                tracing::warn!(container = ?id, %message, "memory monitor");
            }
        }
    }
}
