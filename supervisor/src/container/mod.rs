//! Creating containers: namespaces, rootfs preparation, and the spawn of `container-init`.
//!
//! [`spawn::spawn`] is the entry point; the other modules are its phases. The rootfs is
//! built by `container-init` itself, inside the container's mount namespace.

pub mod init_args;
pub mod namespaces;
pub mod ready;
pub mod spawn;
pub mod stdio;
