//! The container's root filesystem, built inside the new mount namespace:
//!
//! 1. every mount becomes private (nothing propagates back to the host);
//! 2. a scratch tmpfs (mounted over `/tmp` of this namespace only) holds the overlay's
//!    `upper`, `work` and the merged mountpoint `root`, so writes are discarded at exit;
//! 3. overlay `lowerdir=<rootfs>:<base>` (a single lower when both are the same directory);
//!    the lower layers are opened first and named `/proc/self/fd/N`, so any host path works
//!    (even under `/tmp`, or containing `,` or `:`);
//! 4. `/proc` (of the new PID namespace), a minimal `/dev` (see [`crate::dev`]) and a `/tmp`
//!    tmpfs inside the merged tree;
//! 5. unless privileged, Docker's masked and read-only `/proc` paths ([`crate::masks`]);
//! 6. `pivot_root(".", ".")` then a lazy unmount of the old root, `chdir("/")`.
//!
//! Unless privileged, every writable mount of the container (the overlay, `/tmp`, `/dev`) is
//! `nodev`, so a device node made with `mknod` cannot be opened (see [`crate::dev`]).

use crate::mount::{ensure_dir, mount_fs, Context, RootfsError};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{chdir, pivot_root};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the scratch tmpfs is mounted (in the container's mount namespace only).
const SCRATCH: &str = "/tmp";
/// The merged overlay, the future `/`.
const MERGED: &str = "/tmp/root";

fn open_layer(role: &str, path: &Path) -> Result<OwnedFd, RootfsError> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("open {role} {}", path.display()))
}

/// The overlay `lowerdir` option for the two opened layers: top first, one entry if both are
/// the same directory.
fn lowerdir(top: &OwnedFd, base: &OwnedFd) -> Result<String, RootfsError> {
    let id = |fd: &OwnedFd| fstat(fd).map(|s| (s.st_dev, s.st_ino));
    let same =
        id(top).context(|| "fstat rootfs".into())? == id(base).context(|| "fstat base".into())?;
    let name = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(if same {
        name(top)
    } else {
        format!("{}:{}", name(top), name(base))
    })
}

/// Builds the container's root filesystem from `rootfs` over `base` and makes it `/`;
/// `privileged` leaves out the masked and read-only paths and `nodev`.
///
/// # Errors
/// [`RootfsError`] naming the failed step, e.g. `open rootfs /x: ENOENT: No such file or
/// directory`.
pub fn enter(rootfs: &Path, base: &Path, privileged: bool) -> Result<(), RootfsError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context(|| "make / private".into())?;
    let top = open_layer("rootfs", rootfs)?;
    let bottom = open_layer("base rootfs", base)?;
    let lower = lowerdir(&top, &bottom)?;

    let scratch = Path::new(SCRATCH);
    mount_fs(
        "tmpfs",
        scratch,
        0o1777,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )?;
    for (dir, mode) in [("upper", 0o755), ("work", 0o700), ("root", 0o755)] {
        ensure_dir(&scratch.join(dir), mode)?;
    }
    let data = format!("lowerdir={lower},upperdir={SCRATCH}/upper,workdir={SCRATCH}/work");
    let nodev = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_NODEV
    };
    mount(
        Some("overlay"),
        MERGED,
        Some("overlay"),
        nodev,
        Some(data.as_str()),
    )
    .context(|| {
        format!(
            "mount overlay of rootfs {} over base {}",
            rootfs.display(),
            base.display()
        )
    })?;
    drop((top, bottom));

    let merged = PathBuf::from(MERGED);
    mount_inner(&merged, privileged)?;
    if !privileged {
        crate::masks::apply(&merged)?;
    }
    switch_root(&merged)
}

/// Mounts `/proc`, `/dev` and `/tmp` inside the merged tree at `root`.
fn mount_inner(root: &Path, privileged: bool) -> Result<(), RootfsError> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_fs(
        "proc",
        &root.join("proc"),
        0o555,
        nosuid_nodev | MsFlags::MS_NOEXEC,
        None,
    )?;
    crate::dev::populate(&root.join("dev"), !privileged)?;
    mount_fs(
        "tmpfs",
        &root.join("tmp"),
        0o1777,
        nosuid_nodev,
        Some("mode=1777"),
    )
}

/// Makes `root` the root of this mount namespace and detaches the old root.
fn switch_root(root: &Path) -> Result<(), RootfsError> {
    chdir(root).context(|| format!("chdir {}", root.display()))?;
    pivot_root(".", ".").context(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).context(|| "detach old root".into())?;
    chdir("/").context(|| "chdir /".into())
}
