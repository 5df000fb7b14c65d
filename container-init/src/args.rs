//! Command line of `container-init`, as built by the supervisor's `spawn()`:
//!
//! ```text
//! container-init --id ID --rootfs PATH --base PATH --nice N --ready-fd FD -- PROGRAM [ARGS...]
//! ```
//!
//! Values are raw bytes (`OsString`): paths and arguments need not be UTF-8.

use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitArgs {
    /// Container id; becomes the hostname and `HOSTNAME`.
    pub id: OsString,
    /// Host path of the container's rootfs (upper read-only layer).
    pub rootfs: PathBuf,
    /// Host path of the base rootfs (lower read-only layer); may equal `rootfs`.
    pub base: PathBuf,
    /// Nice value of the workload, -20..=19.
    pub nice: i32,
    /// Inherited write end of the ready pipe: closed empty on success, one line on failure.
    pub ready_fd: RawFd,
    /// The workload's argv; `argv[0]` is looked up in `PATH` when it has no `/`.
    pub argv: Vec<OsString>,
}

/// A malformed command line (only a bug in the caller produces one).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// A required option is absent.
    #[error("missing option {0}")]
    Missing(&'static str),
    /// An option is given without its value.
    #[error("option {0} needs a value")]
    NoValue(String),
    /// An option's value does not parse.
    #[error("bad value {value:?} for {flag}")]
    BadValue {
        /// The option.
        flag: &'static str,
        /// Its value, lossily decoded.
        value: String,
    },
    /// An unknown option.
    #[error("unknown option {0:?}")]
    Unknown(String),
    /// Nothing after `--`.
    #[error("no workload given after --")]
    NoCommand,
}

fn number<T: std::str::FromStr>(flag: &'static str, value: &OsStr) -> Result<T, ArgsError> {
    value
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ArgsError::BadValue {
            flag,
            value: value.to_string_lossy().into_owned(),
        })
}

/// Parses the arguments after the program name.
///
/// # Errors
/// [`ArgsError`] when an option is missing, unknown or malformed, or the workload is empty.
pub fn parse(args: Vec<OsString>) -> Result<InitArgs, ArgsError> {
    let (mut id, mut rootfs, mut base, mut nice, mut ready_fd) = (None, None, None, None, None);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--" {
            break;
        }
        let value = it
            .next()
            .ok_or_else(|| ArgsError::NoValue(flag.to_string_lossy().into_owned()))?;
        match flag.to_str() {
            Some("--id") => id = Some(value),
            Some("--rootfs") => rootfs = Some(PathBuf::from(value)),
            Some("--base") => base = Some(PathBuf::from(value)),
            Some("--nice") => nice = Some(number("--nice", &value)?),
            Some("--ready-fd") => ready_fd = Some(number("--ready-fd", &value)?),
            _ => return Err(ArgsError::Unknown(flag.to_string_lossy().into_owned())),
        }
    }
    let argv: Vec<OsString> = it.collect();
    if argv.is_empty() {
        return Err(ArgsError::NoCommand);
    }
    Ok(InitArgs {
        id: id.ok_or(ArgsError::Missing("--id"))?,
        rootfs: rootfs.ok_or(ArgsError::Missing("--rootfs"))?,
        base: base.ok_or(ArgsError::Missing("--base"))?,
        nice: nice.ok_or(ArgsError::Missing("--nice"))?,
        ready_fd: ready_fd.ok_or(ArgsError::Missing("--ready-fd"))?,
        argv,
    })
}

/// Finds the `--ready-fd` value even in a command line that [`parse`] rejects, so that the
/// error can still be reported to the supervisor.
pub fn find_ready_fd(args: &[OsString]) -> Option<RawFd> {
    let at = args
        .iter()
        .take_while(|a| *a != "--")
        .position(|a| a == "--ready-fd")?;
    number("--ready-fd", args.get(at + 1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_full_command_line() {
        let a = parse(os(&[
            "--id",
            "alpha",
            "--rootfs",
            "/r",
            "--base",
            "/b",
            "--nice",
            "-5",
            "--ready-fd",
            "7",
            "--",
            "/bin/sh",
            "-c",
            "echo --id",
        ]))
        .unwrap();
        assert_eq!(a.id, "alpha");
        assert_eq!(a.rootfs, PathBuf::from("/r"));
        assert_eq!(a.base, PathBuf::from("/b"));
        assert_eq!(a.nice, -5);
        assert_eq!(a.ready_fd, 7);
        assert_eq!(a.argv, os(&["/bin/sh", "-c", "echo --id"]));
    }

    #[test]
    fn rejects_missing_and_bad_values() {
        let base = [
            "--rootfs",
            "/r",
            "--base",
            "/b",
            "--nice",
            "0",
            "--ready-fd",
            "3",
        ];
        let mut v = base.to_vec();
        v.extend(["--", "x"]);
        assert_eq!(parse(os(&v)), Err(ArgsError::Missing("--id")));
        let mut v = vec!["--id", "a"];
        v.extend(base);
        assert_eq!(parse(os(&v)), Err(ArgsError::NoCommand));
        v.extend(["--", "x"]);
        v[7] = "nice";
        assert!(matches!(
            parse(os(&v)),
            Err(ArgsError::BadValue { flag: "--nice", .. })
        ));
        assert!(matches!(
            parse(os(&["--what", "x"])),
            Err(ArgsError::Unknown(_))
        ));
        assert!(matches!(parse(os(&["--id"])), Err(ArgsError::NoValue(_))));
    }

    #[test]
    fn finds_ready_fd_in_bad_command_lines() {
        assert_eq!(find_ready_fd(&os(&["--bogus", "--ready-fd", "9"])), Some(9));
        assert_eq!(find_ready_fd(&os(&["--", "--ready-fd", "9"])), None);
        assert_eq!(find_ready_fd(&os(&["--ready-fd"])), None);
    }
}
