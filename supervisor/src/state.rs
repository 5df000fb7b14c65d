//! Container records owned by the supervisor loop, and when a container's final state is
//! decided (the rules themselves are [`proto::exit::attribute`]).
//!
//! A container ends when two things have happened, in either order: its init was reaped and
//! the log-router reported its log drained. Only then do `ps`, `wait` and `stop` see it ended,
//! so every byte it wrote is in its log file by that time.

use proto::api::{Command, ContainerInfo, ContainerState, SinkDrops, SinkWait};
use proto::exit::attribute;
use proto::router::SinkSpec;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use proto::exit::InitExit;

/// The supervisor's record of one container.
#[derive(Debug)]
pub struct Container {
    /// What `ps` shows.
    pub info: ContainerInfo,
    /// Canonical rootfs path, to refuse a second live container on it.
    pub rootfs_key: PathBuf,
    /// Read ends of stdout and stderr, kept until the router reports the log drained, so that a
    /// restarted router can be handed them again.
    pub output: Option<(OwnedFd, OwnedFd)>,
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
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Parameters of a new record.
#[derive(Debug)]
pub struct NewContainer {
    /// Container id.
    pub id: String,
    /// Host PID of container-init.
    pub pid: i32,
    /// Absolute rootfs path as given.
    pub rootfs: String,
    /// Canonical rootfs path.
    pub rootfs_key: PathBuf,
    /// The workload.
    pub command: Command,
    /// Soft limit, bytes.
    pub soft_limit_bytes: u64,
    /// Hard limit, bytes.
    pub hard_limit_bytes: u64,
    /// Log file path.
    pub log_path: String,
    /// stdout and stderr read ends.
    pub output: (OwnedFd, OwnedFd),
    /// The container's sinks.
    pub sinks: Vec<SinkSpec>,
}

impl Container {
    /// A running container's record.
    pub fn new(n: NewContainer) -> Self {
        Self {
            info: ContainerInfo {
                id: n.id,
                pid: n.pid,
                state: ContainerState::Running,
                reason: None,
                started_at_ms: now_ms(),
                ended_at_ms: None,
                soft_limit_bytes: n.soft_limit_bytes,
                hard_limit_bytes: n.hard_limit_bytes,
                rss_bytes: None,
                log_path: n.log_path,
                rootfs: n.rootfs,
                command: n.command,
                exit_status: None,
                dropped: Vec::new(),
                draining: Vec::new(),
            },
            rootfs_key: n.rootfs_key,
            output: Some(n.output),
            stop_requested: false,
            kill_deadline: None,
            hard_limit_killed: false,
            init_exit: None,
            drained: false,
            sinks: n.sinks,
        }
    }

    /// True until the container has ended (reaped and drained).
    pub fn is_live(&self) -> bool {
        !self.info.state.is_ended()
    }

    /// If both end conditions hold and the record is not final yet, makes it final and returns
    /// true.
    pub fn try_finalize(&mut self) -> bool {
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
        self.info.ended_at_ms = Some(now_ms());
        self.kill_deadline = None;
        self.output = None;
        true
    }

    /// Records the latest drop counters of one sink.
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
pub struct Registry {
    by_id: BTreeMap<String, Container>,
}

impl Registry {
    /// Looks a container up.
    pub fn get(&self, id: &str) -> Option<&Container> {
        self.by_id.get(id)
    }

    /// Looks a container up, mutably.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Container> {
        self.by_id.get_mut(id)
    }

    /// The live container whose init has this host PID.
    pub fn by_pid_mut(&mut self, pid: i32) -> Option<&mut Container> {
        self.by_id
            .values_mut()
            .find(|c| c.info.pid == pid && c.init_exit.is_none())
    }

    /// The live container using this canonical rootfs, if any.
    pub fn live_on_rootfs(&self, key: &std::path::Path) -> Option<&Container> {
        self.by_id
            .values()
            .find(|c| c.is_live() && c.rootfs_key == key)
    }

    /// Inserts a record, replacing an ended one with the same id.
    pub fn insert(&mut self, c: Container) {
        self.by_id.insert(c.info.id.clone(), c);
    }

    /// Removes a record and returns it.
    pub fn remove(&mut self, id: &str) -> Option<Container> {
        self.by_id.remove(id)
    }

    /// Every record, for `ps`, sorted by start time then id.
    pub fn infos(&self) -> Vec<ContainerInfo> {
        let mut v: Vec<ContainerInfo> = self.by_id.values().map(|c| c.info.clone()).collect();
        v.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
        v
    }

    /// Live containers.
    pub fn live(&self) -> impl Iterator<Item = &Container> {
        self.by_id.values().filter(|c| c.is_live())
    }

    /// Live containers, mutably.
    pub fn live_mut(&mut self) -> impl Iterator<Item = &mut Container> {
        self.by_id.values_mut().filter(|c| c.is_live())
    }

    /// Number of live containers.
    pub fn live_count(&self) -> usize {
        self.live().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> Container {
        let (a, b) = nix::unistd::pipe().unwrap();
        Container::new(NewContainer {
            id: id.into(),
            pid: 42,
            rootfs: "/r".into(),
            rootfs_key: "/r".into(),
            command: Command::Shell("true".into()),
            soft_limit_bytes: 1,
            hard_limit_bytes: 2,
            log_path: "/l".into(),
            output: (a, b),
            sinks: Vec::new(),
        })
    }

    #[test]
    fn finalizes_only_when_reaped_and_drained() {
        let mut c = sample("a");
        assert!(!c.try_finalize());
        c.init_exit = Some(InitExit::Code(3));
        assert!(!c.try_finalize(), "not drained yet");
        c.drained = true;
        assert!(c.try_finalize());
        assert_eq!(c.info.state, ContainerState::Exited);
        assert_eq!(c.info.exit_status, Some(3));
        assert!(c.output.is_none());
        assert!(!c.try_finalize(), "final once");
    }

    #[test]
    fn registry_lookups() {
        let mut r = Registry::default();
        r.insert(sample("a"));
        assert!(r.by_pid_mut(42).is_some());
        assert!(r.live_on_rootfs(std::path::Path::new("/r")).is_some());
        let c = r.get_mut("a").unwrap();
        c.init_exit = Some(InitExit::Signal(9));
        c.drained = true;
        c.try_finalize();
        assert!(r.live_on_rootfs(std::path::Path::new("/r")).is_none());
        assert_eq!(r.live_count(), 0);
        assert_eq!(r.infos().len(), 1);
    }
}
