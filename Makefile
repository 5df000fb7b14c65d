# Task runner for engine. `make demo` runs the main job; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
MUSL := x86_64-unknown-linux-musl
BIN := $(CURDIR)/target/release
ROOTFS := $(CURDIR)/target/rootfs

.PHONY: all build workloads rootfs demo test test-unit test-vm kernel kmod bench bench-quick lint deps clean

all: build rootfs

deps:
	bash .ci/install-deps

# container-init is PID 1 of every container, so its memory is paid once per container: the
# one the supervisor runs (target/release/container-init) is the static musl build (about a
# quarter of the glibc build's RSS), installed over the glibc one cargo puts there.
# `engine` is started once per CLI command: its static musl build skips the dynamic loader
# (about 0.6 ms of every `engine run`), so it is installed over the glibc one the same way.
# The log-router stays a glibc build: it loads sink plugins with dlopen.
build:
	$(CARGO) build --release --workspace
	$(CARGO) build --release --target $(MUSL) -p container-init -p engine-cli
	install -m 0755 target/$(MUSL)/release/container-init $(BIN)/container-init
	install -m 0755 target/$(MUSL)/release/engine $(BIN)/engine

workloads:
	$(CARGO) build --release --target $(MUSL) -p engine-workloads

rootfs: workloads
	bash scripts/build-rootfs.sh $(ROOTFS) $(CURDIR)/target/$(MUSL)/release

demo: deps build rootfs
	bash scripts/demo.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every test: unit and integration tests on the host (real namespaces), then the kernel
# module in a VM.
test: deps build rootfs
	ENGINE_BIN_DIR=$(BIN) ENGINE_TEST_ROOTFS=$(ROOTFS) $(CARGO) test --release --workspace
	$(MAKE) test-vm

kernel:
	bash scripts/kernel.sh

kmod: kernel
	bash scripts/kmod.sh

test-vm: build rootfs kmod
	bash tests/vm/run.sh

bench: build rootfs
	bash bench/run.sh

bench-quick: build rootfs
	bash bench/run.sh --quick

clean:
	$(CARGO) clean
