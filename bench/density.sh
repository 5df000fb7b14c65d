#!/usr/bin/env bash
# Figure 2: density.
#  a) time until N (100) containers of `sleep 1000` started at once are all running:
#     N `engine start` clients in the background against one supervisor, wall time until
#     every one has returned (start returns once the container runs), checked with ps;
#     peers `crun run -d` / `runc run -d` (bench/oci_density.sh, which also times their
#     `list` at N).
#     During the last repetition, `engine ps` is sent again and again from 50 ms into the
#     burst until every start has returned: each answer's wall time (client exec included).
#  c) `engine ps` while a start is stuck: a container whose rootfs is on a FUSE mount that
#     never answers (bench/helpers/fuse_hang.py) is started in the background; 20 `engine ps`
#     meanwhile, each timed; then the mount is released (the start fails) and one more
#     container must still start.
#  b) at 10, 100 and 500 live containers (`sleep 1000`, started 8 at a time): `engine ps`
#     and `engine ps --format json` latency (hyperfine), supervisor and log-router VmRSS,
#     threads and open fds, container-init VmRSS, RssAnon and Pss (every init), and at 0 as
#     the baseline.
# Writes target/bench/density.json.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools hyperfine jq crun runc

n_conc=$(pick 30 100)
reps=$(pick 1 5)
read -r -a levels <<<"$(pick "10 50" "10 100 500")"
ps_runs=$(pick 10 30)
raw=$OUT/work/density
rm -rf "$raw"
mkdir -p "$raw"

# start_one ID DIR: one `engine start` of `sleep 1000`.
start_one() { timeout 60 "$ENGINE" start "$1" "$2" -- /bin/sleep 1000 >/dev/null 2>>"$raw/engine.err"; }

# stop_all: stops every live container, 16 at a time, with a 1 s grace.
stop_all() {
    "$ENGINE" ps --format json | jq -r '.[] | select(.state == "running" or .state == "starting") | .id' |
        xargs -r -P 16 -I{} timeout 60 "$ENGINE" stop --time 1 {} >/dev/null 2>&1 || true
}

# time_ps: one `engine ps`, its wall time in µs on stdout (the answer itself is dropped).
time_ps() {
    local t0 t1
    t0=$(now_ns)
    "$ENGINE" ps >/dev/null 2>&1 || true
    t1=$(now_ns)
    echo $(((t1 - t0) / 1000))
}

# --- a) concurrent starts ---------------------------------------------------------------
sup_start || die "the engine supervisor is needed"
dirs=$(empty_rootfs_dirs "$n_conc" conc)
conc=()
burst_ps=()
for ((r = 0; r < reps; r++)); do
    t0=$(now_ns)
    pids=()
    for ((i = 0; i < n_conc; i++)); do
        start_one "c$r-$i" "$dirs/$i" &
        pids+=($!)
    done
    if ((r == reps - 1)); then
        sleep 0.05
        while :; do
            left=0
            for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1 && break; done
            ((left)) || break
            burst_ps+=("$(time_ps)")
        done
        log "engine ps during the burst: ${#burst_ps[@]} answers, µs: ${burst_ps[*]:0:10}..."
    fi
    wait "${pids[@]}" || true # not a bare wait: the supervisor is a job of this shell too
    t1=$(now_ns)
    got=$(running_count)
    [[ $got == "$n_conc" ]] || die "engine: $got of $n_conc running ($(head -3 "$raw/engine.err"))"
    conc+=("$(((t1 - t0) / 1000))")
    log "engine: $n_conc concurrent starts all running after $(((t1 - t0) / 1000000)) ms"
    if ((r == reps - 1)); then
        hyperfine -N --style basic --warmup 2 --runs "$ps_runs" -n "engine ps" \
            --export-json "$raw/engine-ps-conc.json" "$ENGINE ps" >/dev/null 2>&1 || true
    fi
    stop_all
done

# --- c) ps while a start is stuck on a filesystem that never answers ---------------------
stuck_ps=()
stuck_note=""
hang=$raw/hang
mkdir -p "$hang"
coproc HANG { python3 "$BENCH_DIR/helpers/fuse_hang.py" "$hang" 2>&1; }
hang_pid=$HANG_PID # bash unsets HANG_PID once the coprocess has ended
if read -r -t 10 line <&"${HANG[0]}" && [[ $line == mounted ]]; then
    timeout 120 "$ENGINE" start stuck "$hang" -- /bin/true >"$raw/stuck.out" 2>&1 &
    stuck_pid=$!
    sleep 0.2
    for ((i = 0; i < 20; i++)); do stuck_ps+=("$(time_ps)"); done
    log "engine ps during a stuck start, µs: ${stuck_ps[*]}"
    mkdir -p "$raw/after"
    eval "exec ${HANG[1]}>&-" # EOF: the helper aborts the FUSE connection and detaches it
    wait "$stuck_pid" || true
    timeout 60 "$ENGINE" start after "$raw/after" -- /bin/true >/dev/null 2>&1 ||
        stuck_note="a start after the stuck one failed"
else
    stuck_note="no FUSE mount (${line:-no output})"
    log "stuck start: $stuck_note"
fi
wait "$hang_pid" 2>/dev/null || true
sup_stop

oci='{}'
for rt in crun runc; do
    log "$rt: $n_conc concurrent starts x $reps"
    if res=$(in_cgroup2_ns bash "$BENCH_DIR/oci_density.sh" "$rt" "$n_conc" "$reps" "$raw"); then
        oci=$(jq --argjson r "$res" --arg n "$rt" '. + {($n): $r}' <<<"$oci")
    else
        log "$rt: failed ($(tail -3 "$raw/$rt.err" 2>/dev/null))"
    fi
done

# --- b) levels ----------------------------------------------------------------------------
sup_start || die "the engine supervisor is needed"
router=$(sup_router_pid || true)
max=${levels[-1]}
dirs=$(empty_rootfs_dirs "$max" level)

# snapshot LEVEL: one JSON object of the readings at this many live containers.
snapshot() {
    local level=$1 inits=() anon=() pss=() p ps_json='null' psj_json='null'
    sleep 1 # let the loop settle (monitor registrations, router adds)
    for p in $(sup_init_pids); do
        inits+=("$(vmrss_kib "$p")")
        anon+=("$(status_kib "$p" RssAnon)")
        pss+=("$(pss_kib "$p")")
    done
    if ((level > 0)); then
        hyperfine -N --style basic --warmup 2 --runs "$ps_runs" -n "engine ps" \
            --export-json "$raw/ps-$level.json" "$ENGINE ps" >/dev/null 2>&1 &&
            ps_json=$(jq '.results[0]' "$raw/ps-$level.json")
        hyperfine -N --style basic --warmup 2 --runs "$ps_runs" -n "engine ps --format json" \
            --export-json "$raw/psj-$level.json" "$ENGINE ps --format json" >/dev/null 2>&1 &&
            psj_json=$(jq '.results[0]' "$raw/psj-$level.json")
    fi
    jq -n --argjson level "$level" \
        --argjson sup_rss "$(vmrss_kib "$SUP_PID")" --argjson sup_fds "$(fd_count "$SUP_PID")" \
        --argjson sup_threads "$(thread_count "$SUP_PID")" \
        --argjson router_rss "$(or_null "${router:+$(vmrss_kib "$router")}")" \
        --argjson router_fds "$(or_null "${router:+$(fd_count "$router")}")" \
        --argjson router_threads "$(or_null "${router:+$(thread_count "$router")}")" \
        --argjson inits "$(json_array "${inits[@]}")" --argjson anon "$(json_array "${anon[@]}")" \
        --argjson pss "$(json_array "${pss[@]}")" \
        --argjson ps "$ps_json" --argjson psj "$psj_json" \
        '{containers: $level, supervisor_rss_kib: $sup_rss, supervisor_fds: $sup_fds,
          supervisor_threads: $sup_threads, router_rss_kib: $router_rss, router_fds: $router_fds,
          router_threads: $router_threads,
          init_rss_kib: $inits, init_rss_anon_kib: $anon, init_pss_kib: $pss,
          ps: $ps, ps_json: $psj}'
}

snaps=("$(snapshot 0)")
live=0
for level in "${levels[@]}"; do
    grow_to "$live" "$level" "$dirs" l /bin/sleep 1000
    live=$level
    log "engine: $level live"
    snaps+=("$(snapshot "$level")")
done
sup_stop

[[ -s $raw/engine-ps-conc.json ]] || echo '{}' >"$raw/engine-ps-conc.json"
write_json "$OUT/density.json" "$(jq -n --argjson meta "$(meta_json density "bash bench/density.sh")" \
    --argjson n "$n_conc" --argjson conc "$(json_array "${conc[@]}")" --argjson oci "$oci" \
    --slurpfile ps_conc "$raw/engine-ps-conc.json" \
    --argjson burst_ps "$(json_array "${burst_ps[@]}")" \
    --argjson stuck_ps "$(json_array "${stuck_ps[@]}")" --arg stuck_note "$stuck_note" \
    --argjson snaps "[$(IFS=,; echo "${snaps[*]}")]" \
    '$meta + {concurrent: {containers: $n,
        all_running_us: {engine: $conc, crun: ($oci.crun.all_running_us // null),
                         runc: ($oci.runc.all_running_us // null)},
        list: {engine: ($ps_conc[0].results[0] // null), crun: ($oci.crun.list_at_n // null),
               runc: ($oci.runc.list_at_n // null)},
        ps_during_burst_us: $burst_ps},
      stuck_start: {ps_us: $stuck_ps, note: $stuck_note},
      levels: $snaps}')"
