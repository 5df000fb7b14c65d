//! A container whose log cannot be stored is refused, not run blind (as Docker refuses a
//! container whose log driver fails): with the log directory on a full tmpfs, or with the
//! log-router out of file descriptors, `engine run` exits 125 naming the log, no record stays
//! and no container process is left; once the cause is gone, the same run works. A log that
//! fills up while its container runs is not refused but counted: `ps` shows the drops.

use harness::{children_of, stderr, stdout, TestSupervisor};
use std::path::{Path, PathBuf};

/// A tiny tmpfs mounted on the supervisor's log directory, unmounted when dropped.
struct TinyTmpfs(PathBuf);

impl TinyTmpfs {
    fn mount(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "size=64k",
                "logfail",
                dir.to_str().unwrap(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {}", dir.display());
        Self(dir.to_path_buf())
    }

    /// Writes a file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
        path
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Sets `RLIMIT_NOFILE` of process `pid` to `new` (if any); returns the limit it had.
fn nofile(pid: i32, new: Option<libc::rlimit>) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let new_ptr = new
        .as_ref()
        .map_or(std::ptr::null(), |n| n as *const libc::rlimit);
    // SAFETY: `new_ptr` is null or points at `new`, a valid rlimit alive for the call; `old`
    // is a valid rlimit for prlimit(2) to write.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, new_ptr, &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    old
}

/// The supervisor's children other than the log-router (container inits still there).
fn inits(sup: &TestSupervisor) -> Vec<i32> {
    let router = sup.router_pid().expect("router running");
    children_of(sup.pid())
        .into_iter()
        .map(|(p, _)| p)
        .filter(|&p| p != router)
        .collect()
}

/// `run` was refused with 125 and a message that says why; nothing of `id` is left.
fn assert_refused(sup: &TestSupervisor, id: &str, want: &[&str]) {
    let out = sup.run_container(id, "echo hi", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "stderr: {err}");
    assert!(stdout(&out).is_empty(), "ran blind: {}", stdout(&out));
    assert!(err.contains("its log cannot be stored"), "{err}");
    for w in want {
        assert!(err.contains(w), "`{err}` lacks `{w}`");
    }
    assert!(
        !sup.ps().iter().any(|c| c.id == id),
        "a record stayed: {:?}",
        sup.ps()
    );
    let left = harness::wait_for(std::time::Duration::from_secs(10), || {
        inits(sup).is_empty().then_some(())
    });
    assert!(left.is_some(), "container inits left: {:?}", inits(sup));
}

#[test]
fn a_full_log_directory_refuses_the_container_and_names_the_log() {
    let sup = TestSupervisor::start();
    let logs = sup.state_dir.join("logs");
    let tmpfs = TinyTmpfs::mount(&logs);
    let filler = tmpfs.fill();
    let log = logs.join("full.log");
    assert_refused(
        &sup,
        "full",
        &[log.to_str().unwrap(), "No space left on device"],
    );
    // Room again: the same id runs and its output is stored.
    std::fs::remove_file(filler).unwrap();
    let out = sup.run_container("full", "echo hi", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    assert!(sup.log_text().contains("start failed"));
    drop(sup);
    drop(tmpfs);
}

#[test]
fn a_router_out_of_fds_refuses_the_container() {
    let sup = TestSupervisor::start();
    let warm = sup.run_container("warm", "echo warm", &[]);
    assert_eq!(warm.status.code(), Some(0), "{}", stderr(&warm));
    let pid = sup.router_pid().expect("router running");
    // The limit bounds fd numbers: at the lowest free one, no fd can be installed.
    let open: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let lowest_free = (0..).find(|n| !open.contains(n)).unwrap();
    let old = nofile(pid, None);
    nofile(
        pid,
        Some(libc::rlimit {
            rlim_cur: lowest_free,
            rlim_max: old.rlim_max,
        }),
    );
    assert_refused(&sup, "starved", &["out of file descriptors"]);
    nofile(pid, Some(old));
    let out = sup.run_container("starved", "echo fed", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "fed\n");
}

#[test]
fn a_log_that_fills_up_while_the_container_runs_counts_as_dropped() {
    let sup = TestSupervisor::start();
    let logs = sup.state_dir.join("logs");
    let tmpfs = TinyTmpfs::mount(&logs);
    let out = sup.engine(&[
        "start",
        "later",
        sup.rootfs("later").to_str().unwrap(),
        "echo before; sleep 2; head -c 8192 /dev/zero | tr '\\0' x; echo",
        "--log-opt",
        "drain-timeout=1s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = harness::wait_for(std::time::Duration::from_secs(10), || {
        (sup.log_bytes("later") == b"before\n").then_some(())
    });
    assert!(stored.is_some(), "{:?}", sup.log_bytes("later"));
    tmpfs.fill();
    let info = sup.wait("later");
    assert_eq!(info.exit_status, Some(0));
    let file = info
        .dropped
        .iter()
        .find(|d| d.sink == "file")
        .unwrap_or_else(|| panic!("no file drops in {:?}", info.dropped));
    // The line did not fit whole: it is counted once, with all its bytes, and `logs` (which
    // reads what the index describes) shows only what was stored before.
    assert_eq!((file.dropped_records, file.dropped_bytes), (1, 8193));
    let logs = sup.engine(&["logs", "later"]);
    assert_eq!(stdout(&logs), "before\n", "{}", stderr(&logs));
    let json = sup.engine(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["dropped"][0]["sink"], "file", "{v}");
    drop(sup);
    drop(tmpfs);
}
