//! The shell's logic, without the poller: turns what happened (a reaped child, a readable
//! ready pipe or router socket, finished checks) into core inputs, and carries out the core's
//! effects through an [`Os`]. Answers are collected for the connections; effects that report
//! back (a clone, a log removal, a failed router restart) feed their input at once.

use crate::container::ready::Reader;
use crate::core::input::{ReadyLost, SpawnFailure};
use crate::core::{Core, Effect, Input, Now, StartId};
use crate::shell::os::Os;
use proto::api::Response;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use crate::core::ConnId;

/// The current time, monotonic and wall-clock.
pub fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Now {
        at: Instant::now(),
        unix_ms,
    }
}

/// The core, the system, and the descriptors the core must not hold.
#[derive(Debug)]
pub struct Driver<O: Os> {
    core: Core,
    os: O,
    /// Ready pipes being read, by start.
    readers: HashMap<StartId, Reader>,
    /// stdout and stderr read ends, by container id, until the log is drained.
    outputs: HashMap<String, [OwnedFd; 2]>,
    answers: Vec<(ConnId, Response)>,
    /// EOF of the current router's socket was reported.
    router_eof: bool,
    exit: bool,
}

impl<O: Os> Driver<O> {
    /// Wraps a core and a system.
    pub fn new(core: Core, os: O) -> Self {
        Self {
            core,
            os,
            readers: HashMap::new(),
            outputs: HashMap::new(),
            answers: Vec::new(),
            router_eof: false,
            exit: false,
        }
    }

    /// Feeds one input (and the inputs its effects report) at the current time.
    pub fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for effect in self.core.on(input, now()) {
                self.apply(effect, &mut queue);
            }
        }
    }

    /// SIGCHLD: reaps every exited child. The router's last reports are read before its
    /// exit is reported.
    pub fn on_sigchld(&mut self) {
        for (pid, exit) in self.os.reap() {
            if pid == self.os.router_pid() {
                tracing::info!(?exit, "log-router exited");
                self.on_router_readable();
                self.feed(Input::RouterExited);
            } else {
                self.feed(Input::ChildExited { pid, exit });
            }
        }
    }

    /// The router's socket is readable: its reports, then its EOF (once).
    pub fn on_router_readable(&mut self) {
        let inbox = self.os.router_read();
        for msg in inbox.messages {
            self.feed(Input::Router(msg));
        }
        if inbox.closed && !self.router_eof {
            self.router_eof = true;
            self.feed(Input::RouterClosed);
        }
    }

    /// Finished rootfs checks.
    pub fn on_checks(&mut self) {
        for (start, result) in self.os.finished_checks() {
            self.feed(Input::RootfsChecked { start, result });
        }
    }

    /// A ready pipe is readable: at EOF its report goes to the core.
    pub fn on_ready(&mut self, start: StartId) {
        let Some(reader) = self.readers.get_mut(&start) else {
            return;
        };
        let input = match reader.read_available() {
            Ok(None) => return,
            Ok(Some(outcome)) => Input::InitReport { start, outcome },
            Err(e) => Input::ReadyLost {
                start,
                error: ReadyLost::Read(e),
            },
        };
        self.drop_reader(start);
        self.feed(input);
    }

    /// Answers produced since the last call.
    pub fn take_answers(&mut self) -> Vec<(ConnId, Response)> {
        std::mem::take(&mut self.answers)
    }

    /// Whether the core asked to exit.
    pub fn exiting(&self) -> bool {
        self.exit
    }

    /// The core's next deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    /// The system.
    pub fn os_mut(&mut self) -> &mut O {
        &mut self.os
    }

    /// The system, to shut it down.
    pub fn into_os(self) -> O {
        self.os
    }

    fn drop_reader(&mut self, start: StartId) {
        if let Some(reader) = self.readers.remove(&start) {
            self.os.unwatch_ready(reader.fd());
        }
    }

    fn apply(&mut self, effect: Effect, queue: &mut VecDeque<Input>) {
        match effect {
            Effect::Answer { conn, response } => self.answers.push((conn, response)),
            Effect::CheckRootfs { start, path } => self.os.check_rootfs(start, path),
            Effect::Spawn { start, spec } => queue.extend(self.spawn(start, &spec)),
            Effect::DropStart { start, id } => {
                self.drop_reader(start);
                self.outputs.remove(&id);
            }
            Effect::Kill { pid, signal } => self.os.kill(pid, signal),
            Effect::RouteOutput {
                id,
                log_path,
                sinks,
            } => {
                let Some([out, err]) = self.outputs.get(&id) else {
                    return;
                };
                let fds = [out.as_fd(), err.as_fd()];
                if let Err(e) = self.os.router_add(&id, &log_path, fds, &sinks) {
                    // The fds stay here; a restarted router is handed them again.
                    tracing::error!(container = %id, error = %e, "cannot hand output to log-router");
                }
            }
            Effect::ForgetOutput { id } => {
                self.outputs.remove(&id);
            }
            Effect::RouterSend(msg) => {
                if let Err(e) = self.os.router_send(&msg) {
                    // A dead router is reported by its exit.
                    tracing::warn!(error = %e, "cannot send to the log-router");
                }
            }
            Effect::StartRouter => match self.os.router_restart() {
                Ok(()) => self.router_eof = false,
                Err(e) => queue.push_back(Input::RouterStartFailed(e)),
            },
            Effect::KillRouter => self.os.router_kill(),
            Effect::Monitor(cmd) => self.os.monitor(cmd),
            Effect::RemoveLogs { id, log_path } => {
                let result = self.os.remove_logs(&log_path);
                queue.push_back(Input::LogsRemoved { id, result });
            }
            Effect::Exit => self.exit = true,
        }
    }

    /// Removes the old logs, clones container-init and watches its ready pipe; returns what
    /// came of it.
    fn spawn(&mut self, start: StartId, spec: &crate::core::SpawnSpec) -> Vec<Input> {
        // A new container with a reused id starts a new log: drop the old one's files.
        if let Err(source) = self.os.remove_logs(&spec.log_path) {
            let path = spec.log_path.clone();
            let error = SpawnFailure::OldLogs { path, source };
            return vec![Input::SpawnFailed { start, error }];
        }
        let child = match self.os.spawn_init(spec) {
            Ok(child) => child,
            Err(e) => {
                let error = SpawnFailure::Spawn(e);
                return vec![Input::SpawnFailed { start, error }];
            }
        };
        let pid = child.pid.as_raw();
        self.outputs
            .insert(spec.id.clone(), [child.stdout, child.stderr]);
        let spawned = Input::InitSpawned { start, pid };
        let reader = match Reader::new(child.ready) {
            Ok(r) => r,
            Err(e) => return vec![spawned, lost(start, ReadyLost::Read(e))],
        };
        if let Err(e) = self.os.watch_ready(start, reader.fd()) {
            return vec![spawned, lost(start, ReadyLost::Watch(e))];
        }
        self.readers.insert(start, reader);
        vec![spawned]
    }
}

/// An init whose ready pipe cannot be read is reported lost (the core kills it).
fn lost(start: StartId, error: ReadyLost) -> Input {
    Input::ReadyLost { start, error }
}
