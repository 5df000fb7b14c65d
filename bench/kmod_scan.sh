#!/usr/bin/env bash
# Figure 3a, kernel backend: CPU cost of one scan of the kernel module against the number of
# tracked containers. Runs INSIDE the test VM with the module loaded
# (`ENGINE_VM_BENCH=1 make test-vm`: tests/vm/tests.sh runs it after insmod and exports
# ENGINE_VM_BIN, ENGINE_VM_ROOTFS, ENGINE_VM_INTERVAL_MS), and prints its JSON between the
# console lines `BENCH-JSON-BEGIN kmod_scan` and `BENCH-JSON-END`, which bench/run.sh takes
# from target/vm/test-vm.log into target/bench/kmod_scan.json.
#
# A scratch supervisor runs idle containers of 4 processes (container-init, `probe spread 2 0`
# and the two children it forks without exec'ing anything: one exec per container, cheap to
# start in a TCG guest), started 8 at a time, at each level:
#   kernel backend (`--monitor kernel`): the module's scans are traced for a window in a
#     tracefs instance of its own: workqueue_execute_start/end of the module's work function
#     give each scan's duration, and sched_switch the time its worker was switched out, so
#     that `scan_ns` is on-CPU time per scan (`scan_wall_ns` keeps the duration). The
#     supervisor's side of the backend (its `monitor` thread: reading records, one
#     MONITOR_QUERY_ALL ioctl per tick, RSS changes sent to the loop) is
#     `supervisor_tick_ns`, from /proc/<pid>/task/<tid>/sched (sum_exec_runtime);
#     `supervisor_all_tick_ns` is every thread of the supervisor (its loop included).
#   userspace backend, in the same guest: `scan_ns` is the `monitor` thread's CPU per tick.
#     A TCG guest is many times slower than the host (and this kernel has lockdep): compare
#     the backends here, not with the host's table.
# Order: kernel at 10, 100 and 1000 (one supervisor, grown), then userspace at 10 and 100
# (levels are skipped, and listed under `skipped`, when the time budget or the guest's free
# memory, projected from the levels before, does not allow them).
#
# Environment (when run by hand in a guest: tests/vm/run.sh passes only ENGINE_BENCH to the
# guest, so `make test-vm` uses the defaults): KMOD_SCAN_LEVELS (kernel, default
# "10 100 1000"), KMOD_SCAN_USER_LEVELS (userspace, default "10 100"), KMOD_SCAN_WINDOW_S
# (default 10), KMOD_SCAN_BUDGET_S (seconds for the whole script, default 1500; with
# ENGINE_VM_BENCH=1, tests/vm/run.sh gives the VM 2700 s and 3072 MiB), BENCH_QUICK=1
# (kernel 10 and 100 only, 5 s window).
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
require_tools jq awk xargs

DEV=/dev/container_monitor
[[ -c $DEV ]] || die "$DEV missing: this runs inside the VM after insmod (ENGINE_VM_BENCH=1 make test-vm)"
read -r -a levels <<<"${KMOD_SCAN_LEVELS:-$(pick "10 100" "10 100 1000")}"
read -r -a user_levels <<<"${KMOD_SCAN_USER_LEVELS:-10 100}"
window_s=${KMOD_SCAN_WINDOW_S:-$(pick 5 10)}
budget_s=${KMOD_SCAN_BUDGET_S:-1500}
settle_s=2
interval_ms=${ENGINE_VM_INTERVAL_MS:-200}
deadline=$((SECONDS + budget_s))
workload=(/usr/local/bin/probe spread 2 0)
dirs=$OUT/work/rootfs-kscan

# ---------------------------------------------------------------------------------------
# Tracing the module's work, in a tracefs instance (the global buffer is left alone).
TRACE=""
trace_setup() {
    local t e
    for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
        [[ -d $t/instances ]] && break
        mount -t tracefs nodev "$t" 2>/dev/null && [[ -d $t/instances ]] && break
    done
    [[ -d $t/instances ]] || die "no tracefs (CONFIG_EVENT_TRACING)"
    TRACE=$t/instances/kmod_scan
    mkdir -p "$TRACE"
    on_exit "rmdir '$TRACE'"
    echo 0 >"$TRACE/tracing_on"
    echo 8192 >"$TRACE/buffer_size_kb"
    for e in workqueue/workqueue_execute_start workqueue/workqueue_execute_end sched/sched_switch; do
        echo 1 >"$TRACE/events/$e/enable"
    done
    # Only the workers' switches matter; keep the buffer for them if the filter is supported.
    echo 'prev_comm ~ "kworker*" || next_comm ~ "kworker*"' \
        >"$TRACE/events/sched/sched_switch/filter" 2>/dev/null || true
}

# trace_overrun: events lost because the buffer was full, over every CPU.
trace_overrun() { cat "$TRACE"/per_cpu/cpu*/stats | awk '$1 == "overrun:" {n += $2} END {print n + 0}'; }

# scans: "<duration ns> <on-CPU ns>" for each complete run of the module's work in the trace.
# The work function is a symbol of the module (its Rust name contains `container_monitor`);
# start and end are paired by the work item's address, the worker by its pid.
scans() {
    awk 'function stamp(i) {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) return substr($i, 1, length($i) - 1)
        }
        function work(i, w) {
            for (i = 1; i <= NF; i++) if ($i == "struct") { w = $(i + 1); sub(/:$/, "", w); return w }
        }
        function field(name, i) {
            for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
        }
        /workqueue_execute_start:/ && /container_monitor/ {
            p = $1; sub(/.*-/, "", p); t = stamp(); w = work()
            start[w] = t; owner[w] = p; on[p] = t; cpu[p] = 0; scanning[p] = 1; next
        }
        /sched_switch:/ {
            t = stamp(); pp = field("prev_pid"); np = field("next_pid")
            if (pp in scanning) cpu[pp] += t - on[pp]
            if (np in scanning) on[np] = t
            next
        }
        /workqueue_execute_end:/ {
            w = work()
            if (w in start) {
                p = owner[w]; t = stamp(); cpu[p] += t - on[p]
                printf "%.0f %.0f\n", (t - start[w]) * 1e9, cpu[p] * 1e9
                delete start[w]; delete scanning[p]
            }
        }' "$TRACE/trace"
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

# process_cpu_ns PID: on-CPU ns of every thread of PID (sum_exec_runtime).
process_cpu_ns() {
    cat /proc/"$1"/task/*/sched 2>/dev/null |
        awk '$1 == "se.sum_exec_runtime" {n += $3 * 1e6} END {printf "%.0f\n", n}'
}

# ---------------------------------------------------------------------------------------
mem_available_kib() { awk '$1 == "MemAvailable:" {print $2}' /proc/meminfo; }
host_processes() { find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }

# measure BACKEND LEVEL: one JSON object for the level just reached.
measure() {
    local backend=$1 level=$2 procs c0 c1 a0 a1 t0 t1 wall="" cpu="" overrun=0
    sleep "$settle_s"
    procs=$(host_processes)
    if [[ $backend == kernel ]]; then
        echo >"$TRACE/trace"
        echo 1 >"$TRACE/tracing_on"
    fi
    c0=$(thread_cpu_ns "$SUP_PID" monitor) || die "no thread named monitor in the supervisor"
    a0=$(process_cpu_ns "$SUP_PID")
    t0=$(now_ns)
    sleep "$window_s"
    c1=$(thread_cpu_ns "$SUP_PID" monitor)
    a1=$(process_cpu_ns "$SUP_PID")
    t1=$(now_ns)
    if [[ $backend == kernel ]]; then
        echo 0 >"$TRACE/tracing_on"
        overrun=$(trace_overrun)
        # (No process substitution: the guest has no /dev/fd.)
        wall=$(scans | awk '{printf "%s%s", sep, $1; sep = ","}')
        cpu=$(scans | awk '{printf "%s%s", sep, $2; sep = ","}')
        [[ -n $wall ]] || die "no scan of the module traced (workqueue tracepoints)"
    fi
    jq -n --arg backend "$backend" --argjson level "$level" --argjson procs "$procs" \
        --argjson mcpu $((c1 - c0)) --argjson acpu $((a1 - a0)) --argjson window $((t1 - t0)) --argjson interval "$interval_ms" \
        --argjson wall "[$wall]" --argjson cpu "[$cpu]" --argjson overrun "$overrun" \
        --argjson rss "$(vmrss_kib "$SUP_PID")" --argjson avail "$(mem_available_kib)" '
        def q($p): sort | .[((length - 1) * $p) | floor];
        ($window / 1e6 / $interval) as $ticks |
        {containers: $level, host_processes: $procs, window_ns: $window, ticks: $ticks,
         supervisor_monitor_cpu_ns: $mcpu, supervisor_tick_ns: ($mcpu / $ticks),
         supervisor_all_tick_ns: ($acpu / $ticks),
         supervisor_rss_kib: $rss, mem_available_kib: $avail} +
        if $backend == "kernel" then
          {scans: ($cpu | length), scan_ns: ($cpu | add / length),
           scan_median_ns: ($cpu | q(0.5)), scan_p90_ns: ($cpu | q(0.9)), scan_max_ns: ($cpu | max),
           scan_wall_ns: ($wall | add / length), scan_wall_median_ns: ($wall | q(0.5)),
           trace_overrun: $overrun,
           pct_of_one_core: (100 * ($cpu | add) / $window),
           backend_pct_of_one_core: (100 * (($cpu | add) + $mcpu) / $window),
           all_pct_of_one_core: (100 * (($cpu | add) + $acpu) / $window)}
        else
          {scan_ns: ($mcpu / $ticks), pct_of_one_core: (100 * $mcpu / $window)}
        end'
}

# Estimates carried from level to level: start time per container (ms) and memory (KiB).
per_ctr_ms=0
kib_per_ctr=0
skipped=()
measured=()
# run_backend BACKEND LEVEL...: a supervisor with that backend, grown through the levels
# while the budget and memory allow; appends the levels' JSON objects to `measured`. Runs in
# this shell, not a subshell, so that the supervisor it starts is always stopped (on_exit).
run_backend() {
    local backend=$1 live=0 level t_start avail0 need_s need_kib why
    shift
    measured=()
    BENCH_MONITOR=$backend sup_start || die "supervisor with --monitor $backend"
    [[ $backend != kernel ]] || grep -q 'memory monitor backend: kernel' "$SUP_DIR/supervisor.log" ||
        die "the supervisor did not take the kernel backend: $(tail -3 "$SUP_DIR/supervisor.log")"
    avail0=$(mem_available_kib)
    for level in "$@"; do
        # Starting, settling, the window, and up to 60 s for the supervisor to stop them all.
        need_s=$(((level - live) * per_ctr_ms / 1000 + settle_s + window_s + 90))
        need_kib=$(((level - live) * kib_per_ctr + 65536))
        why=""
        if ((SECONDS + need_s > deadline)); then
            why="about ${need_s} s needed, $((deadline - SECONDS)) s of the budget left"
        elif ((kib_per_ctr > 0 && need_kib > $(mem_available_kib))); then
            why="about $((need_kib / 1024)) MiB needed, $(($(mem_available_kib) / 1024)) MiB available"
        fi
        if [[ -n $why ]]; then
            skipped+=("$backend $level: $why")
            log "$backend: level $level skipped: $why"
            break
        fi
        # A container rootfs directory per container, made by one mkdir (execs are slow here).
        mkdir -p "$dirs"
        seq "$live" $((level - 1)) | (cd "$dirs" && xargs mkdir -p)
        t_start=$SECONDS
        grow_to "$live" "$level" "$dirs" "$backend-" "${workload[@]}"
        per_ctr_ms=$(((SECONDS - t_start + 1) * 1000 / (level - live))) # rounded up
        live=$level
        kib_per_ctr=$(((avail0 - $(mem_available_kib)) / live))
        log "$backend: $level containers (started in $((SECONDS - t_start)) s, ~$kib_per_ctr KiB each), ${window_s} s window"
        measured+=("$(measure "$backend" "$level")")
    done
    sup_stop
}

trace_setup
run_backend kernel "${levels[@]}"
kernel=("${measured[@]}")
userspace=()
if ((${#user_levels[@]} > 0)); then
    run_backend userspace "${user_levels[@]}"
    userspace=("${measured[@]}")
fi

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
accel=TCG
[[ $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null) == kvm-clock ]] && accel=KVM
machine="QEMU $accel guest ($model), $(nproc) vCPU, $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024)) MiB, kernel $(uname -r) with lockdep and kmemleak"
doc=$(jq -n --argjson meta "$(meta_json kmod_scan "ENGINE_VM_BENCH=1 make test-vm")" \
    --arg machine "$machine" --argjson interval "$interval_ms" --argjson window "$window_s" \
    --argjson levels "$(json_array "${kernel[@]}")" --argjson user "$(json_array "${userspace[@]}")" \
    --argjson skipped "$(jq -n '$ARGS.positional' --args "${skipped[@]}")" \
    '$meta + {backend: "kernel", machine: $machine, interval_ms: $interval, window_s: $window,
      processes_per_container: 4,
      method: ("kernel levels: scan_ns = mean on-CPU time of one run of the module work "
        + "function (workqueue_execute_start/end and sched_switch tracepoints), scan_wall_ns its "
        + "duration; supervisor_tick_ns = CPU of the supervisor monitor thread per tick "
        + "(records + one MONITOR_QUERY_ALL), supervisor_all_tick_ns = every supervisor "
        + "thread per tick; RSS read approximately (get_mm_counter), exactly only near a "
        + "limit. Containers: probe spread 2 0 (4 processes). userspace_levels: the "
        + "userspace backend in the same guest, scan_ns = monitor thread CPU per tick."),
      levels: $levels, userspace_levels: $user, skipped: $skipped}')
write_json "$OUT/kmod_scan.json" "$doc"
# One plain line (no colours on the console's tty), for bench/run.sh to pick up.
echo "BENCH-JSON-BEGIN kmod_scan"
jq -M -c . <<<"$doc"
echo "BENCH-JSON-END"
((${#kernel[@]} > 0)) || die "no level measured"
