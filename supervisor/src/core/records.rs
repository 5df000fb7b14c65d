//! Container records owned by the core, and the rule that decides when one is final.
//!
//! A container ends when two things have happened, in either order: its init was reaped and
//! the log-router reported its log drained. Only then do `ps`, `wait` and `stop` see it ended,
//! so every byte it wrote is in its log file by that time.

use crate::core::input::ConnId;
use proto::api::{ContainerInfo, SinkDrops, SinkWait};
use proto::exit::{attribute, InitExit};
use proto::router::SinkSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The core's record of one container (its output fds are kept by the shell, by id).
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// What `ps` shows.
    pub info: ContainerInfo,
    /// Canonical rootfs path, to refuse a second live container on it.
    pub rootfs_key: PathBuf,
    /// A stop was requested.
    pub stop_requested: bool,
    /// When the grace period of a stop ends and SIGKILL follows.
    pub kill_deadline: Option<Instant>,
    /// The memory monitor reported a hard-limit kill.
    pub hard_limit_killed: bool,
    /// Set once container-init has been reaped.
    pub init_exit: Option<InitExit>,
    /// Set once the log-router reported every byte written.
    pub drained: bool,
    /// The container's sinks (its own, or the supervisor's defaults).
    pub sinks: Vec<SinkSpec>,
    /// `run --rm`: removed once ended and [`Container::owner`] is gone.
    pub remove_on_exit: bool,
    /// The connection that started it, while open (`run`'s client reads the log to the end
    /// before it closes it): a `remove_on_exit` record waits for it.
    pub owner: Option<ConnId>,
}

impl Container {
    /// A running container's record from its `info` (state `running`).
    pub fn new(info: ContainerInfo, rootfs_key: PathBuf, sinks: Vec<SinkSpec>) -> Self {
        Self {
            info,
            rootfs_key,
            stop_requested: false,
            kill_deadline: None,
            hard_limit_killed: false,
            init_exit: None,
            drained: false,
            sinks,
            remove_on_exit: false,
            owner: None,
        }
    }

    /// True until the container has ended (reaped and drained).
    pub fn is_live(&self) -> bool {
        !self.info.state.is_ended()
    }

    /// If both end conditions hold and the record is not final yet, makes it final (ended at
    /// `now_ms`, ms since the Unix epoch) and returns true.
    pub fn try_finalize(&mut self, now_ms: u64) -> bool {
        if !self.is_live() || !self.drained {
            return false;
        }
        let Some(exit) = self.init_exit else {
            return false;
        };
        let (state, reason) = attribute(exit, self.stop_requested, self.hard_limit_killed);
        self.info.state = state;
        self.info.reason = Some(reason);
        self.info.exit_status = Some(exit.status());
        self.info.ended_at_ms = Some(now_ms);
        self.kill_deadline = None;
        true
    }

    /// Whether `run --rm` asks for this record to go now: ended, and its client gone.
    pub fn due_for_removal(&self) -> bool {
        self.remove_on_exit && !self.is_live() && self.owner.is_none()
    }

    /// Records the latest drop counters of the container's sinks.
    pub fn set_drops(&mut self, drops: Vec<SinkDrops>) {
        self.info.dropped = drops;
    }

    /// Records the sinks the container's end waits for (empty once its log is complete).
    pub fn set_draining(&mut self, sinks: Vec<SinkWait>) {
        self.info.draining = sinks;
    }
}

/// Every container the supervisor knows, live and ended, by id.
#[derive(Debug, Default)]
pub struct Records {
    by_id: BTreeMap<String, Container>,
}

impl Records {
    /// Looks a container up.
    pub fn get(&self, id: &str) -> Option<&Container> {
        self.by_id.get(id)
    }

    /// Looks a container up, mutably.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Container> {
        self.by_id.get_mut(id)
    }

    /// The id of the live container whose init has this host PID and is not reaped yet.
    pub fn id_by_pid(&self, pid: i32) -> Option<String> {
        self.by_id
            .values()
            .find(|c| c.info.pid == pid && c.init_exit.is_none() && c.is_live())
            .map(|c| c.info.id.clone())
    }

    /// The live container using this canonical rootfs, if any.
    pub fn live_on_rootfs(&self, key: &Path) -> Option<&Container> {
        self.by_id
            .values()
            .find(|c| c.is_live() && c.rootfs_key == key)
    }

    /// Inserts a record (the core admits no start whose id names a record).
    pub fn insert(&mut self, c: Container) {
        self.by_id.insert(c.info.id.clone(), c);
    }

    /// Removes a record and returns it.
    pub fn remove(&mut self, id: &str) -> Option<Container> {
        self.by_id.remove(id)
    }

    /// Every record's info (unsorted).
    pub fn infos(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.by_id.values().map(|c| &c.info)
    }

    /// Live containers.
    pub fn live(&self) -> impl Iterator<Item = &Container> {
        self.by_id.values().filter(|c| c.is_live())
    }

    /// Live containers, mutably.
    pub fn live_mut(&mut self) -> impl Iterator<Item = &mut Container> {
        self.by_id.values_mut().filter(|c| c.is_live())
    }

    /// Records whose owner is `conn`, mutably.
    pub fn owned_by(&mut self, conn: ConnId) -> impl Iterator<Item = &mut Container> {
        self.by_id
            .values_mut()
            .filter(move |c| c.owner == Some(conn))
    }

    /// Number of live containers.
    pub fn live_count(&self) -> usize {
        self.live().count()
    }
}
