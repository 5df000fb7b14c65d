//! Small readers of `/proc` for the userspace monitor backend: listing process ids, a
//! process's PID-namespace inode (and, by `NS_GET_PARENT`, its parent namespaces), its
//! `statm` (or a live thread's, when the leader has exited), its innermost `NSpid`, and
//! comparing two processes' address spaces with `kcmp(2)`.
//!
//! The per-tick paths (listing, `statm`) do not allocate: paths are formatted into a stack
//! buffer and files are read into a caller's buffer.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::ffi::CStr;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Buffer size that holds any `statm` line (7 decimal `u64`s and separators).
pub const STATM_BUF_LEN: usize = 192;

/// `ioctl_ns(2)` request returning a descriptor of a namespace's parent: `_IO(0xb7, 0x2)`.
const NS_GET_PARENT: u32 = (0xb7 << 8) | 0x2;

/// `kcmp(2)` type comparing the address spaces (`mm_struct`) of two processes.
const KCMP_VM: libc::c_int = 1;

/// The first six fields of `/proc/<pid>/statm`, in pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Statm {
    /// Total program size (VmSize), in pages.
    pub size: u64,
    /// Resident pages (RssAnon + RssFile + RssShmem).
    pub resident: u64,
    /// Resident file-backed and shared pages (RssFile + RssShmem).
    pub shared: u64,
    /// Text (code), in pages.
    pub text: u64,
    /// Data + stack, in pages.
    pub data: u64,
}

/// Parses a `statm` line (`size resident shared text lib data dt`). `None` when it has
/// fewer than six numeric fields.
pub fn parse_statm(line: &[u8]) -> Option<Statm> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(parse_u64);
    let size = fields.next()??;
    let resident = fields.next()??;
    let shared = fields.next()??;
    let text = fields.next()??;
    let _lib = fields.next()??;
    let data = fields.next()??;
    Some(Statm {
        size,
        resident,
        shared,
        text,
        data,
    })
}

/// Parses an unsigned decimal with no sign and no spaces.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses a `/proc` entry name as a process id: only all-digit names that fit a positive
/// `i32` (so `self`, `sys`, ... are skipped).
pub fn parse_pid(name: &[u8]) -> Option<i32> {
    parse_u64(name)
        .and_then(|n| i32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// The innermost PID from the `NSpid:` line of a `/proc/<pid>/status` text (the process's
/// PID in its own namespace; 1 for a namespace's init). `None` when the line is absent.
pub fn parse_nspid_innermost(status: &str) -> Option<i32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_ascii_whitespace().last()?.parse().ok()
}

/// `<pid>/<leaf>` as a NUL-terminated path in a stack buffer.
struct PidPath {
    buf: [u8; 48],
}

impl PidPath {
    fn new(pid: i32, leaf: &str) -> Self {
        let mut buf = [0u8; 48];
        let mut cursor: &mut [u8] = &mut buf;
        // The longest leaf used here is "task"; 10 digits + "/" + leaf + NUL always fits.
        let _ = write!(cursor, "{pid}/{leaf}");
        Self { buf }
    }

    /// `<pid>/task/<tid>/statm`: 2 × 10 digits + 13 + NUL always fit.
    fn thread_statm(pid: i32, tid: i32) -> Self {
        let mut buf = [0u8; 48];
        let mut cursor: &mut [u8] = &mut buf;
        let _ = write!(cursor, "{pid}/task/{tid}/statm");
        Self { buf }
    }

    fn as_cstr(&self) -> &CStr {
        // The buffer is zero-initialised and the text never fills it, so a NUL exists.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// An open `/proc` directory: lists process ids and opens per-process files relative to it.
#[derive(Debug)]
pub struct ProcFs {
    dir: Dir,
}

impl ProcFs {
    /// Opens the proc filesystem mounted at `root` (normally `/proc`).
    ///
    /// # Errors
    /// The errno of `open(2)`.
    pub fn open(root: &Path) -> Result<Self, Errno> {
        let dir = Dir::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { dir })
    }

    /// Replaces the contents of `out` with the ids of all processes (thread-group leaders)
    /// now listed.
    ///
    /// # Errors
    /// The errno of `getdents(2)`.
    pub fn list_pids(&mut self, out: &mut Vec<i32>) -> Result<(), Errno> {
        out.clear();
        // Dropping the iterator rewinds the directory for the next scan.
        for entry in self.dir.iter() {
            if let Some(pid) = parse_pid(entry?.file_name().to_bytes()) {
                out.push(pid);
            }
        }
        Ok(())
    }

    /// The inode number of the PID namespace of process `pid` (`/proc/<pid>/ns/pid`).
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone, `EACCES` without ptrace access.
    pub fn pid_ns(&self, pid: i32) -> Result<u64, Errno> {
        let path = PidPath::new(pid, "ns/pid");
        let st = nix::sys::stat::fstatat(self.dir.as_fd(), path.as_cstr(), AtFlags::empty())?;
        Ok(st.st_ino)
    }

    /// Opens `/proc/<pid>/ns/pid` (read-only, close-on-exec): a descriptor of the process's
    /// PID namespace, for [`ns_inode`] and [`ns_parent`].
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone, `EACCES` without ptrace access.
    pub fn open_pid_ns(&self, pid: i32) -> Result<OwnedFd, Errno> {
        self.open_leaf(pid, "ns/pid")
    }

    /// Opens `/proc/<pid>/statm` (read-only, close-on-exec), to be read with [`read_statm`].
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone.
    pub fn open_statm(&self, pid: i32) -> Result<OwnedFd, Errno> {
        self.open_leaf(pid, "statm")
    }

    /// Opens `/proc/<pid>/<leaf>` read-only and close-on-exec.
    fn open_leaf(&self, pid: i32, leaf: &str) -> Result<OwnedFd, Errno> {
        let path = PidPath::new(pid, leaf);
        nix::fcntl::openat(
            self.dir.as_fd(),
            path.as_cstr(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// Reads `/proc/<pid>/statm` once (open, read, close).
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone, `EINVAL` on an unparsable line.
    pub fn statm(&self, pid: i32, buf: &mut [u8; STATM_BUF_LEN]) -> Result<Statm, Errno> {
        read_statm(self.open_statm(pid)?, buf)
    }

    /// The `statm` of the first thread of process `pid` other than its leader that has an
    /// address space (`size` > 0), and that thread's id: what the process uses once its
    /// leader has exited while other threads run (the leader's own `statm` is then all
    /// zeros, as for any task without an `mm`; the kernel's `find_lock_task_mm()` looks the
    /// same way). `Ok(None)` when no other thread has one. Allocates (lists
    /// `/proc/<pid>/task`); only for processes whose own `statm` reads zeros.
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone.
    pub fn live_thread_statm(
        &self,
        pid: i32,
        buf: &mut [u8; STATM_BUF_LEN],
    ) -> Result<Option<(i32, Statm)>, Errno> {
        let tasks = self.open_leaf(pid, "task")?;
        let mut dir = Dir::from_fd(tasks)?;
        for entry in dir.iter() {
            let Some(tid) = parse_pid(entry?.file_name().to_bytes()) else {
                continue;
            };
            if tid == pid {
                continue;
            }
            let path = PidPath::thread_statm(pid, tid);
            let fd = match nix::fcntl::openat(
                self.dir.as_fd(),
                path.as_cstr(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // That thread ended since the listing.
                Err(Errno::ENOENT | Errno::ESRCH) => continue,
                Err(e) => return Err(e),
            };
            match read_statm(fd, buf) {
                Ok(statm) if statm.size > 0 => return Ok(Some((tid, statm))),
                Ok(_) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The innermost `NSpid` of process `pid` (1 for a namespace's init); `Ok(None)` on
    /// kernels without that line. Allocates; for registration, not for scans.
    ///
    /// # Errors
    /// `ENOENT`/`ESRCH` when the process is gone.
    pub fn nspid_innermost(&self, pid: i32) -> Result<Option<i32>, Errno> {
        let fd = self.open_leaf(pid, "status")?;
        let text = std::io::read_to_string(std::fs::File::from(fd))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(parse_nspid_innermost(&text))
    }
}

/// Reads a `statm` file from offset 0 (an open descriptor can be read again each scan: procfs
/// regenerates the text on every read at offset 0).
///
/// # Errors
/// `ESRCH` once the process has been reaped, `EINVAL` on an unparsable line.
pub fn read_statm(fd: impl AsFd, buf: &mut [u8; STATM_BUF_LEN]) -> Result<Statm, Errno> {
    let n = nix::sys::uio::pread(fd, buf, 0)?;
    parse_statm(&buf[..n]).ok_or(Errno::EINVAL)
}

/// The inode number of the namespace open as `fd` (the number `/proc/<pid>/ns/*` shows).
///
/// # Errors
/// The errno of `fstat(2)`.
pub fn ns_inode(fd: impl AsFd) -> Result<u64, Errno> {
    Ok(nix::sys::stat::fstat(fd)?.st_ino)
}

/// A descriptor of the parent of the PID namespace open as `fd` (`ioctl(NS_GET_PARENT)`).
///
/// # Errors
/// `EPERM` when the parent is outside the caller's namespace (the caller's own namespace,
/// or the host's, has been reached), `ENOTTY` on kernels before 4.9.
pub fn ns_parent(fd: impl AsFd) -> Result<OwnedFd, Errno> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: NS_GET_PARENT takes no argument and returns a new descriptor or -1.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NS_GET_PARENT as _) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: on success the ioctl returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// How the address spaces of two processes compare, by `kcmp(2)` with `KCMP_VM`: `Equal`
/// when they share one `mm_struct`. The order of unequal ones is arbitrary but consistent
/// while both live. `None` when either process is gone or inaccessible.
pub fn cmp_vm(pid1: i32, pid2: i32) -> Option<std::cmp::Ordering> {
    // SAFETY: kcmp takes five integer arguments and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, KCMP_VM, 0usize, 0usize) };
    match r {
        0 => Some(std::cmp::Ordering::Equal),
        1 => Some(std::cmp::Ordering::Less),
        2 => Some(std::cmp::Ordering::Greater),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_lines() {
        let s = parse_statm(b"730 449 421 5 0 89 0\n").unwrap();
        assert_eq!(
            s,
            Statm {
                size: 730,
                resident: 449,
                shared: 421,
                text: 5,
                data: 89
            }
        );
        assert_eq!(parse_statm(b"0 0 0 0 0 0 0").unwrap(), Statm::default());
        assert!(parse_statm(b"1 2 3").is_none());
        assert!(parse_statm(b"1 2 x 4 5 6 7").is_none());
        assert!(parse_statm(b"").is_none());
        assert!(parse_statm(b"99999999999999999999999 1 1 1 1 1 1").is_none());
    }

    #[test]
    fn pid_names() {
        assert_eq!(parse_pid(b"1"), Some(1));
        assert_eq!(parse_pid(b"4194304"), Some(4_194_304));
        for bad in [
            &b"self"[..],
            b"",
            b"0",
            b"-1",
            b"+1",
            b"12a",
            b"99999999999",
            b"thread-self",
        ] {
            assert_eq!(parse_pid(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nspid_lines() {
        let status = "Name:\tsh\nTgid:\t8434\nNSpid:\t8434\t1\nNSpgid:\t8434\t1\n";
        assert_eq!(parse_nspid_innermost(status), Some(1));
        assert_eq!(parse_nspid_innermost("NSpid:\t77\n"), Some(77));
        assert_eq!(parse_nspid_innermost("Name:\tx\n"), None);
    }

    #[test]
    fn statm_of_a_process_whose_leader_exited_comes_from_a_live_thread() {
        // A child whose main thread exits (SYS_exit) after starting a thread that holds
        // 8 MiB: the leader's statm reads zeros, the live thread's has the memory.
        // SAFETY: the child runs only raw system calls (`leader_exit_child`), as a child
        // forked from a multi-threaded process may.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            leader_exit_child();
        }
        assert!(pid > 0);
        let proc = ProcFs::open(Path::new("/proc")).unwrap();
        let mut buf = [0u8; STATM_BUF_LEN];
        let mut found = None;
        for _ in 0..200 {
            let own = proc.statm(pid, &mut buf).unwrap_or_default();
            if own.size == 0 {
                found = proc.live_thread_statm(pid, &mut buf).unwrap();
                if found.is_some_and(|(_, s)| s.resident >= (8 << 20) / 4096) {
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: kill and reap our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        let (tid, statm) = found.expect("a live thread's statm");
        assert_ne!(tid, pid);
        assert!(statm.resident >= (8 << 20) / 4096, "{statm:?}");
        assert_eq!(
            proc.live_thread_statm(std::process::id() as i32, &mut buf)
                .map(|s| s.is_some()),
            Ok(true),
            "the test process has other threads"
        );
    }

    /// A fresh private anonymous read-write mapping of `len` bytes (`MAP_FAILED` on error).
    fn map_anonymous(len: usize) -> *mut u8 {
        // SAFETY: a new mapping at an address the kernel picks; nothing else is touched.
        unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
            .cast::<u8>()
        }
    }

    /// In a forked child: a raw thread (clone with its own stack, sharing the memory) touches
    /// 8 MiB and sleeps; the main thread exits alone. Raw syscalls only.
    fn leader_exit_child() -> ! {
        extern "C" fn hold(_: *mut libc::c_void) -> libc::c_int {
            // SAFETY: a fresh anonymous mapping, written page by page, never unmapped.
            unsafe {
                let len = 8 << 20;
                let p = map_anonymous(len);
                if p != libc::MAP_FAILED.cast() {
                    for off in (0..len).step_by(4096) {
                        p.add(off).write_volatile(1);
                    }
                }
                loop {
                    libc::pause();
                }
            }
        }
        // SAFETY: the stack is a fresh mapping the thread owns; CLONE_THREAD|CLONE_VM|
        // CLONE_SIGHAND makes it a thread of this process; the main thread then ends alone.
        unsafe {
            let stack_len = 256 << 10;
            let stack = map_anonymous(stack_len);
            let flags = libc::CLONE_VM
                | libc::CLONE_FS
                | libc::CLONE_FILES
                | libc::CLONE_SIGHAND
                | libc::CLONE_THREAD
                | libc::CLONE_SYSVSEM;
            libc::clone(
                hold,
                stack.add(stack_len).cast(),
                flags,
                std::ptr::null_mut(),
            );
            loop {
                libc::syscall(libc::SYS_exit, 0);
            }
        }
    }

    #[test]
    fn pid_paths() {
        assert_eq!(
            PidPath::new(2_147_483_647, "ns/pid").as_cstr(),
            c"2147483647/ns/pid"
        );
        assert_eq!(PidPath::new(1, "statm").as_cstr(), c"1/statm");
        assert_eq!(
            PidPath::thread_statm(2_147_483_647, 2_147_483_647).as_cstr(),
            c"2147483647/task/2147483647/statm"
        );
    }

    #[test]
    fn reads_own_process() {
        let mut proc = ProcFs::open(Path::new("/proc")).unwrap();
        let me = std::process::id() as i32;
        let mut pids = Vec::new();
        proc.list_pids(&mut pids).unwrap();
        assert!(pids.contains(&me));
        // A second listing works too (the directory was rewound).
        proc.list_pids(&mut pids).unwrap();
        assert!(pids.contains(&me));
        let own_ns = std::fs::metadata("/proc/self/ns/pid").unwrap();
        assert_eq!(
            proc.pid_ns(me).unwrap(),
            std::os::unix::fs::MetadataExt::ino(&own_ns)
        );
        let mut buf = [0u8; STATM_BUF_LEN];
        let fd = proc.open_statm(me).unwrap();
        assert!(read_statm(&fd, &mut buf).unwrap().resident > 0);
        assert!(read_statm(&fd, &mut buf).unwrap().resident > 0);
        assert!(proc.statm(me, &mut buf).unwrap().size > 0);
        assert!(proc.nspid_innermost(me).unwrap().is_some());
        assert_eq!(cmp_vm(me, me), Some(std::cmp::Ordering::Equal));
        let ns = proc.open_pid_ns(me).unwrap();
        assert_eq!(ns_inode(&ns).unwrap(), proc.pid_ns(me).unwrap());
        // The test runs in the host's (or its own top) namespace: no parent to see.
        assert_eq!(ns_parent(&ns).unwrap_err(), Errno::EPERM);
        assert_eq!(proc.pid_ns(i32::MAX), Err(Errno::ENOENT));
    }
}
