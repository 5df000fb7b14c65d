//! Creating containers: namespaces, rootfs preparation, and the spawn of `container-init`.

pub mod spawn;
