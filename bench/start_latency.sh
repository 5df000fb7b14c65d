#!/usr/bin/env bash
# Figure 1: start-to-exit latency of `/bin/true` in a container of the busybox rootfs, from
# CLI invocation to CLI exit, measured by hyperfine (no shell: -N) for
#   engine   `engine run <id> <empty-dir> -- /bin/true` against a scratch supervisor
#   crun     `crun --cgroup-manager=disabled run` of an OCI bundle (pid, uts, mount ns)
#   runc     `runc run` of the same bundle
#   bwrap    `bwrap --unshare-pid --unshare-uts` over the same rootfs
#   floor    `unshare --pid --fork --mount --uts chroot <rootfs> /bin/true`
# Each peer is first checked: `/bin/true` exits 0 and `/bin/false` exits 1 (so the command
# really ran inside). Writes target/bench/start_latency.json (hyperfine's raw times per peer).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools hyperfine crun runc bwrap unshare jq

rounds=$(pick 1 5)
per_round=$(pick 15 20)
warmup=$(pick 2 3)
raw=$OUT/work/start_latency
rm -rf "$raw"
mkdir -p "$raw" "$CRUN_ROOT" "$RUNC_ROOT"
oci_bundle "$OUT/work/bundle-true" /bin/true
oci_bundle "$OUT/work/bundle-false" /bin/false
# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit 'in_cgroup2_ns "${CRUN[@]}" delete -f bench-true >/dev/null 2>&1'
# shellcheck disable=SC2016
on_exit 'in_cgroup2_ns "${RUNC[@]}" delete -f bench-true >/dev/null 2>&1'

# check NAME WRAPPER... -- TRUE_CMD -- FALSE_CMD: fails unless TRUE_CMD exits 0, FALSE_CMD 1.
check() {
    local name=$1 t=$2 f=$3 rc
    shift 3
    # shellcheck disable=SC2086 # the commands are word lists
    "$@" $t >/dev/null 2>"$raw/$name.err" || { cat "$raw/$name.err" >&2; return 1; }
    rc=0
    # shellcheck disable=SC2086
    "$@" $f >/dev/null 2>>"$raw/$name.err" || rc=$?
    [[ $rc == 1 ]] || { log "$name: /bin/false exited $rc, not 1"; cat "$raw/$name.err" >&2; return 1; }
}

# measure NAME ROUND COMMAND [WRAPPER...]: one hyperfine round of COMMAND (optionally run
# under WRAPPER).
measure() {
    local name=$1 round=$2 cmd=$3
    shift 3
    log "start latency: $name, round $round ($per_round runs)"
    "$@" hyperfine -N --style basic --warmup "$warmup" --runs "$per_round" -n "$name" \
        --export-json "$raw/$name.r$round.json" "$cmd" >"$raw/$name.out" 2>&1 ||
        { cat "$raw/$name.out" >&2; log "$name: hyperfine failed"; rm -f "$raw/$name.r$round.json"; }
}

# Which peers pass the check, with their timed command and wrapper.
b=$OUT/work
declare -A cmd wrap
if check crun "run --bundle $b/bundle-true bench-true" "run --bundle $b/bundle-false bench-true" \
    in_cgroup2_ns "${CRUN[@]}"; then
    cmd[crun]="${CRUN[*]} run --bundle $b/bundle-true bench-true" wrap[crun]=in_cgroup2_ns
fi
if check runc "run --bundle $b/bundle-true bench-true" "run --bundle $b/bundle-false bench-true" \
    in_cgroup2_ns "${RUNC[@]}"; then
    cmd[runc]="${RUNC[*]} run --bundle $b/bundle-true bench-true" wrap[runc]=in_cgroup2_ns
fi
if check bwrap /bin/true /bin/false "${BWRAP[@]}"; then
    cmd[bwrap]="${BWRAP[*]} /bin/true"
fi
if check floor /bin/true /bin/false "${FLOOR[@]}"; then
    cmd[floor]="${FLOOR[*]} /bin/true"
fi
engine_note=""
if sup_start; then
    dir=$(empty_rootfs_dirs 1 start)/0
    if check engine "bench-true $dir -- /bin/true" "bench-true $dir -- /bin/false" \
        "$ENGINE" --socket "$SUP_SOCK" run; then
        cmd[engine]="$ENGINE --socket $SUP_SOCK run bench-true $dir -- /bin/true"
    else
        engine_note="engine run failed the /bin/true / /bin/false check"
    fi
else
    engine_note="engine supervisor unavailable"
fi
[[ -z $engine_note ]] || log "engine: $engine_note"

# Rounds alternate the peers, so that a change of load on this shared machine during the
# run falls on all of them alike.
for ((round = 1; round <= rounds; round++)); do
    for name in engine crun runc bwrap floor; do
        [[ -n ${cmd[$name]:-} ]] || continue
        # shellcheck disable=SC2086 # the wrapper is empty or one word
        measure "$name" "$round" "${cmd[$name]}" ${wrap[$name]:-}
    done
done
sup_stop

peers='{}'
for name in engine crun runc bwrap floor; do
    compgen -G "$raw/$name.r*.json" >/dev/null || continue
    peers=$(jq --slurpfile r <(jq -s '[.[].results[0]] | {command: .[0].command,
        times: [.[].times[]], exit_codes: [.[].exit_codes[]],
        user: ([.[].user] | add / length), system: ([.[].system] | add / length)}' "$raw/$name".r*.json) \
        --arg n "$name" '. + {($n): $r[0]}' <<<"$peers")
done
write_json "$OUT/start_latency.json" "$(jq -n --argjson meta "$(meta_json start_latency "bash bench/start_latency.sh")" \
    --argjson peers "$peers" --arg note "$engine_note" --argjson runs "$((rounds * per_round))" \
    --argjson rounds "$rounds" \
    '$meta + {unit: "s", runs: $runs, rounds: $rounds, peers: $peers, note: $note}')"
