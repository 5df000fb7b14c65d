//! Kernel backend of the memory monitor: registers containers with `/dev/container_monitor`
//! by ioctl (ABI in `proto::kmod_abi`, the file the module compiles too) and turns the module's
//! event records into [`MonitorEvent`]s.
//!
//! The module measures and enforces on its own (its scan interval is its `scan_interval_ms`
//! parameter) and writes the SOFT/HARD lines to the kernel log itself, so this backend writes
//! nothing there. Each [`Backend::tick`] makes one `MONITOR_QUERY_ALL` call: the RSS the last
//! scan measured for every container registered through this open file, and how many event
//! records wait; it reads those records (non-blocking reads until `EAGAIN`) only when some
//! wait. The call names the module scan (generation) of its last answer, and the module lists
//! only the containers whose RSS changed since: an idle tick costs one syscall and nothing
//! per container. On a module without
//! `MONITOR_QUERY_ALL` (`ENOTTY`) it reads the records and makes one `MONITOR_QUERY` per
//! container. An `EVENT_LOST` record (the module's queue for this file was full and dropped
//! records) is logged as a warning with the count lost.

use super::{Backend, BackendKind, MonitorEvent, Tracked};
use nix::errno::Errno;
use proto::kmod_abi::{
    self as abi, MonitorEvent as Record, MonitorQuery, MonitorQueryAll, MonitorRequest,
};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

nix::ioctl_write_ptr_bad!(
    ioctl_register,
    abi::MONITOR_REGISTER,
    [u8; abi::MONITOR_REQUEST_SIZE]
);
nix::ioctl_write_ptr_bad!(
    ioctl_unregister,
    abi::MONITOR_UNREGISTER,
    [u8; abi::MONITOR_REQUEST_SIZE]
);
nix::ioctl_readwrite_bad!(
    ioctl_query,
    abi::MONITOR_QUERY,
    [u8; abi::MONITOR_QUERY_SIZE]
);
nix::ioctl_readwrite_bad!(
    ioctl_query_all,
    abi::MONITOR_QUERY_ALL,
    [u8; abi::MONITOR_QUERY_ALL_SIZE]
);

/// Records read per `read(2)` at most.
const READ_BATCH: usize = 16;

/// The kernel backend: an open handle on the device and the containers registered through it.
#[derive(Debug)]
pub struct KernelBackend {
    device: File,
    path: PathBuf,
    /// Host PID of each tracked container's init → what is known of it.
    tracked: HashMap<i32, Known>,
    /// Buffer of `MONITOR_QUERY_ALL` records, kept between ticks.
    records: Vec<[u8; abi::MONITOR_QUERY_SIZE]>,
    /// Generation (module scan) of the last `MONITOR_QUERY_ALL` answer taken in whole: the
    /// next call asks only for what changed after it.
    generation: u64,
    /// The module answers `MONITOR_QUERY_ALL` (cleared on `ENOTTY` from an older module).
    query_all: bool,
}

/// A tracked container.
#[derive(Debug)]
struct Known {
    id: String,
    /// RSS last reported to the supervisor, in bytes.
    reported: Option<u64>,
}

impl Known {
    /// The event reporting `rss_bytes`, if it is news.
    fn measured(&mut self, rss_bytes: u64) -> Option<MonitorEvent> {
        (self.reported != Some(rss_bytes)).then(|| {
            self.reported = Some(rss_bytes);
            MonitorEvent::Rss {
                id: self.id.clone(),
                rss_bytes,
            }
        })
    }
}

impl KernelBackend {
    /// Opens the device (read-write, non-blocking, close-on-exec). `_interval` is how often
    /// the actor calls [`Backend::tick`]; the module scans at its own `scan_interval_ms`.
    ///
    /// # Errors
    /// One-line reason, e.g. `/dev/container_monitor: Operation not permitted (os error 1)`
    /// without CAP_SYS_ADMIN, or `No such file or directory` when the module is not loaded.
    pub fn open(device: &Path, _interval: Duration) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(device)
            .map_err(|e| format!("{}: {e}", device.display()))?;
        Ok(Self {
            device: file,
            path: device.to_path_buf(),
            tracked: HashMap::new(),
            records: Vec::new(),
            generation: 0,
            query_all: true,
        })
    }

    fn request(&self, tracked: &Tracked) -> Result<[u8; abi::MONITOR_REQUEST_SIZE], String> {
        let container_id = abi::id_field(tracked.id.as_bytes())
            .ok_or_else(|| format!("container id {:?} does not fit the ioctl ABI", tracked.id))?;
        Ok(MonitorRequest {
            pid: tracked.pid,
            soft_limit_bytes: tracked.soft_limit_bytes,
            hard_limit_bytes: tracked.hard_limit_bytes,
            container_id,
        }
        .to_bytes())
    }

    /// Reads every queued record (until `EAGAIN`) and converts them into `out`.
    fn drain_records(&mut self, out: &mut Vec<MonitorEvent>) {
        let mut buf = [0u8; abi::MONITOR_EVENT_SIZE * READ_BATCH];
        loop {
            let n = match self.device.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.push(MonitorEvent::Error {
                        id: None,
                        message: format!("read {}: {e}", self.path.display()),
                    });
                    return;
                }
            };
            for chunk in buf[..n].chunks_exact(abi::MONITOR_EVENT_SIZE) {
                let mut record = [0u8; abi::MONITOR_EVENT_SIZE];
                record.copy_from_slice(chunk);
                let record = Record::from_bytes(&record);
                if record.kind == abi::EVENT_LOST {
                    tracing::warn!(
                        lost = record.rss_bytes,
                        device = %self.path.display(),
                        "the kernel monitor's event queue was full: records lost"
                    );
                    continue;
                }
                if matches!(record.kind, abi::EVENT_HARD_LIMIT_KILLED | abi::EVENT_GONE) {
                    // The module dropped its entry (and not a newer container's that reuses
                    // the pid number: the id tells them apart).
                    if self
                        .tracked
                        .get(&record.pid)
                        .is_some_and(|known| record_is_of(&record, &known.id))
                    {
                        self.tracked.remove(&record.pid);
                    }
                }
                out.extend(event_of(&record));
            }
        }
    }

    /// One `MONITOR_QUERY_ALL` for the RSS that changed since the last answer (a second call
    /// with more room when they did not fit): reports them; returns how many event records
    /// wait.
    fn query_all(&mut self, out: &mut Vec<MonitorEvent>) -> Result<u32, Errno> {
        let mut room = self.records.len().max(16);
        let mut answer = MonitorQueryAll::default();
        for _ in 0..2 {
            if self.records.len() < room {
                self.records.resize(room, [0; abi::MONITOR_QUERY_SIZE]);
            }
            let mut arg = MonitorQueryAll {
                records: self.records.as_mut_ptr() as u64,
                capacity: u32::try_from(room).unwrap_or(u32::MAX),
                generation: self.generation,
                ..MonitorQueryAll::default()
            }
            .to_bytes();
            // SAFETY: `arg` is a live `struct monitor_query_all` that the kernel reads and
            // writes back; `records` points to `capacity` writable 16-byte records of
            // `self.records`, which outlives the call.
            unsafe { ioctl_query_all(self.device.as_raw_fd(), &mut arg) }?;
            answer = MonitorQueryAll::from_bytes(&arg);
            if answer.count <= answer.capacity {
                break;
            }
            // Room for all, and a few registered meanwhile.
            let count = answer.count as usize;
            room = count + count / 8 + 8;
        }
        let written = answer.count.min(answer.capacity) as usize;
        for raw in self.records.iter().take(written) {
            let record = MonitorQuery::from_bytes(raw);
            if let Some(known) = self.tracked.get_mut(&record.pid) {
                out.extend(known.measured(record.rss_bytes));
            }
        }
        if answer.count <= answer.capacity {
            self.generation = answer.generation;
        }
        Ok(answer.pending_events)
    }

    /// One `MONITOR_QUERY` per tracked container (a module without `MONITOR_QUERY_ALL`):
    /// reports the RSS that changed and forgets containers the module no longer has.
    fn query_each(&mut self, out: &mut Vec<MonitorEvent>) {
        let fd = self.device.as_raw_fd();
        let mut ended = Vec::new();
        for (&pid, known) in &mut self.tracked {
            let mut query = MonitorQuery {
                pid,
                ..MonitorQuery::default()
            }
            .to_bytes();
            // SAFETY: `fd` is the open device; `query` is a live 16-byte buffer that the
            // kernel reads and writes back (`_IOWR` of `struct monitor_query`).
            match unsafe { ioctl_query(fd, &mut query) } {
                Ok(_) => out.extend(known.measured(MonitorQuery::from_bytes(&query).rss_bytes)),
                // Ended since the records were read; its GONE record comes next tick.
                Err(Errno::ENOENT) => ended.push(pid),
                Err(e) => out.push(MonitorEvent::Error {
                    id: Some(known.id.clone()),
                    message: format!("MONITOR_QUERY pid {pid}: {}", e.desc()),
                }),
            }
        }
        for pid in ended {
            self.tracked.remove(&pid);
        }
    }
}

/// Whether `record` names the container `id`.
fn record_is_of(record: &Record, id: &str) -> bool {
    abi::id_bytes(&record.container_id) == Some(id.as_bytes())
}

/// The supervisor-side event of a module record (`None` for `EVENT_GONE` and unknown kinds:
/// the supervisor learns of an exit from `waitpid`).
fn event_of(record: &Record) -> Option<MonitorEvent> {
    let id = abi::id_bytes(&record.container_id)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    match record.kind {
        abi::EVENT_SOFT_LIMIT => Some(MonitorEvent::SoftLimit {
            id,
            pid: record.pid,
            rss_bytes: record.rss_bytes,
            limit_bytes: record.limit_bytes,
        }),
        abi::EVENT_HARD_LIMIT_KILLED => Some(MonitorEvent::HardLimitKilled {
            id,
            pid: record.pid,
            rss_bytes: record.rss_bytes,
            limit_bytes: record.limit_bytes,
        }),
        _ => None,
    }
}

impl Backend for KernelBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kernel
    }

    fn register(&mut self, tracked: &Tracked) -> Result<(), String> {
        let request = self.request(tracked)?;
        // SAFETY: the device fd is open; `request` is a live 56-byte `struct monitor_request`
        // that the kernel only reads (`_IOW`).
        unsafe { ioctl_register(self.device.as_raw_fd(), &request) }.map_err(|e| {
            format!(
                "MONITOR_REGISTER {} pid {}: {}",
                tracked.id,
                tracked.pid,
                e.desc()
            )
        })?;
        let known = Known {
            id: tracked.id.clone(),
            reported: None,
        };
        self.tracked.insert(tracked.pid, known);
        Ok(())
    }

    fn unregister(&mut self, id: &str, pid: i32) -> Result<(), String> {
        self.tracked.remove(&pid);
        let request = MonitorRequest {
            pid,
            soft_limit_bytes: 0,
            hard_limit_bytes: 0,
            container_id: abi::id_field(id.as_bytes()).unwrap_or([0; abi::CONTAINER_ID_LEN]),
        }
        .to_bytes();
        // SAFETY: as in `register`.
        match unsafe { ioctl_unregister(self.device.as_raw_fd(), &request) } {
            // ENOENT: the module already dropped it (hard-limit kill, or exited and scanned).
            Ok(_) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(format!("MONITOR_UNREGISTER {id} pid {pid}: {}", e.desc())),
        }
    }

    fn tick(&mut self, out: &mut Vec<MonitorEvent>) {
        if self.tracked.is_empty() {
            // Records of containers unregistered since may still wait.
            self.drain_records(out);
            return;
        }
        if self.query_all {
            match self.query_all(out) {
                Ok(0) => return,
                Ok(_) => {}
                Err(Errno::ENOTTY) => self.query_all = false,
                Err(e) => out.push(MonitorEvent::Error {
                    id: None,
                    message: format!("MONITOR_QUERY_ALL: {}", e.desc()),
                }),
            }
            if self.query_all {
                self.drain_records(out);
                return;
            }
        }
        self.drain_records(out);
        self.query_each(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32) -> Record {
        Record {
            kind,
            pid: 42,
            rss_bytes: 50 << 20,
            limit_bytes: 40 << 20,
            container_id: abi::id_field(b"hog").unwrap(),
        }
    }

    #[test]
    fn records_become_monitor_events() {
        assert_eq!(
            event_of(&record(abi::EVENT_SOFT_LIMIT)),
            Some(MonitorEvent::SoftLimit {
                id: "hog".into(),
                pid: 42,
                rss_bytes: 50 << 20,
                limit_bytes: 40 << 20,
            })
        );
        assert_eq!(
            event_of(&record(abi::EVENT_HARD_LIMIT_KILLED)),
            Some(MonitorEvent::HardLimitKilled {
                id: "hog".into(),
                pid: 42,
                rss_bytes: 50 << 20,
                limit_bytes: 40 << 20,
            })
        );
        assert_eq!(event_of(&record(abi::EVENT_GONE)), None);
        assert_eq!(event_of(&record(abi::EVENT_LOST)), None);
        assert_eq!(event_of(&record(99)), None);
    }

    #[test]
    fn a_record_names_its_container_by_id() {
        assert!(record_is_of(&record(abi::EVENT_GONE), "hog"));
        assert!(!record_is_of(&record(abi::EVENT_GONE), "hog2"));
        assert!(!record_is_of(&record(abi::EVENT_GONE), "ho"));
    }

    #[test]
    fn limit_lines_match_the_module() {
        let e = event_of(&record(abi::EVENT_SOFT_LIMIT)).unwrap();
        assert_eq!(
            e.limit_line().unwrap(),
            "[container_monitor] SOFT LIMIT container=hog pid=42 rss=52428800 limit=41943040"
        );
    }

    #[test]
    fn rss_is_reported_only_when_it_changes() {
        let mut known = Known {
            id: "c".into(),
            reported: None,
        };
        let rss = |rss_bytes| MonitorEvent::Rss {
            id: "c".into(),
            rss_bytes,
        };
        assert_eq!(known.measured(4096), Some(rss(4096)));
        assert_eq!(known.measured(4096), None);
        assert_eq!(known.measured(8192), Some(rss(8192)));
    }

    #[test]
    fn open_reports_a_missing_device() {
        let err = KernelBackend::open(Path::new("/nonexistent/container_monitor"), Duration::ZERO)
            .unwrap_err();
        assert!(err.starts_with("/nonexistent/container_monitor: "), "{err}");
    }

    #[test]
    fn ioctl_numbers_match_the_c_header() {
        // The nix wrappers take the request numbers from proto; pin them to the seed header.
        assert_eq!(abi::MONITOR_REGISTER, 0x4038_4D01);
        assert_eq!(abi::MONITOR_UNREGISTER, 0x4038_4D02);
    }
}
