// SPDX-License-Identifier: GPL-2.0

//! Measuring, the first half of a scan: one approximate walk over the host's processes
//! (`scan.rs`), then an exact one for the containers near a limit, with the walk's scratch
//! space reserved before each walk and grown when a walk ran out of it.

use kernel::{prelude::*, sync::atomic::Relaxed};

use super::{State, WALK_TRIES};
use crate::scan::{slack_pages, Mode, Overflow, Tally, Walk};

impl State {
    /// Fills `tallies` (per entry, in list order): one approximate walk over the processes,
    /// then, only if some entry's count is within the approximation's error of a limit that
    /// still matters for it, an exact walk for those entries alone.
    pub(super) fn measure(&mut self) -> Result {
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
    /// process's lock. A walk that found `shared_mm` too small is repeated with the room it
    /// reported missing, up to [`WALK_TRIES`] times.
    ///
    /// # Errors
    /// `ENOMEM`: an allocation failed, or every try ran out of room (processes sharing
    /// address spaces appeared faster than the room grew).
    fn walk(&mut self, mode: Mode) -> Result {
        let mut shared_room = self.shared_mm.capacity().max(64);
        let pin_room = self.mm_cache.room().max(64);
        for _ in 0..WALK_TRIES {
            self.shared_mm.clear();
            self.shared_mm.reserve(shared_room, GFP_KERNEL)?;
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
                missing_shared: 0,
                missing_pins: 0,
            };
            let walked = walk.run();
            let missing_pins = walk.missing_pins;
            if mode == Mode::Approximate {
                // Outside the RCU read lock: drop what the walk did not confirm.
                self.mm_cache.settle()?;
                if missing_pins > 0 {
                    // Those were read under their lock this time; room for them next time
                    // (only a saving: a failure here changes no result).
                    let _ = self.mm_cache.reserve(pin_room.saturating_add(missing_pins));
                }
            }
            match walked {
                Ok(()) => return Ok(()),
                // Room for every shared address space met, and some more for processes
                // started meanwhile.
                Err(Overflow { missing }) => {
                    shared_room = self
                        .shared_mm
                        .len()
                        .saturating_add(missing)
                        .saturating_add(missing / 2)
                        .saturating_add(64);
                }
            }
        }
        Err(ENOMEM)
    }
}
