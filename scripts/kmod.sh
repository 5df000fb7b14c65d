#!/usr/bin/env bash
# Builds kmod/container_monitor.ko against the cached test kernel (scripts/kernel.sh builds it
# when missing). By default the Rust code is compiled by clippy-driver (Kbuild's CLIPPY=1: the
# same compilation as rustc plus clippy's lints, so the module is built and linted at once);
# CLIPPY=0 uses plain rustc. Any compiler or clippy warning fails the build.
set -euo pipefail
if [ -z "${CLIPPY:-}" ]; then
  CLIPPY=0
  command -v clippy-driver >/dev/null && CLIPPY=1
fi
[ "$CLIPPY" = 1 ] || CLIPPY=

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ENGINE_KERNEL_CACHE:-/var/cache/engine/kernel-7.3}
KDIR="$CACHE/build"

[ -f "$KDIR/Module.symvers" ] || bash "$root/scripts/kernel.sh"

# Objects built against another kernel (or another mode) must not be reused.
stamp="$root/kmod/.build-stamp"
want="$KDIR $(cat "$CACHE/key") clippy=${CLIPPY:-0}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  make -s -C "$root/kmod" KDIR="$KDIR" clean >/dev/null
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
make -C "$root/kmod" KDIR="$KDIR" ${CLIPPY:+CLIPPY=1} 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || exit "$rc"
if grep -q 'warning' "$log"; then
  echo "kmod: the build printed warnings" >&2
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
echo "kmod: $root/kmod/container_monitor.ko"
