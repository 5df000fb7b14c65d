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
    scan::{slack_pages, Mode, Tally, Walk},
};

/// How often a scan retries with a larger `shared_mm` before it gives up for this period.
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
/// `generation`, the scan's number): per entry, `file` (the address of its [`EventQueue`]),
/// `pid`, `rss` in bytes and `changed`, the generation that last changed `rss`.
struct Snapshot {
    generation: u64,
    records: KVec<SnapshotRecord>,
}

#[derive(Clone, Copy)]
struct SnapshotRecord {
    file: usize,
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

    /// `MONITOR_REGISTER`: starts tracking `request.pid`; its events go to `events`.
    ///
    /// # Errors
    /// `EINVAL` (pid ≤ 0, soft > hard, id empty or without NUL, pid already registered),
    /// `ESRCH` (no such process), `ENOMEM`.
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
        if state.entries.iter().any(|e| e.nr == request.pid) {
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

    /// `MONITOR_UNREGISTER`: stops tracking `request.pid` (only the pid is used).
    ///
    /// # Errors
    /// `ENOENT` when that pid is not registered.
    pub(crate) fn unregister(&self, request: &MonitorRequest) -> Result {
        log!(
            "Unregister request container={} pid={}\n",
            id_text(&request.container_id),
            request.pid
        );
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut cursor = state.entries.cursor_front();
        while let Some(next) = cursor.peek_next() {
            if next.nr == request.pid {
                drop(next.remove());
                state.keys_stale = true;
                return Ok(());
            }
            cursor.move_next();
        }
        Err(ENOENT)
    }

    /// `MONITOR_QUERY`: the last measured RSS of `pid`'s container, in bytes.
    ///
    /// # Errors
    /// `ENOENT` when that pid is not registered.
    pub(crate) fn rss_of(&self, pid: i32) -> Result<u64> {
        let state = self.state.lock();
        let rss = state
            .entries
            .iter()
            .find(|e| e.nr == pid)
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
        out: &mut KVec<(i32, u64)>,
    ) -> Result<QueryAll> {
        // Allocated before the lock.
        out.reserve(room, GFP_KERNEL)?;
        let file = core::ptr::from_ref::<EventQueue>(events) as usize;
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

    /// Scans since load, and how many of them re-read some container exactly.
    pub(crate) fn scan_counts(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.scans, state.exact_scans)
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
    /// One scan: measure every entry, then apply the limits and drop exited entries.
    fn scan(&mut self) {
        if self.entries.is_empty() || self.measure().is_err() {
            return;
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
                    pr_warn!("SIGKILL to pid {} failed: {:?}\n", next.nr, e);
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
                file: core::ptr::from_ref::<EventQueue>(&entry.events) as usize,
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

    /// Fills `tallies` (per entry, in list order): one approximate walk over the processes,
    /// then, only if some entry's count is within the approximation's error of a limit that
    /// still matters for it, an exact walk for those entries alone.
    fn measure(&mut self) -> Result {
        if self.keys_stale {
            self.keys.clear();
        }
        self.tallies.clear();
        for (index, entry) in self.entries.iter().enumerate() {
            let key = match entry.pid.own_namespace() {
                Some(ns) => ns as usize,
                None => entry.pid.as_ptr() as usize,
            };
            self.tallies.push(Tally::default(), GFP_KERNEL)?;
            if !self.keys_stale {
                continue;
            }
            // Sorted insertion (keys are unique: one namespace per init, one pid per process).
            let at = match self.keys.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(at) | Err(at) => at,
            };
            self.keys.reserve(1, GFP_KERNEL)?;
            self.keys
                .insert_within_capacity(at, (key, index))
                .map_err(|_| ENOMEM)?;
        }
        self.keys_stale = false;
        self.walk(Mode::Approximate)?;
        let slack = slack_pages();
        let page = kernel::page::PAGE_SIZE as u64;
        let mut recheck = false;
        for (entry, tally) in self.entries.iter().zip(self.tallies.iter_mut()) {
            let error = tally.mms.saturating_mul(slack).saturating_mul(page);
            let low = tally.pages.saturating_mul(page).saturating_sub(error);
            let high = tally.pages.saturating_mul(page).saturating_add(error);
            let undecided = |limit: u64| low <= limit && limit < high;
            tally.recheck = undecided(entry.hard_limit)
                || (!entry.soft_reported.load(Relaxed) && undecided(entry.soft_limit));
            recheck |= tally.recheck;
        }
        if recheck {
            self.exact_scans += 1;
            self.walk(Mode::Exact)?;
        }
        Ok(())
    }

    /// One walk in `mode`: zeroes the tallies it counts, then adds to them. Approximate walks
    /// use and maintain the pinned address spaces; exact ones (rare, near a limit) take each
    /// process's lock.
    fn walk(&mut self, mode: Mode) -> Result {
        let room = self.shared_mm.capacity().max(64);
        self.shared_mm.clear();
        self.shared_mm.reserve(room, GFP_KERNEL)?;
        let mut pin_room = self.mm_cache.room().max(64);
        for _ in 0..WALK_TRIES {
            self.shared_mm.clear();
            self.mm_cache.reserve(pin_room)?;
            for tally in self.tallies.iter_mut() {
                if mode == Mode::Approximate || tally.recheck {
                    tally.pages = 0;
                    tally.mms = 0;
                }
            }
            let mut walk = Walk {
                keys: &self.keys,
                tallies: &mut self.tallies,
                mode,
                shared_mm: &mut self.shared_mm,
                cache: (mode == Mode::Approximate).then_some(&mut self.mm_cache),
            };
            let walked = walk.run();
            if mode == Mode::Approximate {
                // Outside the RCU read lock: drop what the walk did not confirm.
                self.mm_cache.settle()?;
            }
            if walked.is_ok() {
                return Ok(());
            }
            // Overflow: double the room and walk again.
            let grown = self.shared_mm.capacity().saturating_mul(2);
            self.shared_mm.clear();
            self.shared_mm.reserve(grown, GFP_KERNEL)?;
            // (Pins taken so far were kept by `settle`: the next try has fewer to take.)
            pin_room = pin_room.saturating_mul(4);
        }
        Err(ENOMEM)
    }
}
