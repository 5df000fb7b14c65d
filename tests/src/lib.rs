//! Test harness for the integration tests: starts a real `engine supervisor` in a scratch
//! directory (its own socket, state dir and log-router), runs the real `engine` CLI against
//! it, and speaks the raw protocol for malformed-input tests.
//!
//! Binaries come from `ENGINE_BIN_DIR` (default `<workspace>/target/release`), the base
//! rootfs from `ENGINE_TEST_ROOTFS` (default `<workspace>/target/rootfs`, built by
//! `make rootfs`). Tests need root.

pub mod plugins;

use proto::api::{ContainerInfo, Request, RequestFrame, Response};
use proto::frame;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Directory of the built binaries.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("ENGINE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release"))
}

/// Path of the `engine` binary.
pub fn engine_bin() -> PathBuf {
    bin_dir().join("engine")
}

/// The base rootfs used by test supervisors.
pub fn base_rootfs() -> PathBuf {
    std::env::var_os("ENGINE_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/rootfs"))
}

/// Polls `f` every 20 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running supervisor in a scratch directory; stopped (SIGTERM) when dropped.
pub struct TestSupervisor {
    /// The supervisor process.
    pub child: Option<Child>,
    /// Scratch directory holding socket, state and container rootfs layers.
    pub dir: tempfile::TempDir,
    /// Socket path.
    pub socket: PathBuf,
    /// State directory.
    pub state_dir: PathBuf,
    /// Where the supervisor's stderr goes.
    pub log: PathBuf,
}

impl TestSupervisor {
    /// Starts a supervisor on the test base rootfs with the userspace monitor.
    pub fn start() -> Self {
        Self::start_with(&["--monitor", "userspace"])
    }

    /// Starts a supervisor with extra arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_leaking(extra, None)
    }

    /// Starts a supervisor (with the userspace monitor) that inherits `fd` as descriptor
    /// number `at`, open across `exec` as a careless parent would leave it.
    pub fn start_inheriting(fd: &impl AsRawFd, at: RawFd) -> Self {
        Self::start_leaking(&["--monitor", "userspace"], Some((fd.as_raw_fd(), at)))
    }

    fn start_leaking(extra: &[&str], leak: Option<(RawFd, RawFd)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("engine-test-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("engine.sock");
        let state_dir = dir.path().join("state");
        let log = dir.path().join("supervisor.log");
        let child = Self::spawn(&socket, &state_dir, &log, extra, leak);
        let s = Self {
            child: Some(child),
            dir,
            socket,
            state_dir,
            log,
        };
        let up = wait_for(Duration::from_secs(20), || {
            UnixStream::connect(&s.socket).ok().map(|_| ())
        });
        assert!(
            up.is_some(),
            "supervisor did not come up:\n{}",
            s.log_text()
        );
        s
    }

    fn spawn(
        socket: &Path,
        state_dir: &Path,
        log: &Path,
        extra: &[&str],
        leak: Option<(RawFd, RawFd)>,
    ) -> Child {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(engine_bin());
        if let Some((fd, at)) = leak {
            // SAFETY: dup2(2) between fork and exec; the copy it makes has no close-on-exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(fd, at) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.arg("supervisor")
            .arg(base_rootfs())
            .arg("--socket")
            .arg(socket)
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .env("ENGINE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup"))
            .stderr(log_file)
            .spawn()
            .expect("spawn supervisor")
    }

    /// The supervisor's own log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Host PID of the supervisor.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// A fresh, empty container rootfs layer named `name` (stacked over the base rootfs).
    pub fn rootfs(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("rootfs").join(name);
        std::fs::create_dir_all(&p).expect("rootfs dir");
        p
    }

    /// A `Command` for the `engine` CLI bound to this supervisor.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(engine_bin());
        c.args(args).env("ENGINE_SOCKET", &self.socket);
        c
    }

    /// Runs the CLI and collects its output.
    pub fn engine(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run engine")
    }

    /// `engine start <id> <fresh rootfs> <command>`; panics on failure.
    pub fn start_container(&self, id: &str, command: &str) -> Output {
        let rootfs = self.rootfs(id);
        let out = self.engine(&["start", id, rootfs.to_str().unwrap(), command]);
        assert!(out.status.success(), "start {id} failed: {}", stderr(&out));
        out
    }

    /// `engine run <id> <fresh rootfs> <command> [extra...]`.
    pub fn run_container(&self, id: &str, command: &str, extra: &[&str]) -> Output {
        let rootfs = self.rootfs(id);
        let mut args = vec!["run", id, rootfs.to_str().unwrap(), command];
        args.extend_from_slice(extra);
        self.engine(&args)
    }

    /// One request over a fresh connection, through the real frame codec.
    pub fn request(&self, request: Request) -> Response {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        frame::write_frame(&mut s, &RequestFrame::new(request)).expect("send");
        frame::read_frame(&mut s).expect("read").expect("an answer")
    }

    /// One request over a fresh connection; `None` when no answer came within `timeout` (a
    /// supervisor that does not answer must fail a test, not hang it).
    pub fn request_within(&self, request: Request, timeout: Duration) -> Option<Response> {
        let mut s = UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.set_write_timeout(Some(timeout)).ok()?;
        frame::write_frame(&mut s, &RequestFrame::new(request)).ok()?;
        frame::read_frame(&mut s).ok().flatten()
    }

    /// Sends raw bytes, returns the answer (if any) and whether the supervisor then closed the
    /// connection.
    pub fn raw(&self, bytes: &[u8]) -> (Option<Response>, bool) {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(bytes);
        let resp = frame::read_frame::<_, Response>(&mut s).ok().flatten();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut rest = [0u8; 1];
        let closed = matches!(s.read(&mut rest), Ok(0) | Err(_));
        (resp, closed)
    }

    /// `ps` as records.
    pub fn ps(&self) -> Vec<ContainerInfo> {
        match self.request(Request::Ps) {
            Response::Containers(v) => v,
            other => panic!("unexpected ps answer: {other:?}"),
        }
    }

    /// One container's record.
    pub fn info(&self, id: &str) -> ContainerInfo {
        match self.request(Request::Inspect { id: id.into() }) {
            Response::Container(c) => c,
            other => panic!("unexpected inspect answer: {other:?}"),
        }
    }

    /// Blocks until the container has ended; returns its final record.
    pub fn wait(&self, id: &str) -> ContainerInfo {
        match self.request(Request::Wait { id: id.into() }) {
            Response::Container(c) => c,
            other => panic!("unexpected wait answer: {other:?}"),
        }
    }

    /// The container's log file, as bytes.
    pub fn log_bytes(&self, id: &str) -> Vec<u8> {
        std::fs::read(self.state_dir.join("logs").join(format!("{id}.log"))).unwrap_or_default()
    }

    /// Host PID of the supervisor's current log-router (a child named `log-router`), if any.
    pub fn router_pid(&self) -> Option<i32> {
        children_of(self.pid())
            .into_iter()
            .map(|(p, _)| p)
            .find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "log-router")
            })
    }

    /// Whether the supervisor process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends `sig` to the supervisor and waits (up to `timeout`) for it to exit.
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's PID; no memory is involved.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = wait_for(timeout, || child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }
}

impl Drop for TestSupervisor {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
        }
    }
}

/// Lossy stderr text of a CLI run.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lossy stdout text of a CLI run.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes on the host whose parent is `ppid`, with their state letter (`/proc/<pid>/stat`).
pub fn children_of(ppid: i32) -> Vec<(i32, char)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The comm field may hold spaces; fields after the last ')' are fixed.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|s| s.parse::<i32>().ok()) == Some(ppid) {
            v.push((pid, state));
        }
    }
    v
}
