//! The command line of `container-init` ([`proto::init::args`]) as NUL-terminated buffers,
//! prepared in full before `clone()` (the child may not allocate).
//!
//! `Command::Shell(s)` becomes `/bin/sh -c s`; `Command::Argv(v)` is passed as given.

use super::request::{SpawnError, SpawnRequest};
use proto::api::Command;
use proto::init::InitArgs;
use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// A NUL-terminated argv (or envp) whose pointers stay valid as long as it lives.
#[derive(Debug)]
pub struct CArgv {
    strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl CArgv {
    /// Builds the vector from byte strings.
    ///
    /// # Errors
    /// [`SpawnError::Sys`] with `EINVAL` when one contains a NUL byte.
    pub fn new<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, SpawnError> {
        let strings = items
            .into_iter()
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| SpawnError::Sys {
                what: "argument or path with a NUL byte",
                source: nix::Error::EINVAL,
            })?;
        let mut pointers: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Ok(Self { strings, pointers })
    }

    /// The NULL-terminated pointer array, for `execve`.
    pub fn as_ptr(&self) -> *const *const libc::c_char {
        self.pointers.as_ptr()
    }

    /// The strings, without the terminating NULL.
    pub fn strings(&self) -> &[CString] {
        &self.strings
    }
}

/// The workload's argv: `Command::Shell(s)` is `/bin/sh -c s`, `Command::Argv(v)` is `v`.
pub fn workload_argv(command: &Command) -> Vec<OsString> {
    match command {
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.into()],
        Command::Argv(v) => v.iter().map(OsString::from).collect(),
    }
}

/// The full argv of `container-init` for `req` (its path, then [`InitArgs::to_args`]), with
/// the ready pipe's write end `ready_fd`.
///
/// # Errors
/// [`SpawnError::Sys`] with `EINVAL` when a value contains a NUL byte.
pub fn build(req: &SpawnRequest<'_>, ready_fd: RawFd) -> Result<CArgv, SpawnError> {
    let args = InitArgs {
        id: req.id.into(),
        rootfs: req.rootfs.to_path_buf(),
        base: req.base_rootfs.to_path_buf(),
        nice: req.nice,
        ready_fd,
        privileged: false,
        argv: workload_argv(req.command),
    }
    .to_args();
    let program = req.init_path.as_os_str();
    CArgv::new(
        std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(OsStrExt::as_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn req(command: &Command) -> SpawnRequest<'_> {
        SpawnRequest {
            id: "alpha",
            rootfs: Path::new("/r"),
            base_rootfs: Path::new("/b"),
            command,
            nice: -3,
            init_path: Path::new("/x/container-init"),
        }
    }

    fn strings(a: &CArgv) -> Vec<&str> {
        a.strings().iter().map(|s| s.to_str().unwrap()).collect()
    }

    /// What container-init parses from the built argv (after its program name).
    fn parsed(a: &CArgv) -> InitArgs {
        let after_program = a.strings()[1..]
            .iter()
            .map(|s| OsString::from(std::ffi::OsStr::from_bytes(s.as_bytes())))
            .collect();
        InitArgs::parse(after_program).unwrap()
    }

    #[test]
    fn shell_command_runs_under_sh() {
        let cmd = Command::Shell("echo hi; exit 3".into());
        let a = build(&req(&cmd), 9).unwrap();
        assert_eq!(strings(&a)[0], "/x/container-init");
        assert_eq!(parsed(&a).argv, ["/bin/sh", "-c", "echo hi; exit 3"]);
        // SAFETY: the array has len + 1 entries; the last must be NULL.
        assert!(unsafe { *a.as_ptr().add(a.strings().len()) }.is_null());
    }

    #[test]
    fn container_init_parses_what_is_built() {
        let cmd = Command::Argv(vec!["probe".into(), "--id".into(), "é".into()]);
        let p = parsed(&build(&req(&cmd), 5).unwrap());
        assert_eq!(p.id, "alpha");
        assert_eq!(p.rootfs, Path::new("/r"));
        assert_eq!(p.base, Path::new("/b"));
        assert_eq!((p.nice, p.ready_fd), (-3, 5));
        assert_eq!(p.argv, ["probe", "--id", "é"]);
    }

    #[test]
    fn argv_is_passed_as_given_and_nul_is_rejected() {
        let cmd = Command::Argv(vec!["probe".into(), "--".into()]);
        let a = build(&req(&cmd), 4).unwrap();
        assert_eq!(parsed(&a).argv, ["probe", "--"]);
        let bad = Command::Argv(vec!["a\0b".into()]);
        assert!(matches!(
            build(&req(&bad), 4),
            Err(SpawnError::Sys {
                source: nix::Error::EINVAL,
                ..
            })
        ));
    }
}
