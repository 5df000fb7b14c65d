#!/usr/bin/env bash
# Builds the Rust-enabled test kernel for the kmod VM tests and caches it outside the repo.
#
# Cache: $ENGINE_KERNEL_CACHE (default /var/cache/engine/kernel-7.3) holds
#   bzImage    the kernel image booted by tests/vm/run.sh
#   build/     a slim external-module build tree (install-extmod-build + rust/*.rmeta, *.so)
#   key        what the cache was built from: source version, config fragment, toolchains
# Nothing is done when `key` matches; otherwise the kernel is rebuilt from
# /usr/src/linux-source-7.3.tar.xz (env ENGINE_KERNEL_SOURCE) in "$CACHE.work", which is
# deleted on success unless ENGINE_KERNEL_KEEP_WORK=1.
# C is compiled by gcc (about 11 min on 2 cores, clang is ~50% slower); the module must use
# the same compiler, so kmod.sh reads the choice from build/.config.
set -euo pipefail

SRC_TAR=${ENGINE_KERNEL_SOURCE:-/usr/src/linux-source-7.3.tar.xz}
CACHE=${ENGINE_KERNEL_CACHE:-/var/cache/engine/kernel-7.3}
WORK="$CACHE.work"
JOBS=${JOBS:-$(nproc)}

# The config fragment merged over allnoconfig: what the VM needs (serial console, 9p root from
# the host, virtio), what the engine needs (namespaces, overlayfs, tmpfs, unix sockets, ELF
# and #! binaries; seccomp, POSIX mqueue, the cgroup v2 memory, pids and cpu controllers, BPF
# device programs; not CFS bandwidth control: with it, 7.3's Rust bindings place task_struct's
# fields from `stats` on 8 bytes away from gcc's layout, and the module would read wrong
# pointers), Rust, and the debug checks the tests grep for (lockdep, atomic-sleep,
# kmemleak through debugfs, Rust overflow checks and debug assertions, debug objects for work
# items and timers, KFENCE, hung-task detection).
FRAGMENT='CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_PRINTK=y
CONFIG_PRINTK_TIME=y
CONFIG_TTY=y
CONFIG_UNIX98_PTYS=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_SHMEM=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_INOTIFY_USER=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MULTIUSER=y
CONFIG_SYSVIPC=y
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_IPC_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_USER_NS=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_PCI=y
CONFIG_ACPI=y
CONFIG_HYPERVISOR_GUEST=y
CONFIG_PARAVIRT=y
CONFIG_KVM_GUEST=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_CONSOLE=y
CONFIG_HW_RANDOM=y
CONFIG_HW_RANDOM_VIRTIO=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_NETWORK_FILESYSTEMS=y
CONFIG_9P_FS=y
CONFIG_OVERLAY_FS=y
CONFIG_RUST=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_DEBUG_KERNEL=y
CONFIG_DEBUG_FS=y
CONFIG_DEBUG_LIST=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_RUST_OVERFLOW_CHECKS=y
CONFIG_RUST_DEBUG_ASSERTIONS=y
CONFIG_DEBUG_OBJECTS=y
CONFIG_DEBUG_OBJECTS_WORK=y
CONFIG_DEBUG_OBJECTS_TIMERS=y
CONFIG_KFENCE=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_SECCOMP=y
CONFIG_SECCOMP_FILTER=y
CONFIG_POSIX_MQUEUE=y
CONFIG_CGROUP_PIDS=y
CONFIG_CGROUP_SCHED=y
CONFIG_FAIR_GROUP_SCHED=y
CONFIG_BPF_SYSCALL=y
CONFIG_CGROUP_BPF=y
'

src_version() {
  # The Debian package version names the exact source (incl. its patches); fall back to the
  # tarball's size and mtime when the package database does not know the file.
  dpkg-query -W -f='${Package} ${Version}\n' linux-source-7.3 2>/dev/null ||
    stat -c '%n %s %Y' "$SRC_TAR"
}

key() {
  src_version
  printf '%s' "$FRAGMENT" | sha256sum
  rustc --version
  bindgen --version 2>&1 | head -1
  gcc --version | head -1
  # Bump when the build recipe below changes what ends up in the cache.
  echo "recipe 1"
}

want_key=$(key)
if [ -f "$CACHE/key" ] && [ "$(cat "$CACHE/key")" = "$want_key" ] &&
  [ -f "$CACHE/bzImage" ] && [ -f "$CACHE/build/Module.symvers" ]; then
  echo "kernel: up to date in $CACHE"
  exit 0
fi

# One build at a time (make kernel from two shells, or CI retries).
mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock"
flock 9
if [ -f "$CACHE/key" ] && [ "$(cat "$CACHE/key")" = "$want_key" ]; then
  echo "kernel: up to date in $CACHE (built meanwhile)"
  exit 0
fi

echo "kernel: building into $CACHE (work dir $WORK)"
start=$(date +%s)
mkdir -p "$WORK"
# A work dir left by an interrupted build is reused (make is incremental), unless it holds
# another source.
if [ ! -f "$WORK/src/Makefile" ] || [ "$(cat "$WORK/src.version" 2>/dev/null)" != "$(src_version)" ]; then
  rm -rf "$WORK/src" "$WORK/obj"
  mkdir -p "$WORK/src"
  tar -xJf "$SRC_TAR" -C "$WORK/src" --strip-components=1
  src_version > "$WORK/src.version"
fi
printf '%s' "$FRAGMENT" > "$WORK/fragment.config"

kmake() { make -C "$WORK/src" O="$WORK/obj" -j"$JOBS" "$@"; }
mkdir -p "$WORK/obj"
kmake -s rustavailable
KCONFIG_ALLCONFIG="$WORK/fragment.config" kmake -s allnoconfig
# Every line of the fragment must have survived Kconfig's dependency resolution.
missing=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  if ! grep -qx "$line" "$WORK/obj/.config"; then
    echo "kernel: config option lost: $line" >&2
    missing=1
  fi
done < "$WORK/fragment.config"
[ "$missing" = 0 ] || exit 1

kmake bzImage modules_prepare
kmake modules

# The slim tree for out-of-tree modules: what `make modules_install`-less distributions ship
# as linux-headers (scripts/package/install-extmod-build), plus the Rust metadata and
# proc-macro libraries that rustc needs to compile a module against the `kernel` crate.
rm -rf "$CACHE.new"
mkdir -p "$CACHE.new/build"
(
  cd "$WORK/obj"
  export srctree="$WORK/src" objtree="$WORK/obj" KCONFIG_CONFIG=.config
  export SRCARCH=x86 ARCH=x86 CC=gcc HOSTCC=gcc MAKE=make
  "$WORK/src/scripts/package/install-extmod-build" "$CACHE.new/build"
)
mkdir -p "$CACHE.new/build/rust"
cp "$WORK"/obj/rust/*.rmeta "$WORK"/obj/rust/*.so "$CACHE.new/build/rust/"
cp "$WORK/obj/arch/x86/boot/bzImage" "$CACHE.new/bzImage"
cp "$WORK/obj/System.map" "$CACHE.new/System.map"
printf '%s\n' "$want_key" > "$CACHE.new/key"

rm -rf "$CACHE"
mv "$CACHE.new" "$CACHE"
[ "${ENGINE_KERNEL_KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
echo "kernel: built in $(($(date +%s) - start)) s: $(du -sh "$CACHE" | cut -f1) in $CACHE"
