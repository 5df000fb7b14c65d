//! `engine logs`: print a container's log, running or ended, byte for byte by default, its
//! stdout to stdout and its stderr to stderr (as `docker logs`; `--stream` prints one stream
//! to stdout); with `--follow` keep printing until the container has ended and its last byte
//! is printed, across rotations.

use crate::args::LogsArgs;
use crate::client::Client;
use crate::logs::time::parse_time;
use crate::logs::view::{Outputs, Printer, ViewOptions};
use anyhow::Result;
use logstore::follow::{Follower, Progress};
use logstore::Run;
use proto::api::{ContainerInfo, Request};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// Shortest pause of a follower between looks for new output (after output arrived).
const POLL_MIN: Duration = Duration::from_millis(2);
/// Longest pause of a follower between looks for new output (when idle).
const POLL_MAX: Duration = Duration::from_millis(100);

/// Runs `engine logs`.
///
/// # Errors
/// Unknown id, invalid time, unreadable log file.
pub fn run(socket: &Path, args: &LogsArgs) -> Result<i32> {
    let now = SystemTime::now();
    let opts = ViewOptions {
        stream: args.stream,
        since_ns: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?,
        until_ns: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now))
            .transpose()?,
        timestamps: args.timestamps,
        escape: args.escape,
        tail: args.tail.and_then(|t| t.0),
    };
    let mut client = Client::connect(socket)?;
    let info = client.container(Request::Inspect {
        id: args.id.clone(),
    })?;
    // Split unless one stream is asked for. Stderr is unbuffered: buffer it here (flushed at
    // each pause and change of stream); it is not locked, so other threads may still log.
    let split = args.stream.is_none();
    let mut sink = Printed::new(
        opts,
        std::io::stdout().lock(),
        std::io::BufWriter::new(std::io::stderr()),
        split,
    );
    let ended = if args.follow && !info.state.is_ended() {
        Some(EndWatch::start(socket, &args.id)?)
    } else {
        None
    };
    walk(Path::new(&info.log_path), ended.as_ref(), &mut sink)?;
    sink.finish()?;
    Ok(0)
}

/// Where [`walk`] hands the runs it reads.
pub trait RunSink {
    /// One run of bytes, in write order.
    ///
    /// # Errors
    /// Write errors.
    fn emit(&mut self, run: &Run) -> std::io::Result<()>;
    /// Called before each pause while following (flush what is held).
    ///
    /// # Errors
    /// Write errors.
    fn idle(&mut self) -> std::io::Result<()>;
}

/// A [`RunSink`] that prints through a [`Printer`] to [`Outputs`] (`engine logs`, and `engine
/// run` while it waits).
#[derive(Debug)]
pub struct Printed<O: Write, E: Write> {
    printer: Printer,
    outs: Outputs<O, E>,
}

impl<O: Write, E: Write> Printed<O, E> {
    /// Prints with `opts` to `out` and (when `split`) `err`.
    pub fn new(opts: ViewOptions, out: O, err: E, split: bool) -> Self {
        Self {
            printer: Printer::new(opts),
            outs: Outputs::new(out, err, split),
        }
    }

    /// The log is complete: prints what is held and flushes.
    ///
    /// # Errors
    /// Write errors.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.printer.finish(&mut self.outs)?;
        self.outs.flush()
    }
}

impl<O: Write, E: Write> RunSink for Printed<O, E> {
    fn emit(&mut self, run: &Run) -> std::io::Result<()> {
        self.printer.push(run, &mut self.outs)
    }
    fn idle(&mut self) -> std::io::Result<()> {
        self.printer.release(&mut self.outs)?;
        self.outs.flush()
    }
}

/// Learns when a container has ended (its log complete) by a `Wait` request on its own
/// connection, answered by the supervisor at that moment.
#[derive(Debug)]
pub struct EndWatch {
    ended: Arc<OnceLock<Result<ContainerInfo, String>>>,
    /// Disconnected (by the waiting thread) once `ended` is set.
    done: Receiver<()>,
    /// Dropped with the watch: the waiting thread then closes the connection (a `run --rm`
    /// record is removed only then, once its output has been read to the end).
    _release: Sender<()>,
}

impl EndWatch {
    /// Sends `Wait{id}` from a thread.
    ///
    /// # Errors
    /// The supervisor cannot be reached.
    pub fn start(socket: &Path, id: &str) -> Result<Self> {
        Ok(Self::with_client(Client::connect(socket)?, id))
    }

    /// Sends `Wait{id}` over `client` from a thread (which owns the connection from then on).
    pub fn with_client(mut client: Client, id: &str) -> Self {
        let ended = Arc::new(OnceLock::new());
        let slot = Arc::clone(&ended);
        let (tx, done) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let id = id.to_string();
        std::thread::spawn(move || {
            let r = client
                .container(Request::Wait { id })
                .map_err(|e| format!("{e:#}"));
            let _ = slot.set(r);
            drop(tx);
            // The connection stays open until the watch is dropped.
            let _ = released.recv();
            drop(client);
        });
        Self {
            ended,
            done,
            _release: release,
        }
    }

    /// Waits up to `timeout` for the end; returns early when it comes.
    pub fn wait(&self, timeout: Duration) {
        let _ = self.done.recv_timeout(timeout);
    }

    /// The final record once the container has ended (or the error of waiting for it).
    pub fn get(&self) -> Option<&Result<ContainerInfo, String>> {
        self.ended.get()
    }

    /// Blocks until the container has ended; its final record.
    ///
    /// # Errors
    /// The error of waiting for it (a lost connection, an unknown id).
    pub fn end(&self) -> Result<ContainerInfo> {
        loop {
            if let Some(r) = self.get() {
                return r.clone().map_err(|e| anyhow::anyhow!("{e}"));
            }
            self.wait(Duration::from_secs(1));
        }
    }
}

/// Reads a container's log from its oldest generation on, handing every run to `sink`; with an
/// [`EndWatch`], keeps reading (across rotations) until the container has ended, then reads
/// the last bytes.
///
/// # Errors
/// Unreadable files, a lost connection, or an error of `emit`/`idle`.
pub fn walk(log: &Path, follow: Option<&EndWatch>, sink: &mut dyn RunSink) -> Result<()> {
    let mut runs = Vec::new();
    let mut follower = Follower::new(log);
    let mut ended = follow.is_none();
    let mut pause = POLL_MIN;
    loop {
        let progress = follower.poll(&mut runs)?;
        if !runs.is_empty() {
            pause = POLL_MIN;
        }
        for run in runs.drain(..) {
            sink.emit(&run)?;
        }
        if progress == Progress::More {
            continue;
        }
        if ended {
            return Ok(());
        }
        sink.idle()?;
        // Ended means the log is complete: one more pass reads the last bytes.
        if let Some(r) = follow.and_then(EndWatch::get) {
            r.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            ended = true;
            continue;
        }
        // Only a follower gets here (without one, `ended` was true from the start).
        if let Some(w) = follow {
            w.wait(pause);
        }
        pause = (pause * 2).min(POLL_MAX);
    }
}
