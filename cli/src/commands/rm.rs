//! `engine rm`: forget ended containers, their records and log files, as `docker rm` does;
//! `-f` stops a running one first.

use crate::args::RmArgs;
use crate::client::Client;
use anyhow::Result;
use proto::api::{Request, DEFAULT_STOP_GRACE_MS};
use std::path::Path;

/// Runs `engine rm`; prints each removed id. With `--force` each container is stopped first
/// (default grace), then removed. Every id is tried; a refused one (running without
/// `--force`, unknown) is reported on stderr and makes the exit status the engine's error status
/// ([`crate::client::exit_code`]: 125).
///
/// # Errors
/// When the supervisor cannot be reached.
pub fn run(socket: &Path, args: &RmArgs) -> Result<i32> {
    let mut client = Client::connect(socket)?;
    let mut status = 0;
    for id in &args.ids {
        let removed = if args.force {
            // The stop is answered once the container has ended (at once if it had).
            client
                .container(Request::Stop {
                    id: id.clone(),
                    grace_ms: DEFAULT_STOP_GRACE_MS,
                })
                .and_then(|_| client.container(Request::Remove { id: id.clone() }))
        } else {
            client.container(Request::Remove { id: id.clone() })
        };
        match removed {
            Ok(info) => println!("{}", info.id),
            Err(e) => {
                eprintln!("engine: {e}");
                status = crate::client::exit_code(&e);
            }
        }
    }
    Ok(status)
}
