#!/usr/bin/env python3
"""fuse_hang.py MOUNTPOINT: mounts a FUSE filesystem at MOUNTPOINT that never answers.

It opens /dev/fuse, mounts it with mount(2) and never reads the device: the kernel's FUSE_INIT
is never answered, so every request (even a stat of the mount's root) waits. Prints
`mounted` once the mount is in place, then waits until its standard input is closed (or
SIGTERM); it then closes the device, which aborts the connection (the waiting requests fail
with ENOTCONN), and detaches the mount. Needs root. Used by bench/density.sh to measure
`engine ps` while a start is stuck on such a rootfs.
"""
import ctypes
import os
import signal
import sys

MS_NOSUID = 2
MS_NODEV = 4
MNT_DETACH = 2


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: fuse_hang.py MOUNTPOINT", file=sys.stderr)
        return 2
    target = os.fsencode(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    opts = b"fd=%d,rootmode=40000,user_id=0,group_id=0" % fd
    if libc.mount(b"engine-hang", target, b"fuse", MS_NOSUID | MS_NODEV, opts) != 0:
        err = ctypes.get_errno()
        print(f"mount: {os.strerror(err)}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: None)
    print("mounted", flush=True)
    try:
        sys.stdin.read()
    except (InterruptedError, KeyboardInterrupt):
        pass
    os.close(fd)
    libc.umount2(target, MNT_DETACH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
