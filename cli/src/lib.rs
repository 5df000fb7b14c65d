//! The `engine` command line: argument grammar, the socket client, the client's config file,
//! and one module per verb.

pub mod args;
pub mod client;
pub mod client_config;
pub mod commands;
pub mod config_file;
pub mod logs;

use args::{Cli, Verb};

/// Runs the parsed command line; returns the process exit code.
///
/// # Errors
/// Any failure, with a one-line message for the user.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.verb {
        Verb::Supervisor(a) => return commands::supervisor::run(cli.socket.as_deref(), a),
        Verb::Completion(a) => return commands::completion::run(a.shell),
        Verb::Man(a) => return commands::man::run(&a.dir),
        _ => {}
    }
    // A flag or ENGINE_SOCKET (both in `cli.socket`) wins over the file.
    let config = client_config::load()?;
    let socket = cli
        .socket
        .clone()
        .or(config.socket)
        .unwrap_or_else(|| proto::api::DEFAULT_SOCKET.into());
    let socket = &socket;
    match &cli.verb {
        Verb::Supervisor(_) | Verb::Completion(_) | Verb::Man(_) => unreachable!("handled above"),
        Verb::Start(a) => commands::start::run(socket, a),
        Verb::Run(a) => commands::run::run(socket, a),
        Verb::Rm(a) => commands::rm::run(socket, a),
        Verb::Ps(a) => commands::ps::run(socket, a.format.or(config.format).unwrap_or_default()),
        Verb::Logs(a) => commands::logs::run(socket, a),
        Verb::Stop(a) => commands::stop::run(socket, a),
    }
}
