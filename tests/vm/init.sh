#!/bin/bash
# PID 1 of the kmod test VM (tests/vm/run.sh boots it with init=<this file>).
# The root filesystem is the host's / over read-only 9p, so the workspace's binaries, the
# test rootfs and the module run unchanged; this gives the tests writable scratch space and
# the kernel's debug filesystems, runs tests/vm/tests.sh, prints its exit status on the
# console for run.sh, and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
hostname engine-vm

# ENGINE_WS (the workspace), ENGINE_VM_DIR (run.sh's snapshot of the binaries) and
# ENGINE_TESTS (what to run) come from the kernel command line.
# The workspace may live under a directory the tmpfs mounts above just hid (a clone in /tmp):
# run.sh also exports it on its own, as 9p tag `ws`.
if [ ! -d "${ENGINE_WS:?}/tests/vm" ]; then
  mkdir -p "$ENGINE_WS"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro ws "$ENGINE_WS"
fi
cd "$ENGINE_WS" || exit 1
bash tests/vm/tests.sh ${ENGINE_TESTS:-all}
echo "ENGINE-VM-EXIT=$?"
/usr/bin/busybox poweroff -f
