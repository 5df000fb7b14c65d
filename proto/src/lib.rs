//! Wire contracts shared by the engine processes.
//!
//! - [`frame`]: the u32-length-prefixed MessagePack frame codec used on the CLI socket.
//! - [`api`]: requests and responses between `engine` (the CLI) and the supervisor.
//! - [`router`]: control messages between the supervisor and the log-router.
//! - [`kmod_abi`]: the ioctl ABI of `/dev/container_monitor`; the kernel module compiles the
//!   very same file, so both sides share one definition.
//! - [`limits`]: validation rules for container ids and resource options.
//! - [`init`]: `container-init`'s command line and ready-pipe report.
//! - [`exit`]: every exit-status rule (125/126/127, 128 + signal, the CLI's statuses, how a
//!   container's end is attributed).

pub mod api;
pub mod exit;
pub mod frame;
pub mod init;
pub mod kmod_abi;
pub mod limits;
pub mod router;

pub use api::PROTOCOL_VERSION;
