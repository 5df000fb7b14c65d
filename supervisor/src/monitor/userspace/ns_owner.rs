//! Which tracked container a nested PID namespace belongs to, for the userspace backend.
//!
//! A process in a PID namespace created inside a container is still a member of the
//! container's namespace (and of every ancestor), so it counts for that container although
//! its own (innermost) namespace is not a tracked one. From such a namespace this walks up
//! with `ioctl(NS_GET_PARENT)` until a tracked container's namespace is found or the chain
//! ends (`EPERM` once the parent is outside the monitor's own namespace), and caches the
//! answer, positive or negative, for every namespace on the way, by inode.
//!
//! Cost: one hash lookup per process in an untracked namespace per scan; a walk (one open and
//! at most 32 ioctls, the kernel's nesting limit) only for a namespace not seen before.
//! Answers of namespaces no scan asked about are dropped when the scan ends, so the cache
//! holds one entry per namespace in use. The owner empties it when the set of tracked
//! containers changes (a registration can turn a negative answer positive, and an inode
//! number can be reused by a new namespace once the old one is freed) and every few seconds.

use super::super::procfs::{self, ProcFs};
use nix::errno::Errno;
use std::collections::HashMap;

/// The cached answer for one namespace.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// PID-namespace inode of the tracked container it is nested in, if any.
    container: Option<u64>,
    /// Generation of the last scan that asked.
    seen: u64,
}

/// Cache of namespace → tracked container. See the module documentation.
#[derive(Debug, Default)]
pub(super) struct NsOwners {
    answers: HashMap<u64, Answer>,
    /// Scratch: the namespaces visited by one walk, reused across walks.
    chain: Vec<u64>,
}

impl NsOwners {
    /// The PID-namespace inode of the tracked container that `ns` (the PID namespace of
    /// process `pid`, not itself tracked) is nested in; `None` when it is in none, or the
    /// process is gone. `is_tracked(inode)` says whether a namespace is a tracked
    /// container's; `own_ns` is the monitor's own namespace, where the walk stops.
    /// `generation` identifies the current scan.
    pub(super) fn owner(
        &mut self,
        proc: &ProcFs,
        pid: i32,
        ns: u64,
        generation: u64,
        is_tracked: impl Fn(u64) -> bool,
        own_ns: u64,
    ) -> Option<u64> {
        if let Some(answer) = self.answers.get_mut(&ns) {
            answer.seen = generation;
            return answer.container;
        }
        // The process is gone or the pid was reused: nothing to remember.
        let container = self.walk(proc, pid, ns, is_tracked, own_ns).ok()?;
        let answer = Answer {
            container,
            seen: generation,
        };
        for &visited in &self.chain {
            self.answers.insert(visited, answer);
        }
        container
    }

    /// Walks up from the namespace of `pid`, recording the untracked namespaces visited in
    /// `self.chain`. A failed `NS_GET_PARENT` ends the chain (a negative answer).
    fn walk(
        &mut self,
        proc: &ProcFs,
        pid: i32,
        ns: u64,
        is_tracked: impl Fn(u64) -> bool,
        own_ns: u64,
    ) -> Result<Option<u64>, Errno> {
        self.chain.clear();
        let mut fd = proc.open_pid_ns(pid)?;
        if procfs::ns_inode(&fd)? != ns {
            return Err(Errno::ESRCH);
        }
        self.chain.push(ns);
        loop {
            let Ok(parent) = procfs::ns_parent(&fd) else {
                return Ok(None);
            };
            let inode = procfs::ns_inode(&parent)?;
            if is_tracked(inode) {
                return Ok(Some(inode));
            }
            if inode == own_ns {
                return Ok(None);
            }
            if let Some(answer) = self.answers.get(&inode) {
                return Ok(answer.container);
            }
            self.chain.push(inode);
            fd = parent;
        }
    }

    /// Ends a scan: drops the answers it did not ask for, or all of them when `forget`.
    pub(super) fn end_scan(&mut self, generation: u64, forget: bool) {
        self.answers
            .retain(|_, answer| answer.seen == generation && !forget);
    }

    /// Drops every answer (the set of tracked containers changed).
    pub(super) fn clear(&mut self) {
        self.answers.clear();
    }

    /// The cached answer for namespace `ns`, if any.
    pub(super) fn cached(&self, ns: u64) -> Option<Option<u64>> {
        self.answers.get(&ns).map(|answer| answer.container)
    }
}
