#!/usr/bin/env bash
# Runs the kernel-module tests in a VM: boots the cached test kernel (scripts/kernel.sh) under
# QEMU with the host's / as a read-only 9p root filesystem, so the workspace's binaries, the
# test rootfs and kmod/container_monitor.ko run unchanged, and tests/vm/init.sh runs
# tests/vm/tests.sh as PID 1. One boot runs every test.
#
# Env: ENGINE_KERNEL_CACHE (kernel cache dir), ENGINE_VM_ACCEL=auto|kvm|tcg (default auto),
# ENGINE_VM_LOGLEVEL (the console loglevel, default 4), ENGINE_VM_TESTS=all|kmod (kmod: the module
# alone, without the engine), ENGINE_VM_TIMEOUT (seconds, default 1200), ENGINE_VM_MEM (MiB),
# ENGINE_VM_BENCH=1 (also run bench/kmod_scan.sh in the guest, up to 1000 containers: the
# defaults become 2700 s and 3072 MiB).
# The guest kernel runs with slub_debug=FZPU (sanity checks, red zones, poisoning, owner
# tracking of slab objects) and an 8 MiB log buffer, so that no report scrolls away before
# tests.sh checks the log after each phase.
# Uses KVM when /dev/kvm is usable, else TCG emulation. The console log is kept in
# target/vm/test-vm.log. Exits non-zero when any test fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${ENGINE_KERNEL_CACHE:-/var/cache/engine/kernel-7.3}
WHAT=${ENGINE_VM_TESTS:-all}
out="$root/target/vm"
mkdir -p "$out"

missing=()
for f in "$CACHE/bzImage" "$root/kmod/container_monitor.ko"; do
  [ -f "$f" ] || missing+=("$f")
done
if [ "$WHAT" = all ]; then
  for f in engine container-init log-router libengine_sink_file.so; do
    [ -f "$root/target/release/$f" ] || missing+=("target/release/$f")
  done
  [ -d "$root/target/rootfs" ] || missing+=("target/rootfs")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-vm: missing ${missing[*]} (run make build rootfs kmod)" >&2
  exit 1
fi

# The ioctl test program: std-only files (kmod_probe.rs and its modules), compiled with the
# ABI file the module uses.
probe="$out/kmod-probe"
stale=0
for f in "$root"/tests/vm/kmod_probe*.rs "$root/proto/src/kmod_abi.rs"; do
  if [ "$f" -nt "$probe" ]; then stale=1; fi
done
if [ ! -x "$probe" ] || [ "$stale" = 1 ]; then
  rustc --edition 2021 -O -o "$probe" "$root/tests/vm/kmod_probe.rs"
fi

# KVM when it really works: a nested /dev/kvm may exist and still fail at vCPU setup, or
# set up and never run the guest, so the test is that the kernel prints its first line
# within 15 s. ENGINE_VM_ACCEL=tcg|kvm forces one.
accel=(-accel tcg -cpu max)
kvm_works() {
  timeout 15 qemu-system-x86_64 -accel kvm -cpu host -machine pc -m 256 -nodefaults \
    -no-user-config -display none -serial stdio -no-reboot -kernel "$CACHE/bzImage" \
    -append "console=ttyS0 earlyprintk=serial loglevel=8 panic=-1" </dev/null 2>/dev/null |
    head -c 1 | grep -q .
}
case "${ENGINE_VM_ACCEL:-auto}" in
  kvm) accel=(-accel kvm -cpu host) ;;
  tcg) ;;
  *)
    # (In a subshell, so the shell's report of a qemu that aborted stays quiet too.)
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && (kvm_works) >/dev/null 2>&1; then
      accel=(-accel kvm -cpu host)
    fi
    ;;
esac
echo "test-vm: qemu ${accel[*]}"

# The guest runs a snapshot: the host tree is live, and a cargo build replacing a binary
# under a running guest would crash it.
snap=$(mktemp -d "$out/run.XXXXXX")
trap 'rm -rf "$snap"' EXIT
mkdir -p "$snap/bin"
cp "$root/kmod/container_monitor.ko" "$probe" "$snap/"
if [ "$WHAT" = all ]; then
  cp "$root"/target/release/{engine,container-init,log-router} "$root"/target/release/lib*.so "$snap/bin/"
  cp -a "$root/target/rootfs" "$snap/rootfs"
fi

log="$out/test-vm.log"
start=$(date +%s)
set +e
if [ "${ENGINE_VM_BENCH:-0}" = 1 ]; then
  vm_timeout=${ENGINE_VM_TIMEOUT:-2700} vm_mem=${ENGINE_VM_MEM:-3072}
else
  vm_timeout=${ENGINE_VM_TIMEOUT:-1200} vm_mem=${ENGINE_VM_MEM:-1024}
fi
timeout "$vm_timeout" qemu-system-x86_64 \
  -machine pc "${accel[@]}" -smp 2 -m "$vm_mem" \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \
  -kernel "$CACHE/bzImage" \
  -append "console=ttyS0 loglevel=${ENGINE_VM_LOGLEVEL:-4} panic=-1 slub_debug=FZPU log_buf_len=8M root=host rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144 ro init=$root/tests/vm/init.sh ENGINE_WS=$root ENGINE_VM_DIR=$snap ENGINE_TESTS=$WHAT ENGINE_BENCH=${ENGINE_VM_BENCH:-0}" \
  -fsdev local,id=host,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=host,mount_tag=host \
  -fsdev "local,id=ws,path=$root,security_model=none,readonly=on,multidevs=remap" \
  -device virtio-9p-pci,fsdev=ws,mount_tag=ws \
  -device virtio-rng-pci </dev/null 2>&1 | tee "$log"
set -e
echo "test-vm: VM ran $(($(date +%s) - start)) s; console log in $log"
status=$(grep -ao 'ENGINE-VM-EXIT=[0-9]*' "$log" | tail -1 | cut -d= -f2 || true)
if [ "$status" != 0 ]; then
  echo "test-vm: FAILED (exit status ${status:-none: the VM did not finish})" >&2
  exit 1
fi
echo "test-vm: all tests passed"
