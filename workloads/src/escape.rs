//! `probe escape`: tries, from inside a container, the ways out that Docker's defaults close,
//! and prints one line per attack, `escape <attack> <result>`, where the result is `ok` (the
//! attack worked), `read=<bytes>` for reads, a value for `cap_eff`/`fds_*`, or the errno name
//! it failed with (`EPERM`, `EACCES`, `EROFS`...). The red-team tests (`tests/tests/redteam.rs`)
//! assert each result.
//!
//! Every attack is harmless when it works (the privileged run shows that): mounts stay in the
//! container's mount namespace, the host's disk is mounted read-only (the kernel refuses with
//! `EBUSY`, a mounted disk cannot be mounted again read-only) and only read, sysctl values
//! are written back unchanged, `adjtimex` sets the tick it read, `reboot` asks to turn off
//! Ctrl-Alt-Del (refused with `EINVAL` in a PID namespace), the module image is empty, the
//! BPF map and the io_uring ring are closed, `/dev/kmsg` and `/proc/sysrq-trigger` are only
//! opened, and the ptrace seize of PID 1 ends with the child that made it.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

/// What an attack came to.
type Outcome = io::Result<String>;

/// The errno name of `e` (the usual ones), or `errno<N>`.
pub fn errno_name(e: &io::Error) -> String {
    let n = e.raw_os_error().unwrap_or(0);
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ENOEXEC => "ENOEXEC",
        libc::EIDRM => "EIDRM",
        libc::ESTALE => "ESTALE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("errno{n}"),
    };
    name.to_string()
}

fn line(attack: &str, outcome: Outcome) {
    let result = outcome.unwrap_or_else(|e| errno_name(&e));
    crate::say(&format!("escape {attack} {result}"));
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// `Ok("ok")` when a libc call returned `rc >= 0`, else its errno.
fn check(rc: libc::c_long) -> Outcome {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok("ok".into())
    }
}

fn mount_fs(fstype: &str, source: &str, target: &str, flags: libc::c_ulong) -> Outcome {
    std::fs::create_dir_all(target)?;
    let (src, tgt, ty) = (cstr(source), cstr(target), cstr(fstype));
    // SAFETY: mount(2) with NUL-terminated strings alive for the call and no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            ty.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    check(rc.into())
}

/// Reads up to 4096 bytes of `path`: `read=<n>`.
fn read_some(path: &str) -> Outcome {
    let mut buf = vec![0u8; 4096];
    let n = std::fs::File::open(path)?.read(&mut buf)?;
    Ok(format!("read={n}"))
}

/// Opens `path` for writing and writes back what it holds (a no-op when it works).
fn write_back(path: &str) -> Outcome {
    let current = std::fs::read(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(&current)?;
    Ok("ok".into())
}

/// Opens `path` write-only and closes it without writing.
fn open_for_write(path: &str) -> Outcome {
    std::fs::OpenOptions::new().write(true).open(path)?;
    Ok("ok".into())
}

/// mknod(2) of `path` with `kind` (`S_IFBLK`/`S_IFCHR`) and the given device numbers.
fn make_node(path: &str, kind: libc::mode_t, major: u32, minor: u32) -> Outcome {
    let p = cstr(path);
    let _ = std::fs::remove_file(path);
    // SAFETY: mknod(2) with a NUL-terminated path alive for the call.
    let rc = unsafe { libc::mknod(p.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    check(rc.into())
}

/// Sets the clock's tick to the value just read: needs CAP_SYS_TIME.
fn adjtimex_set() -> Outcome {
    // SAFETY: timex is plain data; all zero is a valid query (modes 0).
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: adjtimex(2) with a valid timex.
    check(unsafe { libc::adjtimex(&mut tx) }.into())?;
    tx.modes = libc::ADJ_TICK;
    // SAFETY: as above; the tick is the one read.
    check(unsafe { libc::adjtimex(&mut tx) }.into())
}

/// reboot(2) with `LINUX_REBOOT_CMD_CAD_OFF`.
fn reboot() -> Outcome {
    // SAFETY: reboot(2) with integer arguments only; the magic numbers are linux/reboot.h's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_CAD_OFF,
            0usize,
        )
    };
    check(rc)
}

/// init_module(2) of an empty image.
fn init_module() -> Outcome {
    let params = cstr("");
    let image = [0u8; 16];
    // SAFETY: init_module(2) reads `len` bytes of `image` and the NUL-terminated params.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    };
    check(rc)
}

/// bpf(BPF_MAP_CREATE) of a one-entry array map (the descriptor is closed if it works).
fn bpf_map() -> Outcome {
    // union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries.
    let mut attr = [0u32; 32];
    attr[..4].copy_from_slice(&[2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1]);
    // SAFETY: bpf(2) reads `size` bytes of `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0, /* BPF_MAP_CREATE */
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc >= 0 {
        // SAFETY: closes the map descriptor just created.
        unsafe { libc::close(rc as i32) };
    }
    check(rc)
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING): keyrings are not namespaced, so
/// this is the host root user's keyring.
fn keyctl() -> Outcome {
    // SAFETY: keyctl(2) with integer arguments only.
    let rc = unsafe {
        libc::syscall(libc::SYS_keyctl, 0 /* GET_KEYRING_ID */, -4i32, 0)
    };
    check(rc)
}

/// io_uring_setup(2) of a one-entry ring (the descriptor is closed if it works); Docker's
/// profile blocks io_uring.
fn io_uring() -> Outcome {
    // struct io_uring_params: 120 bytes, all zero asks for the defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) reads and fills the 120-byte params.
    let rc = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if rc >= 0 {
        // SAFETY: closes the ring descriptor just created.
        unsafe { libc::close(rc as i32) };
    }
    check(rc)
}

/// shmat(2) of a SysV segment by id (one the host made).
fn shm_attach(id: i32) -> Outcome {
    // SAFETY: shmat(2) maps the segment read-only at an address the kernel picks.
    let at = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
    if at as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: detaches what was just attached.
    unsafe { libc::shmdt(at) };
    Ok("ok".into())
}

/// Runs `f` in a forked child (its state changes stay there) and returns its outcome, carried
/// back as the child's exit status (0 = ok, else the errno).
fn in_child(f: fn() -> Outcome) -> Outcome {
    // SAFETY: probe is single-threaded, so the child may run ordinary code after fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match f() {
                Ok(_) => 0,
                Err(e) => e.raw_os_error().unwrap_or(255).min(255),
            };
            // SAFETY: leaves the child without running exit handlers twice.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            match libc::WEXITSTATUS(status) {
                0 => Ok("ok".into()),
                e => Err(io::Error::from_raw_os_error(e)),
            }
        }
    }
}

fn unshare_user_mnt() -> Outcome {
    // SAFETY: unshare(2) with flags only.
    check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) }.into())
}

fn ptrace_init() -> Outcome {
    // SAFETY: PTRACE_SEIZE of PID 1 does not stop it; the seize ends when this child exits.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, 1, 0, 0) };
    check(rc)
}

/// open_by_handle_at(2) (the "shocker" escape): needs CAP_DAC_READ_SEARCH.
fn open_by_handle() -> Outcome {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[8] } (zeros).
    let handle = [8u32, 1, 0, 0];
    // SAFETY: the kernel reads the header and handle_bytes bytes after it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            libc::AT_FDCWD,
            handle.as_ptr(),
            libc::O_RDONLY,
        )
    };
    if rc >= 0 {
        // SAFETY: closes what was just opened.
        unsafe { libc::close(rc as i32) };
    }
    check(rc)
}

/// Whether `target` is a `/proc/<pid>/fd` directory (the listing's own descriptor).
fn is_fd_listing(target: &str) -> bool {
    target
        .strip_prefix("/proc/")
        .and_then(|r| r.strip_suffix("/fd"))
        .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Descriptors above 2 in `dir` (`/proc/self/fd`, `/proc/1/fd`) as `N:target` (or `N:ERRNO`
/// when the link cannot be read) joined by `,`, `none` when there are none; the listing's own
/// descriptor is left out.
fn fds_in(dir: &str) -> Outcome {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let target = match std::fs::read_link(e.path()) {
            Ok(t) => String::from_utf8_lossy(t.as_os_str().as_bytes()).into_owned(),
            Err(e) => errno_name(&e),
        };
        if n > 2 && !is_fd_listing(&target) {
            entries.push(format!("{n}:{target}"));
        }
    }
    Ok(if entries.is_empty() {
        "none".into()
    } else {
        entries.join(",")
    })
}

/// `CapEff` of `/proc/self/status`.
fn cap_eff() -> Outcome {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}

/// Runs every attack; `dev` is the host root disk's `(major, minor)`, `shm` a SysV shared
/// memory id made on the host.
pub fn run(dev: (u32, u32), shm: i32) {
    line("mount_proc", mount_fs("proc", "proc", "/tmp/esc/proc", 0));
    line(
        "mount_tmpfs",
        mount_fs("tmpfs", "tmpfs", "/tmp/esc/tmpfs", 0),
    );
    line(
        "mount_sysfs",
        mount_fs("sysfs", "sysfs", "/tmp/esc/sys", libc::MS_RDONLY),
    );
    line(
        "mount_cgroup",
        mount_fs("cgroup2", "cgroup2", "/tmp/esc/cgroup", libc::MS_RDONLY),
    );
    // Device nodes go on the container's writable mounts: /dev (tmpfs) and / (overlay).
    line(
        "mknod_disk",
        make_node("/dev/esc-disk", libc::S_IFBLK, dev.0, dev.1),
    );
    line("read_disk", read_some("/dev/esc-disk"));
    line(
        "mount_disk",
        mount_fs("ext4", "/dev/esc-disk", "/tmp/esc/host", libc::MS_RDONLY),
    );
    line(
        "write_proc_sys",
        write_back("/proc/sys/vm/dirty_expire_centisecs"),
    );
    line("open_sysrq_trigger", open_for_write("/proc/sysrq-trigger"));
    line("read_kcore", read_some("/proc/kcore"));
    line("read_keys", read_some("/proc/keys"));
    line("read_timer_list", read_some("/proc/timer_list"));
    line("adjtimex_set", adjtimex_set());
    line("reboot", reboot());
    line("init_module", init_module());
    line("bpf", bpf_map());
    line("keyctl", keyctl());
    line("io_uring", io_uring());
    line("shm_host", shm_attach(shm));
    line("unshare_user_mnt", in_child(unshare_user_mnt));
    line("open_kmsg", open_for_write("/dev/kmsg"));
    line("mknod_kmsg", make_node("/esc-kmsg", libc::S_IFCHR, 1, 11));
    line("open_mknod_kmsg", open_for_write("/esc-kmsg"));
    line("open_by_handle_at", open_by_handle());
    line("ptrace_init", in_child(ptrace_init));
    line("fds_self", fds_in("/proc/self/fd"));
    line("fds_init", fds_in("/proc/1/fd"));
    line(
        "open_init_fd",
        read_some("/proc/1/fd/0").map(|_| "ok".into()),
    );
    line("cap_eff", cap_eff());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_proc_fd_directories_are_listings() {
        assert!(is_fd_listing("/proc/42/fd"));
        assert!(!is_fd_listing("/proc/42/fd/3"));
        assert!(!is_fd_listing("/proc/self/cwd"));
        assert!(!is_fd_listing("/srv/proc/1/fd"));
    }

    #[test]
    fn errno_names() {
        assert_eq!(
            errno_name(&io::Error::from_raw_os_error(libc::EPERM)),
            "EPERM"
        );
        assert_eq!(
            errno_name(&io::Error::from_raw_os_error(libc::EROFS)),
            "EROFS"
        );
        assert_eq!(errno_name(&io::Error::from_raw_os_error(200)), "errno200");
    }

    #[test]
    fn child_outcomes_come_back_as_errnos() {
        assert_eq!(in_child(|| Ok("x".into())).unwrap(), "ok");
        let e = in_child(|| Err(io::Error::from_raw_os_error(libc::EACCES))).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    }
}
