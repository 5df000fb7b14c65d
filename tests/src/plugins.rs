//! Builds the third-party test sinks (`log-router/tests/plugins/`): one in C against
//! `sinks/abi/include/engine_sink.h` with `cc`, one in Rust as a crate outside the workspace
//! with cargo. Both append each record to the file named by their `out` option as
//! `<stream> <flags> <len> <id>\n<data>\n`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Compiles the C sink into `dir/name` with extra `defines` (e.g. `-DSINK_VERSION=2`).
pub fn build_c_sink(dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let so = dir.join(name);
    let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-shared",
            "-fPIC",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-parameter",
            "-o",
        ])
        .arg(&so)
        .args(defines)
        .arg(repo().join("log-router/tests/plugins/c_sink.c"))
        .arg("-I")
        .arg(repo().join("sinks/abi/include"))
        .status()
        .expect("cc runs");
    assert!(st.success(), "building the C sink failed");
    so
}

/// Builds the Rust sink as its own crate under `dir` (offline, against `sinks/abi`); returns
/// the `.so`.
pub fn build_rust_sink(dir: &Path) -> PathBuf {
    let proj = dir.join("rust-sink");
    std::fs::create_dir_all(&proj).expect("project dir");
    let manifest = format!(
        "[package]\nname = \"rust-test-sink\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\npath = \"{}\"\n\n\
         [dependencies]\nengine-sink-abi = {{ path = \"{}\" }}\n\n[workspace]\n",
        repo()
            .join("log-router/tests/plugins/rust_sink.rs")
            .display(),
        repo().join("sinks/abi").display(),
    );
    std::fs::write(proj.join("Cargo.toml"), manifest).expect("manifest");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--offline",
            "--quiet",
            "--manifest-path",
        ])
        .arg(proj.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", proj.join("target"))
        .status()
        .expect("cargo runs");
    assert!(st.success(), "building the out-of-tree Rust sink failed");
    proj.join("target/release/librust_test_sink.so")
}
