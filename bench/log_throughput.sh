#!/usr/bin/env bash
# Figure 4: log throughput. A container writes 1 GiB (quick mode: 64 MiB) of 100-byte
# numbered text lines to its stdout through the real path (pipe → supervisor → log-router →
# file sink → <state-dir>/logs/<id>.log), against the ceiling: the same workload with its
# output redirected straight to a file on the same filesystem.
#
# Workload: busybox `dd if=/data.txt bs=<N> status=none` from the busybox rootfs, with
# /data.txt in the container's own rootfs layer; one row per write size (100 B: one line per
# write(2), like an unbuffered logger; 4 KiB: what stdio buffering writes; 1 MiB: large
# blocks). The ceiling runs the very same binary over the very same overlay
# (`unshare --mount` + a read-only overlay of the layer and the rootfs + `chroot`), its stdout
# a file next to the logs. Ceiling and routed runs alternate, RUNS of each per row.
#
# Routed time: from just before `engine start` to the container's `ended_at_ms` in
# `engine ps --format json` (the supervisor ends a container once it is reaped and the router
# has drained its output into the sink). Every routed run is checked for loss: exit status 0,
# no drops reported, and the log byte-identical to /data.txt (`cmp`). The log-router's peak
# RSS (VmHWM, reset per row with `echo 5 > /proc/<pid>/clear_refs`) and CPU time are recorded.
# Writes target/bench/log_throughput.json (rows rendered by bench/report.py).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools jq python3 unshare chroot cmp

mib=$(pick 64 1024)
# Runs per row: a 100-byte pair (ceiling + routed) takes ~40 s at full size, the others 1–3 s; the
# machine's page cache makes a single large write vary by several times (see the notes).
declare -A runs=([100]=$(pick 3 5) [4096]=$(pick 5 9) [1048576]=$(pick 5 9))
run_timeout_s=$(pick 60 300)
# bytes and a label per row.
sizes=(100 4096 1048576)
declare -A label=([100]="100-byte lines, one per write(2)" [4096]="4 KiB writes (stdio buffer)"
    [1048576]="1 MiB writes (large blocks)")
target_ratio=0.8

# The binaries are copied first: a rebuild in the tree during the run must not mix builds.
snap=$(mktemp -d /tmp/engine-bench-bin.XXXXXX)
on_exit "rm -rf '$snap'"
cp "$BIN"/engine "$BIN"/container-init "$BIN"/log-router "$BIN"/lib*.so "$snap/"
ENGINE=$snap/engine

sup_start || die "the engine supervisor is needed"
router=$(sup_router_pid) || die "no log-router under the supervisor"
layer=$SUP_DIR/layer
mnt=$SUP_DIR/mnt
mkdir -p "$layer" "$mnt"

# The input: numbered 100-byte lines (12-digit line number, text, newline); sequence numbers
# make a lost, repeated or reordered line a difference for `cmp`.
data=$layer/data.txt
python3 - "$data" $((mib * 1024 * 1024 / 100)) <<'EOF'
import sys
path, lines = sys.argv[1], int(sys.argv[2])
text = b" the quick brown fox jumps over the lazy dog -- engine log-throughput benchmark line"
text = (text + b"." * 87)[:87]
with open(path, "wb") as f:
    for start in range(0, lines, 10000):
        f.write(b"".join(b"%012d%s\n" % (i, text) for i in range(start, min(lines, start + 10000))))
EOF
bytes=$(stat -c %s "$data")
lines=$((bytes / 100))
cat "$data" >/dev/null # into the page cache before the first timed run
log "log throughput: $bytes bytes ($lines lines), state dir on $(df -T "$SUP_DIR" | awk 'NR == 2 {print $2}')"

# cpu_ticks PID: utime+stime of the whole process (all threads), clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# settle: drops what a run wrote and waits for the disk, so that no run pays for the
# previous one's writeback (called after every run, outside its timing).
settle() {
    rm -f "$@"
    sync
}

# ceiling BS OUT: the workload straight into OUT; echoes its wall time in ns.
ceiling() {
    local bs=$1 out=$2 t0 t1
    t0=$(now_ns)
    # shellcheck disable=SC2016 # expanded by the inner sh
    timeout "$run_timeout_s" unshare --mount --propagation private -- sh -c \
        'mount -t overlay overlay -o "lowerdir=$1:$2" "$3" && exec chroot "$3" /bin/dd if=/data.txt bs="$4" status=none' \
        ceiling "$layer" "$ROOTFS" "$mnt" "$bs" >"$out" || die "ceiling bs=$bs failed"
    t1=$(now_ns)
    [[ $(stat -c %s "$out") == "$bytes" ]] || die "ceiling bs=$bs wrote $(stat -c %s "$out") of $bytes bytes"
    settle "$out"
    echo $((t1 - t0))
}

# routed BS ID: the workload in a container; echoes one JSON object (wall ns, the checks).
routed() {
    local bs=$1 id=$2 t0 info state deadline c0 c1 log_path size same idx
    c0=$(cpu_ticks "$router")
    t0=$(now_ns)
    "$ENGINE" start "$id" "$layer" -- /bin/dd if=/data.txt bs="$bs" status=none >/dev/null ||
        die "engine start $id failed"
    deadline=$((SECONDS + run_timeout_s))
    while :; do
        info=$("$ENGINE" ps --format json | jq -c --arg id "$id" '.[] | select(.id == $id)')
        state=$(jq -r .state <<<"$info")
        [[ $state == running || $state == starting ]] || break
        ((SECONDS < deadline)) || die "$id still $state after $run_timeout_s s"
        sleep 0.2
    done
    c1=$(cpu_ticks "$router")
    log_path=$(jq -r .log_path <<<"$info")
    size=$(stat -c %s "$log_path" 2>/dev/null || echo 0)
    # The index has one 24-byte entry per run of bytes the router read (after an 8-byte magic).
    idx=$(stat -c %s "$log_path.idx" 2>/dev/null || echo 8)
    same=false
    cmp -s "$log_path" "$data" && same=true
    settle "$log_path" "$log_path.idx"
    jq -n --argjson info "$info" --argjson t0 "$t0" --argjson size "$size" --argjson same "$same" \
        --argjson runs $(((idx - 8) / 24)) \
        --argjson cpu $(((c1 - c0) * 1000000000 / $(getconf CLK_TCK))) \
        '{wall_ns: ($info.ended_at_ms * 1e6 - $t0), state: $info.state,
          exit_status: $info.exit_status, dropped: ($info.dropped // []), log_bytes: $size,
          identical: $same, router_cpu_ns: $cpu, index_runs: $runs}'
}

rows=()
for bs in "${sizes[@]}"; do
    rp=$(sup_router_pid) || die "the log-router is gone"
    [[ $rp == "$router" ]] || log "the log-router was restarted ($router → $rp)"
    router=$rp
    echo 5 >"/proc/$router/clear_refs" # VmHWM := VmRSS
    direct=()
    results=()
    for ((r = 0; r < runs[$bs]; r++)); do
        # Alternate which goes first, so a drift of the machine weighs on both.
        if ((r % 2 == 0)); then
            direct+=("$(ceiling "$bs" "$SUP_DIR/direct.out")")
            results+=("$(routed "$bs" "lt-$bs-$r")")
        else
            results+=("$(routed "$bs" "lt-$bs-$r")")
            direct+=("$(ceiling "$bs" "$SUP_DIR/direct.out")")
        fi
        log "bs=$bs run $((r + 1))/${runs[$bs]}: direct ${direct[-1]} ns, routed $(jq .wall_ns <<<"${results[-1]}") ns"
    done
    hwm=$(status_kib "$router" VmHWM)
    rows+=("$(jq -n --arg workload "${label[$bs]}" --argjson bytes "$bytes" \
        --argjson lines "$lines" --argjson direct "$(json_array "${direct[@]}")" \
        --argjson routed "[$(IFS=,; echo "${results[*]}")]" --argjson hwm "$hwm" \
        --argjson target "$target_ratio" '
        def med: sort | if length % 2 == 1 then .[length / 2 | floor]
                        else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def mibs: $bytes / 1048576 / (. / 1e9);
        ($direct | map(mibs)) as $d | ($routed | map(.wall_ns | mibs)) as $r |
        ($routed | map(select(.identical and .exit_status == 0 and (.dropped | length) == 0
                              and .state == "exited")) | length) as $ok |
        {workload: $workload,
         "MiB": ($bytes / 1048576 | round), runs: ($routed | length),
         "direct MiB/s": ($d | med), "direct min–max": "\($d | min | round)–\($d | max | round)",
         "routed MiB/s": ($r | med), "routed min–max": "\($r | min | round)–\($r | max | round)",
         "routed ÷ direct": (($r | med) / ($d | med)),
         "best ÷ best": (($r | max) / ($d | max)),
         "≥ 0.8": (if ($r | med) / ($d | med) >= $target then "yes" else "no" end),
         "log = input": (if $ok == ($routed | length) then "yes, \($ok)/\($ok) runs, \($lines) lines"
                         else "**NO**: \(($routed | length) - $ok) run(s) differ" end),
         "router VmHWM KiB": $hwm,
         "router CPU s/GiB": ($routed | map(.router_cpu_ns / 1e9 / ($bytes / 1073741824)) | med),
         "bytes per log run": ($routed | map($bytes / ([.index_runs, 1] | max)) | med | round),
         direct_ns: $direct, routed_runs: $routed}')")
    log "bs=$bs: $(jq -c '{"routed ÷ direct", "log = input", "router VmHWM KiB"}' <<<"${rows[-1]}")"
done
idle_rss=$(vmrss_kib "$router")
sup_stop

notes="Ratio = median routed MiB/s ÷ median direct MiB/s (target ≥ $target_ratio, no loss). \
Workload: busybox \`dd if=/data.txt bs=N status=none\` from the container's rootfs layer \
($lines numbered 100-byte lines). Direct: the same dd over the same read-only overlay \
(\`unshare --mount\`, \`chroot\`), stdout redirected to a file in the supervisor's state \
directory's filesystem; routed: \`engine start\` to \`ended_at_ms\` (reaped and drained) with \
the default \`file\` sink (blocking). Both include their start (a few ms); after each run its \
output is deleted and \`sync\`ed outside the timing, so no run pays for another's writeback. \
\"log = input\": \
exit 0, no drops, and the log byte-identical to the input (\`cmp\`). Router VmHWM: peak RSS \
of the log-router over the row (reset per row); its RSS when idle after the runs: \
${idle_rss:-?} KiB. Router CPU: utime+stime of the log-router per GiB routed. Best ÷ best: \
fastest routed run ÷ fastest direct run (less sensitive to other jobs on the machine). Bytes per \
log run: log size ÷ entries of its index, i.e. how much the router took from the pipe at a time."
write_json "$OUT/log_throughput.json" "$(jq -n \
    --argjson meta "$(meta_json log_throughput "bash bench/log_throughput.sh")" \
    --argjson rows "[$(IFS=,; echo "${rows[*]}")]" --arg notes "$notes" \
    --argjson idle "$(or_null "$idle_rss")" --argjson bytes "$bytes" \
    '$meta + {bytes: $bytes, router_idle_rss_kib: $idle, target_ratio: 0.8, rows: $rows,
      notes: $notes,
      targets: [$rows[] | {target: "log throughput ≥ 0.8× direct, no loss: \(.workload)",
        measured: "\(."routed ÷ direct" * 100 | round / 100)× (\(."routed MiB/s" | round) vs \(."direct MiB/s" | round) MiB/s), log = input: \(."log = input"), router VmHWM \(."router VmHWM KiB") KiB",
        met: (."routed ÷ direct" >= 0.8 and (."log = input" | startswith("yes")))}]}')"
