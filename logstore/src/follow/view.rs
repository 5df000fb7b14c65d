//! The files of a log at one instant, by number ("slot": `<log>` is slot 0, `<log>.N` slot
//! `N`), and the generations they hold, newest first.
//!
//! A shift (`rotate::shift_ops`) moves files while a reader looks, so one pass of `stat`s is no
//! snapshot: a generation may be seen twice or not at all. A [`View`] is taken twice; when both
//! passes agree, every file had the same inode from the first pass to the second (files only
//! move to higher numbers and a name never gets an inode back), so the view is what the
//! directory held at one instant between them. Such a view can still show a shift paused half
//! way: a slot emptied (a gap, skipped) and one generation split, its data at `N + 1` and its
//! index at `N` (paired again by [`View::generations`]; a rotation cut short by a crash
//! leaves the same split for good).

use super::cursor::inode;
use super::held::Held;
use crate::index::index_path;
use crate::rotate;
use std::io;
use std::path::{Path, PathBuf};

/// Inodes of the files of one slot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Slot {
    plain: Option<u64>,
    gz: Option<u64>,
    index: Option<u64>,
}

impl Slot {
    /// The data file: the plain one when both are there (a compression in progress), and
    /// whether it is compressed.
    fn data(&self) -> Option<(u64, bool)> {
        self.plain
            .map(|i| (i, false))
            .or(self.gz.map(|i| (i, true)))
    }
}

/// Where one generation's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gen {
    /// Slot of its data file (0: the current file).
    pub slot: u32,
    /// Its data file is `.gz`.
    pub gz: bool,
    /// Inode of its data file.
    pub data: u64,
    /// Slot and inode of its index, if it has one.
    pub index: Option<(u32, u64)>,
}

impl Gen {
    /// Path of its data file.
    pub fn data_path(&self, log: &Path) -> PathBuf {
        let plain = slot_path(log, self.slot);
        if self.gz {
            rotate::gz(&plain)
        } else {
            plain
        }
    }

    /// Path of its index, if it has one.
    pub fn index_path(&self, log: &Path) -> Option<PathBuf> {
        self.index
            .map(|(slot, _)| index_path(&slot_path(log, slot)))
    }

    /// Whether `held` names this generation (its index, or its data when held without one).
    pub fn is(&self, held: &Held) -> bool {
        if held.is_index() {
            self.index.is_some_and(|(_, ino)| ino == held.ino())
        } else {
            self.data == held.ino()
        }
    }
}

/// `<log>` for slot 0, else `<log>.N`.
fn slot_path(log: &Path, n: u32) -> PathBuf {
    if n == 0 {
        log.to_path_buf()
    } else {
        rotate::numbered(log, n)
    }
}

/// The inodes of slot `n`'s files.
fn stat(log: &Path, n: u32) -> Slot {
    let plain = slot_path(log, n);
    Slot {
        plain: inode(&plain),
        // `<log>.gz` is not one of the log's files.
        gz: if n == 0 {
            None
        } else {
            inode(&rotate::gz(&plain))
        },
        index: inode(&index_path(&plain)),
    }
}

/// The inodes of a log's files, slot 0 up to a last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    slots: Vec<Slot>,
}

impl View {
    /// Every slot of `log` (up to one past the highest number in its directory).
    ///
    /// # Errors
    /// Errors of listing the directory.
    pub fn all(log: &Path) -> io::Result<Self> {
        let last = rotate::highest_number(log)?.saturating_add(1);
        Ok(Self {
            slots: (0..=last).map(|n| stat(log, n)).collect(),
        })
    }

    /// The slots of `log` from 0 up to the one that holds `held`'s file and the next (where
    /// its data is while it moves); every slot when `held` is not found.
    ///
    /// # Errors
    /// Errors of listing the directory.
    pub fn through(log: &Path, held: &Held) -> io::Result<Self> {
        let mut slots = Vec::new();
        let mut last = None;
        let mut n = 0u32;
        loop {
            let slot = stat(log, n);
            let found = if held.is_index() {
                slot.index == Some(held.ino())
            } else {
                slot.plain == Some(held.ino()) || slot.gz == Some(held.ino())
            };
            slots.push(slot);
            if found {
                slots.push(stat(log, n + 1));
                return Ok(Self { slots });
            }
            if slot == Slot::default() && last.is_none() {
                // A gap, or the end: the directory tells which.
                last = Some(rotate::highest_number(log)?.saturating_add(1));
            }
            if last.is_some_and(|l| n >= l) || n == u32::MAX {
                return Ok(Self { slots });
            }
            n += 1;
        }
    }

    /// Whether `log`'s files are still those of this view (then the view is what they were at
    /// one instant between the two looks).
    pub fn unchanged(&self, log: &Path) -> bool {
        self.slots
            .iter()
            .zip(0..)
            .all(|(slot, n)| stat(log, n) == *slot)
    }

    /// The generations in the view, newest first (the current file's first when there is
    /// one). A slot with data but no index after a slot with an index but no data is one
    /// generation moved half way; any other slot without an index is a log without one; an
    /// index without data is passed over.
    pub fn generations(&self) -> Vec<Gen> {
        let mut out = Vec::new();
        let mut lone_index: Option<(u32, u64)> = None;
        for (slot, n) in self.slots.iter().zip(0u32..) {
            match (slot.data(), slot.index) {
                (Some((data, gz)), index) => {
                    let index = index.map(|i| (n, i)).or(lone_index);
                    out.push(Gen {
                        slot: n,
                        gz,
                        data,
                        index,
                    });
                    lone_index = None;
                }
                (None, Some(index)) => lone_index = Some((n, index)),
                (None, None) => lone_index = None,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn a_half_moved_generation_is_paired_and_a_gap_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let touch = |name: &str| std::fs::write(dir.path().join(name), b"x").unwrap();
        // Current file; .1 whole; .2 index only and .3 data only (moved half way); gap at 4;
        // .5 compressed; .6 data without index.
        for name in [
            "c.log",
            "c.log.idx",
            "c.log.1",
            "c.log.1.idx",
            "c.log.2.idx",
            "c.log.3",
            "c.log.5.gz",
            "c.log.5.idx",
            "c.log.6",
        ] {
            touch(name);
        }
        let ino = |name: &str| inode(&dir.path().join(name)).unwrap();
        let gens = View::all(&log).unwrap().generations();
        let gen = |slot, gz, data: &str, index: Option<(u32, &str)>| Gen {
            slot,
            gz,
            data: ino(data),
            index: index.map(|(n, name)| (n, ino(name))),
        };
        assert_eq!(
            gens,
            [
                gen(0, false, "c.log", Some((0, "c.log.idx"))),
                gen(1, false, "c.log.1", Some((1, "c.log.1.idx"))),
                gen(3, false, "c.log.3", Some((2, "c.log.2.idx"))),
                gen(5, true, "c.log.5.gz", Some((5, "c.log.5.idx"))),
                gen(6, false, "c.log.6", None),
            ]
        );
        assert_eq!(gens[3].data_path(&log), dir.path().join("c.log.5.gz"));
        assert_eq!(
            gens[2].index_path(&log),
            Some(dir.path().join("c.log.2.idx"))
        );

        // Looking for a generation stops one slot past it; a lost one looks at every slot.
        let held = Held::new(File::open(dir.path().join("c.log.2.idx")).unwrap(), true).unwrap();
        let view = View::through(&log, &held).unwrap();
        assert_eq!(view.slots.len(), 4);
        assert!(view.generations()[2].is(&held));
        assert!(view.unchanged(&log));
        std::fs::rename(dir.path().join("c.log.1"), dir.path().join("c.log.4")).unwrap();
        assert!(!view.unchanged(&log), "a move is seen");
        let other = Held::new(File::open(dir.path().join("c.log.6")).unwrap(), true).unwrap();
        assert_eq!(View::through(&log, &other).unwrap().slots.len(), 8);
    }
}
