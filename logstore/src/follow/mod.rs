//! Following a log while it is written and rotated: a [`Follower`] hands on every run of a log
//! once, in write order, from its oldest rotated generation to the end of the current file, and
//! on across rotations as the sink shifts (`<log>` → `<log>.1` → …), compresses and deletes
//! (past `max-file`) generations. `engine logs` (with and without `--follow`) and `engine run`
//! read containers' logs through it.
//!
//! - `cursor`: the current file, read incrementally, and whether it was rotated away.
//! - `generations`: the rotated generations between the last file read and the current one.
//! - `held`: the generation to resume after, held open.
//! - `view`: the log's files at one instant, and the generations they hold.

mod cursor;
mod error;
mod generations;
mod held;
mod view;

pub use cursor::MAX_POLL_BYTES;
pub use error::FollowError;

use crate::reader::Run;
use cursor::LogCursor;
use generations::{Shown, Since, Step};
use std::path::{Path, PathBuf};

/// What a [`Follower::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More may be there already: poll again before waiting.
    More,
    /// Everything stored so far has been handed on (or the log has no current file yet): wait,
    /// then poll again for what is written later.
    CaughtUp,
}

/// Reads one log (`<log>`, its index and its rotated generations) from its oldest run on.
#[derive(Debug)]
pub struct Follower {
    log: PathBuf,
    /// The current file being read; `None` while rotated generations come first.
    cursor: Option<LogCursor>,
    /// Which rotated generations are still to be read.
    since: Since,
    /// What has been handed on (to find the next run when a generation is gone).
    shown: Shown,
}

impl Follower {
    /// A follower of the log whose current file is `log` (`<state-dir>/logs/<id>.log`); the
    /// files need not exist yet.
    pub fn new(log: &Path) -> Self {
        Self {
            log: log.to_path_buf(),
            cursor: None,
            since: Since::Start,
            shown: Shown::default(),
        }
    }

    /// The log's current file.
    pub fn path(&self) -> &Path {
        &self.log
    }

    /// Appends to `out` runs not handed on yet, oldest first: those of one rotated generation,
    /// or at most [`MAX_POLL_BYTES`] of the current file (but at least one run). A file
    /// rotated away is drained before the generations rotated after it, and those before the
    /// new current file.
    ///
    /// # Errors
    /// [`FollowError`]: an unreadable file, or files rotating faster than they can be read;
    /// runs read before the error are in `out`.
    pub fn poll(&mut self, out: &mut Vec<Run>) -> Result<Progress, FollowError> {
        let before = out.len();
        let progress = self.step(out);
        for run in &out[before..] {
            self.shown.note(run);
        }
        progress
    }

    fn step(&mut self, out: &mut Vec<Run>) -> Result<Progress, FollowError> {
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(
                match generations::step(&self.log, &mut self.since, self.shown, out)? {
                    Step::Generation => Progress::More,
                    Step::Current(None) => Progress::CaughtUp,
                    Step::Current(Some(c)) => {
                        self.cursor = Some(c);
                        Progress::More
                    }
                },
            );
        };
        // Looked at before the poll: the sink stores a file before it rotates it, so a poll
        // after seeing the rotation has the file's every run.
        let rotated = cursor.rotated();
        let more = cursor.poll(out).map_err(|source| FollowError::Read {
            path: self.log.clone(),
            source,
        })?;
        if more {
            return Ok(Progress::More);
        }
        if rotated {
            // Drained after the rotation was visible: the generations rotated since come next
            // (several rotations may have happened), then the new current file.
            if let Some(drained) = self.cursor.take() {
                let held = drained
                    .into_generation()
                    .map_err(|source| FollowError::Read {
                        path: self.log.clone(),
                        source,
                    })?;
                self.since = Since::After(held);
            }
            return Ok(Progress::More);
        }
        Ok(Progress::CaughtUp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate;
    use crate::stream::Stream;
    use crate::writer::LogWriter;

    /// A log written and rotated as the rotating sink does, one run per read time.
    struct Sink {
        path: PathBuf,
        max_file: u32,
        log: Option<LogWriter>,
    }

    impl Sink {
        fn new(path: PathBuf, max_file: u32) -> Self {
            Self {
                path,
                max_file,
                log: None,
            }
        }

        fn write(&mut self, stamps: impl IntoIterator<Item = u64>) {
            let w = self
                .log
                .get_or_insert_with(|| LogWriter::open(&self.path).unwrap().0);
            for ts in stamps {
                w.append(Stream::Stdout, ts, format!("{ts}\n").as_bytes())
                    .unwrap();
                // One run each (runs of one time stored together are merged).
                w.store().unwrap();
            }
        }

        /// Stores and shifts the current file; compresses the new `.1` when asked.
        fn rotate(&mut self, compress: bool) {
            self.rotate_pausing(compress, |_| {});
        }

        /// [`Self::rotate`], calling `paused(i)` before each file operation `i` of the shift
        /// and once after the last (`i` = the number of operations).
        fn rotate_pausing(&mut self, compress: bool, mut paused: impl FnMut(usize)) {
            self.log.take().unwrap().store().unwrap();
            let ops = rotate::shift_ops(&self.path, self.max_file);
            for (i, op) in ops.iter().enumerate() {
                paused(i);
                op.apply().unwrap();
            }
            paused(ops.len());
            if compress {
                rotate::compress(&rotate::numbered(&self.path, 1)).unwrap();
            }
        }
    }

    /// Polls until caught up; the read times handed on (each run's data checked against it).
    fn drain(f: &mut Follower) -> Vec<u64> {
        let mut runs = Vec::new();
        while f.poll(&mut runs).unwrap() == Progress::More {}
        for r in &runs {
            assert_eq!(r.data, format!("{}\n", r.timestamp_ns).as_bytes());
        }
        runs.iter().map(|r| r.timestamp_ns).collect()
    }

    #[test]
    fn waits_for_the_log_then_reads_rotations_while_following() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(dir.path().join("c.log"), 4);
        let mut f = Follower::new(&sink.path);
        assert!(drain(&mut f).is_empty(), "no log yet");
        sink.write(1..=2);
        assert_eq!(drain(&mut f), [1, 2]);
        sink.write([3]);
        sink.rotate(false);
        assert_eq!(drain(&mut f), [3], "the rotated file is drained");
        // Two rotations between polls: the file in between is read from `.1`.
        sink.write([4]);
        sink.rotate(false);
        sink.write([5]);
        sink.rotate(false);
        sink.write([6]);
        assert_eq!(drain(&mut f), [4, 5, 6]);
        assert!(drain(&mut f).is_empty(), "nothing twice");
    }

    #[test]
    fn compressed_generations_are_read_from_the_start_and_while_following() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(dir.path().join("c.log"), 5);
        sink.write(1..=2);
        sink.rotate(true);
        sink.write([3]);
        sink.rotate(true);
        sink.write([4]);
        let mut f = Follower::new(&sink.path);
        assert_eq!(
            drain(&mut f),
            [1, 2, 3, 4],
            "from .2.gz, .1.gz, then the log"
        );
        // The file held open is compressed once rotated (a new file); it is still found by its
        // index, and the generation after it is read compressed.
        sink.write([5]);
        sink.rotate(true);
        sink.write([6]);
        sink.rotate(true);
        sink.write([7]);
        assert!(rotate::gz(&rotate::numbered(&sink.path, 2)).exists());
        assert_eq!(drain(&mut f), [5, 6, 7]);
    }

    #[test]
    fn a_generation_deleted_past_max_file_is_passed_by_read_time() {
        let dir = tempfile::tempdir().unwrap();
        // The current file and two rotated ones.
        let mut sink = Sink::new(dir.path().join("c.log"), 3);
        sink.write([1]);
        let mut f = Follower::new(&sink.path);
        assert_eq!(drain(&mut f), [1]);
        // The file held open (A) is rotated to `.1`, then `.2`, then deleted.
        sink.write([2]);
        sink.rotate(false);
        sink.write([3, 3]);
        sink.rotate(false);
        sink.write([4]);
        sink.rotate(false);
        sink.write([5]);
        assert!(!rotate::numbered(&sink.path, 3).exists());
        assert_eq!(drain(&mut f), [2, 3, 3, 4, 5]);
    }

    #[test]
    fn a_deleted_generation_shares_a_read_time_with_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = Sink::new(dir.path().join("c.log"), 2);
        sink.write([1, 2]);
        let mut f = Follower::new(&sink.path);
        assert_eq!(drain(&mut f), [1, 2]);
        // One read (time 2) spread over the file held open and the next one; the held file is
        // deleted by the second rotation, so the next is found by read time alone.
        sink.write([2]);
        sink.rotate(false);
        sink.write([2, 3]);
        sink.rotate(false);
        sink.write([4]);
        assert_eq!(drain(&mut f), [2, 2, 3, 4]);
    }

    /// Runs of times `1..=5` in four files: `.3` (1, 2), `.2` (3), `.1` (4) and the current
    /// one (5), `.gz` when `compress`; a follower that read 1 while `.3` was current; then
    /// `polls` polls of it.
    fn lagging(dir: &Path, compress: bool, polls: usize) -> (Sink, Follower, Vec<Run>) {
        let mut sink = Sink::new(dir.join("c.log"), 6);
        let mut f = Follower::new(&sink.path);
        let mut runs = Vec::new();
        sink.write([1]);
        while f.poll(&mut runs).unwrap() == Progress::More {}
        sink.write([2]);
        for ts in 3..=5 {
            sink.rotate(compress);
            sink.write([ts]);
        }
        for _ in 0..polls {
            f.poll(&mut runs).unwrap();
        }
        (sink, f, runs)
    }

    /// Polls until caught up (an error fails the test).
    fn drain_into(f: &mut Follower, runs: &mut Vec<Run>) {
        while f.poll(runs).unwrap() == Progress::More {}
    }

    fn times(runs: &[Run]) -> Vec<u64> {
        runs.iter().map(|r| r.timestamp_ns).collect()
    }

    #[test]
    fn a_shift_paused_at_any_step_hides_and_repeats_nothing() {
        // Every state a reader can find the files in during a shift, for followers at every
        // point of their catching up (and one starting there): each reads every run once.
        let ops = rotate::shift_ops(Path::new("c.log"), 6).len();
        for compress in [false, true] {
            for polls in 0..=5 {
                for pause in 0..=ops {
                    for drain_then in [false, true] {
                        let dir = tempfile::tempdir().unwrap();
                        let (mut sink, mut f, mut runs) = lagging(dir.path(), compress, polls);
                        let mut late = Follower::new(&sink.path);
                        let mut late_runs = Vec::new();
                        sink.rotate_pausing(compress, |i| {
                            if i == pause {
                                if drain_then {
                                    drain_into(&mut f, &mut runs);
                                } else {
                                    f.poll(&mut runs).unwrap();
                                }
                                drain_into(&mut late, &mut late_runs);
                            }
                        });
                        sink.write([6]);
                        drain_into(&mut f, &mut runs);
                        drain_into(&mut late, &mut late_runs);
                        let case = format!(
                            "compress {compress}, {polls} polls, paused before op {pause}, \
                             drained {drain_then}"
                        );
                        assert_eq!(times(&runs), [1, 2, 3, 4, 5, 6], "{case}");
                        assert_eq!(times(&late_runs), [1, 2, 3, 4, 5, 6], "late: {case}");
                    }
                }
            }
        }
    }
}
