#!/usr/bin/env bash
# oci_density.sh RUNTIME N REPS RAW_DIR: the OCI peers' side of figure 2, run by density.sh
# inside the cgroup2-only mount namespace (see in_cgroup2_ns in lib.sh).
#
# Per repetition: starts N detached containers of `sleep 1000` at once (`RUNTIME run -d`,
# all in the background), measures the wall time until every start has returned, checks
# `RUNTIME list` shows N running, measures `RUNTIME list` with hyperfine on the last
# repetition, then deletes them all (-f). Prints one JSON object.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runtime=$1 n=$2 reps=$3 raw=$4
case $runtime in
    crun) rt=("${CRUN[@]}") ;;
    runc) rt=("${RUNC[@]}") ;;
    *) die "unknown runtime $runtime" ;;
esac
bundle=$OUT/work/bundle-sleep
oci_bundle "$bundle" /bin/sleep 1000
prefix=bench-d-$runtime

delete_all() {
    "${rt[@]}" list -q 2>/dev/null | grep "^$prefix-" |
        xargs -r -P 4 -I{} "${rt[@]}" delete -f {} >/dev/null 2>&1 || true
}
on_exit delete_all
delete_all

times=()
for ((r = 0; r < reps; r++)); do
    t0=$(now_ns)
    pids=()
    for ((i = 0; i < n; i++)); do
        timeout 60 "${rt[@]}" run -d --bundle "$bundle" "$prefix-$i" </dev/null >/dev/null 2>>"$raw/$runtime.err" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    t1=$(now_ns)
    running=$("${rt[@]}" list -f json 2>/dev/null | jq "[.[] | select(.id | startswith(\"$prefix-\")) | select(.status == \"running\")] | length")
    [[ $running == "$n" ]] || die "$runtime: $running of $n running"
    times+=("$(((t1 - t0) / 1000))")
    if ((r == reps - 1)); then
        hyperfine -N --style basic --warmup 2 --runs "$(pick 10 30)" -n "$runtime list" \
            --export-json "$raw/$runtime-list.json" "${rt[*]} list" >/dev/null 2>&1 || true
    fi
    delete_all
done
jq -n --argjson t "$(json_array "${times[@]}")" --slurpfile list "$raw/$runtime-list.json" \
    '{all_running_us: $t, list_at_n: $list[0].results[0]}'
