//! `engine logs`: print a container's log file, running or ended, byte for byte.

use crate::args::LogsArgs;
use crate::client::Client;
use anyhow::{Context, Result};
use proto::api::Request;
use std::io::Write;
use std::path::Path;

/// Runs `engine logs`.
///
/// # Errors
/// Unknown id, unreadable log file.
pub fn run(socket: &Path, args: &LogsArgs) -> Result<i32> {
    let info = Client::connect(socket)?.container(Request::Inspect {
        id: args.id.clone(),
    })?;
    let mut file = std::fs::File::open(&info.log_path)
        .with_context(|| format!("cannot open log file {}", info.log_path))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    std::io::copy(&mut file, &mut out).context("cannot copy the log")?;
    out.flush()?;
    Ok(0)
}
