//! Catching up on the rotated generations of a log: the files that hold runs a reader has not
//! shown yet, read oldest first, while the sink keeps shifting (`<log>` → `<log>.1` → …) and
//! compressing (`<log>.1` → `<log>.1.gz`) them.
//!
//! A reader that holds the current file open and finds it rotated drains it, then needs the
//! generations rotated after it and before the new current file. Its file is found by inode;
//! once compressed (a new file) or deleted past `max-file`, by the read times of the runs
//! already shown ([`Shown`]): runs of one read that a size limit spread over several files
//! share one read time, so the watermark counts the runs shown at the newest time too.

use super::follow::{inode, LogCursor};
use crate::commands::logs::RunSink;
use logstore::Run;
use std::io;
use std::path::Path;

/// How often [`catch_up`] starts over when files move while it lists or reads them.
const TRIES: usize = 100;

/// The newest read time handed on, and how many runs with that time were.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// Newest `timestamp_ns` seen.
    pub last_ns: u64,
    /// Runs seen with `timestamp_ns == last_ns`.
    pub at_last: u64,
}

impl Shown {
    /// Records that `run` was handed on.
    pub fn note(&mut self, run: &Run) {
        if run.timestamp_ns > self.last_ns || self.at_last == 0 {
            self.last_ns = run.timestamp_ns;
            self.at_last = 1;
        } else if run.timestamp_ns == self.last_ns {
            self.at_last += 1;
        }
    }
}

/// The files of `log` (oldest first, the current one last), their inodes and their indexes'.
#[allow(clippy::type_complexity)]
fn listing(log: &Path) -> (Vec<std::path::PathBuf>, Vec<Option<u64>>, Vec<Option<u64>>) {
    let files = logstore::rotate::files(log);
    let inodes = files.iter().map(|f| inode(f)).collect();
    let index_inodes = files
        .iter()
        .map(|f| inode(&logstore::rotate::index_of(f)))
        .collect();
    (files, inodes, index_inodes)
}

/// A [`RunSink`] that remembers what it has been handed ([`Shown`]).
pub struct Tracked<'a> {
    /// Where the runs go.
    pub sink: &'a mut dyn RunSink,
    /// What has gone there.
    pub shown: Shown,
}

impl RunSink for Tracked<'_> {
    fn emit(&mut self, run: &Run) -> io::Result<()> {
        self.shown.note(run);
        self.sink.emit(run)
    }

    fn idle(&mut self) -> io::Result<()> {
        self.sink.idle()
    }
}

/// Which rotated generations to read.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    /// All of them, oldest first.
    Start,
    /// Those rotated after the generation whose index (or, without one, log) has this inode;
    /// when it is gone (deleted past `max-file`), the runs newer than the watermark.
    After(u64),
}

/// Opens the current log and hands `sink` the runs of the rotated generations before it that
/// `since` selects (its watermark being what `sink` was handed before); `since` is left after the last
/// generation handed on. Returns the cursor on the current file (`None` when there is none at
/// the moment: call again with the same `since`).
///
/// # Errors
/// Read errors, or files moving on every one of [`TRIES`] attempts.
pub fn catch_up(
    log: &Path,
    since: &mut Since,
    sink: &mut Tracked<'_>,
) -> io::Result<Option<LogCursor>> {
    for _ in 0..TRIES {
        // What had been handed on when this attempt started.
        let floor = sink.shown;
        let cursor = LogCursor::open(log)?;
        let until = cursor.as_ref().map(LogCursor::ino);
        let (files, inodes, index_inodes) = listing(log);
        if until.is_some() && !inodes.contains(&until) {
            // The file just opened was rotated (and compressed) before the listing; nothing
            // was handed on yet: open the new current file.
            continue;
        }
        let (first, filtered) = match *since {
            Since::Start => (0, false),
            Since::After(ino) => match inodes
                .iter()
                .zip(&index_inodes)
                .position(|(&i, &x)| i == Some(ino) || x == Some(ino))
            {
                Some(at) => (at + 1, false),
                None => (0, true),
            },
        };
        let mut skip_at_floor = if filtered { floor.at_last } else { 0 };
        let mut moved = false;
        // The last generation handed on whole, where a new attempt starts.
        let mut done = None;
        for ((file, ino), index_ino) in files.iter().zip(&inodes).zip(&index_inodes).skip(first) {
            // The current file is the cursor's to read (also when it had none a moment ago).
            if (until.is_some() && *ino == until) || file.as_path() == log {
                break;
            }
            // A shift renames a generation's data and index one after the other: read a file
            // only if both are still the ones listed, before and after the read.
            let index = logstore::rotate::index_of(file);
            let unmoved = || inode(file) == *ino && inode(&index) == *index_ino;
            if !unmoved() {
                moved = true;
                break;
            }
            let runs = match logstore::read_runs(file) {
                Ok(runs) => runs,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    moved = true;
                    break;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
            };
            if !unmoved() {
                moved = true;
                break;
            }
            for run in &runs {
                if filtered {
                    if run.timestamp_ns < floor.last_ns {
                        continue;
                    }
                    if run.timestamp_ns == floor.last_ns && skip_at_floor > 0 {
                        skip_at_floor -= 1;
                        continue;
                    }
                }
                sink.emit(run)?;
            }
            done = index_ino.or(*ino);
        }
        if let Some(ino) = done {
            *since = Since::After(ino);
        }
        // A shift during the pass (or one half done when it listed: a gap hides the
        // generations above it) shows as a different listing afterwards.
        if !moved && listing(log).1 == inodes {
            return Ok(cursor);
        }
        // Shifted or compressed away while listed: the next attempt goes on from what has
        // been shown by now.
    }
    Err(io::Error::other(
        "the log rotates faster than it can be read",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstore::{LogWriter, Stream};

    struct Collect(Vec<u64>);

    impl RunSink for Collect {
        fn emit(&mut self, run: &Run) -> io::Result<()> {
            self.0.push(run.timestamp_ns);
            Ok(())
        }

        fn idle(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn tracked(sink: &mut Collect, shown: Shown) -> Tracked<'_> {
        Tracked { sink, shown }
    }

    /// Writes one generation of runs stamped `stamps`, then rotates it to `.1`.
    fn generation(log: &Path, stamps: &[u64]) {
        let (mut w, _) = LogWriter::open(log).unwrap();
        for &ts in stamps {
            w.append(Stream::Stdout, ts, b"x\n").unwrap();
        }
        w.store().unwrap();
        drop(w);
        logstore::rotate::shift(log, 10).unwrap();
    }

    #[test]
    fn catches_up_after_the_drained_file_by_inode_or_by_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        generation(&log, &[1, 2]);
        let a = inode(&logstore::rotate::numbered(&log, 1)).unwrap();
        // One read spread over two files shares its time (3).
        generation(&log, &[3]);
        generation(&log, &[3, 4]);
        let (mut w, _) = LogWriter::open(&log).unwrap();
        w.append(Stream::Stdout, 5, b"x\n").unwrap();
        w.store().unwrap();

        let mut all = Collect(Vec::new());
        let c = catch_up(
            &log,
            &mut Since::Start,
            &mut tracked(&mut all, Shown::default()),
        )
        .unwrap();
        assert_eq!(all.0, [1, 2, 3, 3, 4], "every rotated run, oldest first");
        assert_eq!(
            c.unwrap().ino(),
            inode(&log).unwrap(),
            "cursor on the current file"
        );

        // The reader drained A (1, 2): the newer generations follow, found by inode.
        let mut after = Collect(Vec::new());
        let floor = Shown {
            last_ns: 2,
            at_last: 1,
        };
        catch_up(&log, &mut Since::After(a), &mut tracked(&mut after, floor)).unwrap();
        assert_eq!(after.0, [3, 3, 4]);

        // The reader's file is gone and it showed one run at 3: the second one and 4 follow.
        let mut unshown = Collect(Vec::new());
        let floor = Shown {
            last_ns: 3,
            at_last: 1,
        };
        catch_up(
            &log,
            &mut Since::After(u64::MAX),
            &mut tracked(&mut unshown, floor),
        )
        .unwrap();
        assert_eq!(unshown.0, [3, 4]);
    }

    #[test]
    fn the_watermark_counts_runs_at_the_newest_time() {
        let mut s = Shown::default();
        for ts in [0, 5, 5, 4, 5] {
            s.note(&Run {
                stream: Stream::Stdout,
                timestamp_ns: ts,
                data: Vec::new(),
            });
        }
        assert_eq!(
            s,
            Shown {
                last_ns: 5,
                at_last: 3
            }
        );
    }
}
