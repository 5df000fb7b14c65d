//! Mount helpers shared by the rootfs and `/dev` set-up: the step error [`RootfsError`], the
//! `Context` that names a failed step, `mount_fs` and `ensure_dir`.

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::mkdir;
use std::path::Path;

/// A step of the rootfs setup failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct RootfsError {
    /// What was being done, with the paths involved.
    pub what: String,
    /// The errno.
    #[source]
    pub source: nix::Error,
}

/// Attaches a description to a failed system call.
pub(crate) trait Context<T> {
    /// Wraps the error with `what()`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RootfsError>;
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RootfsError> {
        self.map_err(|source| RootfsError {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RootfsError> {
        self.map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            .context(what)
    }
}

/// Mounts a fresh filesystem of type `fstype` (source name = type) at `target`, creating
/// the directory `target` with `dir_mode` first if it is missing.
pub(crate) fn mount_fs(
    fstype: &str,
    target: &Path,
    dir_mode: u32,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    ensure_dir(target, dir_mode)?;
    mount(Some(fstype), target, Some(fstype), flags, data)
        .context(|| format!("mount {fstype} on {}", target.display()))
}

/// Creates directory `path` with `mode` unless it already exists.
pub(crate) fn ensure_dir(path: &Path, mode: u32) -> Result<(), RootfsError> {
    match mkdir(path, Mode::from_bits_truncate(mode)) {
        Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
        Err(e) => Err(e).context(|| format!("mkdir {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_dir_creates_once_and_names_failures() {
        let dir = std::env::temp_dir().join(format!("init-mount-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_dir(&dir, 0o700).unwrap();
        ensure_dir(&dir, 0o700).unwrap();
        assert!(dir.is_dir());
        let err = ensure_dir(&dir.join("no/such"), 0o700).unwrap_err();
        assert_eq!(err.source, nix::Error::ENOENT);
        assert!(err.what.starts_with("mkdir "), "{}", err.what);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let io: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::EACCES));
        let err = io.context(|| "open x".into()).unwrap_err();
        assert_eq!(err.source, nix::Error::EACCES);
        assert_eq!(err.to_string(), "open x: EACCES: Permission denied");
    }
}
