//! Masked and read-only paths of the container's `/proc`, as Docker and runc set them by
//! default (moby `oci/defaults.go`, `DefaultLinuxSpec`: `MaskedPaths` and `ReadonlyPaths`;
//! runc `libcontainer/rootfs_linux.go`, `maskPath` and `readonlyPath`).
//!
//! - A masked file gets `/dev/null` bound over it (reads are empty, writes vanish); a masked
//!   directory gets an empty read-only tmpfs. A path the kernel does not have is skipped.
//! - A read-only path is bound onto itself and the bind remounted read-only (writes fail with
//!   `EROFS`).
//!
//! Applied inside the merged rootfs before `pivot_root`, once `/proc` and `/dev` are mounted.
//! `/sys` is not mounted in the container, so Docker's two `/sys` entries have nothing to
//! mask; they are listed for when it is.

use crate::mount::{Context, RootfsError};
use nix::mount::{mount, MsFlags};
use std::path::Path;

/// Docker's masked paths (moby `oci/defaults.go`).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths (moby `oci/defaults.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `path` (absolute in the container) under `root`.
fn under(root: &Path, path: &str) -> std::path::PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Masks and write-protects [`MASKED_PATHS`] and [`READONLY_PATHS`] under `root` (the merged
/// rootfs, whose `/dev/null` must exist).
///
/// # Errors
/// [`RootfsError`] naming the path whose mount failed.
pub fn apply(root: &Path) -> Result<(), RootfsError> {
    let null = under(root, "/dev/null");
    for path in MASKED_PATHS {
        mask(&null, &under(root, path), path)?;
    }
    for path in READONLY_PATHS {
        read_only(&under(root, path), path)?;
    }
    Ok(())
}

/// Binds `null` over the file `target`, or an empty read-only tmpfs over the directory.
fn mask(null: &Path, target: &Path, name: &str) -> Result<(), RootfsError> {
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Ok(()); // not on this kernel (or /sys not mounted)
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=0555"),
        )
        .context(|| format!("mask {name} with a read-only tmpfs"))
    } else {
        mount(
            Some(null),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| format!("mask {name} with /dev/null"))
    }
}

/// Binds `target` onto itself and remounts the bind read-only, keeping `/proc`'s
/// `nosuid,nodev,noexec`.
fn read_only(target: &Path, name: &str) -> Result<(), RootfsError> {
    if std::fs::symlink_metadata(target).is_err() {
        return Ok(());
    }
    mount(
        Some(target),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| format!("bind {name} for read-only"))?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .context(|| format!("remount {name} read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_dockers_defaults() {
        // moby oci/defaults.go: 12 masked, 5 read-only, all under /proc or /sys, no overlap.
        assert!(MASKED_PATHS
            .iter()
            .chain(READONLY_PATHS.iter())
            .all(|p| p.starts_with("/proc/") || p.starts_with("/sys/")));
        assert!(MASKED_PATHS.iter().all(|p| !READONLY_PATHS.contains(p)));
        assert!(MASKED_PATHS.contains(&"/proc/kcore") && READONLY_PATHS.contains(&"/proc/sys"));
    }

    #[test]
    fn paths_land_under_the_root() {
        assert_eq!(
            under(Path::new("/tmp/root"), "/proc/kcore"),
            Path::new("/tmp/root/proc/kcore")
        );
    }
}
