//! `engine __man DIR` (hidden): writes the man pages generated from the clap grammar
//! ([`crate::args::Cli`]) by `clap_mangen`: `engine.1` and one `engine-<verb>.1` per visible
//! verb. `make install` puts them in `$(PREFIX)/share/man/man1`, where `man engine` finds this
//! page before OpenSSL's engine(1ssl).

use crate::args::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::Path;

/// Writes every page into `dir` (created if missing).
///
/// # Errors
/// The directory or a page cannot be written.
pub fn write(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write man pages in {}", dir.display()))
}

/// Runs `engine __man DIR`.
///
/// # Errors
/// As [`write`].
pub fn run(dir: &Path) -> Result<i32> {
    write(dir)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_verb() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for verb in [
            "",
            "-start",
            "-run",
            "-ps",
            "-logs",
            "-stop",
            "-rm",
            "-completion",
        ] {
            assert!(
                names.contains(&format!("engine{verb}.1")),
                "{verb}: {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("__man")), "{names:?}");
        let page = std::fs::read_to_string(dir.path().join("engine-logs.1")).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains("since"), "{page}");
    }
}
