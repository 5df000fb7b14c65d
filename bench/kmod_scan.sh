#!/usr/bin/env bash
# Figure 3a, kernel backend: CPU cost of one scan of the kernel module against the number of
# tracked containers. Runs INSIDE the test VM with the module loaded
# (`ENGINE_VM_BENCH=1 make test-vm`: tests/vm/tests.sh runs it after insmod and exports
# ENGINE_VM_BIN, ENGINE_VM_ROOTFS, ENGINE_VM_INTERVAL_MS), and prints its JSON between the
# console lines `BENCH-JSON-BEGIN kmod_scan` and `BENCH-JSON-END`, which bench/run.sh takes
# from target/vm/test-vm.log into target/bench/kmod_scan.json.
#
# A scratch supervisor with `--monitor kernel` runs 10, 100 and 1000 idle containers of 4
# processes (container-init, `sh -c` and two `sleep`s), like bench/monitor_scan.sh. At each
# level, after a settle, the module's scans are timed for a window by the workqueue
# tracepoints (workqueue_execute_start/end of the module's work function, in a tracefs
# instance of its own): the duration of every scan, not a sampled CPU time. The supervisor's
# side of the backend (its `monitor` thread: draining records and one MONITOR_QUERY ioctl per
# container per tick) is measured too, from /proc/<pid>/task/<tid>/sched (sum_exec_runtime).
# Then, with what is left of the time budget, the userspace backend is measured in the same
# guest at the same levels (a TCG guest is several times slower than the host: compare the
# two backends there, not with the host's table).
#
# A level is skipped (and listed under `skipped`) when the time budget or the guest's free
# memory, projected from the levels before it, does not allow it.
#
# Environment: KMOD_SCAN_LEVELS (default "10 100 1000"), KMOD_SCAN_WINDOW_S (default 10),
# KMOD_SCAN_BUDGET_S (seconds for the whole script, default 700: the rest of the VM tests
# need ~150 s of run.sh's default ENGINE_VM_TIMEOUT=1200), BENCH_QUICK=1 (levels 10 100,
# window 5 s). More guest memory helps the 1000 level: ENGINE_VM_MEM=2048.
set -euo pipefail
# The guest's root filesystem is the host's, read-only: results go to /tmp.
export ENGINE_BIN_DIR=${ENGINE_VM_BIN:-${ENGINE_BIN_DIR:-}}
export ENGINE_BENCH_ROOTFS=${ENGINE_VM_ROOTFS:-${ENGINE_BENCH_ROOTFS:-}}
export BENCH_OUT=${BENCH_OUT:-/tmp/bench}
[[ -n $ENGINE_BIN_DIR ]] || unset ENGINE_BIN_DIR
[[ -n $ENGINE_BENCH_ROOTFS ]] || unset ENGINE_BENCH_ROOTFS
# 4 descriptors per container in the supervisor and in the log-router: above init's 4096.
ulimit -Hn 65536 2>/dev/null || true
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools jq awk

DEV=/dev/container_monitor
[[ -c $DEV ]] || die "$DEV missing: this runs inside the VM after insmod (ENGINE_VM_BENCH=1 make test-vm)"
read -r -a levels <<<"${KMOD_SCAN_LEVELS:-$(pick "10 100" "10 100 1000")}"
window_s=${KMOD_SCAN_WINDOW_S:-$(pick 5 10)}
budget_s=${KMOD_SCAN_BUDGET_S:-700}
settle_s=2
interval_ms=${ENGINE_VM_INTERVAL_MS:-200}
deadline=$((SECONDS + budget_s))
workload=(/bin/sh -c 'sleep 1000000 & sleep 1000000 & wait')
dirs=$(empty_rootfs_dirs "${levels[-1]}" kscan)

# ---------------------------------------------------------------------------------------
# Timing the module's work with the workqueue tracepoints, in a tracefs instance.
TRACE=""
trace_setup() {
    local t
    for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
        [[ -d $t/instances ]] && break
        mount -t tracefs nodev "$t" 2>/dev/null && [[ -d $t/instances ]] && break
    done
    [[ -d $t/instances ]] || die "no tracefs (CONFIG_EVENT_TRACING)"
    TRACE=$t/instances/kmod_scan
    mkdir -p "$TRACE"
    on_exit "rmdir '$TRACE'"
    echo 0 >"$TRACE/tracing_on"
    echo 4096 >"$TRACE/buffer_size_kb"
    echo 1 >"$TRACE/events/workqueue/workqueue_execute_start/enable"
    echo 1 >"$TRACE/events/workqueue/workqueue_execute_end/enable"
}

# scan_durations: the ns of each complete run of the module's work in the trace buffer, one
# per line. The work function is a symbol of the module (its Rust name contains
# `container_monitor`); start and end are paired by the work item's address.
scan_durations() {
    awk 'function parse(i) {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^[0-9]+\.[0-9]+:$/) ts = substr($i, 1, length($i) - 1)
                if ($i == "struct") { work = $(i + 1); sub(/:$/, "", work) }
            }
        }
        /workqueue_execute_start:/ && /container_monitor/ { parse(); start[work] = ts; next }
        /workqueue_execute_end:/ { parse(); if (work in start) {
            printf "%.0f\n", (ts - start[work]) * 1e9; delete start[work] } }' "$TRACE/trace"
}

# thread_cpu_ns PID NAME: on-CPU ns of PID's thread called NAME: schedstat, else the
# scheduler's sum_exec_runtime in /proc/.../sched (ms with ns digits; always present since
# Linux 6.15), else lib.sh's tick-based fallback.
thread_cpu_ns() {
    local t
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == "$2" ]] || continue
        if [[ ! -r $t/schedstat && -r $t/sched ]]; then
            awk '$1 == "se.sum_exec_runtime" {printf "%.0f\n", $3 * 1e6; exit}' "$t/sched"
            return 0
        fi
        break
    done
    thread_runtime_ns "$1" "$2"
}

# ---------------------------------------------------------------------------------------
mem_available_kib() { awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo; }
host_processes() { find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }

# measure BACKEND LEVEL: one JSON object for the level just reached.
measure() {
    local backend=$1 level=$2 procs c0 c1 t0 t1 durations=""
    sleep "$settle_s"
    procs=$(host_processes)
    if [[ $backend == kernel ]]; then
        echo >"$TRACE/trace"
        echo 1 >"$TRACE/tracing_on"
    fi
    c0=$(thread_cpu_ns "$SUP_PID" monitor) || die "no thread named monitor in the supervisor"
    t0=$(now_ns)
    sleep "$window_s"
    c1=$(thread_cpu_ns "$SUP_PID" monitor)
    t1=$(now_ns)
    if [[ $backend == kernel ]]; then
        echo 0 >"$TRACE/tracing_on"
        durations=$(scan_durations | paste -sd, -)
        [[ -n $durations ]] || die "no scan of the module traced (workqueue tracepoints)"
    fi
    jq -n --arg backend "$backend" --argjson level "$level" --argjson procs "$procs" \
        --argjson cpu $((c1 - c0)) --argjson wall $((t1 - t0)) --argjson interval "$interval_ms" \
        --argjson scans "[$durations]" --argjson rss "$(vmrss_kib "$SUP_PID")" \
        --argjson avail "$(mem_available_kib)" '
        def q($p): sort | .[((length - 1) * $p) | floor];
        ($wall / 1e6 / $interval) as $ticks |
        {containers: $level, host_processes: $procs, window_ns: $wall, ticks: $ticks,
         supervisor_monitor_cpu_ns: $cpu, supervisor_tick_ns: ($cpu / $ticks),
         supervisor_rss_kib: $rss, mem_available_kib: $avail} +
        if $backend == "kernel" then
          {scans: ($scans | length), scan_ns: ($scans | add / length),
           scan_median_ns: ($scans | q(0.5)), scan_p90_ns: ($scans | q(0.9)),
           scan_max_ns: ($scans | max),
           pct_of_one_core: (100 * ($scans | add) / $wall),
           backend_pct_of_one_core: (100 * (($scans | add) + $cpu) / $wall)}
        else
          {scan_ns: ($cpu / $ticks), pct_of_one_core: (100 * $cpu / $wall)}
        end'
}

skipped=()
measured=()
# run_backend BACKEND: grows through the levels while the budget and memory allow; appends
# the levels' JSON objects to `measured`. Runs in this shell, not a subshell, so that the
# supervisor it starts is always stopped (on_exit).
run_backend() {
    local backend=$1 live=0 level t_start per_ctr=0 kib_per_ctr=0 avail0 need_s need_kib
    measured=()
    BENCH_MONITOR=$backend sup_start || die "supervisor with --monitor $backend"
    [[ $backend != kernel ]] || grep -q 'memory monitor backend: kernel' "$SUP_DIR/supervisor.log" ||
        die "the supervisor did not take the kernel backend: $(tail -3 "$SUP_DIR/supervisor.log")"
    avail0=$(mem_available_kib)
    for level in "${levels[@]}"; do
        # Starting, settling, the window, and up to 60 s for the supervisor to stop them all.
        need_s=$(((level - live) * per_ctr / 1000 + settle_s + window_s + 90))
        need_kib=$(((level - live) * kib_per_ctr + 65536))
        if ((SECONDS + need_s > deadline)); then
            skipped+=("$backend $level: about ${need_s} s needed, $((deadline - SECONDS)) s of the budget left")
            log "$backend: level $level skipped (${skipped[-1]})"
            break
        fi
        if ((live > 0 && need_kib > $(mem_available_kib))); then
            skipped+=("$backend $level: about $((need_kib / 1024)) MiB needed, $(($(mem_available_kib) / 1024)) MiB available")
            log "$backend: level $level skipped (${skipped[-1]})"
            break
        fi
        t_start=$SECONDS
        grow_to "$live" "$level" "$dirs" "$backend-" "${workload[@]}"
        per_ctr=$(((SECONDS - t_start + 1) * 1000 / (level - live))) # ms, rounded up
        live=$level
        kib_per_ctr=$(((avail0 - $(mem_available_kib)) / live))
        log "$backend: $level containers (started in $((SECONDS - t_start)) s, ~$kib_per_ctr KiB each), ${window_s} s window"
        measured+=("$(measure "$backend" "$level")")
    done
    sup_stop
}

trace_setup
run_backend kernel
kernel=$(json_array "${measured[@]}")
measured=()
((${#kernel} <= 2)) || run_backend userspace
userspace=$(json_array "${measured[@]}")

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
accel=TCG
[[ $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null) == kvm-clock ]] && accel=KVM
machine="QEMU $accel guest ($model), $(nproc) vCPU, $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024)) MiB, kernel $(uname -r) (debug: lockdep, kmemleak)"
doc=$(jq -n --argjson meta "$(meta_json kmod_scan "ENGINE_VM_BENCH=1 make test-vm")" \
    --arg machine "$machine" --argjson interval "$interval_ms" --argjson window "$window_s" \
    --argjson levels "$kernel" --argjson user "$userspace" \
    --argjson skipped "$(jq -n '$ARGS.positional' --args "${skipped[@]}")" \
    '$meta + {backend: "kernel", machine: $machine, interval_ms: $interval, window_s: $window,
      processes_per_container: 4,
      method: "scan_ns: mean duration of the module work function per run (workqueue_execute_start/end tracepoints); supervisor_tick_ns: CPU of the supervisor monitor thread per tick (drain + MONITOR_QUERY per container); userspace_levels: the userspace backend in the same guest, scan_ns = monitor thread CPU per tick",
      levels: $levels, userspace_levels: $user, skipped: $skipped}')
write_json "$OUT/kmod_scan.json" "$doc"
echo "BENCH-JSON-BEGIN kmod_scan"
jq -c . <<<"$doc"
echo "BENCH-JSON-END"
((${#kernel} > 2)) || die "no level measured"
