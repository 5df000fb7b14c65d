//! Starts overlap: many concurrent starts are served together, `ps` is answered while they
//! are in flight, and a start whose rootfs hangs (a FUSE mount that never answers) blocks
//! nobody and is answered with an error once its filesystem goes away.

use harness::{stderr, wait_for, TestSupervisor};
use proto::api::{ContainerState, Request, Response};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// Generous bound for an answer that must not wait on anything slow.
const PROMPT: Duration = Duration::from_secs(5);

fn ps_within(sup: &TestSupervisor, timeout: Duration) -> Option<Vec<proto::api::ContainerInfo>> {
    match sup.request_within(Request::Ps, timeout)? {
        Response::Containers(v) => Some(v),
        other => panic!("unexpected ps answer: {other:?}"),
    }
}

/// Waits up to `timeout` for a CLI child; kills it and panics when it does not end.
fn finish(mut child: Child, timeout: Duration, what: &str) -> Output {
    if wait_for(timeout, || child.try_wait().ok().flatten()).is_none() {
        let _ = child.kill();
        panic!("{what} did not finish within {timeout:?}");
    }
    child.wait_with_output().expect("output")
}

#[test]
fn concurrent_starts_all_succeed_and_ps_is_answered_meanwhile() {
    let sup = TestSupervisor::start();
    const N: usize = 40;
    let children: Vec<Child> = (0..N)
        .map(|i| {
            let id = format!("c{i}");
            let root = sup.rootfs(&id);
            sup.cmd(&["start", &id, root.to_str().unwrap(), "sleep 30"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn engine start")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let asked = Instant::now();
    let ps = ps_within(&sup, PROMPT).expect("ps answered while starts are in flight");
    let took = asked.elapsed();
    assert!(took < PROMPT, "ps took {took:?}");
    assert!(ps.len() <= N);
    for (i, child) in children.into_iter().enumerate() {
        let out = finish(child, Duration::from_secs(60), "engine start");
        assert!(out.status.success(), "start c{i}: {}", stderr(&out));
    }
    let ps = ps_within(&sup, PROMPT).expect("ps");
    assert_eq!(ps.len(), N);
    assert!(
        ps.iter().all(|c| c.state == ContainerState::Running),
        "{ps:?}"
    );
}

/// A FUSE mount whose daemon never answers (not even FUSE_INIT): every access to it waits
/// until the connection is aborted by closing the `/dev/fuse` descriptor.
struct HungMount {
    fd: Option<OwnedFd>,
    dir: std::path::PathBuf,
}

impl HungMount {
    fn new(dir: &Path) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let fd = match nix::fcntl::open(
            "/dev/fuse",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("skipping: cannot open /dev/fuse: {e}");
                return None;
            }
        };
        let data = format!("fd={},rootmode=40000,user_id=0,group_id=0", fd.as_raw_fd());
        let mounted = nix::mount::mount(
            Some("engine-hang"),
            dir,
            Some("fuse"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(data.as_str()),
        );
        if let Err(e) = mounted {
            eprintln!("skipping: cannot mount fuse: {e}");
            return None;
        }
        Some(Self {
            fd: Some(fd),
            dir: dir.to_path_buf(),
        })
    }

    /// Aborts the connection (every waiting request fails) and detaches the mount.
    fn release(&mut self) {
        if self.fd.take().is_some() {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        self.release();
    }
}

#[test]
fn a_start_on_a_hung_filesystem_blocks_nobody() {
    let mut sup = TestSupervisor::start();
    let mnt = sup.dir.path().join("hung");
    let Some(mut mount) = HungMount::new(&mnt) else {
        return;
    };
    // The CLI passes an absolute path as is: only the supervisor touches it.
    let rootfs = mnt.join("rootfs");
    let mut hung = sup
        .cmd(&["start", "hung", rootfs.to_str().unwrap(), "true"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn engine start");
    std::thread::sleep(Duration::from_millis(200));

    let asked = Instant::now();
    let ps = ps_within(&sup, PROMPT).expect("ps answered while a rootfs check hangs");
    assert!(asked.elapsed() < PROMPT);
    let hung_info = ps
        .iter()
        .find(|c| c.id == "hung")
        .expect("the hung start in ps");
    assert_eq!(hung_info.state, ContainerState::Starting, "{ps:?}");

    // Another container starts, runs and ends meanwhile.
    let root = sup.rootfs("ok");
    let run = sup
        .cmd(&["run", "ok", root.to_str().unwrap(), "echo fine"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn engine run");
    let out = finish(
        run,
        Duration::from_secs(20),
        "engine run beside a hung start",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sup.log_bytes("ok"), b"fine\n");

    // Abort the FUSE connection: the hung check fails and the start is answered.
    assert!(
        hung.try_wait().expect("try_wait").is_none(),
        "the start on the hung mount was answered before its filesystem went away"
    );
    mount.release();
    let out = finish(hung, Duration::from_secs(20), "the hung start");
    assert!(!out.status.success(), "a start on a dead mount succeeded");
    let err = stderr(&out);
    assert!(err.contains(rootfs.to_str().unwrap()), "{err}");

    let ps = ps_within(&sup, PROMPT).expect("ps after the hung start");
    assert!(ps.iter().all(|c| c.id != "hung"), "{ps:?}");
    assert!(sup.alive());
    sup.start_container("after", "true");
}
