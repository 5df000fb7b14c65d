//! Unit tests of the filter: installed in a forked child, each probe checks the errno the
//! kernel gives back.

use super::*;

/// errno of a raw syscall that returned `rc` (0 when it succeeded).
fn errno_of(rc: libc::c_long) -> i32 {
    if rc == -1 {
        io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

/// Installs the default filters in a forked child, runs `probe` there and returns what it
/// returned (an errno, 0 for success), or 255 when installing failed.
fn in_filtered_child(filters: &Filters, probe: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child makes system calls only and leaves with _exit.
    match unsafe { libc::fork() } {
        0 => {
            let code = if filters.install().is_ok() {
                probe()
            } else {
                255
            };
            // SAFETY: leaves the child without running the harness's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(libc::WIFEXITED(status), "child status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

fn filters() -> Filters {
    Filters::docker_default().expect("the profile compiles")
}

/// errno of the raw system call `nr` with `args` (0 when it succeeded); a descriptor it
/// returns is left open (the child exits right after).
fn sys(nr: libc::c_long, args: [u64; 5]) -> i32 {
    // SAFETY: every call made here gets integer arguments or pointers to live, NUL-terminated
    // static strings, and none writes through a pointer.
    errno_of(unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) })
}

#[test]
fn plain_calls_pass() {
    let f = filters();
    let socket = |family: i32| [family as u64, libc::SOCK_DGRAM as u64, 0, 0, 0];
    for (what, nr, args) in [
        ("getppid", libc::SYS_getppid, [0; 5]),
        ("socket AF_UNIX", libc::SYS_socket, socket(libc::AF_UNIX)),
        ("socket AF_INET", libc::SYS_socket, socket(libc::AF_INET)),
        (
            "socket AF_NETLINK",
            libc::SYS_socket,
            socket(libc::AF_NETLINK),
        ),
        (
            "personality query",
            libc::SYS_personality,
            [0xffff_ffff, 0, 0, 0, 0],
        ),
    ] {
        assert_eq!(in_filtered_child(&f, || sys(nr, args)), 0, "{what}");
    }
}

#[test]
fn privileged_calls_fail_with_eperm() {
    let f = filters();
    let s = |c: &'static std::ffi::CStr| c.as_ptr() as u64;
    let mount = [s(c"none"), s(c"/"), s(c"tmpfs"), 0, 0];
    let user_mnt = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as u64;
    let socket = |family: i32| [family as u64, libc::SOCK_STREAM as u64, 0, 0, 0];
    let io_uring_setup = 425; // x86_64; Docker's profile no longer allows io_uring
    for (what, nr, args) in [
        ("mount", libc::SYS_mount, mount),
        (
            "unshare user+mnt",
            libc::SYS_unshare,
            [user_mnt, 0, 0, 0, 0],
        ),
        ("keyctl", libc::SYS_keyctl, [0, (-3i64) as u64, 0, 0, 0]),
        ("socket AF_VSOCK", libc::SYS_socket, socket(libc::AF_VSOCK)),
        ("socket AF_ALG", libc::SYS_socket, socket(libc::AF_ALG)),
        ("io_uring_setup", io_uring_setup, [1, 0, 0, 0, 0]),
        // ADDR_NO_RANDOMIZE
        (
            "personality",
            libc::SYS_personality,
            [0x0040000, 0, 0, 0, 0],
        ),
    ] {
        assert_eq!(
            in_filtered_child(&f, || sys(nr, args)),
            libc::EPERM,
            "{what}"
        );
    }
    let new_ns = || {
        let flags = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        // SAFETY: fork-like clone (no CLONE_VM, no stack); a child, if any, exits at once.
        let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
        if rc == 0 {
            // SAFETY: leaves the grandchild at once.
            unsafe { libc::_exit(0) };
        }
        errno_of(rc)
    };
    assert_eq!(
        in_filtered_child(&f, new_ns),
        libc::EPERM,
        "clone CLONE_NEWNS"
    );
}

#[test]
fn clone3_fails_with_enosys_and_fork_still_works() {
    let f = filters();
    let clone3 = || sys(libc::SYS_clone3, [0; 5]);
    assert_eq!(in_filtered_child(&f, clone3), libc::ENOSYS);
    let fork = || {
        // SAFETY: plain clone with SIGCHLD behaves like fork; the child exits at once.
        let rc = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as u64, 0, 0, 0, 0) };
        if rc == 0 {
            // SAFETY: leaves the grandchild at once.
            unsafe { libc::_exit(0) };
        }
        errno_of(rc)
    };
    assert_eq!(in_filtered_child(&f, fork), 0);
}
