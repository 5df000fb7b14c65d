//! The confinement of the workload, prepared before `fork` ([`Confinement::prepare`]) and
//! applied between `fork` and `exec` ([`Confinement::apply`]), after the nice value:
//!
//! 1. the bounding set is cut to Docker's defaults and the ambient set cleared
//!    ([`crate::caps::drop_bounding`]);
//! 2. the seccomp filters are installed ([`crate::seccomp::Filters::install`]) while
//!    `CAP_SYS_ADMIN` is still held, since `no_new_privs` is not set (Docker's default; runc
//!    installs seccomp before dropping capabilities in that case);
//! 3. permitted and effective become Docker's defaults, inheritable empty
//!    ([`crate::caps::restrict`]); the filter allows capset(2).
//!
//! Then only `execve` (and on failure `write` and `_exit`) is left to std's `Command`.
//! [`Confinement::Privileged`] (`--privileged`) skips all three.

use crate::seccomp::{Filters, SeccompError};
use std::io;

/// The confinement could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// `/proc/sys/kernel/cap_last_cap` could not be read.
    #[error("read cap_last_cap: {0}")]
    LastCap(#[source] io::Error),
    /// The seccomp profile did not compile.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// What the workload is confined by.
#[derive(Debug)]
pub enum Confinement {
    /// Docker's default capabilities and seccomp profile.
    Default {
        /// Highest capability number of the kernel.
        last_cap: u32,
        /// The compiled seccomp filters.
        filters: Filters,
    },
    /// Nothing (`--privileged`): every capability, no filter.
    Privileged,
}

impl Confinement {
    /// Prepares the confinement (reads the kernel's last capability, compiles the filters).
    ///
    /// # Errors
    /// [`ConfineError`].
    pub fn prepare(privileged: bool) -> Result<Self, ConfineError> {
        if privileged {
            return Ok(Self::Privileged);
        }
        Ok(Self::Default {
            last_cap: crate::caps::last_cap().map_err(ConfineError::LastCap)?,
            filters: Filters::docker_default()?,
        })
    }

    /// Applies it to the calling process. Async-signal-safe, for `pre_exec`.
    ///
    /// # Errors
    /// The errno of the prctl(2), seccomp(2) or capset(2) call that failed.
    pub fn apply(&self) -> io::Result<()> {
        match self {
            Self::Privileged => Ok(()),
            Self::Default { last_cap, filters } => {
                crate::caps::drop_bounding(*last_cap)?;
                filters.install()?;
                crate::caps::restrict()
            }
        }
    }
}
