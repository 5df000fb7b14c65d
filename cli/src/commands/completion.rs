//! `engine completion SHELL`: the shell completion script of the whole command line, generated
//! from the clap grammar ([`crate::args::Cli`]) by `clap_complete`.

use crate::args::Cli;
use anyhow::Result;
use clap::{Command, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

/// Writes the completion script for `shell` to `out`.
///
/// # Errors
/// Write errors.
pub fn write(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut visible(Cli::command()), "engine", &mut buf);
    out.write_all(&buf)?;
    out.flush()
}

/// `cmd` without its hidden verbs (`__man`), which `clap_complete`'s bash script would offer.
fn visible(cmd: Command) -> Command {
    let subs: Vec<Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    Command::new("engine")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(subs)
}

/// Runs `engine completion`: the script on stdout.
///
/// # Errors
/// Write errors.
pub fn run(shell: Shell) -> Result<i32> {
    write(shell, &mut std::io::stdout().lock())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        write(shell, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scripts_name_every_verb_and_no_hidden_one() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = script(shell);
            for verb in ["supervisor", "start", "run", "ps", "logs", "stop", "rm"] {
                assert!(s.contains(verb), "{shell}: no {verb}");
            }
            assert!(!s.contains("__man"), "{shell}: the hidden verb is offered");
        }
        assert!(script(Shell::Bash).contains("complete -F"));
    }
}
