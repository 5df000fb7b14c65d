//! Spawning a container: `clone()` into new PID, UTS and mount namespaces, exec
//! `container-init` with the container's parameters, and wait for its ready report.

use proto::api::Command;
use std::os::fd::OwnedFd;
use std::path::Path;

/// What to spawn.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    /// Container id; becomes the hostname.
    pub id: &'a str,
    /// Absolute path of the container's rootfs (upper read-only layer).
    pub rootfs: &'a Path,
    /// Absolute path of the supervisor's base rootfs (lower read-only layer).
    pub base_rootfs: &'a Path,
    /// The workload.
    pub command: &'a Command,
    /// Nice value for the workload, -20..=19.
    pub nice: i32,
    /// Absolute path of the `container-init` binary on the host.
    pub init_path: &'a Path,
}

/// A started container.
#[derive(Debug)]
pub struct Spawned {
    /// Host PID of container-init.
    pub pid: nix::unistd::Pid,
    /// Read end of the workload's stdout pipe (O_CLOEXEC).
    pub stdout: OwnedFd,
    /// Read end of the workload's stderr pipe (O_CLOEXEC).
    pub stderr: OwnedFd,
}

/// Why a spawn failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A system call in the supervisor failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// container-init reported a setup failure before running the workload.
    #[error("container setup failed: {0}")]
    Setup(String),
}

/// Spawns a container. Returns once container-init has set up the rootfs and started the
/// workload, or failed doing so.
///
/// # Errors
/// [`SpawnError`].
pub fn spawn(_req: &SpawnRequest<'_>) -> Result<Spawned, SpawnError> {
    unimplemented!("container spawn")
}
