//! Starting a log-router process with its end of the control channel: the launch half of the
//! contract (`log-router --control-fd N`, where N is an inherited `SOCK_SEQPACKET` socket; see
//! docs/router-control.md). Usable by any process that drives a router: the supervisor, tools,
//! tests.

use super::channel::{pair, SupervisorEnd};
use super::messages::{FromRouter, ToRouter};
use nix::errno::Errno;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};

/// The flag that names the router's control fd on its command line: `--control-fd N`.
pub const CONTROL_FD_FLAG: &str = "--control-fd";

/// Errors of [`spawn_with_control`].
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The socketpair could not be created.
    #[error("control socket: {0}")]
    Socket(#[source] Errno),
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that was to run.
        program: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Creates a control channel and spawns `cmd` with the router's end as
/// `--control-fd N` (appended to its arguments) and inherited across `exec`; returns the
/// supervisor's end and the child. The parent's copy of the router's end is closed before this
/// returns, so the supervisor's end reads [`ChannelError::Closed`] once the child is gone.
/// Everything else about the child (stdio, process group, environment) is as `cmd` says.
///
/// [`ChannelError::Closed`]: super::ChannelError::Closed
///
/// # Errors
/// [`LaunchError::Socket`] from `socketpair(2)`; [`LaunchError::Spawn`] when the program cannot
/// be started.
pub fn spawn_with_control(mut cmd: Command) -> Result<(SupervisorEnd, Child), LaunchError> {
    let (ours, theirs) = pair::<ToRouter, FromRouter>().map_err(LaunchError::Socket)?;
    let theirs = theirs.into_fd();
    let child_fd = theirs.as_raw_fd();
    cmd.arg(CONTROL_FD_FLAG).arg(child_fd.to_string());
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe; `child_fd` is open there (the child inherits the parent's table).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(child_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        program: PathBuf::from(cmd.get_program()),
        source,
    })?;
    drop(theirs);
    Ok((ours, child))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ChannelError;
    use std::time::Duration;

    /// `sh -c SCRIPT sh`: the appended `--control-fd N` become `$1 $2`.
    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script, "sh"]);
        cmd
    }

    #[test]
    fn the_child_gets_its_end_as_control_fd_and_the_parent_keeps_none() {
        let script = r#"[ "$1" = --control-fd ] && [ -S "/proc/self/fd/$2" ]"#;
        let (mut ours, mut child) = spawn_with_control(sh(script)).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "fd not inherited as a socket"
        );
        // The child exited and the parent closed its copy: the channel is closed.
        assert!(ours.wait_readable(Duration::from_secs(5)));
        assert!(matches!(ours.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn the_channel_stays_open_while_the_child_holds_its_end() {
        let (mut ours, mut child) = spawn_with_control(sh("exec sleep 30")).unwrap();
        assert!(!ours.wait_readable(Duration::from_millis(100)));
        assert!(ours.recv().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(ours.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = spawn_with_control(Command::new("/nonexistent/log-router")).unwrap_err();
        assert!(matches!(err, LaunchError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/log-router"), "{err}");
    }
}
