//! `engine logs`: print a container's log, running or ended, byte for byte by default; with
//! `--follow` keep printing until the container has ended and its last byte is printed, across
//! rotations.

use crate::args::LogsArgs;
use crate::client::Client;
use crate::logs::follow::{inode, LogCursor};
use crate::logs::view::{parse_time, Printer, ViewOptions};
use anyhow::{Context, Result};
use proto::api::Request;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How often a follower looks for new output, and asks whether the container has ended.
const POLL: Duration = Duration::from_millis(100);

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
        tail: args.tail,
    };
    let mut client = Client::connect(socket)?;
    let info = client.container(Request::Inspect {
        id: args.id.clone(),
    })?;
    let log = Path::new(&info.log_path).to_path_buf();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut printer = Printer::new(opts);
    let mut runs = Vec::new();

    // Older generations first (skipping the one the cursor holds), then the current file.
    let mut cursor = LogCursor::open(&log)?;
    for file in logfile::rotate::files(&log) {
        if cursor
            .as_ref()
            .is_some_and(|c| inode(&file) == Some(c.ino()))
        {
            break;
        }
        for run in
            logfile::read_runs(&file).with_context(|| format!("cannot read {}", file.display()))?
        {
            printer.push(&run, &mut out)?;
        }
    }
    let mut ended = !args.follow || info.state.is_ended();
    loop {
        if let Some(c) = cursor.as_mut() {
            c.poll(&mut runs)
                .with_context(|| format!("cannot read {}", log.display()))?;
            for run in runs.drain(..) {
                printer.push(&run, &mut out)?;
            }
            if c.rotated() {
                // Drained above after the rotation was visible: move to the new file.
                cursor = LogCursor::open(&log)?;
                continue;
            }
        } else {
            cursor = LogCursor::open(&log)?;
            if cursor.is_some() {
                continue;
            }
        }
        if ended {
            break;
        }
        printer.release(&mut out)?;
        out.flush()?;
        std::thread::sleep(POLL);
        // Ended means the log is complete: one more pass prints the last bytes.
        ended = client
            .container(Request::Inspect {
                id: args.id.clone(),
            })?
            .state
            .is_ended();
    }
    printer.finish(&mut out)?;
    out.flush()?;
    Ok(0)
}
