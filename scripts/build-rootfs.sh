#!/usr/bin/env bash
# build-rootfs.sh <dest> <workload-bin-dir>
#
# Builds a minimal container rootfs without internet: Debian's busybox-static (/bin/busybox)
# with one symlink per applet, /etc/{passwd,group,hostname}, empty /proc /dev /tmp /sys, and
# the statically linked workloads (memory_hog, cpu_hog, io_pulse, probe) in /usr/local/bin.
# Idempotent: files are rewritten only when they differ, so a second run is fast.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <dest> <workload-bin-dir>" >&2
    exit 2
fi
dest=$1
bindir=$2
busybox=${BUSYBOX:-/bin/busybox}
workloads=(memory_hog cpu_hog io_pulse probe)

if [[ ! -x $busybox ]]; then
    echo "$busybox not found: install Debian's busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
# A dynamically linked busybox would not run in a rootfs without a libc.
if ldd "$busybox" 2>/dev/null | grep -q '=>'; then
    echo "$busybox is dynamically linked: install busybox-static" >&2
    exit 1
fi
for w in "${workloads[@]}"; do
    if [[ ! -x $bindir/$w ]]; then
        echo "$bindir/$w not found: build with cargo build --release --target x86_64-unknown-linux-musl -p engine-workloads" >&2
        exit 1
    fi
done

# install_if_changed <src> <dst> <mode>
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        install -m "$3" "$1" "$2.tmp.$$"
        mv -f "$2.tmp.$$" "$2"
    fi
}

# write_if_changed <dst> <mode> <content>
write_if_changed() {
    local tmp
    tmp=$(mktemp)
    printf '%s' "$3" >"$tmp"
    install_if_changed "$tmp" "$1" "$2"
    rm -f "$tmp"
}

mkdir -p "$dest"
for d in bin sbin usr/bin usr/sbin usr/local/bin etc root proc dev tmp sys run var/tmp; do
    mkdir -p "$dest/$d"
done
chmod 1777 "$dest/tmp" "$dest/var/tmp"
chmod 0700 "$dest/root"

install_if_changed "$busybox" "$dest/bin/busybox" 0755

# One symlink per applet at its usual place (bin/sh, usr/bin/awk ...), all to /bin/busybox.
while read -r applet; do
    [[ -z $applet || $applet == bin/busybox ]] && continue
    link=$dest/$applet
    [[ -L $link ]] && continue
    mkdir -p "$(dirname "$link")"
    ln -sfn /bin/busybox "$link"
done < <("$busybox" --list-full)

write_if_changed "$dest/etc/passwd" 0644 $'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'
write_if_changed "$dest/etc/group" 0644 $'root:x:0:\nnogroup:x:65534:\n'
write_if_changed "$dest/etc/hostname" 0644 $'engine\n'

for w in "${workloads[@]}"; do
    install_if_changed "$bindir/$w" "$dest/usr/local/bin/$w" 0755
done

echo "rootfs ready: $dest"
