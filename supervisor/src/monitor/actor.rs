//! The monitor actor: a thread named `monitor` that owns the backend, handles
//! [`MonitorCommand`]s as they arrive and calls [`Backend::tick`] once per interval, then
//! forwards what happened to the supervisor loop and wakes it.

use super::kernel::KernelBackend;
use super::userspace::{UserspaceBackend, UserspaceError};
use super::{Backend, BackendKind, MonitorCommand, MonitorConfig, MonitorEvent};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shortest tick interval accepted; shorter ones are raised to it.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The kernel backend was forced but the device could not be opened.
    #[error("kernel memory monitor unavailable: {0}")]
    Kernel(String),
    /// The userspace backend could not start.
    #[error("userspace memory monitor unavailable: {0}")]
    Userspace(#[source] UserspaceError),
    /// The actor thread could not be spawned.
    #[error("cannot spawn the monitor thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The supervisor's handle on the actor. Dropping it shuts the actor down.
#[derive(Debug)]
pub struct MonitorHandle {
    commands: Sender<MonitorCommand>,
    thread: Option<JoinHandle<()>>,
    note: Option<String>,
}

impl MonitorHandle {
    /// Queues a command for the actor; never blocks. When the actor has ended (its events
    /// receiver was dropped), the command is dropped with a warning.
    pub fn send(&self, cmd: MonitorCommand) {
        if let Err(e) = self.commands.send(cmd) {
            tracing::warn!(command = ?e.into_inner(), "memory monitor has ended; command dropped");
        }
    }

    /// Why the kernel backend was not used although its device exists (the userspace
    /// backend runs instead), if that happened.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Stops the actor (pending commands are handled first) and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Fails only when the thread has already ended.
        let _ = self.commands.send(MonitorCommand::Shutdown);
        if thread.join().is_err() {
            tracing::error!("the memory monitor thread panicked");
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Picks the backend and starts the actor thread.
///
/// Backend choice: `config.force` if set; otherwise the kernel backend when `config.device`
/// exists and opens, else the userspace one. When the device exists but cannot be opened,
/// the userspace backend is used, a warning is logged and [`MonitorHandle::note`] says why.
///
/// Every event is sent on `events`, and `waker` is woken after each batch (one tick, or one
/// command answered or failed). Every register is answered with
/// [`MonitorEvent::Registered`] (its error, if any); a failed unregister becomes
/// [`MonitorEvent::Error`].
///
/// # Errors
/// [`MonitorError`]: a forced backend that cannot start, an unusable `/proc`, or a failed
/// thread spawn.
pub fn start(
    config: MonitorConfig,
    events: Sender<MonitorEvent>,
    waker: Arc<mio::Waker>,
) -> Result<(MonitorHandle, BackendKind), MonitorError> {
    let open_kernel = || KernelBackend::open(&config.device, config.interval);
    let open_userspace = || UserspaceBackend::new().map_err(MonitorError::Userspace);
    let mut note = None;
    let backend: Box<dyn Backend> = match config.force {
        Some(BackendKind::Kernel) => Box::new(open_kernel().map_err(MonitorError::Kernel)?),
        Some(BackendKind::Userspace) => Box::new(open_userspace()?),
        None if config.device.exists() => match open_kernel() {
            Ok(kernel) => Box::new(kernel),
            Err(reason) => {
                tracing::warn!(
                    device = %config.device.display(),
                    %reason,
                    "kernel memory monitor unusable; using the userspace backend"
                );
                note = Some(format!(
                    "{} exists but cannot be used ({reason}); using the userspace backend",
                    config.device.display()
                ));
                Box::new(open_userspace()?)
            }
        },
        None => Box::new(open_userspace()?),
    };
    let kind = backend.kind();
    let mut handle = start_with_backend(backend, config.interval, events, waker)?;
    handle.note = note;
    Ok((handle, kind))
}

/// Starts the actor thread around an already opened backend, ticking every `interval`
/// (at least 1 ms).
///
/// # Errors
/// [`MonitorError::Spawn`].
pub fn start_with_backend(
    backend: Box<dyn Backend>,
    interval: Duration,
    events: Sender<MonitorEvent>,
    waker: Arc<mio::Waker>,
) -> Result<MonitorHandle, MonitorError> {
    let (commands, rx) = crossbeam_channel::unbounded();
    let actor = Actor {
        backend,
        interval: interval.max(MIN_INTERVAL),
        commands: rx,
        events,
        waker,
        batch: Vec::new(),
        wake_error_reported: false,
    };
    let thread = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || actor.run())
        .map_err(MonitorError::Spawn)?;
    Ok(MonitorHandle {
        commands,
        thread: Some(thread),
        note: None,
    })
}

/// State of the actor thread.
struct Actor {
    backend: Box<dyn Backend>,
    interval: Duration,
    commands: Receiver<MonitorCommand>,
    events: Sender<MonitorEvent>,
    waker: Arc<mio::Waker>,
    batch: Vec<MonitorEvent>,
    wake_error_reported: bool,
}

impl Actor {
    fn run(mut self) {
        let kind = self.backend.kind();
        tracing::debug!(backend = %kind, interval_ms = self.interval.as_millis() as u64, "monitor started");
        let mut next_tick = Instant::now() + self.interval;
        loop {
            // Tick first when due, so that a stream of commands cannot delay the scans.
            let now = Instant::now();
            if now >= next_tick {
                self.backend.tick(&mut self.batch);
                next_tick += self.interval;
                if next_tick <= now {
                    // Fell behind (a slow scan or a suspended machine): skip missed ticks.
                    next_tick = now + self.interval;
                }
            }
            if !self.flush() {
                break;
            }
            match self.commands.recv_deadline(next_tick) {
                Ok(MonitorCommand::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        self.flush();
        tracing::debug!(backend = %kind, "monitor stopped");
    }

    fn handle(&mut self, cmd: MonitorCommand) {
        let (id, result) = match cmd {
            MonitorCommand::Register(tracked) => {
                let error = self.backend.register(&tracked).err();
                self.batch.push(MonitorEvent::Registered {
                    id: tracked.id,
                    pid: tracked.pid,
                    error,
                });
                return;
            }
            MonitorCommand::Unregister { id, pid } => {
                let result = self.backend.unregister(&id, pid);
                (id, result)
            }
            MonitorCommand::Shutdown => return,
        };
        if let Err(message) = result {
            self.batch.push(MonitorEvent::Error {
                id: Some(id),
                message,
            });
        }
    }

    /// Sends the batch and wakes the loop. `false` when the supervisor is gone.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        for event in self.batch.drain(..) {
            if self.events.send(event).is_err() {
                tracing::debug!("monitor events receiver dropped; monitor ending");
                return false;
            }
        }
        if let Err(e) = self.waker.wake() {
            if !self.wake_error_reported {
                self.wake_error_reported = true;
                tracing::warn!(error = %e, "cannot wake the supervisor loop");
            }
        }
        true
    }
}
