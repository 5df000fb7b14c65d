//! `engine`: parse arguments, set up tracing, run the verb, map the result to an exit code.

use clap::Parser;
use engine_cli::args::{Cli, Verb};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // Usage errors are the engine's (125, as `docker run`), not clap's 2.
        let help = !e.use_stderr();
        let _ = e.print();
        std::process::exit(proto::exit::usage_status(help));
    });
    let default_level = match cli.verb {
        Verb::Supervisor(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ENGINE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let code = match engine_cli::run(&cli) {
        Ok(code) => code,
        // The reader went away (`engine ps | head`): end quietly, as a SIGPIPE'd tool would.
        Err(e) if broken_pipe(&e) => proto::exit::signal_status(nix::libc::SIGPIPE),
        Err(e) => {
            eprintln!("engine: {}", one_line(&e));
            engine_cli::client::exit_code(&e)
        }
    };
    std::process::exit(code);
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, without repeating a cause that a message already
/// quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
