//! `engine rm`: forget ended containers, their records and log files, as `docker rm` does.

use crate::args::RmArgs;
use crate::client::Client;
use anyhow::Result;
use proto::api::Request;
use std::path::Path;

/// Runs `engine rm`; prints each removed id. Every id is tried; a refused one (running,
/// unknown) is reported on stderr and makes the exit status the engine's error status
/// ([`crate::client::exit_code`]: 125).
///
/// # Errors
/// When the supervisor cannot be reached.
pub fn run(socket: &Path, args: &RmArgs) -> Result<i32> {
    let mut client = Client::connect(socket)?;
    let mut status = 0;
    for id in &args.ids {
        match client.container(Request::Remove { id: id.clone() }) {
            Ok(info) => println!("{}", info.id),
            Err(e) => {
                eprintln!("engine: {e}");
                status = crate::client::exit_code(&e);
            }
        }
    }
    Ok(status)
}
