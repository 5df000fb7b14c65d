//! Creating containers: namespaces, rootfs preparation, and the spawn of `container-init`.
//!
//! [`spawn::clone_now`] (the supervisor's loop: clone now, read the ready pipe later with
//! [`ready::Reader`]) and [`spawn::spawn`] (both phases, blocking) are the entry points; the
//! other modules are their phases. The rootfs is built by `container-init` itself, inside the
//! container's mount namespace.

pub mod init_args;
pub mod namespaces;
pub mod ready;
pub mod request;
pub mod spawn;
pub mod stdio;
