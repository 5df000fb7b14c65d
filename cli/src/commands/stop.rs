//! `engine stop`: SIGTERM to every process of the container, SIGKILL after the grace period;
//! returns when the container is gone.

use crate::args::StopArgs;
use crate::client::Client;
use anyhow::{Context, Result};
use proto::api::Request;
use std::path::Path;

/// Runs `engine stop`; prints the id.
///
/// # Errors
/// Unknown id or a lost connection.
pub fn run(socket: &Path, args: &StopArgs) -> Result<i32> {
    let grace_ms = args.time.checked_mul(1000).context("--time is too large")?;
    let info = Client::connect(socket)?.container(Request::Stop {
        id: args.id.clone(),
        grace_ms,
    })?;
    println!("{}", info.id);
    Ok(0)
}
