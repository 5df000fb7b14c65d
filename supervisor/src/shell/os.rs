//! The shell's window on the system: every system call the core's effects need, behind the
//! [`Os`] trait so that the shell's logic runs against a fake in tests (as youki's `Syscall`
//! and `TestHelperSyscall`). [`RealOs`] is the implementation: clones, signals, `waitpid`,
//! rootfs checks in helper threads, the log-router link and the memory monitor.

use crate::container::spawn::{clone_now, InitChild, SpawnError, SpawnRequest};
use crate::core::input::RootfsCheckError;
use crate::core::{SpawnSpec, StartId};
use crate::monitor::{MonitorCommand, MonitorHandle};
use crate::router_link::{Inbox, RouterError, RouterLink};
use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Interest, Token, Waker};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use proto::exit::InitExit;
use proto::router::{SinkSpec, ToRouter};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Result of one rootfs check: the canonical path of a directory, or why not.
pub type CheckResult = Result<PathBuf, RootfsCheckError>;

/// What the shell does to the world.
pub trait Os {
    /// Starts checking `path` off the loop; the result is returned by a later
    /// [`Os::finished_checks`] (the loop is woken when it is there).
    fn check_rootfs(&mut self, start: StartId, path: PathBuf);
    /// Rootfs checks finished since the last call.
    fn finished_checks(&mut self) -> Vec<(StartId, CheckResult)>;
    /// Removes a log, its index and its rotated generations.
    ///
    /// # Errors
    /// The first removal that fails other than with `NotFound`.
    fn remove_logs(&mut self, log: &Path) -> std::io::Result<()>;
    /// Clones container-init (does not wait for its report).
    ///
    /// # Errors
    /// [`SpawnError`] when the pipes or the clone fail.
    fn spawn_init(&mut self, spec: &SpawnSpec) -> Result<InitChild, SpawnError>;
    /// Has the loop report when `fd` (a ready pipe) is readable, as start `start`.
    ///
    /// # Errors
    /// Errors of `epoll_ctl`.
    fn watch_ready(&mut self, start: StartId, fd: &OwnedFd) -> std::io::Result<()>;
    /// Stops watching a ready pipe (before it is closed).
    fn unwatch_ready(&mut self, fd: &OwnedFd);
    /// `kill(pid, signal)`, errors ignored (the process may be gone).
    fn kill(&mut self, pid: i32, signal: Signal);
    /// Reaps every exited child now (`waitpid(-1, WNOHANG)`), never blocking.
    fn reap(&mut self) -> Vec<(i32, InitExit)>;
    /// Host PID of the current log-router.
    fn router_pid(&self) -> i32;
    /// Reports waiting on the log-router's socket, and whether it is closed.
    fn router_read(&mut self) -> Inbox;
    /// Hands a container's output to the log-router.
    ///
    /// # Errors
    /// [`RouterError`] (a dead router is restarted and handed the output again).
    fn router_add(
        &mut self,
        id: &str,
        log_path: &Path,
        output: [BorrowedFd<'_>; 2],
        sinks: &[SinkSpec],
    ) -> Result<(), RouterError>;
    /// Sends a control message to the log-router.
    ///
    /// # Errors
    /// [`RouterError`].
    fn router_send(&mut self, msg: &ToRouter) -> Result<(), RouterError>;
    /// Replaces the log-router (killing the old one if it runs) and sends it `Configure`.
    ///
    /// # Errors
    /// [`RouterError`] when the new one cannot be started or configured.
    fn router_restart(&mut self) -> Result<(), RouterError>;
    /// SIGKILLs the current log-router if it still runs.
    fn router_kill(&mut self);
    /// A command for the memory monitor.
    fn monitor(&mut self, cmd: MonitorCommand);
}

/// `metadata`, `is_dir`, `canonicalize`: may block as long as the filesystem does.
///
/// # Errors
/// [`RootfsCheckError`] with the path as given.
pub fn check_rootfs(path: &Path) -> CheckResult {
    let io = |source| RootfsCheckError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Err(RootfsCheckError::NotDirectory(path.display().to_string()));
    }
    path.canonicalize().map_err(io)
}

/// Stack of a rootfs check thread, in bytes (it only makes three system calls).
const CHECK_STACK_BYTES: usize = 64 * 1024;

/// The real system.
#[derive(Debug)]
pub struct RealOs {
    /// The loop's poller, for ready pipes.
    pub registry: mio::Registry,
    /// Token of a ready pipe is this plus the start's number.
    pub ready_base: usize,
    /// Wakes the loop when a check finishes.
    pub waker: Arc<Waker>,
    /// Check results, sent by the helper threads.
    pub checks_tx: Sender<(StartId, CheckResult)>,
    /// Check results, read by the loop.
    pub checks_rx: Receiver<(StartId, CheckResult)>,
    /// The log-router link.
    pub router: RouterLink,
    /// The memory monitor actor.
    pub monitor: MonitorHandle,
    /// Canonical base rootfs.
    pub base_rootfs: PathBuf,
    /// The `container-init` binary.
    pub init_path: PathBuf,
}

impl Os for RealOs {
    fn check_rootfs(&mut self, start: StartId, path: PathBuf) {
        let (tx, waker) = (self.checks_tx.clone(), Arc::clone(&self.waker));
        let shown = path.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("rootfs-check".into())
            .stack_size(CHECK_STACK_BYTES)
            .spawn(move || {
                let result = check_rootfs(&path);
                if tx.send((start, result)).is_ok() {
                    let _ = waker.wake();
                }
            });
        if let Err(source) = spawned {
            let path = shown;
            let _ = self
                .checks_tx
                .send((start, Err(RootfsCheckError::Io { path, source })));
            let _ = self.waker.wake();
        }
    }

    fn finished_checks(&mut self) -> Vec<(StartId, CheckResult)> {
        self.checks_rx.try_iter().collect()
    }

    fn remove_logs(&mut self, log: &Path) -> std::io::Result<()> {
        logstore::remove(log)
    }

    fn spawn_init(&mut self, spec: &SpawnSpec) -> Result<InitChild, SpawnError> {
        let init_path = self.init_path.clone();
        clone_now(&SpawnRequest {
            id: &spec.id,
            rootfs: &spec.rootfs,
            base_rootfs: &self.base_rootfs,
            command: &spec.command,
            nice: spec.nice,
            init_path: &init_path,
        })
    }

    fn watch_ready(&mut self, start: StartId, fd: &OwnedFd) -> std::io::Result<()> {
        let token = Token(self.ready_base + start.0 as usize);
        self.registry
            .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
    }

    fn unwatch_ready(&mut self, fd: &OwnedFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
    }

    fn kill(&mut self, pid: i32, signal: Signal) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
    }

    fn reap(&mut self) -> Vec<(i32, InitExit)> {
        let mut out = Vec::new();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return out,
                Ok(status) => {
                    if let (Some(pid), Some(exit)) = (status.pid(), InitExit::from_wait(status)) {
                        out.push((pid.as_raw(), exit));
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!(error = %e, "waitpid failed");
                    return out;
                }
            }
        }
    }

    fn router_pid(&self) -> i32 {
        self.router.pid().as_raw()
    }

    fn router_read(&mut self) -> Inbox {
        self.router.read_messages()
    }

    fn router_add(
        &mut self,
        id: &str,
        log_path: &Path,
        [stdout, stderr]: [BorrowedFd<'_>; 2],
        sinks: &[SinkSpec],
    ) -> Result<(), RouterError> {
        self.router
            .add_container(id, log_path, stdout, stderr, sinks)
    }

    fn router_send(&mut self, msg: &ToRouter) -> Result<(), RouterError> {
        self.router.send_message(msg)
    }

    fn router_restart(&mut self) -> Result<(), RouterError> {
        self.router.respawn()
    }

    fn router_kill(&mut self) {
        self.router.kill();
    }

    fn monitor(&mut self, cmd: MonitorCommand) {
        self.monitor.send(cmd);
    }
}
