#!/bin/bash
# The kernel-module tests, run as root inside the test VM by tests/vm/init.sh, from the
# workspace root (shared read-only with the host). Usage: tests.sh [all|kmod]
#   kmod: the module alone, driven by target/vm/kmod-probe
#   all:  that, plus the real engine supervisor using the kernel backend
# Prints PASS/FAIL per test and the module's kernel-log lines; exits 1 on any failure.
set -u
WS=$PWD
WHAT=${1:-all}
# run.sh's snapshot of what is tested (the host tree may change while the guest runs).
SNAP=${ENGINE_VM_DIR:?}
KO=$SNAP/container_monitor.ko
PROBE=$SNAP/kmod-probe
BIN=$SNAP/bin
ROOTFS=$SNAP/rootfs
DEV=/dev/container_monitor
INTERVAL_MS=200
KMEMLEAK=/sys/kernel/debug/kmemleak
failures=0
T0=$(($(date +%s%N) / 1000000))

say() { echo "=== [$(($(date +%s%N) / 1000000 - T0)) ms] $*"; }
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
# check NAME CMD...: runs CMD, PASS/FAIL by its exit status.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
# Kernel reports: BUG/WARNING/Oops (lockdep, atomic sleep, list debugging, debug objects and
# KFENCE reports start so), slab debugging (`BUG <cache> ...: Redzone overwritten`), Rust
# overflow checks and debug assertions (a panic: `kernel BUG`, `panicked at`), hung tasks,
# kmemleak, RCU stalls.
REPORTS='(^|\] )BUG|WARNING:|Oops|kernel BUG|panicked at|with overflow|DEBUG_LOCKS_WARN_ON|lockdep is turned off|possible recursive locking|circular locking|inconsistent lock state|suspicious RCU usage|KFENCE:|ODEBUG:|INFO: task|blocked for more than|kmemleak: [0-9]+ new suspected|rcu_.*stall|Call Trace|deprecated'
DMESG_SEEN=0
# dmesg_check PHASE: PASS/FAIL by whether the kernel log got a report since the last check
# (so a report names the phase that caused it).
dmesg_check() {
  local all new
  all=$(dmesg)
  new=$(tail -n +$((DMESG_SEEN + 1)) <<<"$all" | grep -E "$REPORTS" || true)
  DMESG_SEEN=$(wc -l <<<"$all")
  if [ -n "$new" ]; then
    fail "kernel log clean after: $1"
    echo "$new" | head -40
  else
    pass "kernel log clean after: $1"
  fi
}
# probe_case NAME ARGS...: one phase: kmod-probe ARGS, then the kernel log.
probe_case() {
  local name=$1
  shift
  check "$name" "$PROBE" "$@"
  dmesg_check "$name"
}
# Lines the module wrote to the kernel log.
module_lines() { dmesg | grep -F '[container_monitor] ' | sed 's/^\[[ 0-9.]*\] //'; }
count_lines() { module_lines | grep -cF -- "$1"; }

load_module() {
  say "insmod"
  check "insmod container_monitor.ko scan_interval_ms=$INTERVAL_MS" \
    insmod "$KO" scan_interval_ms=$INTERVAL_MS
  check "device is a char device" test -c $DEV
  local mode
  mode=$(stat -c '%a %U' $DEV 2>/dev/null)
  check "device mode 0600 root ($mode)" test "$mode" = "600 root"
  check "load line" test "$(count_lines 'Module loaded. Device: /dev/container_monitor')" = 1
}

probe_tests() {
  say "module ABI and errnos (kmod-probe errnos)"
  probe_case "errnos" errnos
  say "one process over its limits (kmod-probe hog 0 ...)"
  probe_case "single-process hog killed" hog 0 4 16 32
  say "memory spread over 4 child processes (kmod-probe hog 4 ...)"
  probe_case "4-worker hog killed" hog 4 1 16 32
  say "memory in PID namespaces nested 2 deep inside the container (kmod-probe hog-nested 2 ...)"
  probe_case "nested-namespace hog killed" hog-nested 2 4 16 32
  say "threads and CLONE_VM children share one address space"
  probe_case "shared address space counted once" vmshare $INTERVAL_MS
  say "a container that exits by itself"
  probe_case "gone within one interval" gone $INTERVAL_MS
  say "200 short-lived namespaces registered while scanning"
  probe_case "churn 200" churn 200
  say "a worker whose main thread exited while a thread allocates"
  probe_case "main-thread-exited hog killed" thread-hog 16 16 32
  say "a registered init whose main thread exited while another thread runs"
  probe_case "init with an exited leader stays registered" init-leader-exit $INTERVAL_MS
  say "a pid number reused before the scan dropped its entry"
  probe_case "reused pid registered" pid-reuse 20
  say "a file opened right after another was closed"
  probe_case "file ids not reused" file-reuse 20
  say "more records than the ring holds"
  probe_case "ring overflow reported" ring-overflow 300
  say "reads whose copy to user space faults"
  probe_case "no record lost on EFAULT" read-efault
  say "ioctls and reads from 4 threads during scans"
  probe_case "concurrent ioctls" concurrent 3
  say "700 two-thread processes registered at once"
  probe_case "700 multi-threaded processes" many-threaded 700 $INTERVAL_MS
}

# --- the real engine supervisor with the kernel backend -------------------------------------

SUP_PID=
SOCK=/run/engine-vm.sock
STATE=/tmp/engine-state

engine() { "$BIN/engine" --socket "$SOCK" "$@"; }
# rootfs ID: a container rootfs of its own (a rootfs serves one live container at a time),
# empty: the supervisor's base rootfs under it supplies the programs.
rootfs() { mkdir -p "/tmp/ctr/$1" && echo "/tmp/ctr/$1"; }
# field ID NAME: a field of container ID in `engine ps --format json`.
field() { engine ps --format json | jq -r --arg id "$1" ".[] | select(.id == \$id) | .$2"; }

start_supervisor() {
  say "engine supervisor"
  mkdir -p "$STATE"
  "$BIN/engine" supervisor "$ROOTFS" --socket "$SOCK" --state-dir "$STATE" \
    >/tmp/supervisor.log 2>&1 &
  SUP_PID=$!
  local i
  for i in $(seq 100); do
    [ -S "$SOCK" ] && break
    sleep 0.1
  done
  check "supervisor listening" test -S "$SOCK"
  check "supervisor says the kernel backend is active" \
    grep -q 'memory monitor backend: kernel' /tmp/supervisor.log
  grep -m1 'memory monitor backend' /tmp/supervisor.log
}

stop_supervisor() {
  [ -n "$SUP_PID" ] || return 0
  kill -TERM "$SUP_PID"
  check "supervisor exited 0 on SIGTERM" wait "$SUP_PID"
  SUP_PID=
}

# engine_hog ID PROGRAM ARGS...: runs a workload under --soft-mib 16 --hard-mib 32.
engine_hog() {
  local id=$1 rc
  shift
  engine run "$id" "$(rootfs "$id")" --soft-mib 16 --hard-mib 32 -- "$@" >/tmp/run-$id.out 2>&1
  rc=$?
  check "$id: run exits 137 (got $rc)" test "$rc" = 137
  check "$id: exactly one SOFT line" test "$(count_lines "SOFT LIMIT container=$id ")" = 1
  check "$id: exactly one HARD line" test "$(count_lines "HARD LIMIT container=$id ")" = 1
  check "$id: ps says hard_limit_killed" test "$(field "$id" reason)" = hard_limit_killed
}

engine_tests() {
  start_supervisor
  say "engine: memory hog under --soft-mib 16 --hard-mib 32"
  engine_hog hog memory_hog 8 200
  say "engine: memory spread over 4 child processes"
  engine_hog hog4 /bin/sh -c 'for i in 1 2 3 4; do memory_hog 2 200 & done; wait'
  say "engine: a workload whose main thread exited while a thread allocates"
  engine_hog thog probe thread-hog 8 100 200

  say "engine: a container that exits by itself leaves the module's list"
  # Long enough to be seen registered even on a loaded TCG guest.
  engine start short "$(rootfs short)" -- /bin/sleep 4 >/dev/null
  check "short: gone within one interval" "$PROBE" watch-exit "$(field short pid)" $INTERVAL_MS
  local i
  for i in $(seq 50); do
    [ "$(field short exit_status)" = null ] || break
    sleep 0.1
  done
  check "short: ended with status 0" test "$(field short exit_status)" = 0

  say "engine: 200 containers started and ended while scanning"
  engine start background "$(rootfs background)" -- /bin/sleep 1000 >/dev/null
  local j ok runs
  for i in $(seq 0 19); do
    runs=()
    for j in $(seq 10); do
      engine run "c$i-$j" "$(rootfs "c$i-$j")" -- /bin/sh -c 'echo $$' >"/tmp/ctr/c$i-$j.out" 2>&1 &
      runs+=($!)
    done
    wait "${runs[@]}"
  done
  ok=$(engine ps --format json | jq '[.[] | select(.id | startswith("c")) | select(.exit_status == 0)] | length')
  check "200 runs exited 0 (got $ok)" test "$ok" = 200
  if [ "$ok" != 200 ]; then
    grep -h . /tmp/ctr/c*.out | sort | uniq -c | sort -rn | head -5
    engine ps 2>&1 | tail -5
    tail -20 /tmp/supervisor.log
  fi
  # ps shows the RSS the module measured (MONITOR_QUERY_ALL): a running container has some.
  local rss
  rss=$(field background rss_bytes)
  check "ps shows the module's RSS of a running container ($rss bytes)" test "${rss:-0}" -gt 0 2>/dev/null
  check "stop background" engine stop background --time 1
  stop_supervisor
  dmesg_check "engine tests"
}

# --- unload, and the kernel's own checks ----------------------------------------------------

unload_with_live_entries() {
  say "rmmod with an open file"
  probe_case "rmmod refused while a file is open" rmmod-open
  say "rmmod with live entries"
  local pids
  pids=$("$PROBE" hold 5)
  check "5 entries held" test "$(wc -w <<<"$pids")" = 5
  check "rmmod" rmmod container_monitor
  check "device removed" test ! -e $DEV
  check "entries freed at unload" test "$(count_lines 'Freed 5 entries still registered')" = 1
  check "unload line" test "$(count_lines 'Module unloaded.')" = 1
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  dmesg_check "unload"
}

kernel_checks() {
  say "kernel log and kmemleak"
  local bad
  # Lockdep, atomic-sleep and list-debug reports all start with BUG: or WARNING:.
  bad=$(dmesg | grep -E 'BUG:|WARNING:|Oops|DEBUG_LOCKS_WARN_ON|lockdep is turned off|INFO: task|rcu_.*stall|Call Trace|deprecated' || true)
  if [ -n "$bad" ]; then
    fail "no BUG/WARNING/lockdep reports"
    echo "$bad"
  else
    pass "no BUG/WARNING/lockdep reports"
  fi
  if [ -w $KMEMLEAK ]; then
    # kmemleak reports objects unreferenced for 5 s or more; scan twice to settle.
    sleep 5
    check "kmemleak scan" eval "echo scan >$KMEMLEAK && echo scan >$KMEMLEAK"
    local leaks
    leaks=$(cat $KMEMLEAK)
    if [ -n "$leaks" ]; then
      fail "no kmemleak reports"
      echo "$leaks" | head -60
    else
      pass "no kmemleak reports"
    fi
  else
    fail "kmemleak available"
  fi
}

# Boot-time kmemleak suspects are the kernel's, not ours: report only what comes after.
[ -w $KMEMLEAK ] && echo scan >$KMEMLEAK && echo clear >$KMEMLEAK
load_module
dmesg_check "boot and insmod"
probe_tests
# Opt-in benchmark hook (ENGINE_VM_BENCH=1 make test-vm): bench/kmod_scan.sh prints its figure
# between BENCH-JSON-BEGIN/END console lines, with the module loaded and these paths exported.
if [ "${ENGINE_BENCH:-0}" = 1 ] && [ -f "$WS/bench/kmod_scan.sh" ]; then
  say "bench/kmod_scan.sh"
  ENGINE_VM_BIN=$BIN ENGINE_VM_ROOTFS=$ROOTFS ENGINE_VM_PROBE=$PROBE \
    ENGINE_VM_INTERVAL_MS=$INTERVAL_MS bash "$WS/bench/kmod_scan.sh" || fail "bench/kmod_scan.sh"
fi
[ "$WHAT" = all ] && engine_tests
unload_with_live_entries
kernel_checks
say "module lines"
module_lines
say "done: $failures failure(s)"
[ "$failures" = 0 ]
