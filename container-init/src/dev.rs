//! A minimal `/dev` for the container: a tmpfs holding `null`, `zero`, `full`, `random`,
//! `urandom` and `tty` (created with `mknod`, or bind-mounted from the host where `mknod` is
//! not permitted), the usual `/proc/self/fd` symlinks, `/dev/pts` (a new devpts instance)
//! and a `/dev/shm` tmpfs.

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
/// `pivot_root`, so that host nodes can still be bind-mounted).
///
/// # Errors
/// [`RootfsError`] naming the failed step.
pub fn populate(dev: &Path) -> Result<(), RootfsError> {
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount_fs(
        "tmpfs",
        dev,
        0o755,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in NODES {
        node(&dev.join(name), name, major, minor)?;
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
    )
}

/// Creates the character device `path` (mode 0666), falling back to a bind mount of the
/// host's `/dev/<name>` when `mknod` is refused.
fn node(path: &Path, name: &str, major: u64, minor: u64) -> Result<(), RootfsError> {
    let mode = Mode::from_bits_truncate(0o666);
    match mknod(path, SFlag::S_IFCHR, mode, makedev(major, minor)) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .context(|| format!("chmod /dev/{name}")),
        Err(nix::Error::EPERM) => {
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
        Err(e) => Err(e).context(|| format!("mknod /dev/{name}")),
    }
}
