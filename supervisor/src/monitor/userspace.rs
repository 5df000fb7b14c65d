//! Userspace backend of the memory monitor, used when `/dev/container_monitor` is absent.
//!
//! Each tick makes one pass over `/proc`: every process is mapped to its tracked container
//! by PID namespace (the inode of `/proc/<pid>/ns/pid` equals that of the container's init,
//! read at registration; the init itself lives in the new namespace), so the cost grows with
//! the number of processes, not containers × processes. A process in a PID namespace nested
//! inside a container's is a member of the container's namespace too and counts for it: a
//! namespace that is not a tracked container's is resolved through its ancestors
//! (`NS_GET_PARENT`, see [`ns_owner`]) and the answer cached per namespace. A process's
//! namespace never changes, so it is looked up once per process and cached by pid; for processes of tracked
//! containers the `statm` file is kept open (within a descriptor budget) and re-read with
//! one `pread(2)` per tick.
//!
//! RSS of a container = Σ over its processes of `statm` resident pages (RssAnon + RssFile +
//! RssShmem) × page size, each address space once. Threads share their process's `/proc`
//! entry, so they are never counted twice. A process whose leader (main thread) has exited
//! while other threads run shows an all-zero `statm` (the leader has no `mm` any more): its
//! memory is read from a live thread's `/proc/<pid>/task/<tid>/statm` instead. Processes that share an address space without
//! being threads (`CLONE_VM`, e.g. during `vfork`) show identical `statm` values; among
//! the processes of one container with identical values, `kcmp(KCMP_VM)` decides which share
//! an `mm_struct`, and each shared one is counted once. A process found to share with none
//! is remembered as owning its address space and not compared again (a later sharer is a
//! newer process, compared when it appears); that memory is reset every few seconds. (Two
//! sharers whose values were read while the address space was changing can differ and are
//! then counted twice for that scan.)
//!
//! Limits: the first time RSS > soft, one `SoftLimit` event and one line; when RSS > hard,
//! SIGKILL to the container's init (the kernel then kills the rest of its namespace), one
//! `HardLimitKilled` event and one line (preceded by the soft ones if not yet reported), and
//! the entry is removed. Lines go to `/dev/kmsg` and to the supervisor log. An `Rss` event is
//! sent when a container's RSS differs from the last one sent (so, the first measurement and
//! each change). Entries whose init is gone are dropped silently.

mod ns_owner;

use super::kmsg::KmsgWriter;
use super::procfs::{self, ProcFs, Statm, STATM_BUF_LEN};
use super::{Backend, BackendKind, MonitorEvent, Tracked};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ns_owner::NsOwners;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Every this many ticks, cached namespaces of processes whose `statm` is not held open, and
/// the owners of nested namespaces, are forgotten and looked up again, in case a pid or a
/// namespace inode was reused between two scans.
const REFRESH_TICKS: u64 = 64;

/// Why the userspace backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum UserspaceError {
    /// `/proc` could not be opened.
    #[error("cannot open {path}: {source}")]
    OpenProc {
        /// The proc mount point.
        path: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The monitor's own PID namespace could not be read.
    #[error("cannot read the monitor's own PID namespace: {0}")]
    OwnNamespace(#[source] Errno),
}

/// One tracked container.
#[derive(Debug)]
struct Entry {
    tracked: Tracked,
    soft_reported: bool,
    last_rss: Option<u64>,
    /// Resident pages summed over the current scan.
    pages: u64,
    /// Generation of the last scan that saw the init process.
    init_seen: u64,
}

/// What is cached about one process id.
#[derive(Debug)]
struct ProcSlot {
    /// Inode of its (innermost) PID namespace.
    ns: u64,
    /// `/proc/<pid>/statm`, held open while the process belongs to a tracked container.
    statm: Option<OwnedFd>,
    /// Generation of the last scan that listed it.
    seen: u64,
    /// `kcmp` found its address space shared with no other process of its container. Any
    /// process that shares it later is newer and not verified, so it is compared then.
    own_mm: bool,
}

/// One process of a tracked container, measured this scan.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// PID-namespace inode of the container it counts for.
    ns: u64,
    statm: Statm,
    /// The task whose address space was read: the process, or one of its threads when its
    /// leader has exited (what `kcmp` compares).
    pid: i32,
    own_mm: bool,
}

/// The `/proc` scanner. See the module documentation.
#[derive(Debug)]
pub struct UserspaceBackend {
    proc: ProcFs,
    page_size: u64,
    own_ns: u64,
    /// Tracked containers by PID-namespace inode.
    entries: HashMap<u64, Entry>,
    /// Processes seen in the last scan, by pid.
    procs: HashMap<i32, ProcSlot>,
    /// Tracked container of each nested namespace seen in the last scan.
    nested: NsOwners,
    generation: u64,
    /// Most `statm` descriptors held open at once.
    fd_budget: usize,
    fds_open: usize,
    // Buffers reused across scans.
    pids: Vec<i32>,
    samples: Vec<Sample>,
    reps: Vec<i32>,
    verified: Vec<i32>,
    statm_buf: [u8; STATM_BUF_LEN],
    kmsg: KmsgWriter,
    list_error_reported: bool,
}

impl UserspaceBackend {
    /// Opens `/proc` and `/dev/kmsg`.
    ///
    /// # Errors
    /// [`UserspaceError`] when `/proc` is unusable.
    pub fn new() -> Result<Self, UserspaceError> {
        Self::with_parts(Path::new("/proc"), KmsgWriter::open())
    }

    /// Like [`new`](Self::new), with another proc mount and kernel-log writer.
    ///
    /// # Errors
    /// [`UserspaceError`] when `proc_root` is unusable.
    pub fn with_parts(proc_root: &Path, kmsg: KmsgWriter) -> Result<Self, UserspaceError> {
        let proc = ProcFs::open(proc_root).map_err(|source| UserspaceError::OpenProc {
            path: proc_root.display().to_string(),
            source,
        })?;
        let own_ns = proc
            .pid_ns(std::process::id() as i32)
            .map_err(UserspaceError::OwnNamespace)?;
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or(4096);
        // Keep three quarters of the descriptor limit for the rest of the supervisor.
        let fd_budget = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| usize::try_from(soft / 4).unwrap_or(usize::MAX))
            .unwrap_or(256);
        Ok(Self {
            proc,
            page_size,
            own_ns,
            entries: HashMap::new(),
            procs: HashMap::new(),
            nested: NsOwners::default(),
            generation: 0,
            fd_budget,
            fds_open: 0,
            pids: Vec::new(),
            samples: Vec::new(),
            reps: Vec::new(),
            verified: Vec::new(),
            statm_buf: [0; STATM_BUF_LEN],
            kmsg,
            list_error_reported: false,
        })
    }

    /// Number of tracked containers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no container is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the container whose init is `pid` is tracked.
    pub fn is_tracked(&self, pid: i32) -> bool {
        self.entries.values().any(|e| e.tracked.pid == pid)
    }

    /// What is cached about the PID namespace with inode `ns` that is neither a tracked
    /// container's nor the monitor's own: `Some(Some(c))` when it is nested in the tracked
    /// container whose namespace inode is `c`, `Some(None)` when in none, `None` when nothing
    /// is cached (no process of the last scan was in it). For tests and diagnostics.
    pub fn cached_owner(&self, ns: u64) -> Option<Option<u64>> {
        self.nested.cached(ns)
    }

    /// Lists processes, maps them to tracked containers and fills `self.samples`.
    fn scan(&mut self) -> Result<(), Errno> {
        let generation = self.generation;
        self.proc.list_pids(&mut self.pids)?;
        self.samples.clear();
        for &pid in &self.pids {
            let slot = match self.procs.entry(pid) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => match self.proc.pid_ns(pid) {
                    Ok(ns) => v.insert(ProcSlot {
                        ns,
                        statm: None,
                        seen: 0,
                        own_mm: false,
                    }),
                    // Gone since the listing, or not accessible: not ours to count.
                    Err(_) => continue,
                },
            };
            slot.seen = generation;
            let container = if self.entries.contains_key(&slot.ns) {
                slot.ns
            } else if slot.ns == self.own_ns {
                continue;
            } else {
                let entries = &self.entries;
                let tracked = |ns| entries.contains_key(&ns);
                let owner =
                    self.nested
                        .owner(&self.proc, pid, slot.ns, generation, tracked, self.own_ns);
                match owner {
                    Some(container) => container,
                    None => continue,
                }
            };
            let Some(entry) = self.entries.get_mut(&container) else {
                continue;
            };
            if slot.statm.is_none() && self.fds_open < self.fd_budget {
                if let Ok(fd) = self.proc.open_statm(pid) {
                    slot.statm = Some(fd);
                    self.fds_open += 1;
                }
            }
            let statm = match &slot.statm {
                Some(fd) => procfs::read_statm(fd, &mut self.statm_buf),
                None => self.proc.statm(pid, &mut self.statm_buf),
            };
            match statm {
                Ok(statm) => {
                    if pid == entry.tracked.pid {
                        entry.init_seen = generation;
                    }
                    // No address space on the leader: it has exited while other threads
                    // run (or the process is a zombie); measure a live thread's.
                    let (vm_pid, statm) = if statm.size == 0 {
                        match self.proc.live_thread_statm(pid, &mut self.statm_buf) {
                            Ok(Some(found)) => found,
                            Ok(None) | Err(_) => (pid, statm),
                        }
                    } else {
                        (pid, statm)
                    };
                    self.samples.push(Sample {
                        ns: container,
                        statm,
                        pid: vm_pid,
                        own_mm: slot.own_mm && vm_pid == pid,
                    });
                }
                // Reaped since the listing, or the pid now names another process: forget
                // the slot so that the next scan looks the pid up afresh.
                Err(_) => slot.seen = 0,
            }
        }
        let refresh = generation.is_multiple_of(REFRESH_TICKS);
        self.nested.end_scan(generation, refresh);
        let fds_open = &mut self.fds_open;
        self.procs.retain(|_, slot| {
            let keep = slot.seen == generation && !(refresh && slot.statm.is_none());
            if !keep && slot.statm.is_some() {
                *fds_open -= 1;
            }
            slot.own_mm &= !refresh;
            keep
        });
        Ok(())
    }

    /// Sums the samples into `entry.pages`, counting each address space once.
    fn sum_samples(&mut self) {
        for entry in self.entries.values_mut() {
            entry.pages = 0;
        }
        self.samples
            .sort_unstable_by_key(|s| (s.ns, s.statm, s.pid));
        let mut rest = &self.samples[..];
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|s| s.ns == first.ns && s.statm == first.statm)
                .count();
            let copies = if run == 1 {
                1
            } else {
                count_distinct_vm(&rest[..run], &mut self.reps, &mut self.verified)
            };
            if let Some(entry) = self.entries.get_mut(&first.ns) {
                entry.pages += first.statm.resident * copies;
            }
            rest = &rest[run..];
        }
        for pid in self.verified.drain(..) {
            if let Some(slot) = self.procs.get_mut(&pid) {
                slot.own_mm = true;
            }
        }
    }

    /// Reports and enforces limits; drops entries whose init is gone.
    fn enforce(&mut self, out: &mut Vec<MonitorEvent>) {
        let tracked_before = self.entries.len();
        let generation = self.generation;
        let page_size = self.page_size;
        let kmsg = &mut self.kmsg;
        self.entries.retain(|_, entry| {
            let t = &entry.tracked;
            if entry.init_seen != generation {
                tracing::debug!(id = %t.id, pid = t.pid, "init gone; no longer monitored");
                return false;
            }
            let rss = entry.pages * page_size;
            if entry.last_rss != Some(rss) {
                entry.last_rss = Some(rss);
                out.push(MonitorEvent::Rss {
                    id: t.id.clone(),
                    rss_bytes: rss,
                });
            }
            if rss > t.soft_limit_bytes && !entry.soft_reported {
                entry.soft_reported = true;
                report(
                    kmsg,
                    out,
                    MonitorEvent::SoftLimit {
                        id: t.id.clone(),
                        pid: t.pid,
                        rss_bytes: rss,
                        limit_bytes: t.soft_limit_bytes,
                    },
                );
            }
            if rss <= t.hard_limit_bytes {
                return true;
            }
            match kill(Pid::from_raw(t.pid), Signal::SIGKILL) {
                Ok(()) => report(
                    kmsg,
                    out,
                    MonitorEvent::HardLimitKilled {
                        id: t.id.clone(),
                        pid: t.pid,
                        rss_bytes: rss,
                        limit_bytes: t.hard_limit_bytes,
                    },
                ),
                // It died by itself meanwhile.
                Err(Errno::ESRCH) => {}
                Err(e) => out.push(MonitorEvent::Error {
                    id: Some(t.id.clone()),
                    message: format!("SIGKILL to pid {} at the hard limit: {e}", t.pid),
                }),
            }
            false
        });
        if self.entries.len() != tracked_before {
            self.nested.clear();
        }
    }
}

/// Writes a limit event's line to the kernel log and the supervisor log, then queues it.
fn report(kmsg: &mut KmsgWriter, out: &mut Vec<MonitorEvent>, event: MonitorEvent) {
    if let Some(line) = event.limit_line() {
        tracing::warn!("{line}");
        kmsg.write_line(&line);
    }
    out.push(event);
}

/// How many distinct address spaces the processes of `run` have (all have the same `statm`
/// values). Processes already known to own theirs are distinct from each other; each other
/// one is compared by `kcmp` with those and with the distinct ones found before it, and
/// pushed to `verified` when it shares with none. `reps` is scratch space. A process that
/// `kcmp` cannot compare counts as distinct but stays unverified.
fn count_distinct_vm(run: &[Sample], reps: &mut Vec<i32>, verified: &mut Vec<i32>) -> u64 {
    reps.clear();
    reps.extend(run.iter().filter(|s| s.own_mm).map(|s| s.pid));
    for sample in run.iter().filter(|s| !s.own_mm) {
        let mut comparable = true;
        let shares = reps
            .iter()
            .any(|&rep| match procfs::cmp_vm(sample.pid, rep) {
                Some(order) => order == Ordering::Equal,
                None => {
                    comparable = false;
                    false
                }
            });
        if !shares {
            reps.push(sample.pid);
            if comparable {
                verified.push(sample.pid);
            }
        }
    }
    reps.len() as u64
}

impl Backend for UserspaceBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Userspace
    }

    fn register(&mut self, tracked: &Tracked) -> Result<(), String> {
        let (id, pid) = (&tracked.id, tracked.pid);
        if tracked.soft_limit_bytes > tracked.hard_limit_bytes {
            return Err(format!(
                "container {id}: soft limit is above the hard limit"
            ));
        }
        if pid <= 0 || self.is_tracked(pid) {
            return Err(format!(
                "container {id}: pid {pid} is invalid or already tracked"
            ));
        }
        let gone = |e: Errno| format!("container {id}: pid {pid}: {e}");
        let ns = self.proc.pid_ns(pid).map_err(gone)?;
        if ns == self.own_ns
            || self
                .proc
                .nspid_innermost(pid)
                .map_err(gone)?
                .is_some_and(|p| p != 1)
        {
            return Err(format!(
                "container {id}: pid {pid} is not the init of its own PID namespace"
            ));
        }
        if self.entries.contains_key(&ns) {
            return Err(format!(
                "container {id}: its PID namespace is already tracked"
            ));
        }
        self.nested.clear();
        self.entries.insert(
            ns,
            Entry {
                tracked: tracked.clone(),
                soft_reported: false,
                last_rss: None,
                pages: 0,
                init_seen: 0,
            },
        );
        Ok(())
    }

    /// Unregistering a container that is not tracked (its init exited, or it was killed at
    /// the hard limit) is not an error.
    fn unregister(&mut self, _id: &str, pid: i32) -> Result<(), String> {
        let tracked_before = self.entries.len();
        self.entries.retain(|_, e| e.tracked.pid != pid);
        if self.entries.len() != tracked_before {
            self.nested.clear();
        }
        Ok(())
    }

    fn tick(&mut self, out: &mut Vec<MonitorEvent>) {
        if self.entries.is_empty() {
            // Nothing to measure: release the cache and its descriptors.
            self.procs.clear();
            self.nested.clear();
            self.fds_open = 0;
            return;
        }
        self.generation += 1;
        if let Err(e) = self.scan() {
            if !self.list_error_reported {
                self.list_error_reported = true;
                out.push(MonitorEvent::Error {
                    id: None,
                    message: format!("cannot list /proc: {e}"),
                });
            }
            return;
        }
        self.sum_samples();
        self.enforce(out);
    }
}
