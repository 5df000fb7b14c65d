//! One thread per sink instance (per container and sink): takes chunks from its queue, writes
//! their records, flushes after each chunk, and retries failures with capped back-off.
//!
//! Hold protocol: a chunk sent to a blocking sink carries a hold, released once the chunk is
//! flushed, or as soon as the sink *fails* (`ENGINE_SINK_ERROR`: a broken sink never stalls the
//! container or the other sinks). A sink that is only *unavailable* (`ENGINE_SINK_RETRY`) keeps
//! its hold, like a slow one. The last release lets the router consume the bytes from the pipe.
//!
//! Drain: once the container's writers are gone (the core notes when, in [`SinkShared`]), a
//! failing sink is retried until `drain-timeout` after that in blocking mode, not at all in
//! non-blocking mode (a peer that is down never delays the container's end); then the thread
//! gives up: it calls the sink no more (no record is sent after the router gave up) and counts
//! what it did not store.
//!
//! Drop counting, per chunk: records the sink did not take are dropped; records it took are
//! stored once a `flush` succeeds — when it never does (given up, fatal), they are dropped too.
//! After a `write` is given up, one last `flush` decides for the records taken before it.

use crate::core::route::{RouteId, SinkInfo};
use crate::instance::{CallError, SinkInstance};
use crate::plan::{Mode, SinkPlan};
use crate::records::Chunk;
use crate::sink_shared::{Count, SinkShared};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sink_abi::ffi::EngineSinkRecord;
use sink_abi::Stream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// First retry delay after a failure.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Work for a sink thread.
#[derive(Debug)]
pub enum Job {
    /// Write the records of a chunk; `hold` tells whether this sink holds the chunk.
    Chunk {
        /// The chunk.
        chunk: Arc<Chunk>,
        /// Whether to release a hold when done.
        hold: bool,
    },
    /// The container's streams ended: flush, destroy, report.
    Finish,
}

/// What a sink thread tells the router loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// The last hold of the route's in-flight chunk on `stream` was released.
    Released {
        /// Route.
        route: RouteId,
        /// Stream of the chunk.
        stream: Stream,
        /// The chunk's number.
        seq: u64,
    },
    /// A sink failed (first failure of an episode, or fatally).
    Failed {
        /// Route.
        route: RouteId,
        /// Index of the sink in the route.
        sink: usize,
        /// One-line reason.
        message: String,
    },
    /// The sink thread flushed, destroyed its instance and ended.
    Finished {
        /// Route.
        route: RouteId,
        /// Index of the sink in the route.
        sink: usize,
    },
}

/// Sends events to the router loop and wakes it.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Sender<WorkerEvent>,
    waker: Arc<mio::Waker>,
}

impl Notifier {
    /// A notifier over `tx`, waking `waker`.
    pub fn new(tx: Sender<WorkerEvent>, waker: Arc<mio::Waker>) -> Self {
        Self { tx, waker }
    }

    /// Sends an event; a closed loop is ignored (the router is exiting).
    pub fn send(&self, ev: WorkerEvent) {
        if self.tx.send(ev).is_ok() {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake the router loop");
            }
        }
    }
}

/// The router's handle on one sink thread.
#[derive(Debug)]
pub struct SinkHandle {
    /// Sink label (name or path as configured).
    pub label: String,
    /// The sink and its options as configured, router options left out.
    pub shown: String,
    /// Delivery mode.
    pub mode: Mode,
    /// Queue bound, in bytes.
    pub max_buffer: usize,
    /// How long the thread keeps retrying once the container's writers are gone.
    pub drain_timeout: Duration,
    /// Shared counters.
    pub shared: Arc<SinkShared>,
    jobs: Sender<Job>,
    poke: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl SinkHandle {
    /// Starts the thread owning `instance`.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn(
        instance: SinkInstance,
        plan: &SinkPlan,
        route: RouteId,
        sink: usize,
        notify: Notifier,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = crossbeam_channel::unbounded();
        let (poke, poke_rx) = crossbeam_channel::bounded(1);
        let shared = Arc::new(SinkShared::default());
        let worker = Worker {
            inst: Some(instance),
            route,
            sink,
            shared: shared.clone(),
            notify,
            poke_rx,
            failing: false,
            gave_up: false,
            backoff: BACKOFF_START,
            mode: plan.mode,
            drain_timeout: plan.drain_timeout,
        };
        let thread = std::thread::Builder::new()
            .name(format!("sink-{}-{sink}", route.key))
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            label: plan.label.clone(),
            shown: plan.shown.clone(),
            mode: plan.mode,
            max_buffer: plan.max_buffer,
            drain_timeout: plan.drain_timeout,
            shared,
            jobs,
            poke,
            thread: Some(thread),
        })
    }

    /// The sink as the core sees it.
    pub fn info(&self) -> SinkInfo {
        SinkInfo {
            label: self.label.clone(),
            shown: self.shown.clone(),
            mode: self.mode,
            drain_timeout: self.drain_timeout,
            shared: self.shared.clone(),
        }
    }

    /// Queues a chunk; an unheld chunk that does not fit the queue bound is dropped and counted.
    /// Returns whether the chunk was queued.
    pub fn offer(&self, chunk: &Arc<Chunk>, hold: bool) -> bool {
        let count = count(chunk.ffi());
        if !self.shared.offer(count, (!hold).then_some(self.max_buffer)) {
            return false;
        }
        let job = Job::Chunk {
            chunk: chunk.clone(),
            hold,
        };
        if self.jobs.send(job).is_err() {
            self.shared.withdraw(count);
            return false;
        }
        true
    }

    /// Wakes the thread from a back-off wait, to look at its drain deadline again.
    pub fn poke(&self) {
        let _ = self.poke.try_send(());
    }

    /// Lets go of a thread that did not finish in time (stuck in a sink call): it is left to
    /// end on its own; its later events are ignored (their serial matches no route).
    pub fn abandon(mut self) {
        self.finish();
        drop(self.thread.take());
    }

    /// Asks the thread to finish (flush, destroy, report `Finished`).
    pub fn finish(&self) {
        let _ = self.jobs.send(Job::Finish);
        self.poke();
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.finish();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(sink = %self.label, "sink thread panicked");
            }
        }
    }
}

/// Records and bytes of `records`.
fn count(records: &[EngineSinkRecord]) -> Count {
    let bytes: usize = records.iter().map(|r| r.data_len).sum();
    Count::new(records.len() as u64, bytes as u64)
}

/// The thread's state.
struct Worker {
    inst: Option<SinkInstance>,
    route: RouteId,
    sink: usize,
    shared: Arc<SinkShared>,
    notify: Notifier,
    poke_rx: Receiver<()>,
    failing: bool,
    /// Past the drain deadline, or abandoned by the core: the sink is called no more.
    gave_up: bool,
    backoff: Duration,
    mode: Mode,
    /// How long to keep retrying once the container's writers are gone (blocking mode).
    drain_timeout: Duration,
}

/// A hold on a chunk, released at most once.
struct Hold<'a> {
    chunk: &'a Chunk,
    held: bool,
}

impl Worker {
    fn run(mut self, rx: Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            match job {
                Job::Chunk { chunk, hold } => {
                    let mut h = Hold {
                        chunk: &chunk,
                        held: hold,
                    };
                    let dropped = self.deliver(&mut h);
                    self.shared.settle(count(chunk.ffi()), dropped);
                    self.release(&mut h);
                }
                Job::Finish => break,
            }
        }
        self.shared.start_drain(Instant::now());
        self.call(&mut |i| i.flush(), None);
        drop(self.inst.take());
        self.notify.send(WorkerEvent::Finished {
            route: self.route,
            sink: self.sink,
        });
    }

    fn release(&self, h: &mut Hold<'_>) {
        if std::mem::take(&mut h.held) && h.chunk.release() {
            self.notify.send(WorkerEvent::Released {
                route: self.route,
                stream: h.chunk.stream,
                seq: h.chunk.seq,
            });
        }
    }

    /// Writes every record of the chunk, then flushes; returns what was not stored.
    fn deliver(&mut self, h: &mut Hold<'_>) -> Count {
        let recs = h.chunk.ffi();
        let mut done = 0;
        let wrote = self.call(
            &mut |i| {
                let (taken, result) = i.write_records(&recs[done..]);
                done += taken;
                result
            },
            Some(&mut *h),
        );
        if wrote {
            return if self.call(&mut |i| i.flush(), Some(h)) {
                Count::default()
            } else {
                count(recs)
            };
        }
        // Given up while writing: what was taken is stored if one last flush succeeds.
        let taken_stored = done == 0 || self.last_flush();
        count(&recs[if taken_stored { done } else { 0 }..])
    }

    /// One flush without retry, after giving up: whether the sink stored what it took.
    fn last_flush(&mut self) -> bool {
        if self.shared.abandoned() {
            return false;
        }
        self.inst.as_mut().is_some_and(|i| i.flush().is_ok())
    }

    /// Calls `f` until it succeeds; false when the instance is gone or the worker gave up.
    fn call(
        &mut self,
        f: &mut dyn FnMut(&mut SinkInstance) -> Result<(), CallError>,
        mut hold: Option<&mut Hold<'_>>,
    ) -> bool {
        loop {
            if self.gave_up || self.shared.abandoned() {
                self.gave_up = true;
                return false;
            }
            let Some(inst) = self.inst.as_mut() else {
                return false;
            };
            // `release`: a failed sink lets the container go on; a sink that is only
            // unavailable (Retry) keeps holding in blocking mode, like a slow one.
            let (message, release) = match f(inst) {
                Ok(()) => {
                    if std::mem::take(&mut self.failing) {
                        self.shared.failing.store(false, Ordering::Release);
                        self.shared.stalled.store(false, Ordering::Release);
                        self.backoff = BACKOFF_START;
                        tracing::info!(route = %self.route, sink = self.sink, "sink recovered");
                    }
                    return true;
                }
                Err(CallError::Fatal(m)) => {
                    self.inst = None;
                    self.shared.failing.store(true, Ordering::Release);
                    self.report(format!("{m} (sink disabled for this container)"));
                    if let Some(h) = hold.as_deref_mut() {
                        self.release(h);
                    }
                    return false;
                }
                Err(CallError::Failed(m)) => (m, true),
                Err(CallError::Retry(m)) => (m, false),
            };
            if !self.failing {
                self.failing = true;
                self.shared.stalled.store(true, Ordering::Release);
                self.report(format!("{message} (retrying)"));
            }
            if release {
                self.shared.failing.store(true, Ordering::Release);
                if let Some(h) = hold.as_deref_mut() {
                    self.release(h);
                }
            }
            if !self.wait_backoff() {
                self.gave_up = true;
                tracing::warn!(
                    route = %self.route,
                    sink = self.sink,
                    "sink gave up after the drain timeout"
                );
                return false;
            }
        }
    }

    /// Until when a failing sink is retried: unbounded before the drain began; then
    /// `drain-timeout` after its start in blocking mode, its start in non-blocking mode.
    fn deadline(&self) -> Option<Instant> {
        let since = self.shared.drain_since()?;
        Some(match self.mode {
            Mode::Blocking => since + self.drain_timeout,
            Mode::NonBlocking => since,
        })
    }

    /// Sleeps one back-off step, waking early when poked (the drain began, or finish). False
    /// once past the drain deadline.
    fn wait_backoff(&mut self) -> bool {
        let until = Instant::now() + self.backoff;
        loop {
            let now = Instant::now();
            let deadline = self.deadline();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if now >= until {
                break;
            }
            let wait = deadline.map_or(until, |d| d.min(until)) - now;
            match self.poke_rx.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        true
    }

    fn report(&self, message: String) {
        tracing::warn!(route = %self.route, sink = self.sink, %message, "sink failed");
        self.notify.send(WorkerEvent::Failed {
            route: self.route,
            sink: self.sink,
            message,
        });
    }
}
