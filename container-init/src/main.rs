//! `container-init`: PID 1 of every container. Thin wrapper over [`container_init::run`].

fn main() {
    let code = container_init::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
