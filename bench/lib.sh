# shellcheck shell=bash
# bench/lib.sh — sourced by every bench/*.sh: paths, quick/full sizes, cleanup on exit,
# a scratch supervisor, the peers' command lines and small JSON helpers.
#
# Environment (all optional):
#   ENGINE_BIN_DIR      engine binaries (default target/release)
#   BENCH_ENGINE_COMMIT the commit those binaries were built from (default: this tree's HEAD)
#   ENGINE_BENCH_ROOTFS busybox rootfs shared by every runtime (default target/rootfs)
#   BENCH_OUT           where the JSON goes (default target/bench)
#   BENCH_QUICK=1       small sizes for CI smoke (set by `bench/run.sh --quick`)
#   BENCH_MONITOR       memory monitor backend of the scratch supervisor (default userspace)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BIN=${ENGINE_BIN_DIR:-$REPO/target/release}
ROOTFS=${ENGINE_BENCH_ROOTFS:-$REPO/target/rootfs}
OUT=${BENCH_OUT:-$REPO/target/bench}
QUICK=${BENCH_QUICK:-0}
ENGINE=$BIN/engine
unset ENGINE_SOCKET

mkdir -p "$OUT"

# A login shell's soft limit of 1024 open files is too low for 500 containers: the supervisor
# and the log-router each hold 4 descriptors per container and do not raise the limit
# themselves. Raise it to the hard limit (recorded in machine.json).
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------------------
# Cleanup: commands registered with on_exit run in reverse order on EXIT (and on INT/TERM).
_cleanups=()
on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
    local i
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[i]}" || true
    done
    _cleanups=()
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pick QUICK FULL: echoes the value for the current mode.
pick() { if [[ $QUICK == 1 ]]; then echo "$1"; else echo "$2"; fi; }

now_ns() { date +%s%N; }

# ---------------------------------------------------------------------------------------
# JSON helpers (values are numbers or already-quoted JSON).
json_str() { jq -Rn --arg s "$1" '$s'; }
# or_null VALUE: VALUE, or null when empty.
or_null() { if [[ -n $1 ]]; then echo "$1"; else echo null; fi; }
# json_array v1 v2 ... -> [v1,v2,...]
json_array() { local IFS=,; printf '[%s]' "$*"; }
# write_json FILE JSON: pretty-prints through jq so a malformed document fails loudly.
write_json() { jq . <<<"$2" >"$1.tmp" && mv -f "$1.tmp" "$1"; log "wrote $1"; }

# When the figure started and the load then (the figure's own processes add to it later).
BENCH_START_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
BENCH_START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# meta_json FIGURE COMMAND: the fields every figure file carries.
meta_json() {
    jq -n --arg figure "$1" --arg command "$2" --arg date "$BENCH_START_DATE" \
        --argjson quick "$QUICK" --arg load "$BENCH_START_LOAD" \
        '{figure: $figure, command: $command, date: $date, quick: ($quick == 1),
          loadavg_at_start: $load}'
}

# machine_json: nproc, CPU model, kernel, memory, the peers' versions.
machine_json() {
    jq -n --arg nproc "$(nproc)" \
        --arg model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
        --arg kernel "$(uname -r)" \
        --arg mem "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
        --arg crun "$(crun --version 2>/dev/null | head -1)" \
        --arg runc "$(runc --version 2>/dev/null | head -1)" \
        --arg bwrap "$(bwrap --version 2>/dev/null | head -1)" \
        --arg unshare "$(unshare --version 2>/dev/null | head -1)" \
        --arg hyperfine "$(hyperfine --version 2>/dev/null | head -1)" \
        --arg engine_commit "${BENCH_ENGINE_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)}" \
        --arg nofile "$(ulimit -Sn)" \
        --arg built "$(date -u -r "$ENGINE" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)" --arg bin "$BIN" \
        '{nproc: ($nproc | tonumber), cpu_model: $model, kernel: $kernel,
          mem_total_kib: ($mem | tonumber), engine_commit: $engine_commit,
          open_files_limit: $nofile, engine_built: $built, engine_bin_dir: $bin,
          versions: {crun: $crun, runc: $runc, bwrap: $bwrap, unshare: $unshare,
                     hyperfine: $hyperfine}}'
}

require_tools() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null || die "$t not installed (bash .ci/install-deps)"; done
}

# ---------------------------------------------------------------------------------------
# /proc readings.
# vmrss_kib PID: VmRSS in KiB (empty if gone).
vmrss_kib() { status_kib "$1" VmRSS; }
# status_kib PID FIELD: a "kB" field of /proc/PID/status (VmRSS, RssAnon, ...).
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null; }
# pss_kib PID: proportional set size (shared pages divided among their users), KiB.
pss_kib() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null; }
# fd_count PID
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# thread_count PID
thread_count() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# thread_runtime_ns PID NAME: on-CPU time of the process's thread called NAME, in ns
# (schedstat when the kernel has it, else utime+stime in clock ticks).
thread_runtime_ns() {
    local t hz
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == "$2" ]] || continue
        if [[ -r $t/schedstat ]]; then
            cut -d' ' -f1 "$t/schedstat"
        else
            hz=$(getconf CLK_TCK)
            # Fields 14 and 15 after the ")" of comm.
            sed 's/.*) //' "$t/stat" | awk -v hz="$hz" '{printf "%d\n", ($12 + $13) * 1e9 / hz}'
        fi
        return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# A scratch supervisor, stopped (with every container it runs) on exit.
SUP_PID=""
SUP_DIR=""
SUP_SOCK=""
SUP_ARGS=()

# sup_start: starts a supervisor (extra arguments from the array SUP_ARGS); returns 1 (supervisor stopped) if it is not ready in
# 15 s or dies.
sup_start() {
    [[ -x $ENGINE ]] || { log "$ENGINE missing: cargo build --release --workspace"; return 1; }
    SUP_DIR=$(mktemp -d /tmp/engine-bench.XXXXXX)
    SUP_SOCK=$SUP_DIR/engine.sock
    export ENGINE_SOCKET=$SUP_SOCK
    "$ENGINE" supervisor "$ROOTFS" --socket "$SUP_SOCK" --state-dir "$SUP_DIR/state" \
        --monitor "${BENCH_MONITOR:-userspace}" "${SUP_ARGS[@]}" >"$SUP_DIR/supervisor.log" 2>&1 &
    SUP_PID=$!
    on_exit sup_stop
    local deadline=$((SECONDS + 15))
    until [[ -S $SUP_SOCK ]] && "$ENGINE" ps >/dev/null 2>&1; do
        if ! kill -0 "$SUP_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            log "supervisor not ready:"
            tail -20 "$SUP_DIR/supervisor.log" >&2
            sup_stop
            return 1
        fi
        sleep 0.05
    done
    log "supervisor $SUP_PID on $SUP_SOCK"
}

# sup_router_pid: the log-router child of the supervisor.
sup_router_pid() {
    local p
    for p in $(pgrep -P "$SUP_PID"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == log-router ]] && { echo "$p"; return 0; }
    done
    return 1
}

# sup_init_pids: host PIDs of the live containers' inits.
sup_init_pids() {
    "$ENGINE" ps --format json | jq -r '.[] | select(.state == "running" or .state == "starting") | .pid'
}

# default_interval_ms: the supervisor's default memory-monitor interval, as its --help says.
default_interval_ms() {
    local v
    v=$("$ENGINE" supervisor --help 2>/dev/null | awk '/--monitor-interval-ms/ {f = 1}
        f && match($0, /\[default: [0-9]+\]/) {print substr($0, RSTART + 10, RLENGTH - 11); exit}')
    echo "${v:-200}"
}

# running_count: how many containers ps shows running.
running_count() { "$ENGINE" ps --format json | jq '[.[] | select(.state == "running")] | length'; }

# grow_to FROM TO DIRS PREFIX ARGV...: `engine start PREFIX<i> DIRS/<i> -- ARGV...` for i in
# [FROM, TO), 8 clients at a time, then fails unless ps shows TO running containers (client
# errors are in $OUT/work/start.err).
grow_to() {
    local from=$1 to=$2 dirs=$3 prefix=$4 got
    shift 4
    if ((from < to)); then
        seq "$from" $((to - 1)) | xargs -P 8 -I{} timeout 60 "$ENGINE" start "$prefix{}" "$dirs/{}" \
            -- "$@" >/dev/null 2>>"$OUT/work/start.err" || true
    fi
    got=$(running_count)
    [[ $got == "$to" ]] || die "engine: $got of $to running ($(head -3 "$OUT/work/start.err" 2>/dev/null))"
}

# sup_stop: SIGTERM (the supervisor stops every container), bounded; SIGKILL leftovers.
sup_stop() {
    [[ -n $SUP_PID ]] || return 0
    local children deadline
    children=$(pgrep -P "$SUP_PID" | tr '\n' ' ')
    kill -TERM "$SUP_PID" 2>/dev/null || true
    deadline=$((SECONDS + 60))
    while kill -0 "$SUP_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$SUP_PID" 2>/dev/null; then
        log "supervisor did not stop in 60 s: SIGKILL"
        kill -KILL "$SUP_PID" 2>/dev/null || true
    fi
    wait "$SUP_PID" 2>/dev/null || true
    if [[ -n $children ]]; then
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL $children 2>/dev/null || true
    fi
    rm -rf "$SUP_DIR"
    SUP_PID=""
}

# empty_rootfs_dirs N PREFIX: N empty container-rootfs directories (a rootfs serves one live
# container at a time), echoed one per line.
empty_rootfs_dirs() {
    local i base=$OUT/work/rootfs-$2
    mkdir -p "$base"
    for ((i = 0; i < $1; i++)); do mkdir -p "$base/$i"; done
    echo "$base"
}

# ---------------------------------------------------------------------------------------
# Peers. OCI bundles share the busybox rootfs read-only; namespaces pid, uts, mount only,
# no network namespace, no cgroup settings.

# oci_bundle DIR ARG...: writes DIR/config.json running ARG... as PID 1.
oci_bundle() {
    local dir=$1
    shift
    mkdir -p "$dir"
    jq -n --arg rootfs "$ROOTFS" --args '$ARGS.positional as $argv |
      {ociVersion: "1.0.2",
       process: {terminal: false, user: {uid: 0, gid: 0}, args: $argv,
                 env: ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"], cwd: "/"},
       root: {path: $rootfs, readonly: true},
       hostname: "bench",
       mounts: [{destination: "/proc", type: "proc", source: "proc"},
                {destination: "/dev", type: "tmpfs", source: "tmpfs",
                 options: ["nosuid", "mode=755"]},
                {destination: "/tmp", type: "tmpfs", source: "tmpfs"}],
       linux: {namespaces: [{type: "pid"}, {type: "uts"}, {type: "mount"}]}}' \
        "$@" >"$dir/config.json"
}

# in_cgroup2_ns CMD...: runs CMD in a private mount namespace where /sys/fs/cgroup is a
# cgroup2-only mount. crun 1.8 refuses this host's hybrid v1+v2 layout even with
# --cgroup-manager=disabled; runc runs there too so that both OCI runtimes see the same host.
in_cgroup2_ns() {
    unshare --mount --propagation private -- \
        sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"' in_cgroup2_ns "$@"
}

CRUN_ROOT=/run/engine-bench/crun
RUNC_ROOT=/run/engine-bench/runc
# shellcheck disable=SC2034 # used by the scripts that source this file
CRUN=(crun --cgroup-manager=disabled --root "$CRUN_ROOT")
# shellcheck disable=SC2034
RUNC=(runc --root "$RUNC_ROOT")
# shellcheck disable=SC2034
BWRAP=(bwrap --unshare-pid --unshare-uts --ro-bind "$ROOTFS" / --proc /proc --dev /dev --tmpfs /tmp)
# shellcheck disable=SC2034
FLOOR=(unshare --pid --fork --mount --uts chroot "$ROOTFS")
