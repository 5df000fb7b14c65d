//! Command line of `container-init`, built by the supervisor ([`InitArgs::to_args`]) and
//! parsed by `container-init` ([`InitArgs::parse`]):
//!
//! ```text
//! container-init --id ID --rootfs PATH --base PATH --nice N --ready-fd FD [--privileged] -- PROGRAM [ARGS...]
//! ```
//!
//! `--privileged` is a switch (no value), written only when set, so a command line without it
//! means what it meant before the switch existed.
//!
//! Values are raw bytes (`OsString`): paths and arguments need not be UTF-8. Everything after
//! the first `--` is the workload's argv, taken as is (it may itself contain `--`).

use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// Option names, in the order [`InitArgs::to_args`] writes them.
const ID: &str = "--id";
const ROOTFS: &str = "--rootfs";
const BASE: &str = "--base";
const NICE: &str = "--nice";
const READY_FD: &str = "--ready-fd";
/// The switch that turns the default confinement off (see [`InitArgs::privileged`]).
const PRIVILEGED: &str = "--privileged";
/// Ends the options; the workload's argv follows.
const END: &str = "--";

/// The parameters of one `container-init` run.
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
    /// Inherited write end of the ready pipe (see [`super::report`]).
    pub ready_fd: RawFd,
    /// Run without the default confinement, as `docker run --privileged`: no masked or
    /// read-only `/proc` paths, every capability, no seccomp filter, device nodes usable on
    /// every mount. The namespaces and the closing of inherited descriptors stay.
    pub privileged: bool,
    /// The workload's argv, not empty; `argv[0]` is looked up in `PATH` when it has no `/`.
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

impl InitArgs {
    /// The arguments after the program name, as the supervisor execs them: every option, `--`,
    /// then [`InitArgs::argv`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec![
            ID.into(),
            self.id.clone(),
            ROOTFS.into(),
            self.rootfs.clone().into_os_string(),
            BASE.into(),
            self.base.clone().into_os_string(),
            NICE.into(),
            self.nice.to_string().into(),
            READY_FD.into(),
            self.ready_fd.to_string().into(),
        ];
        if self.privileged {
            out.push(PRIVILEGED.into());
        }
        out.push(END.into());
        out.extend(self.argv.iter().cloned());
        out
    }

    /// Parses the arguments after the program name.
    ///
    /// # Errors
    /// [`ArgsError`] when an option is missing, unknown or malformed, or the workload is empty.
    pub fn parse(args: Vec<OsString>) -> Result<Self, ArgsError> {
        let (mut id, mut rootfs, mut base, mut nice, mut ready_fd) = (None, None, None, None, None);
        let mut privileged = false;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            if flag == END {
                break;
            }
            if flag == PRIVILEGED {
                privileged = true;
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| ArgsError::NoValue(flag.to_string_lossy().into_owned()))?;
            match flag.to_str() {
                Some(ID) => id = Some(value),
                Some(ROOTFS) => rootfs = Some(PathBuf::from(value)),
                Some(BASE) => base = Some(PathBuf::from(value)),
                Some(NICE) => nice = Some(number(NICE, &value)?),
                Some(READY_FD) => ready_fd = Some(number(READY_FD, &value)?),
                _ => return Err(ArgsError::Unknown(flag.to_string_lossy().into_owned())),
            }
        }
        let argv: Vec<OsString> = it.collect();
        if argv.is_empty() {
            return Err(ArgsError::NoCommand);
        }
        Ok(Self {
            id: id.ok_or(ArgsError::Missing(ID))?,
            rootfs: rootfs.ok_or(ArgsError::Missing(ROOTFS))?,
            base: base.ok_or(ArgsError::Missing(BASE))?,
            nice: nice.ok_or(ArgsError::Missing(NICE))?,
            ready_fd: ready_fd.ok_or(ArgsError::Missing(READY_FD))?,
            privileged,
            argv,
        })
    }
}

/// Finds the `--ready-fd` value even in a command line that [`InitArgs::parse`] rejects, so
/// that the error can still be reported to the supervisor.
pub fn find_ready_fd(args: &[OsString]) -> Option<RawFd> {
    let at = args
        .iter()
        .take_while(|a| *a != END)
        .position(|a| a == READY_FD)?;
    number(READY_FD, args.get(at + 1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn sample() -> InitArgs {
        InitArgs {
            id: "alpha".into(),
            rootfs: "/r".into(),
            base: "/b".into(),
            nice: -5,
            ready_fd: 7,
            privileged: false,
            argv: os(&["/bin/sh", "-c", "echo --id"]),
        }
    }

    #[test]
    fn privileged_is_a_switch_written_only_when_set() {
        let mut a = sample();
        assert!(!a.to_args().contains(&OsString::from("--privileged")));
        a.privileged = true;
        let args = a.to_args();
        let at = args.iter().position(|x| x == "--privileged").unwrap();
        assert_eq!(args[at + 1], "--", "the switch takes no value");
        assert_eq!(InitArgs::parse(args), Ok(a.clone()));
        // After `--` it is the workload's, not ours.
        a.privileged = false;
        a.argv = os(&["probe", "--privileged"]);
        assert_eq!(InitArgs::parse(a.to_args()), Ok(a));
    }

    #[test]
    fn builds_the_documented_command_line() {
        assert_eq!(
            sample().to_args(),
            os(&[
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
            ])
        );
    }

    #[test]
    fn round_trips_non_utf8_bytes_and_dashes_in_the_workload() {
        let mut a = sample();
        a.id = OsString::from_vec(b"id\xff".to_vec());
        a.rootfs = PathBuf::from(OsString::from_vec(b"/r\xfe,:x".to_vec()));
        a.argv = vec![
            "probe".into(),
            "--".into(),
            "--ready-fd".into(),
            OsString::from_vec(vec![0x80, b'a']),
        ];
        assert_eq!(InitArgs::parse(a.to_args()), Ok(a.clone()));
        // The ready fd is found before `--` only, never in the workload's argv.
        assert_eq!(find_ready_fd(&a.to_args()), Some(7));
    }

    #[test]
    fn options_parse_in_any_order() {
        let a = InitArgs::parse(os(&[
            "--ready-fd",
            "3",
            "--nice",
            "19",
            "--base",
            "/b",
            "--rootfs",
            "/r",
            "--id",
            "x",
            "--",
            "true",
        ]))
        .unwrap();
        assert_eq!((a.ready_fd, a.nice, a.id.to_str()), (3, 19, Some("x")));
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
        assert_eq!(InitArgs::parse(os(&v)), Err(ArgsError::Missing("--id")));
        let mut v = vec!["--id", "a"];
        v.extend(base);
        assert_eq!(InitArgs::parse(os(&v)), Err(ArgsError::NoCommand));
        v.push("--");
        assert_eq!(InitArgs::parse(os(&v)), Err(ArgsError::NoCommand));
        v.push("x");
        v[7] = "nice";
        assert!(matches!(
            InitArgs::parse(os(&v)),
            Err(ArgsError::BadValue { flag: "--nice", .. })
        ));
        assert!(matches!(
            InitArgs::parse(os(&["--what", "x"])),
            Err(ArgsError::Unknown(_))
        ));
        assert!(matches!(
            InitArgs::parse(os(&["--id"])),
            Err(ArgsError::NoValue(_))
        ));
        let non_utf8 = vec!["--nice".into(), OsString::from_vec(vec![b'1', 0xff])];
        assert!(matches!(
            InitArgs::parse(non_utf8),
            Err(ArgsError::BadValue { flag: "--nice", .. })
        ));
    }

    #[test]
    fn finds_ready_fd_in_bad_command_lines() {
        assert_eq!(find_ready_fd(&os(&["--bogus", "--ready-fd", "9"])), Some(9));
        assert_eq!(find_ready_fd(&os(&["--", "--ready-fd", "9"])), None);
        assert_eq!(find_ready_fd(&os(&["--ready-fd"])), None);
        assert_eq!(find_ready_fd(&os(&["--ready-fd", "x"])), None);
    }
}
