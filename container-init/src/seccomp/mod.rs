//! The workload's seccomp filter: Docker's default profile ([`profile`]) compiled to BPF with
//! `seccompiler` before `fork` ([`Filters::docker_default`]) and installed between `fork` and
//! `exec` ([`Filters::install`]), last of the set-up steps.
//!
//! Two filters are stacked, since a `seccompiler` filter has one action on match: the main
//! one allows [`profile::ALLOWED`] and the [`profile::arg_rules`] and fails everything else
//! with `EPERM`; the second fails [`profile::ENOSYS`] with `ENOSYS` (the kernel returns the
//! errno of the most recently installed filter among those that fail a call). Both check the
//! architecture first and kill the process on any other (`int 0x80` i386 calls: Docker's
//! profile allows them, this one does not).
//!
//! No `no_new_privs` is set (Docker's default): the filter is installed while the process
//! still has `CAP_SYS_ADMIN`, before its capabilities are reduced (as runc does without
//! `noNewPrivileges`).

pub mod profile;
pub mod x86_64;

use profile::{ArgRule, Cmp};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::io;

/// The profile could not be compiled (a bug in [`profile`], or an unsupported arch).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `seccompiler` refused a rule or the filter.
    #[error("compile seccomp filter: {0}")]
    Compile(#[source] seccompiler::BackendError),
    /// This build's architecture has no syscall table here.
    #[error("seccomp: no syscall table for {0}")]
    Arch(&'static str),
}

/// `SECCOMP_SET_MODE_FILTER` (`linux/seccomp.h`).
const SET_MODE_FILTER: libc::c_ulong = 1;

/// `struct sock_fprog` (`linux/filter.h`).
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

/// Compiled BPF programs, installed in order.
#[derive(Debug)]
pub struct Filters(Vec<BpfProgram>);

fn condition(rule: &ArgRule) -> Result<SeccompCondition, seccompiler::BackendError> {
    let (len, op, value) = match rule.cmp {
        Cmp::Eq32(v) => (SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, u64::from(v)),
        Cmp::Lt32(v) => (SeccompCmpArgLen::Dword, SeccompCmpOp::Lt, u64::from(v)),
        Cmp::MaskedZero(mask) => (SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(mask), 0),
    };
    SeccompCondition::new(rule.arg, len, op, value)
}

/// The number of the call `name` on this arch; `None` when the arch has no such call.
fn nr(name: &str) -> Option<i64> {
    x86_64::number(name)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    on_match: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let filter = SeccompFilter::new(rules, mismatch, on_match, TargetArch::x86_64)
        .map_err(SeccompError::Compile)?;
    BpfProgram::try_from(filter).map_err(SeccompError::Compile)
}

impl Filters {
    /// Docker's default profile for this arch.
    ///
    /// # Errors
    /// [`SeccompError`]: not x86_64, or `seccompiler` refused the profile.
    pub fn docker_default() -> Result<Self, SeccompError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(SeccompError::Arch(std::env::consts::ARCH));
        }
        let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for name in profile::ALLOWED {
            if let Some(n) = nr(name) {
                allow.insert(n, Vec::new());
            }
        }
        for rule in profile::arg_rules() {
            let Some(n) = nr(rule.name) else { continue };
            let cond = condition(&rule).map_err(SeccompError::Compile)?;
            let rule = SeccompRule::new(vec![cond]).map_err(SeccompError::Compile)?;
            allow.entry(n).or_default().push(rule);
        }
        let main = compile(
            allow,
            SeccompAction::Errno(profile::DEFAULT_ERRNO),
            SeccompAction::Allow,
        )?;
        let enosys = profile::ENOSYS
            .iter()
            .filter_map(|name| nr(name))
            .map(|n| (n, Vec::new()))
            .collect();
        let enosys = compile(
            enosys,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?;
        Ok(Self(vec![main, enosys]))
    }

    /// Installs the filters on the calling thread. Async-signal-safe (seccomp(2) only, no
    /// allocation), for `pre_exec`; needs `CAP_SYS_ADMIN` since `no_new_privs` is not set.
    ///
    /// # Errors
    /// The errno of seccomp(2).
    pub fn install(&self) -> io::Result<()> {
        for prog in &self.0 {
            let fprog = SockFprog {
                len: prog.len() as libc::c_ushort,
                filter: prog.as_ptr(),
            };
            // SAFETY: seccomp(2) reads the `sock_fprog` and the `len` instructions it points
            // to, both alive for the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    SET_MODE_FILTER,
                    0 as libc::c_ulong,
                    &fprog as *const SockFprog,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
