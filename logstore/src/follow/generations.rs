//! Catching up on the rotated generations of a log: the files that hold runs a reader has not
//! handed on yet, read oldest first, while the sink keeps shifting (`<log>` → `<log>.1` → …),
//! compressing (`<log>.1` → `<log>.1.gz`) and deleting (past `max-file`) them.
//!
//! A reader that holds the current file open and finds it rotated drains it, then needs the
//! generations rotated after it and before the new current file. Its file is found by the inode
//! of its index ([`Held`]) in a [`View`] of the log's files checked to be of one instant, so a
//! shift paused half way hides or repeats nothing. Deleted past `max-file`, it was the oldest:
//! every generation there is newer. Without an index and compressed (a new file), it is found by
//! the read times of the runs already handed on ([`Shown`]): runs of one read that a size limit
//! spread over several files share one read time, so the watermark counts the runs handed on at
//! the newest time too.

use super::cursor::LogCursor;
use super::error::FollowError;
use super::held::Held;
use super::view::{Gen, View};
use crate::reader::{read_runs_from, Run};
use std::fs::File;
use std::io;
use std::path::Path;

/// How often [`step`] starts over when files move while it looks at or opens them.
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

/// Which rotated generations to read.
#[derive(Debug)]
pub enum Since {
    /// All of them, oldest first.
    Start,
    /// Those rotated after this generation: all there are once it is deleted (past
    /// `max-file`); when it is there but cannot be told (no index, compressed), the runs newer
    /// than the watermark.
    After(Held),
}

/// What one [`step`] found.
#[derive(Debug)]
pub enum Step {
    /// The runs of one rotated generation were handed on: step again.
    Generation,
    /// No generation is left before the current file: a cursor on it, from its start (`None`
    /// when there is no current file at the moment: step again later).
    Current(Option<LogCursor>),
}

/// Hands on (appends to `out`) the runs of the oldest rotated generation of `log` that `since`
/// selects (by read time: the oldest with runs newer than `shown`, what was handed on before)
/// and moves `since` past it; or, when none is left before the current file, opens that.
///
/// # Errors
/// Read errors, or files moving on every one of [`TRIES`] attempts.
pub fn step(
    log: &Path,
    since: &mut Since,
    shown: Shown,
    out: &mut Vec<Run>,
) -> Result<Step, FollowError> {
    let read_error = |source| FollowError::Read {
        path: log.to_path_buf(),
        source,
    };
    for _ in 0..TRIES {
        let view = match since {
            Since::Start => View::all(log),
            Since::After(held) => View::through(log, held),
        }
        .map_err(read_error)?;
        let gens = view.generations();
        // The generations left, newest first (the current file's first when there is one).
        let (left, filtered) = match since {
            Since::Start => (&gens[..], false),
            Since::After(held) => match gens.iter().position(|g| g.is(held)) {
                Some(at) => (&gens[..at], false),
                None if held.deleted() => (&gens[..], false),
                // Its index is there but was not seen: it moved while it was looked for.
                None if held.is_index() => continue,
                None => (&gens[..], true),
            },
        };
        let mut skip_at_shown = if filtered { shown.at_last } else { 0 };
        let mut moved = false;
        for gen in left.iter().rev() {
            if gen.slot == 0 {
                let cursor = LogCursor::open(log).map_err(read_error)?;
                if cursor.as_ref().map(LogCursor::ino) == Some(gen.data) && view.unchanged(log) {
                    return Ok(Step::Current(cursor));
                }
                moved = true;
                break;
            }
            let Some((held, runs)) = read_generation(log, gen, &view)? else {
                moved = true;
                break;
            };
            let before = out.len();
            for run in runs {
                if filtered && run.timestamp_ns < shown.last_ns {
                    continue;
                }
                if run.timestamp_ns == shown.last_ns && skip_at_shown > 0 {
                    skip_at_shown -= 1;
                    continue;
                }
                out.push(run);
            }
            // By read time, a generation with nothing newer than the watermark was handed on
            // before: the next one is still to be found by read time.
            if !filtered || out.len() > before {
                *since = Since::After(held);
                return Ok(Step::Generation);
            }
        }
        if !moved && view.unchanged(log) {
            return Ok(Step::Current(None));
        }
    }
    Err(FollowError::TooFast {
        path: log.to_path_buf(),
    })
}

/// Reads one rotated generation of `view` and holds it open; `None` when its files moved, or
/// others did, after the view was taken (then the view is stale: take another).
///
/// # Errors
/// Read errors other than a file being gone.
fn read_generation(
    log: &Path,
    gen: &Gen,
    view: &View,
) -> Result<Option<(Held, Vec<Run>)>, FollowError> {
    let open = |path: &Path, ino: u64| match File::open(path) {
        Ok(f) if fd_inode(&f) == Some(ino) => Ok(Some(f)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FollowError::Read {
            path: path.to_path_buf(),
            source,
        }),
    };
    let data_path = gen.data_path(log);
    let Some(data) = open(&data_path, gen.data)? else {
        return Ok(None);
    };
    let index = match (gen.index, gen.index_path(log)) {
        (Some((_, ino)), Some(path)) => match open(&path, ino)? {
            Some(f) => Some(f),
            None => return Ok(None),
        },
        _ => None,
    };
    // Both opened while every file was where the view has it: they are the view's, and the
    // view is what the log's files were at that instant.
    if !view.unchanged(log) {
        return Ok(None);
    }
    let runs =
        read_runs_from(&data, gen.gz, index.as_ref()).map_err(|source| FollowError::Read {
            path: data_path,
            source,
        })?;
    let held = match index {
        Some(f) => Held::new(f, true),
        None => Held::new(data, false),
    }
    .map_err(|source| FollowError::Read {
        path: log.to_path_buf(),
        source,
    })?;
    Ok(Some((held, runs)))
}

/// Inode of an open file.
fn fd_inode(f: &File) -> Option<u64> {
    std::os::unix::fs::MetadataExt::ino(&f.metadata().ok()?).into()
}

#[cfg(test)]
mod tests {
    use super::super::cursor::inode;
    use super::*;
    use crate::rotate;
    use crate::stream::Stream;
    use crate::writer::LogWriter;

    /// Steps until the current file; the read times handed on and the cursor.
    fn catch_up(log: &Path, since: &mut Since, mut shown: Shown) -> (Vec<u64>, Option<LogCursor>) {
        let mut runs = Vec::new();
        loop {
            let before = runs.len();
            match step(log, since, shown, &mut runs).unwrap() {
                Step::Generation => runs[before..].iter().for_each(|r| shown.note(r)),
                Step::Current(c) => return (runs.iter().map(|r| r.timestamp_ns).collect(), c),
            }
        }
    }

    /// Writes one generation of runs stamped `stamps`, then rotates it to `.1`.
    fn generation(log: &Path, stamps: &[u64]) {
        let (mut w, _) = LogWriter::open(log).unwrap();
        for &ts in stamps {
            w.append(Stream::Stdout, ts, b"x\n").unwrap();
        }
        w.store().unwrap();
        drop(w);
        rotate::shift(log, 10).unwrap();
    }

    #[test]
    fn catches_up_after_the_drained_file_by_inode_or_by_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        generation(&log, &[1, 2]);
        let hold = |p: &Path, index: bool| Held::new(File::open(p).unwrap(), index).unwrap();
        let a = hold(&rotate::index_of(&rotate::numbered(&log, 1)), true);
        // One read spread over two files shares its time (3).
        generation(&log, &[3]);
        generation(&log, &[3, 4]);
        let (mut w, _) = LogWriter::open(&log).unwrap();
        w.append(Stream::Stdout, 5, b"x\n").unwrap();
        w.store().unwrap();

        let (all, c) = catch_up(&log, &mut Since::Start, Shown::default());
        assert_eq!(all, [1, 2, 3, 3, 4], "every rotated run, oldest first");
        assert_eq!(
            c.unwrap().ino(),
            inode(&log).unwrap(),
            "cursor on the current file"
        );

        // The reader drained A (1, 2): the newer generations follow, found by inode.
        let floor = Shown {
            last_ns: 2,
            at_last: 1,
        };
        let mut since = Since::After(a);
        assert_eq!(catch_up(&log, &mut since, floor).0, [3, 3, 4]);
        let newest = inode(&rotate::index_of(&rotate::numbered(&log, 1)));
        let Since::After(held) = since else {
            panic!("still at the start")
        };
        assert_eq!(Some(held.ino()), newest, "resumes after the newest");

        // The reader's file cannot be told (a log without index, compressed) and it showed
        // one run at 3: the second one and 4 follow.
        let floor = Shown {
            last_ns: 3,
            at_last: 1,
        };
        let other = dir.path().join("other");
        std::fs::write(&other, b"").unwrap();
        let unknown = Since::After(hold(&other, false));
        assert_eq!(catch_up(&log, &mut { unknown }, floor).0, [3, 4]);

        // The reader's file (A) was deleted past max-file: every generation listed is newer,
        // also the one sharing the read time of A's last run.
        let a_log = rotate::numbered(&log, 3);
        let a = hold(&rotate::index_of(&a_log), true);
        for p in [rotate::index_of(&a_log), a_log] {
            std::fs::remove_file(p).unwrap();
        }
        let floor = Shown {
            last_ns: 2,
            at_last: 1,
        };
        assert_eq!(catch_up(&log, &mut Since::After(a), floor).0, [3, 3, 4]);
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
