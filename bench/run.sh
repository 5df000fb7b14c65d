#!/usr/bin/env bash
# bench/run.sh [--quick] — every benchmark figure, then the report.
#
#   make bench        full sizes; renders docs/performance.md
#   make bench-quick  small sizes (CI smoke, under 3 minutes); renders target/bench/performance.md
#
# Figures (each its own script, each writing target/bench/<name>.json):
#   start_latency.sh   1  /bin/true start-to-exit: engine, crun, runc, bwrap, unshare+chroot
#   density.sh         2  100 concurrent starts; ps latency, RSS and fds at 10/100/500
#   monitor_scan.sh    3a userspace monitor scan CPU at 10/100/1000 containers
#   reaction.sh        3b hard-limit reaction time distribution
#   log_throughput.sh  4  (when present; owned by the log-router work)
# Kernel backend: target/bench/kmod_scan.json, from the VM console log (see below) or kept.
# A failing figure is reported and skipped; the others still run. Figures are never asserted.
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
    --quick) export BENCH_QUICK=1 QUICK=1 ;;
    "") export BENCH_QUICK=0 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
require_tools jq python3 hyperfine

figures=(start_latency density monitor_scan reaction log_throughput)
# Per-figure time bound, seconds (quick mode keeps the whole run under 3 minutes).
declare -A bound=([start_latency]=$(pick 30 900) [density]=$(pick 50 1200)
    [monitor_scan]=$(pick 35 900) [reaction]=$(pick 25 600) [log_throughput]=$(pick 60 1500))

machine_json >"$OUT/machine.json"

# Kernel backend (figure 3a, second half): bench/kmod_scan.sh runs inside the VM of
# `make test-vm` and prints its JSON between a `BENCH-JSON-BEGIN kmod_scan` line and a
# `BENCH-JSON-END` line on the guest console, which the host keeps in target/vm/test-vm.log.
# The last such block becomes target/bench/kmod_scan.json; it is taken before the figures
# run, since a test-vm run meanwhile starts a new log.
vm_log=${BENCH_VM_LOG:-$REPO/target/vm/test-vm.log}
if [[ -f $vm_log ]] && grep -q '^BENCH-JSON-BEGIN kmod_scan' "$vm_log"; then
    # The guest's console is a terminal: drop carriage returns and colour escapes.
    tr -d '\r' <"$vm_log" | sed 's/\x1b\[[0-9;]*m//g' | awk '/^BENCH-JSON-BEGIN kmod_scan/ {f = 1; buf = ""; next}
        /^BENCH-JSON-END/ {if (f) last = buf; f = 0; next}
        f {buf = buf $0 "\n"} END {printf "%s", last}' | jq . >"$OUT/kmod_scan.json.tmp" &&
        mv -f "$OUT/kmod_scan.json.tmp" "$OUT/kmod_scan.json" &&
        log "kernel backend figure taken from $vm_log"
fi

status='{}'
for f in "${figures[@]}"; do
    script=$BENCH_DIR/$f.sh
    [[ -f $script ]] || { log "$f: no $script, skipped"; continue; }
    rm -f "$OUT/$f.json"
    log "=== $f"
    start=$SECONDS
    rc=0
    timeout --kill-after=30 "${bound[$f]}" bash "$script" || rc=$?
    ((rc == 0)) || log "$f: failed (exit $rc), skipped in the report"
    status=$(jq --arg f "$f" --argjson rc "$rc" --argjson s $((SECONDS - start)) \
        '. + {($f): {exit: $rc, seconds: $s}}' <<<"$status")
done
jq . <<<"$status" >"$OUT/status.json"


if [[ $QUICK == 1 ]]; then
    report=$OUT/performance.md
else
    report=$REPO/docs/performance.md
fi
python3 "$BENCH_DIR/report.py" --in "$OUT" --out "$report"
log "report: $report"
