//! Capabilities of the workload: Docker's 14 defaults in the bounding, permitted and
//! effective sets; inheritable and ambient empty.
//!
//! The set is moby's `oci/caps/defaults.go` (`DefaultCapabilities`), which gives
//! `CapEff: 00000000a80425fb` in `/proc/self/status`. Applied between `fork` and `exec` of the
//! workload ([`restrict`]), so `container-init` itself keeps its own; the workload, as root,
//! gets its bounding set as permitted and effective at `exec` (capabilities(7),
//! "Transformation of capabilities during execve()").

use std::io;

/// Docker's default capabilities, as capability numbers (`linux/capability.h`).
pub const DEFAULT_CAPS: [u32; 14] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// [`DEFAULT_CAPS`] as a 64-bit mask (`0x00000000a80425fb`).
pub const fn default_mask() -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < DEFAULT_CAPS.len() {
        mask |= 1 << DEFAULT_CAPS[i];
        i += 1;
    }
    mask
}

/// `_LINUX_CAPABILITY_VERSION_3` (`linux/capability.h`): two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Highest capability number of the running kernel (`/proc/sys/kernel/cap_last_cap`); read
/// before `fork`, since [`restrict`] may not allocate.
///
/// # Errors
/// Reading or parsing the file failed.
pub fn last_cap() -> io::Result<u32> {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?
        .trim()
        .parse()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Drops every capability up to `last_cap` not in [`DEFAULT_CAPS`] from the bounding set and
/// clears the ambient set. Async-signal-safe (prctl only), for `pre_exec`.
///
/// # Errors
/// The errno of prctl(2) (`EPERM` without `CAP_SETPCAP`).
pub fn drop_bounding(last_cap: u32) -> io::Result<()> {
    for cap in 0..=last_cap.min(63) {
        if default_mask() & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes integers only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) takes integers only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets this process's permitted and effective sets to [`DEFAULT_CAPS`] and empties the
/// inheritable set. Async-signal-safe (capset only), for `pre_exec`.
///
/// # Errors
/// The errno of capset(2).
pub fn restrict() -> io::Result<()> {
    let mask = default_mask();
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |shift: u32| CapData {
        effective: (mask >> shift) as u32,
        permitted: (mask >> shift) as u32,
        inheritable: 0,
    };
    let data = [word(0), word(32)];
    // SAFETY: capset(2) with a version-3 header and the two data words it reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_is_dockers_cap_eff() {
        // `docker run --rm alpine grep CapEff /proc/self/status`.
        assert_eq!(default_mask(), 0x0000_0000_a804_25fb);
    }

    #[test]
    fn last_cap_is_read_from_the_kernel() {
        let n = last_cap().unwrap();
        assert!((37..64).contains(&n), "{n}");
    }

    /// Field `key` of `/proc/self/status` as a hex mask.
    fn status_mask(key: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let v = s
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .unwrap();
        u64::from_str_radix(v.trim(), 16).unwrap()
    }

    #[test]
    fn a_forked_child_ends_with_the_default_sets() {
        // SAFETY: the child makes system calls, reads a proc file and exits with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let ok = drop_bounding(last_cap().unwrap()).is_ok()
                    && restrict().is_ok()
                    && status_mask("CapEff") == default_mask()
                    && status_mask("CapPrm") == default_mask()
                    && status_mask("CapBnd") == default_mask()
                    && status_mask("CapInh") == 0
                    && status_mask("CapAmb") == 0;
                // SAFETY: leaves the child without running the harness's exit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(libc::WEXITSTATUS(status), 0);
            }
        }
    }
}
