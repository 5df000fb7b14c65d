//! What to spawn ([`SpawnRequest`]) and why a spawn failed ([`SpawnError`]): the types every
//! phase of a spawn shares (`stdio`, `init_args`, `namespaces`, `ready`, `spawn`), in a module
//! of their own so that the phases do not import each other.

use proto::api::Command;
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
    /// The container was set up, but its program could not be run: container-init exited
    /// [`proto::exit::EXIT_COMMAND_NOT_FOUND`] or [`proto::exit::EXIT_COMMAND_NOT_EXECUTABLE`]
    /// with this message.
    #[error("{message}")]
    Command {
        /// container-init's one-line report, e.g. `exec nothere: No such file or directory`.
        message: String,
        /// container-init's exit status: [`proto::exit::EXIT_COMMAND_NOT_FOUND`] or
        /// [`proto::exit::EXIT_COMMAND_NOT_EXECUTABLE`].
        exit_code: i32,
    },
}
