//! Kernel backend of the memory monitor: registers containers with `/dev/container_monitor`
//! by ioctl (ABI in `proto::kmod_abi`) and reads the module's event records.

use super::{Backend, BackendKind, MonitorEvent, Tracked};
use std::path::Path;
use std::time::Duration;

/// The kernel backend: an open handle on the device.
#[derive(Debug)]
pub struct KernelBackend {
    _private: (),
}

impl KernelBackend {
    /// Opens the device.
    ///
    /// # Errors
    /// One-line reason (missing device, EPERM, ...).
    pub fn open(device: &Path, _interval: Duration) -> Result<Self, String> {
        Err(format!("{}: kernel backend not implemented yet", device.display()))
    }
}

impl Backend for KernelBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kernel
    }
    fn register(&mut self, _tracked: &Tracked) -> Result<(), String> {
        Err("not implemented".into())
    }
    fn unregister(&mut self, _id: &str, _pid: i32) -> Result<(), String> {
        Err("not implemented".into())
    }
    fn tick(&mut self, _out: &mut Vec<MonitorEvent>) {}
}
