//! The supervisor <-> log-router control contract, both of its ends.
//!
//! Messages travel over a `SOCK_SEQPACKET` UNIX socketpair, one MessagePack map
//! (`rmp_serde::to_vec_named`) per packet, at most [`MAX_CONTROL_LEN`] bytes.
//! [`ToRouter::AddContainer`] carries the container's stdout and stderr read ends as two file
//! descriptors in an `SCM_RIGHTS` control message of the same packet, in that order.
//!
//! - [`messages`]: [`ToRouter`], [`FromRouter`] and the packet body codec;
//! - [`sink_spec`]: [`SinkSpec`] (`--log-sink`, `--log-opt`);
//! - [`channel`]: the typed channel both ends use ([`channel::pair`], [`channel::Channel`]);
//! - [`launch`]: starting a router with its end as `--control-fd N`
//!   ([`launch::spawn_with_control`]).

pub mod channel;
pub mod launch;
pub mod messages;
pub mod sink_spec;

pub use channel::{Channel, ChannelError, Received, RouterEnd, SupervisorEnd};
pub use launch::{spawn_with_control, LaunchError, CONTROL_FD_FLAG};
pub use messages::{decode, encode, FromRouter, ToRouter, MAX_CONTROL_LEN};
pub use sink_spec::{apply_log_opts, SinkSpec, SinkSpecError};
