// SPDX-License-Identifier: GPL-2.0

//! The registered containers (a `kernel::list` under a sleeping mutex) and the periodic scan
//! (delayed work on `system_long`, the system workqueue for work that may take a while: it
//! runs in process context and may take the mutex; 7.3's `system()` is the deprecated
//! `system_wq`). The work is armed by the first registration and re-armed each period while entries
//! remain; `stop` sets `stopping` under the mutex and flushes it, so it never runs again.

use kernel::{
    bindings,
    list::{impl_list_arc_safe, impl_list_item, List, ListArc, ListLinks},
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        rcu, Arc, Mutex,
    },
    time::{msecs_to_jiffies, Jiffies},
    workqueue::{
        self, impl_has_delayed_work, new_delayed_work, DelayedWork, HasWork, Work, WorkItem,
    },
};

use crate::{
    abi::{self, MonitorRequest, CONTAINER_ID_LEN},
    event,
    events::EventQueue,
    id_text, log,
    mmcache::MmCache,
    pid::PidRef,
    scan::Tally,
};

mod measure;

/// How often a scan retries with a larger `shared_mm` before it gives up for this period
/// (logged; the next period scans again).
const WALK_TRIES: usize = 4;

/// One registered container.
#[pin_data]
struct Entry {
    #[pin]
    links: ListLinks,
    /// The container's init, held since registration.
    pid: PidRef,
    /// Its number in the registering task's PID namespace (what ioctls name it by).
    nr: i32,
    id: [u8; CONTAINER_ID_LEN],
    soft_limit: u64,
    hard_limit: u64,
    soft_reported: Atomic<bool>,
    /// Last measured RSS, in bytes.
    rss: Atomic<u64>,
    /// The scan (generation) that last changed `rss`; 0 before the first.
    changed: Atomic<u64>,
    /// Where this entry's event records go: the file that registered it.
    events: Arc<EventQueue>,
}

impl_list_arc_safe! {
    impl ListArcSafe<0> for Entry { untracked; }
}
impl_list_item! {
    impl ListItem<0> for Entry { using ListLinks { self.links }; }
}

impl Entry {
    fn emit(&self, kind: u32, rss: u64, limit: u64) {
        self.events.push(event(kind, self.nr, rss, limit, &self.id));
    }
}

/// What `MONITOR_QUERY_ALL` answers from, rebuilt at the end of each scan (generation
/// `generation`, the scan's number): per entry, `file` (the id of its [`EventQueue`], unique
/// since load, so a file opened later never matches a closed one's entries),
/// `pid`, `rss` in bytes and `changed`, the generation that last changed `rss`.
struct Snapshot {
    generation: u64,
    records: KVec<SnapshotRecord>,
}

#[derive(Clone, Copy)]
struct SnapshotRecord {
    file: u64,
    pid: i32,
    rss: u64,
    changed: u64,
}

/// A `MONITOR_QUERY_ALL` answer: records written into the caller's `out`, and these.
pub(crate) struct QueryAll {
    /// Records that matched (more than written when the room was short).
    pub(crate) count: usize,
    /// The snapshot's generation.
    pub(crate) generation: u64,
}

/// Everything the mutex protects.
struct State {
    entries: List<Entry>,
    /// The scan work is queued or running and will re-arm itself.
    armed: bool,
    /// The module is unloading: do not arm or re-arm.
    stopping: bool,
    /// Scratch space of the scan, kept between periods to avoid reallocating. `keys` (sorted
    /// key → position in `entries`) is rebuilt only when `keys_stale`: after the list changed.
    keys: KVec<(usize, usize)>,
    keys_stale: bool,
    tallies: KVec<Tally>,
    shared_mm: KVec<usize>,
    /// Address spaces pinned between scans (read without `task_lock`).
    mm_cache: MmCache,
    /// The next snapshot, built here and swapped with [`Monitor::snapshot`].
    next_snapshot: Snapshot,
    /// Scans since load, and those that re-read some container exactly (near a limit).
    scans: u64,
    exact_scans: u64,
    /// Scans that could not measure (out of memory) since load, and in the current streak.
    failed_scans: u64,
    failing: u64,
}

/// The monitor: shared by the module and every open file.
#[pin_data]
pub(crate) struct Monitor {
    #[pin]
    state: Mutex<State>,
    /// RSS of the last scan for `MONITOR_QUERY_ALL`, under a lock of its own: a query never
    /// waits for (or spins on) a scan in progress.
    #[pin]
    snapshot: Mutex<Snapshot>,
    #[pin]
    work: DelayedWork<Monitor>,
    interval: Jiffies,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Monitor { self.work }
}

impl WorkItem for Monitor {
    type Pointer = Arc<Monitor>;

    fn run(this: Arc<Monitor>) {
        let mut state = this.state.lock();
        if state.stopping {
            state.armed = false;
            return;
        }
        state.scan();
        if state.entries.is_empty() {
            // Nothing left to scan (and no scan until a registration): drop every pin.
            let _ = state.mm_cache.settle();
        }
        state.publish(&this.snapshot);
        // Re-armed under the lock, so `stop` either sees it queued (and flushes it) or the
        // next run sees `stopping`.
        state.armed = !state.entries.is_empty();
        if state.armed {
            let _ = workqueue::system_long().enqueue_delayed(this.clone(), this.interval);
        }
    }
}

impl Monitor {
    /// A monitor that scans every `interval_ms` milliseconds once something is registered.
    pub(crate) fn new(interval_ms: u32) -> Result<Arc<Self>> {
        let state = State {
            entries: List::new(),
            armed: false,
            stopping: false,
            keys: KVec::new(),
            keys_stale: true,
            tallies: KVec::new(),
            shared_mm: KVec::new(),
            mm_cache: MmCache::new(),
            next_snapshot: Snapshot {
                generation: 0,
                records: KVec::new(),
            },
            scans: 0,
            exact_scans: 0,
            failed_scans: 0,
            failing: 0,
        };
        Arc::pin_init(
            pin_init!(Self {
                state <- new_mutex!(state, "Monitor::state"),
                snapshot <- new_mutex!(
                    Snapshot {
                        generation: 0,
                        records: KVec::new(),
                    },
                    "Monitor::snapshot"
                ),
                work <- new_delayed_work!("Monitor::work"),
                interval: msecs_to_jiffies(interval_ms).max(1),
            }),
            GFP_KERNEL,
        )
    }

    /// `MONITOR_REGISTER`: starts tracking `request.pid`; its events go to `events`. The
    /// entry is the process (its `struct pid`), not the number: a number whose previous
    /// process exited but is still listed (not scanned yet) can be registered again.
    ///
    /// # Errors
    /// `EINVAL` (pid ≤ 0, soft > hard, id empty or without NUL, that process already
    /// registered, a thread id or a kernel thread), `ESRCH` (no such process), `ENOMEM`.
    pub(crate) fn register(
        this: &Arc<Self>,
        request: &MonitorRequest,
        events: &Arc<EventQueue>,
    ) -> Result {
        let id = abi::id_bytes(&request.container_id).ok_or(EINVAL)?;
        if request.pid <= 0 || id.is_empty() || request.soft_limit_bytes > request.hard_limit_bytes
        {
            return Err(EINVAL);
        }
        let pid = PidRef::find(request.pid).ok_or(ESRCH)?;
        pid.check_process()?;
        let entry = ListArc::pin_init(
            try_pin_init!(Entry {
                links <- ListLinks::new(),
                pid,
                nr: request.pid,
                id: request.container_id,
                soft_limit: request.soft_limit_bytes,
                hard_limit: request.hard_limit_bytes,
                soft_reported: Atomic::new(false),
                rss: Atomic::new(0),
                changed: Atomic::new(0),
                events: events.clone(),
            }),
            GFP_KERNEL,
        )?;
        let mut state = this.state.lock();
        if state.stopping {
            return Err(ENODEV);
        }
        if state.entries.iter().any(|e| e.pid.as_ptr() == entry.pid.as_ptr()) {
            return Err(EINVAL);
        }
        log!(
            "Registering container={} pid={} soft={} hard={}\n",
            id_text(&request.container_id),
            request.pid,
            request.soft_limit_bytes,
            request.hard_limit_bytes
        );
        state.entries.push_back(entry);
        state.keys_stale = true;
        if !state.armed {
            state.armed = true;
            let _ = workqueue::system_long().enqueue_delayed(this.clone(), this.interval);
        }
        Ok(())
    }

    /// `MONITOR_UNREGISTER`: stops tracking the entry `request.pid` names among those
    /// registered through `events`' file (see [`State::find`]; the id decides between two
    /// entries of one number).
    ///
    /// # Errors
    /// `ENOENT` when this file registered no entry of that number.
    pub(crate) fn unregister(&self, request: &MonitorRequest, events: &EventQueue) -> Result {
        log!(
            "Unregister request container={} pid={}\n",
            id_text(&request.container_id),
            request.pid
        );
        let live = PidRef::find(request.pid);
        let mut state = self.state.lock();
        let state = &mut *state;
        let file = events.id();
        let at = state
            .find(request.pid, live.as_ref(), |e| {
                let same_id = abi::id_bytes(&e.id) == abi::id_bytes(&request.container_id);
                (e.events.id() == file).then_some(same_id)
            })
            .ok_or(ENOENT)?;
        let mut cursor = state.entries.cursor_front();
        for _ in 0..at {
            cursor.move_next();
        }
        if let Some(next) = cursor.peek_next() {
            drop(next.remove());
            state.keys_stale = true;
        }
        Ok(())
    }

    /// `MONITOR_QUERY`: the last measured RSS of the container `pid` names (any file's; see
    /// [`State::find`]), in bytes.
    ///
    /// # Errors
    /// `ENOENT` when that pid is not registered.
    pub(crate) fn rss_of(&self, pid: i32) -> Result<u64> {
        let live = PidRef::find(pid);
        let state = self.state.lock();
        let at = state
            .find(pid, live.as_ref(), |_| Some(false))
            .ok_or(ENOENT)?;
        let rss = state
            .entries
            .iter()
            .nth(at)
            .map(|e| e.rss.load(Relaxed));
        rss.ok_or(ENOENT)
    }

    /// `MONITOR_QUERY_ALL`: `(pid, RSS in bytes)` measured by the last scan for the entries
    /// whose events go to `events` (those registered through one open file) and whose RSS
    /// changed in a scan after generation `since` (0: all), at most `room` of them, into
    /// `out`. An entry registered since the last scan is not listed yet; one removed since is
    /// still listed.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn rss_all(
        &self,
        events: &Arc<EventQueue>,
        since: u64,
        room: usize,
        out: &mut KVVec<(i32, u64)>,
    ) -> Result<QueryAll> {
        // Allocated before the lock (up to 1 MiB: kvmalloc, and no warning when it fails).
        out.reserve(room, GFP_KERNEL | __GFP_NOWARN)?;
        let file = events.id();
        let snapshot = self.snapshot.lock();
        let mut count = 0;
        for record in snapshot.records.iter() {
            if record.file == file && record.changed > since {
                count += 1;
                // Past `room`, only counted.
                let _ = out.push_within_capacity((record.pid, record.rss));
            }
        }
        Ok(QueryAll {
            count,
            generation: snapshot.generation,
        })
    }

    /// Stops the scan for good: nothing arms it afterwards, and a queued or running instance
    /// has finished when this returns.
    pub(crate) fn stop(&self) {
        self.state.lock().stopping = true;
        let work = core::ptr::from_ref(self).cast_mut();
        // SAFETY: `work` points to this live `Monitor`, so `raw_get_work` gives its `Work`,
        // `raw_get` the `work_struct`, which is the `work` field of the `delayed_work` that
        // `DelayedWork` wraps (`HasDelayedWork`). `flush_delayed_work` may sleep: no lock is
        // held here.
        unsafe {
            let work = <Monitor as HasWork<Monitor>>::raw_get_work(work);
            let work = Work::raw_get(work);
            let dwork = kernel::container_of!(work, bindings::delayed_work, work);
            bindings::flush_delayed_work(dwork);
        }
    }

    /// Scans since load: `(complete, with an exact re-read near a limit, failed)`.
    pub(crate) fn scan_counts(&self) -> (u64, u64, u64) {
        let state = self.state.lock();
        (state.scans, state.exact_scans, state.failed_scans)
    }

    /// Frees every entry (after `stop`); returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut state = self.state.lock();
        let mut freed = 0;
        while let Some(entry) = state.entries.pop_front() {
            drop(entry);
            freed += 1;
        }
        state.keys_stale = true;
        freed
    }
}

impl State {
    /// The position of the entry that the number `nr` names, among those `eligible` accepts
    /// (`Some(preferred)`; `None`: not eligible): of the entries registered under that
    /// number, the preferred one, else the one that is the process `live` (what `nr` names
    /// now), else the first (a process that has exited since).
    fn find(
        &self,
        nr: i32,
        live: Option<&PidRef>,
        eligible: impl Fn(&Entry) -> Option<bool>,
    ) -> Option<usize> {
        let live = live.map(PidRef::as_ptr);
        let mut best: Option<(u8, usize)> = None;
        for (at, entry) in self.entries.iter().enumerate() {
            if entry.nr != nr {
                continue;
            }
            let Some(preferred) = eligible(&entry) else {
                continue;
            };
            let rank = if preferred {
                2
            } else {
                u8::from(Some(entry.pid.as_ptr()) == live)
            };
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, at));
            }
        }
        best.map(|(_, at)| at)
    }

    /// One scan: measure every entry, then apply the limits and drop exited entries. A scan
    /// that cannot measure (out of memory) decides nothing: the first failure of a streak is
    /// logged, the next period scans again, and the end of the streak is logged too.
    fn scan(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        if let Err(e) = self.measure() {
            self.failed_scans += 1;
            self.failing += 1;
            if self.failing == 1 {
                log!(
                    "Scan failed ({:?}): no limit checked in this period; retrying in the next\n",
                    e
                );
            }
            return;
        }
        if self.failing > 0 {
            log!("Scan recovered after {} failed periods\n", self.failing);
            self.failing = 0;
        }
        self.scans += 1;
        // Which inits have exited, all under one RCU read lock.
        {
            let guard = rcu::read_lock();
            for (entry, tally) in self.entries.iter().zip(self.tallies.iter_mut()) {
                tally.exited = entry.pid.has_exited_rcu(&guard);
            }
        }
        let mut index = 0;
        let mut cursor = self.entries.cursor_front();
        while let Some(next) = cursor.peek_next() {
            let (pages, exited) = self
                .tallies
                .get(index)
                .map_or((0, false), |t| (t.pages, t.exited));
            index += 1;
            let rss = pages.saturating_mul(kernel::page::PAGE_SIZE as u64);
            if next.rss.xchg(rss, Relaxed) != rss || next.changed.load(Relaxed) == 0 {
                next.changed.store(self.scans, Relaxed);
            }
            let id = id_text(&next.id);
            if exited {
                log!("Container exited container={} pid={}\n", id, next.nr);
                next.emit(abi::EVENT_GONE, rss, 0);
                drop(next.remove());
                self.keys_stale = true;
                continue;
            }
            let soft_due = rss > next.soft_limit && !next.soft_reported.load(Relaxed);
            if soft_due {
                // Also when the hard limit is crossed in the same period: soft comes first.
                log!(
                    "SOFT LIMIT container={} pid={} rss={} limit={}\n",
                    id,
                    next.nr,
                    rss,
                    next.soft_limit
                );
                next.soft_reported.store(true, Relaxed);
                next.emit(abi::EVENT_SOFT_LIMIT, rss, next.soft_limit);
            }
            if rss > next.hard_limit {
                if let Err(e) = next.pid.kill() {
                    // Not delivered: no HARD record; the entry stays, and the next scan
                    // kills again or finds the init gone.
                    log!(
                        "SIGKILL failed container={} pid={} error={:?}\n",
                        id,
                        next.nr,
                        e
                    );
                    cursor.move_next();
                    continue;
                }
                log!(
                    "HARD LIMIT container={} pid={} rss={} limit={}\n",
                    id,
                    next.nr,
                    rss,
                    next.hard_limit
                );
                next.emit(abi::EVENT_HARD_LIMIT_KILLED, rss, next.hard_limit);
                drop(next.remove());
                self.keys_stale = true;
                continue;
            }
            cursor.move_next();
        }
    }

    /// Rebuilds the `MONITOR_QUERY_ALL` snapshot from the entries left after a scan.
    fn publish(&mut self, snapshot: &Mutex<Snapshot>) {
        self.next_snapshot.records.clear();
        self.next_snapshot.generation = self.scans;
        for entry in self.entries.iter() {
            let record = SnapshotRecord {
                file: entry.events.id(),
                pid: entry.nr,
                rss: entry.rss.load(Relaxed),
                changed: entry.changed.load(Relaxed),
            };
            if self.next_snapshot.records.push(record, GFP_KERNEL).is_err() {
                // Out of memory: keep the previous snapshot.
                return;
            }
        }
        core::mem::swap(&mut *snapshot.lock(), &mut self.next_snapshot);
    }
}
