#!/usr/bin/env bash
# Figure 3b: hard-limit reaction time of the memory monitor at its default interval.
#
# Each run is `engine run` of bench/helpers/bench_hog (built here with plain rustc, placed
# in the container's own rootfs layer over the busybox base), which allocates past the hard
# limit (64 MiB) at once and prints `crossed_at_us=` the moment its own resident set exceeds
# the limit; it first sleeps a random 0..2 intervals, so that the crossing falls at a random
# phase of the scan interval (not at a fixed offset from registration). Reaction = the
# container's `ended_at_ms` (`engine ps --format json`: killed, reaped and its log drained)
# − crossed_at, split at the timestamp of the supervisor's HARD LIMIT log line (detection,
# then kill to end); the time `engine run` returned to the client is kept too. Writes target/bench/reaction.json.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_tools jq rustc

runs=$(pick 10 50)
soft_mib=32
hard_mib=64
hogroot=$OUT/work/hogroot
mkdir -p "$hogroot/usr/local/bin"
rustc --edition 2021 -O --target x86_64-unknown-linux-musl \
    "$BENCH_DIR/helpers/bench_hog.rs" -o "$hogroot/usr/local/bin/bench_hog"

sup_start || die "the engine supervisor is needed"
interval_ms=$(default_interval_ms)

crossed=() killed=() ended=() returned=() statuses=() states=() lost=0
for ((i = 1; i <= runs; i++)); do
    id=hog-$i
    rc=0
    timeout 60 "$ENGINE" run "$id" "$hogroot" --soft-mib "$soft_mib" --hard-mib "$hard_mib" \
        -- /usr/local/bin/bench_hog $((hard_mib << 20)) 16 $((RANDOM % (2 * interval_ms))) \
        >/dev/null 2>&1 || rc=$?
    ret_ns=$(now_ns)
    c=$("$ENGINE" logs "$id" | sed -n 's/^crossed_at_us=\([0-9]*\).*/\1/p' | head -1)
    info=$("$ENGINE" ps --format json | jq -c --arg id "$id" '.[] | select(.id == $id)')
    e=$(jq -r '.ended_at_ms // empty' <<<"$info")
    if [[ -z $c || -z $e ]]; then
        lost=$((lost + 1))
        log "run $i: no crossing line or no end (exit $rc): not counted"
        continue
    fi
    # When the monitor decided: the timestamp of its HARD LIMIT line in the supervisor's log.
    k=$(grep -a "HARD LIMIT container=$id " "$SUP_DIR/supervisor.log" | grep -o '^[0-9T:.-]*Z' | head -1 || true)
    killed+=("$(or_null "${k:+$(date -d "$k" +%s%6N)}")")
    crossed+=("$c")
    ended+=("$e")
    returned+=("$((ret_ns / 1000))")
    statuses+=("$rc")
    states+=("$(jq '.state' <<<"$info")")
done
log "reaction: $((runs - lost)) of $runs runs counted"

write_json "$OUT/reaction.json" "$(jq -n --argjson meta "$(meta_json reaction "bash bench/reaction.sh")" \
    --argjson crossed "$(json_array "${crossed[@]}")" --argjson ended "$(json_array "${ended[@]}")" \
    --argjson killed "$(json_array "${killed[@]}")" --argjson returned "$(json_array "${returned[@]}")" --argjson status "$(json_array "${statuses[@]}")" \
    --argjson states "$(json_array "${states[@]}")" --argjson runs "$runs" --argjson lost "$lost" \
    --arg interval "$interval_ms" --argjson soft "$soft_mib" --argjson hard "$hard_mib" \
    '$meta + {backend: "userspace", interval_ms: ($interval | tonumber), soft_mib: $soft,
      hard_mib: $hard, runs: $runs, lost: $lost,
      crossed_at_us: $crossed, hard_limit_line_at_us: $killed, ended_at_ms: $ended, run_returned_at_us: $returned,
      exit_status: $status, state: $states,
      reaction_ms: [range($crossed | length) as $i | $ended[$i] - $crossed[$i] / 1000],
      detection_ms: [range($crossed | length) as $i | select($killed[$i] != null)
                     | ($killed[$i] - $crossed[$i]) / 1000],
      kill_to_end_ms: [range($crossed | length) as $i | select($killed[$i] != null)
                       | $ended[$i] - $killed[$i] / 1000],
      client_reaction_ms: [range($crossed | length) as $i | ($returned[$i] - $crossed[$i]) / 1000]}')"
