//! A minimal `/dev` for the container, Docker's default device list: a tmpfs holding `null`,
//! `zero`, `full`, `random`, `urandom` and `tty`, the usual `/proc/self/fd` symlinks, `ptmx`
//! to `/dev/pts` (a new devpts instance), a `/dev/shm` tmpfs and `/dev/mqueue` (the POSIX
//! message queues of the container's IPC namespace).
//!
//! Confined (the default), the tmpfs is `nodev` and each node is a bind mount of the host's:
//! a node the workload creates with `mknod` (it keeps `CAP_MKNOD`, as in Docker) cannot be
//! opened on this or any other writable mount of the container, which stands in for Docker's
//! device cgroup (`mknod /dev/sda` then `open` fails with `EACCES`). Privileged, the nodes
//! are created with `mknod` (bind-mounted where it is refused) on a tmpfs that allows them.

use crate::mount::{mount_fs, Context, RootfsError};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Character devices: name, major, minor.
const NODES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks: name, target.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Mounts and fills the container's `/dev` at `dev` (a path inside the merged rootfs, before
/// `pivot_root`, so that host nodes can still be bind-mounted). `nodev`: see the module docs.
///
/// # Errors
/// [`RootfsError`] naming the failed step.
pub fn populate(dev: &Path, nodev: bool) -> Result<(), RootfsError> {
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    flags.set(MsFlags::MS_NODEV, nodev);
    mount_fs("tmpfs", dev, 0o755, flags, Some("mode=755,size=65536k"))?;
    for (name, major, minor) in NODES {
        if nodev {
            bind_host_node(&dev.join(name), name)?;
        } else {
            node(&dev.join(name), name, major, minor)?;
        }
    }
    for (name, target) in LINKS {
        std::os::unix::fs::symlink(target, dev.join(name))
            .context(|| format!("symlink /dev/{name}"))?;
    }
    mount_fs(
        "devpts",
        &dev.join("pts"),
        0o755,
        nosuid_noexec,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount_fs(
        "tmpfs",
        &dev.join("shm"),
        0o1777,
        nosuid_noexec | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )?;
    mount_fs(
        "mqueue",
        &dev.join("mqueue"),
        0o1777,
        nosuid_noexec | MsFlags::MS_NODEV,
        None,
    )
}

/// Creates the character device `path` (mode 0666), falling back to a bind mount of the
/// host's `/dev/<name>` when `mknod` is refused.
fn node(path: &Path, name: &str, major: u64, minor: u64) -> Result<(), RootfsError> {
    let mode = Mode::from_bits_truncate(0o666);
    match mknod(path, SFlag::S_IFCHR, mode, makedev(major, minor)) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .context(|| format!("chmod /dev/{name}")),
        Err(nix::Error::EPERM) => bind_host_node(path, name),
        Err(e) => Err(e).context(|| format!("mknod /dev/{name}")),
    }
}

/// Bind-mounts the host's `/dev/<name>` on a new empty file `path` (the bind keeps the host
/// mount's flags, so the node opens even on a `nodev` tmpfs).
fn bind_host_node(path: &Path, name: &str) -> Result<(), RootfsError> {
    std::fs::File::create(path).context(|| format!("create /dev/{name}"))?;
    let host = Path::new("/dev").join(name);
    mount(
        Some(&host),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .context(|| format!("bind {} on /dev/{name}", host.display()))
}
