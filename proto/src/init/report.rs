//! The ready pipe from `container-init` to the supervisor. Its write end is inherited by
//! `container-init` (`--ready-fd`); what the supervisor reads before EOF says how the spawn
//! went:
//!
//! - nothing: the workload was exec'd ([`Outcome::Ready`]);
//! - one text line, `\n`-terminated ([`failure_line`]): `container-init` could not set the
//!   container up ([`Outcome::Failed`]);
//! - a [`CHILD_REPORT_LEN`]-byte record ([`child_record`]): [`CHILD_REPORT_TAG`], the
//!   [`ChildStage`] byte, the errno as 4 native-endian bytes: the supervisor's cloned child
//!   failed before `container-init` ran ([`Outcome::ChildFailed`]).
//!
//! A report is at most [`MAX_REPORT`] bytes; the reader keeps no more.

use nix::errno::Errno;
use std::fmt;

/// Longest report, in bytes (a one-line message is far shorter).
pub const MAX_REPORT: usize = 4096;

/// First byte of a record written by the cloned child (a text line never starts with it:
/// [`failure_line`] replaces NUL bytes).
pub const CHILD_REPORT_TAG: u8 = 0;

/// Length of the cloned child's record, in bytes: tag, stage, errno (4 bytes, native endian).
pub const CHILD_REPORT_LEN: usize = 6;

/// What failed in the cloned child before `container-init` ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChildStage {
    /// `dup2` of the pipes onto 0, 1, 2.
    Dup2 = 1,
    /// Clearing close-on-exec on the ready pipe.
    ReadyFd = 2,
    /// `execve` of `container-init`.
    Exec = 3,
    /// `prctl(PR_SET_PDEATHSIG)`.
    DeathSignal = 4,
}

impl ChildStage {
    /// Decodes a stage byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        [Self::Dup2, Self::ReadyFd, Self::Exec, Self::DeathSignal]
            .into_iter()
            .find(|s| *s as u8 == b)
    }

    /// What the stage does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dup2 => "set up the container's stdio",
            Self::ReadyFd => "pass the ready pipe",
            Self::Exec => "exec container-init",
            Self::DeathSignal => "set the parent-death signal",
        }
    }
}

/// The cloned child's record for a failure at `stage` with `errno`. Builds a stack array
/// only (no allocation, no system call), so the child may call it between `clone` and `exec`.
pub const fn child_record(stage: ChildStage, errno: i32) -> [u8; CHILD_REPORT_LEN] {
    let e = errno.to_ne_bytes();
    [CHILD_REPORT_TAG, stage as u8, e[0], e[1], e[2], e[3]]
}

/// A failure of the cloned child, decoded from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    /// The failed stage; `None` for a stage byte this version does not know.
    pub stage: Option<ChildStage>,
    /// The errno of the failed call.
    pub errno: Errno,
}

impl fmt::Display for ChildFailure {
    /// One line: `exec container-init: ENOENT: No such file or directory`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self
            .stage
            .map_or("start container-init", ChildStage::describe);
        write!(f, "{what}: {}", self.errno)
    }
}

/// What the ready pipe said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// EOF with nothing written: the workload was exec'd.
    Ready,
    /// A set-up failure reported by `container-init`: its line, without the line end.
    Failed(String),
    /// The cloned child failed before `container-init` ran.
    ChildFailed(ChildFailure),
}

/// Decodes the bytes read before EOF (the first [`MAX_REPORT`] of them). A text line is
/// decoded lossily (invalid UTF-8 becomes U+FFFD) and trimmed.
pub fn decode(bytes: &[u8]) -> Outcome {
    match bytes {
        [] => Outcome::Ready,
        [CHILD_REPORT_TAG, stage, e0, e1, e2, e3, ..] => Outcome::ChildFailed(ChildFailure {
            stage: ChildStage::from_u8(*stage),
            errno: Errno::from_raw(i32::from_ne_bytes([*e0, *e1, *e2, *e3])),
        }),
        text => Outcome::Failed(String::from_utf8_lossy(text).trim().to_string()),
    }
}

/// `container-init`'s report of a set-up failure: `message` as one line (line ends and NUL
/// bytes become spaces), cut to fit [`MAX_REPORT`] with its `\n`.
pub fn failure_line(message: &str) -> Vec<u8> {
    let mut line = message.replace(['\n', '\r', '\0'], " ");
    let mut end = line.len().min(MAX_REPORT - 1);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push('\n');
    line.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_three_reports() {
        assert_eq!(decode(b""), Outcome::Ready);
        assert_eq!(
            decode(b"exec nothere: No such file or directory (os error 2)\n"),
            Outcome::Failed("exec nothere: No such file or directory (os error 2)".into())
        );
        let rec = child_record(ChildStage::Exec, Errno::ENOENT as i32);
        let Outcome::ChildFailed(failure) = decode(&rec) else {
            panic!("not a child record: {:?}", decode(&rec));
        };
        assert_eq!(failure.stage, Some(ChildStage::Exec));
        assert_eq!(failure.errno, Errno::ENOENT);
        assert_eq!(
            failure.to_string(),
            "exec container-init: ENOENT: No such file or directory"
        );
    }

    #[test]
    fn child_record_layout_and_unknown_stage() {
        let rec = child_record(ChildStage::DeathSignal, 0x0102_0304);
        assert_eq!(rec[..2], [CHILD_REPORT_TAG, 4]);
        assert_eq!(rec[2..], 0x0102_0304i32.to_ne_bytes());
        let mut odd = child_record(ChildStage::Dup2, Errno::EBADF as i32);
        odd[1] = 99;
        let Outcome::ChildFailed(failure) = decode(&odd) else {
            panic!("not a child record");
        };
        assert_eq!(failure.stage, None);
        assert!(failure
            .to_string()
            .starts_with("start container-init: EBADF"));
        for stage in [
            ChildStage::Dup2,
            ChildStage::ReadyFd,
            ChildStage::Exec,
            ChildStage::DeathSignal,
        ] {
            assert_eq!(ChildStage::from_u8(stage as u8), Some(stage));
        }
        assert_eq!(ChildStage::from_u8(0), None);
    }

    #[test]
    fn failure_line_is_one_line_that_decodes_back() {
        let line = failure_line("mount overlay:\nEINVAL\r\0x");
        assert_eq!(line, b"mount overlay: EINVAL  x\n");
        assert_eq!(
            decode(&line),
            Outcome::Failed("mount overlay: EINVAL  x".into())
        );
        // A message starting with NUL still decodes as text, not as a child record.
        let line = failure_line("\0\x01abcdefg");
        assert!(matches!(decode(&line), Outcome::Failed(_)));
    }

    #[test]
    fn failure_line_fits_the_report_limit_on_a_char_boundary() {
        let long = "é".repeat(MAX_REPORT);
        let line = failure_line(&long);
        assert!(line.len() <= MAX_REPORT);
        assert_eq!(line.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.trim_end().chars().all(|c| c == 'é'));
        assert_eq!(failure_line("short"), b"short\n");
    }
}
