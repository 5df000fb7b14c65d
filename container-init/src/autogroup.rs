//! The workload's scheduler autogroup nice value, so that `--nice` counts between containers.
//!
//! With autogroups on (`/proc/sys/kernel/sched_autogroup_enabled` = 1, the default of most
//! distributions), each session is its own CFS task group, and the CPU is shared between
//! groups by the group's weight, not by the nice values of the tasks inside (sched(7), "The
//! autogroup feature"). The workload leads its own session (`setsid`), so setting only its
//! task's nice value would change nothing between containers. Writing the nice value to
//! `/proc/self/autogroup` right after `setsid` gives the workload's new autogroup the weight
//! of that nice value (kernel `sched_prio_to_weight`: 1024 at 0, 36 at 15). With autogroups
//! off, or outside the root CPU cgroup (where autogroups do not apply), the task's own nice
//! value (set with `setpriority`) already counts.
//!
//! A process of the container that starts a session of its own gets a new autogroup at nice
//! 0; only a per-container CPU cgroup would cover that.

use std::ffi::CStr;
use std::io;

/// The calling process's autogroup file (proc(5), `/proc/pid/autogroup`, Linux 2.6.38+).
const SELF_AUTOGROUP: &CStr = c"/proc/self/autogroup";

/// Room for any `i32` in decimal: a sign and ten digits.
const DECIMAL_LEN: usize = 11;

/// Writes `n` in decimal ASCII into `buf`; returns the written part. No allocation.
fn decimal(n: i32, buf: &mut [u8; DECIMAL_LEN]) -> &[u8] {
    let mut at = DECIMAL_LEN;
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Sets the nice value (-20..=19) of the calling process's autogroup, the one its session
/// got at `setsid`. Async-signal-safe (open, write and close on a stack buffer), so it may
/// run between `fork` and `exec`. A kernel built without autogroups (no such file) is not an
/// error.
///
/// # Errors
/// The errno of `open` or `write`: `EINVAL` for a value out of range, `EPERM` for a negative
/// one without `CAP_SYS_NICE`, `EAGAIN` when rate-limited without `CAP_SYS_ADMIN`.
pub fn set_nice(nice: i32) -> io::Result<()> {
    let mut buf = [0u8; DECIMAL_LEN];
    let text = decimal(nice, &mut buf);
    // SAFETY: open(2) on a NUL-terminated static path; the descriptor is closed below.
    let fd = unsafe { libc::open(SELF_AUTOGROUP.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: `text` is a valid buffer of `text.len()` bytes; `fd` is ours.
    let written = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
    let result = if written < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    };
    // SAFETY: `fd` was opened above and is not used after this.
    unsafe { libc::close(fd) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_any_i32() {
        let mut buf = [0u8; DECIMAL_LEN];
        for n in [0, 7, 15, 19, -1, -20, 100, i32::MAX, i32::MIN] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    /// In a child that starts its own session (a fresh autogroup, as the workload's), the
    /// value reads back from `/proc/self/autogroup` (`/autogroup-N nice V`).
    #[test]
    fn sets_the_nice_value_of_a_new_sessions_autogroup() {
        use std::os::unix::process::CommandExt;
        if !std::path::Path::new("/proc/self/autogroup").exists() {
            return; // a kernel without autogroups: see the test below
        }
        let mut cat = std::process::Command::new("/bin/cat");
        cat.arg("/proc/self/autogroup");
        // SAFETY: setsid and set_nice make only async-signal-safe system calls.
        unsafe {
            cat.pre_exec(|| {
                nix::unistd::setsid()?;
                set_nice(7)
            });
        }
        let out = cat.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.trim_end().ends_with(" nice 7"), "{text}");
    }

    #[test]
    fn out_of_range_is_refused_by_the_kernel() {
        if !std::path::Path::new("/proc/self/autogroup").exists() {
            assert!(set_nice(40).is_ok(), "no autogroups: nothing to do");
            return;
        }
        // Refused before anything changes, so this process's autogroup is untouched.
        let e = set_nice(40).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
}
