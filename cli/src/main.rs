//! `engine`: parse arguments, set up tracing, run the verb, map the result to an exit code.

use clap::Parser;
use engine_cli::args::{Cli, Verb};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
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
        Err(e) => {
            eprintln!("engine: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
