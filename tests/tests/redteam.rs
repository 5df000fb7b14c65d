//! Red team: from inside a container, `probe escape` tries the ways out that Docker's defaults
//! close (mounts, the host's disk, `/proc` writes and leaks, privileged system calls, the
//! host's IPC and keyrings, new user namespaces, `/dev/kmsg`, a descriptor the supervisor
//! leaked, ptrace of container-init) and these tests assert that each one fails, and how
//! (the errno Docker gives). `docs/security.md` has the same list with sources.
//!
//! The privileged run (`container-init --privileged`, started directly since the CLI has no
//! flag for it yet) shows what the defaults close: there the same attacks work.

use harness::{base_rootfs, bin_dir, stderr, TestSupervisor};
use proto::init::InitArgs;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// `CapEff` of a Docker container with the default capabilities.
const DOCKER_CAP_EFF: &str = "00000000a80425fb";

/// Where the test supervisor gets the leaked directory descriptor.
const LEAKED_FD: i32 = 57;

/// Every attack `probe escape` reports, in its order.
const ATTACKS: [&str; 29] = [
    "mount_proc",
    "mount_tmpfs",
    "mount_sysfs",
    "mount_cgroup",
    "mknod_disk",
    "read_disk",
    "mount_disk",
    "write_proc_sys",
    "open_sysrq_trigger",
    "read_kcore",
    "read_keys",
    "read_timer_list",
    "adjtimex_set",
    "reboot",
    "init_module",
    "bpf",
    "keyctl",
    "io_uring",
    "shm_host",
    "unshare_user_mnt",
    "open_kmsg",
    "mknod_kmsg",
    "open_mknod_kmsg",
    "open_by_handle_at",
    "ptrace_init",
    "fds_self",
    "fds_init",
    "open_init_fd",
    "cap_eff",
];

/// What a default container must get for each attack: any of the listed results. A missing
/// file (`ENOENT`) counts for paths this kernel may not have (`/proc/kcore` without
/// `CONFIG_PROC_KCORE`, `/proc/sysrq-trigger` without `CONFIG_MAGIC_SYSRQ`).
const EXPECTED: [(&str, &[&str]); 27] = [
    ("mount_proc", &["EPERM"]),
    ("mount_tmpfs", &["EPERM"]),
    ("mount_sysfs", &["EPERM"]),
    ("mount_cgroup", &["EPERM"]),
    // mknod itself is allowed (CAP_MKNOD is a Docker default); the node cannot be used.
    ("read_disk", &["EACCES"]),
    ("mount_disk", &["EPERM"]),
    ("write_proc_sys", &["EROFS"]),
    ("open_sysrq_trigger", &["EROFS", "ENOENT"]),
    ("read_kcore", &["read=0", "ENOENT"]),
    ("read_keys", &["read=0", "ENOENT"]),
    ("read_timer_list", &["read=0", "ENOENT"]),
    ("adjtimex_set", &["EPERM"]),
    ("reboot", &["EPERM"]),
    ("init_module", &["EPERM"]),
    ("bpf", &["EPERM"]),
    ("keyctl", &["EPERM"]),
    ("io_uring", &["EPERM"]),
    // The host's segment does not exist in the container's IPC namespace.
    ("shm_host", &["EINVAL"]),
    ("unshare_user_mnt", &["EPERM"]),
    ("open_kmsg", &["ENOENT"]),
    ("open_mknod_kmsg", &["EACCES"]),
    ("open_by_handle_at", &["EPERM"]),
    ("ptrace_init", &["EPERM"]),
    ("fds_self", &["none"]),
    ("fds_init", &["none"]),
    ("open_init_fd", &["EACCES"]),
    ("cap_eff", &[DOCKER_CAP_EFF]),
];

/// `(major, minor)` of the host's root filesystem device.
fn root_disk() -> (u32, u32) {
    let dev = nix::sys::stat::stat("/").expect("stat /").st_dev;
    (libc::major(dev), libc::minor(dev))
}

/// A SysV shared memory segment of the host, removed on drop.
struct HostShm(i32);

impl HostShm {
    fn new() -> Self {
        // SAFETY: shmget(2) with integer arguments; creates a private 4 KiB segment.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        // The premise: the host itself can attach it by id.
        // SAFETY: attaches read-only at an address the kernel picks, then detaches.
        unsafe {
            let at = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
            assert_ne!(at as isize, -1, "host shmat");
            libc::shmdt(at);
        }
        Self(id)
    }
}

impl Drop for HostShm {
    fn drop(&mut self) {
        // SAFETY: removes our own segment; no memory is passed.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// argv of `probe escape` for this host.
fn escape_argv(shm: &HostShm) -> Vec<String> {
    let (major, minor) = root_disk();
    ["probe", "escape"]
        .iter()
        .map(|s| s.to_string())
        .chain([major.to_string(), minor.to_string(), shm.0.to_string()])
        .collect()
}

/// `attack -> result` from the probe's output; every attack must be there.
fn results(output: &str) -> BTreeMap<String, String> {
    let map: BTreeMap<String, String> = output
        .lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("escape ")?.splitn(2, ' ');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    for attack in ATTACKS {
        assert!(
            map.contains_key(attack),
            "no result for {attack}:\n{output}"
        );
    }
    map
}

fn assert_contained(r: &BTreeMap<String, String>, context: &str) {
    let failures: Vec<String> = EXPECTED
        .iter()
        .filter(|(attack, ok)| !ok.contains(&r[*attack].as_str()))
        .map(|(attack, ok)| format!("{attack}: got {}, want one of {ok:?}", r[*attack]))
        .collect();
    assert!(failures.is_empty(), "{context}:\n{}", failures.join("\n"));
}

#[test]
fn every_attack_fails_in_a_default_container() {
    let host_dir = tempfile::tempdir().expect("host dir");
    let leaked = std::fs::File::open(host_dir.path()).expect("open host dir");
    let sup = TestSupervisor::start_inheriting(&leaked, LEAKED_FD);
    // The premise: the supervisor holds the leaked descriptor, open across exec.
    let held = std::fs::read_link(format!("/proc/{}/fd/{LEAKED_FD}", sup.pid()));
    assert_eq!(held.ok().as_deref(), Some(host_dir.path()));
    let shm = HostShm::new();

    let argv = escape_argv(&shm);
    let root = sup.rootfs("redteam");
    let mut args = vec!["run", "redteam", root.to_str().unwrap(), "--"];
    args.extend(argv.iter().map(String::as_str));
    let out = sup.engine(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = String::from_utf8_lossy(&sup.log_bytes("redteam")).into_owned();
    let r = results(&log);
    assert_contained(&r, "default container");
    let host = host_dir.path().to_string_lossy().into_owned();
    assert!(
        !log.contains(&host),
        "the leaked host directory is reachable:\n{log}"
    );
}

/// Runs `probe escape` under `container-init` started directly in new PID, mount, UTS and
/// IPC namespaces (as the supervisor clones it), with or without `--privileged`.
fn escape_directly(privileged: bool, shm: &HostShm) -> BTreeMap<String, String> {
    let rootfs = tempfile::tempdir().expect("rootfs layer");
    let (ready_r, ready_w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    let args = InitArgs {
        id: "direct".into(),
        rootfs: rootfs.path().to_path_buf(),
        base: base_rootfs(),
        nice: 0,
        ready_fd: 3,
        privileged,
        argv: escape_argv(shm).into_iter().map(Into::into).collect(),
    };
    let raw_w = ready_w.as_raw_fd();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount", "--uts", "--ipc", "--"])
        .arg(bin_dir().join("container-init"))
        .args(args.to_args())
        .stdin(Stdio::null());
    // SAFETY: dup2(2) between fork and exec puts the ready pipe at 3, without close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw_w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run unshare container-init");
    drop((ready_w, ready_r));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "container-init (privileged: {privileged}) failed: {}\n{stdout}",
        stderr(&out)
    );
    results(&stdout)
}

#[test]
fn privileged_opens_what_the_defaults_close() {
    assert!(Path::new(&bin_dir().join("container-init")).exists());
    let shm = HostShm::new();
    let default = escape_directly(false, &shm);
    let privileged = escape_directly(true, &shm);
    for attack in ATTACKS {
        eprintln!(
            "{attack:20} default: {:28} privileged: {}",
            default[attack], privileged[attack]
        );
    }
    assert_contained(&default, "default container-init");
    // What --privileged opens, as with `docker run --privileged`.
    assert_eq!(privileged["mount_tmpfs"], "ok");
    assert_eq!(privileged["mount_proc"], "ok");
    assert_ne!(privileged["cap_eff"], DOCKER_CAP_EFF);
    assert_eq!(privileged["open_mknod_kmsg"], "ok");
    assert_eq!(privileged["open_init_fd"], "ok");
    assert_eq!(privileged["write_proc_sys"], "ok");
    assert_eq!(privileged["bpf"], "ok");
    assert_eq!(privileged["io_uring"], "ok");
    assert_eq!(privileged["unshare_user_mnt"], "ok");
    assert_eq!(privileged["ptrace_init"], "ok");
    // Namespaces stay: the host's IPC objects are out of reach even so.
    assert_eq!(privileged["shm_host"], "EINVAL");
}
