//! Starts in flight: from the request to container-init's ready report (or failure), and
//! after an abandoned start until its init is reaped. While one is here its id and rootfs are
//! taken, and once container-init is cloned `ps` shows it as `starting`.

use crate::core::input::{ConnId, StartId};
use proto::api::{ContainerInfo, ContainerState, StartSpec};
use proto::exit::InitExit;
use proto::init::report::Outcome;
use proto::router::SinkSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Its rootfs is being checked off the loop.
    Checking,
    /// The log-router is checking its `--log-opt` sinks.
    Validating,
    /// The shell was asked to clone container-init.
    Spawning,
    /// container-init runs; its ready report (and maybe its exit) is awaited.
    Cloned,
    /// The workload runs; the memory monitor's answer to its registration is awaited (a
    /// container never runs unmonitored).
    Registering,
}

/// Where a start's output is with the log-router: the start is answered only once it is
/// [`Routing::Added`] (Docker refuses a container whose log driver cannot start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Routing {
    /// Not handed to the router yet (no ready report yet, or the router is restarting).
    #[default]
    NotAsked,
    /// `AddContainer` was sent; `Added` or `AddFailed` is awaited.
    Asked,
    /// The router answered `Added`: its log is being stored.
    Added,
}

/// One start in flight.
#[derive(Debug)]
pub struct PendingStart {
    /// Who waits for the answer (`None` once answered or gone).
    pub conn: Option<ConnId>,
    /// The request.
    pub spec: StartSpec,
    /// Where it is.
    pub stage: Stage,
    /// When it is answered with a timeout error.
    pub deadline: Instant,
    /// When the request came, ms since the Unix epoch.
    pub requested_ms: u64,
    /// Canonical rootfs, once checked.
    pub rootfs_key: Option<PathBuf>,
    /// Its sinks (its `--log-opt`s over the defaults).
    pub sinks: Vec<SinkSpec>,
    /// Host PID of container-init, once cloned.
    pub pid: Option<i32>,
    /// The ready report, once read.
    pub report: Option<Outcome>,
    /// container-init's exit, once reaped.
    pub exit: Option<InitExit>,
    /// Answered with an error: kept only until its init is reaped.
    pub abandoned: bool,
    /// A `stop` came while it was starting: the grace period of the stop that follows.
    pub stop_grace: Option<std::time::Duration>,
    /// Where its output is with the log-router.
    pub routing: Routing,
    /// The log-router reported its log complete while it was still starting (its workload
    /// closed stdout and stderr before the monitor answered): carried into its record.
    pub drained: bool,
}

impl PendingStart {
    /// What `ps` shows for it: state `starting`, no end.
    pub fn info(&self, log_path: &Path) -> ContainerInfo {
        ContainerInfo {
            id: self.spec.id.clone(),
            pid: self.pid.unwrap_or(0),
            state: ContainerState::Starting,
            reason: None,
            started_at_ms: self.requested_ms,
            ended_at_ms: None,
            soft_limit_bytes: self.spec.soft_limit_bytes,
            hard_limit_bytes: self.spec.hard_limit_bytes,
            rss_bytes: None,
            log_path: log_path.to_string_lossy().into_owned(),
            rootfs: self.spec.rootfs.clone(),
            command: self.spec.command.clone(),
            exit_status: None,
            dropped: Vec::new(),
            draining: Vec::new(),
        }
    }
}

/// Every start in flight, and the number of rootfs checks still running.
#[derive(Debug, Default)]
pub struct Starts {
    by_start: BTreeMap<StartId, PendingStart>,
    next: u64,
    /// Rootfs checks asked for and not reported yet (those of abandoned starts included: a
    /// hung check holds its thread).
    pub checks_in_flight: usize,
}

impl Starts {
    /// Adds a start and returns its new id.
    pub fn insert(&mut self, p: PendingStart) -> StartId {
        self.next += 1;
        let id = StartId(self.next);
        self.by_start.insert(id, p);
        id
    }

    /// Looks a start up.
    pub fn get(&self, s: StartId) -> Option<&PendingStart> {
        self.by_start.get(&s)
    }

    /// Looks a start up, mutably.
    pub fn get_mut(&mut self, s: StartId) -> Option<&mut PendingStart> {
        self.by_start.get_mut(&s)
    }

    /// Removes a start.
    pub fn remove(&mut self, s: StartId) -> Option<PendingStart> {
        self.by_start.remove(&s)
    }

    /// The start of container `id`, if any (abandoned ones included).
    pub fn by_container(&self, id: &str) -> Option<StartId> {
        self.by_start
            .iter()
            .find(|(_, p)| p.spec.id == id)
            .map(|(s, _)| *s)
    }

    /// The start waiting for the monitor's answer for this container-init PID.
    pub fn registering(&self, pid: i32) -> Option<StartId> {
        self.by_start
            .iter()
            .find(|(_, p)| p.pid == Some(pid) && p.stage == Stage::Registering && !p.abandoned)
            .map(|(s, _)| *s)
    }

    /// The start whose container-init has this PID and is not reaped yet.
    pub fn by_pid(&self, pid: i32) -> Option<StartId> {
        self.by_start
            .iter()
            .find(|(_, p)| p.pid == Some(pid) && p.exit.is_none())
            .map(|(s, _)| *s)
    }

    /// The start that holds this canonical rootfs, if any.
    pub fn on_rootfs(&self, key: &Path) -> Option<&PendingStart> {
        self.by_start
            .values()
            .find(|p| p.rootfs_key.as_deref() == Some(key))
    }

    /// Every start, in request order.
    pub fn iter(&self) -> impl Iterator<Item = (StartId, &PendingStart)> {
        self.by_start.iter().map(|(s, p)| (*s, p))
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}
