//! `container-init`: PID 1 of a container, tini-style and small (no event loop).
//!
//! Started by the supervisor's `spawn()` in new PID, UTS, mount and IPC namespaces (its
//! command line and ready-pipe report are [`proto::init`]). In the order runc, crun and youki
//! use, it closes every descriptor it inherited but stdio and the ready pipe ([`fds`]), makes
//! itself non-dumpable, builds the container's root filesystem ([`rootfs`], [`dev`], the
//! masked and read-only paths of [`masks`], on the helpers of [`mount`]) and pivots into it,
//! sets the hostname to the container id, starts the workload as its child ([`workload`],
//! with its nice value also set on its session's autogroup by [`autogroup`], then Docker's
//! default capabilities ([`caps`]) and seccomp profile ([`seccomp`]) applied by [`confine`]
//! just before `exec`), reports the outcome on the ready pipe ([`ready`]), then reaps and
//! forwards signals until the workload ends, or during a stop until its whole PID namespace
//! is empty ([`reaper`]), and exits with the workload's status. `--privileged` skips the
//! masked paths, `nodev`, the capability cut and seccomp.

pub mod autogroup;
pub mod caps;
pub mod confine;
pub mod dev;
pub mod fds;
pub mod masks;
pub mod mount;
pub mod ready;
pub mod reaper;
pub mod rootfs;
pub mod seccomp;
pub mod workload;

use proto::exit::{EXIT_SETUP_FAILED, EXIT_USAGE};
use proto::init::args::{find_ready_fd, InitArgs};
use std::ffi::OsString;

/// A set-up step before the workload runs failed; its `Display` is the one-line report.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Blocking signals or marking descriptors close-on-exec failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Building the root filesystem failed.
    #[error(transparent)]
    Rootfs(#[from] mount::RootfsError),
    /// The confinement could not be prepared.
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
    /// The workload could not be started.
    #[error(transparent)]
    Workload(#[from] workload::WorkloadError),
}

impl InitError {
    /// Exit status of `container-init` for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Workload(e) => e.exit_code(),
            _ => EXIT_SETUP_FAILED,
        }
    }
}

/// Everything up to the running workload: descriptors, signals, rootfs, hostname, workload.
fn set_up(args: &InitArgs) -> Result<nix::unistd::Pid, InitError> {
    // Nothing is open yet but what the supervisor passed: keep stdio and the ready pipe only.
    fds::close_inherited(args.ready_fd).map_err(|source| InitError::Sys {
        what: "close inherited descriptors",
        source,
    })?;
    // Block first: as PID 1, a signal with the default disposition would be dropped.
    reaper::block_all().map_err(|source| InitError::Sys {
        what: "block signals",
        source,
    })?;
    reaper::default_dispositions();
    fds::cloexec_from_3().map_err(|source| InitError::Sys {
        what: "close_range",
        source,
    })?;
    // Only a holder of CAP_SYS_PTRACE may then ptrace this process or open /proc/1/fd, mem,
    // environ (runc's init does the same, CVE-2016-9962).
    nix::sys::prctl::set_dumpable(false).map_err(|source| InitError::Sys {
        what: "PR_SET_DUMPABLE",
        source,
    })?;
    let confine = std::sync::Arc::new(confine::Confinement::prepare(args.privileged)?);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    rootfs::enter(&args.rootfs, &args.base, args.privileged)?;
    nix::unistd::sethostname(&args.id).map_err(|source| InitError::Sys {
        what: "sethostname",
        source,
    })?;
    Ok(workload::start(&args.argv, &args.id, args.nice, confine)?)
}

/// Runs `container-init` with the arguments after the program name; returns the process exit
/// status: the workload's ([`proto::exit::InitExit::status`]), [`EXIT_SETUP_FAILED`] or
/// [`proto::exit::exec_error_status`] when set-up failed (reported on the ready pipe),
/// [`EXIT_USAGE`] for a malformed command line.
pub fn run(raw: Vec<OsString>) -> i32 {
    let ready_fd = find_ready_fd(&raw);
    let args = match InitArgs::parse(raw) {
        Ok(a) => a,
        Err(e) => {
            let msg = format!("container-init: {e}");
            match ready_fd {
                // SAFETY: the supervisor passed this descriptor for us to own.
                Some(fd) => unsafe { ready::Ready::from_raw(fd) }.fail(&msg),
                None => eprintln!("{msg}"),
            }
            return EXIT_USAGE;
        }
    };
    // SAFETY: the supervisor passed this descriptor for us to own; nothing else uses it.
    let ready = unsafe { ready::Ready::from_raw(args.ready_fd) };
    match set_up(&args) {
        Ok(main) => {
            ready.succeed();
            reaper::run(main)
        }
        Err(e) => {
            ready.fail(&e.to_string());
            e.exit_code()
        }
    }
}
