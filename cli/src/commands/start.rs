//! `engine start`: create a container and return once the supervisor has recorded it.

use crate::args::StartArgs;
use crate::client::Client;
use anyhow::{bail, Context, Result};
use proto::api::{Command, Request, StartSpec};
use std::path::Path;

const MIB: u64 = 1024 * 1024;

/// Turns `start`/`run` arguments into a request: relative rootfs paths are resolved against
/// this process's working directory, MiB become bytes.
///
/// # Errors
/// Neither or both of a command string and a `--` argv; a limit too large; a non-UTF-8 path.
pub fn spec(args: &StartArgs) -> Result<StartSpec> {
    let command = match (&args.command, args.argv.is_empty()) {
        (Some(c), true) => Command::Shell(c.clone()),
        (None, false) => Command::Argv(args.argv.clone()),
        (None, true) => bail!("missing command: give a command string or `-- PROGRAM [ARGS...]`"),
        (Some(_), false) => {
            bail!("give either a command string or `-- PROGRAM [ARGS...]`, not both")
        }
    };
    let rootfs = std::path::absolute(&args.rootfs)
        .with_context(|| format!("cannot resolve rootfs path {}", args.rootfs.display()))?;
    let mib = |v: u64, what: &str| {
        v.checked_mul(MIB)
            .with_context(|| format!("--{what} {v} is too large"))
    };
    Ok(StartSpec {
        id: args.id.clone(),
        rootfs: path_str(&rootfs)?,
        command,
        soft_limit_bytes: mib(args.soft_mib, "soft-mib")?,
        hard_limit_bytes: mib(args.hard_mib, "hard-mib")?,
        nice: args.nice,
        log_opts: args.log_opts.clone(),
        remove_on_exit: false,
    })
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path {} is not valid UTF-8", p.display()))
}

/// Runs `engine start`: prints only the container id (as `docker run -d`), so that
/// `id=$(engine start ...)` works; the host PID is in `engine ps`.
///
/// # Errors
/// Invalid arguments or the supervisor's refusal.
pub fn run(socket: &Path, args: &StartArgs) -> Result<i32> {
    let spec = spec(args)?;
    let info = Client::connect(socket)?.container(Request::Start(spec))?;
    println!("{}", info.id);
    Ok(0)
}
