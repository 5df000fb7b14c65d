#!/usr/bin/env bash
# Figure 3a: CPU cost of one memory-monitor scan against the number of tracked containers,
# userspace backend, default interval (200 ms), measured end to end in a real supervisor.
#
# At 0, 10, 100 and 1000 idle containers (each 4 processes: container-init, `sh -c` and two
# `sleep`s), after a 2 s settle, the on-CPU time of the supervisor's thread named "monitor"
# (/proc/<pid>/task/<tid>/schedstat, ns; utime+stime where schedstat is absent) is read
# before and after a fixed window; cost per scan = Δcpu / (window / interval). The scan
# walks all of /proc, so the host's process count is recorded with each level.
# Writes target/bench/monitor_scan.json. The kernel backend's figure comes from
# bench/kmod_scan.sh inside the VM (see docs/performance.md).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools jq

read -r -a levels <<<"$(pick "10 100" "10 100 1000")"
window_s=$(pick 5 20)
BENCH_MONITOR=${BENCH_MONITOR:-userspace}
sup_start || die "the engine supervisor is needed"
interval_ms=$(default_interval_ms)
dirs=$(empty_rootfs_dirs "${levels[-1]}" scan)
workload=(/bin/sh -c 'sleep 1000000 & sleep 1000000 & wait')

# measure LEVEL: one JSON object.
measure() {
    local level=$1 c0 c1 t0 t1 procs
    sleep 2
    procs=$(find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l)
    c0=$(thread_runtime_ns "$SUP_PID" monitor) || die "no thread named monitor in the supervisor"
    t0=$(now_ns)
    sleep "$window_s"
    c1=$(thread_runtime_ns "$SUP_PID" monitor)
    t1=$(now_ns)
    jq -n --argjson level "$level" --argjson procs "$procs" --argjson cpu $((c1 - c0)) \
        --argjson wall $((t1 - t0)) --argjson interval "$interval_ms" \
        --argjson rss "$(vmrss_kib "$SUP_PID")" \
        '{containers: $level, host_processes: $procs, monitor_cpu_ns: $cpu, window_ns: $wall,
          ticks: ($wall / 1e6 / $interval),
          scan_ns: ($cpu / ($wall / 1e6 / $interval)),
          pct_of_one_core: (100 * $cpu / $wall), supervisor_rss_kib: $rss}'
}

results=("$(measure 0)")
live=0
for level in "${levels[@]}"; do
    grow_to "$live" "$level" "$dirs" s "${workload[@]}"
    live=$level
    log "monitor scan: $level containers, ${window_s} s window"
    results+=("$(measure "$level")")
done
sup_stop

write_json "$OUT/monitor_scan.json" "$(jq -n --argjson meta "$(meta_json monitor_scan "bash bench/monitor_scan.sh")" \
    --arg backend "$BENCH_MONITOR" --argjson interval "$interval_ms" --argjson window "$window_s" \
    --argjson levels "[$(IFS=,; echo "${results[*]}")]" \
    '$meta + {backend: $backend, interval_ms: $interval, window_s: $window,
      processes_per_container: 4, levels: $levels}')"
