#!/usr/bin/env bash
# The main job, end to end: a supervisor, two containers with their logs, a memory hog warned
# at its soft limit and killed at its hard limit, `ps`, the monitor's dmesg lines, and a clean
# shutdown. Run by `make demo` after the build; everything lives under target/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
ROOTFS=target/rootfs
DEMO=target/demo
export ENGINE_SOCKET=$PWD/$DEMO/engine.sock
engine() { "$BIN/engine" "$@"; }
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

rm -rf "$DEMO" && mkdir -p "$DEMO"/layers/{alpha,beta,hog}
step "supervisor on base rootfs $ROOTFS (log: $DEMO/supervisor.log)"
"$BIN/engine" supervisor "$ROOTFS" --state-dir "$PWD/$DEMO/state" >"$DEMO/supervisor.log" 2>&1 &
SUP=$!
trap 'kill -TERM $SUP 2>/dev/null || true' EXIT
# Ready once it says so (the socket is bound a little before the monitor and router start).
for _ in $(seq 100); do grep -q 'supervisor ready' "$DEMO/supervisor.log" && break; sleep 0.1; done
grep -m1 'memory monitor backend' "$DEMO/supervisor.log" | sed 's/.*INFO //' || true

step "two containers in their own PID, UTS and mount namespaces"
engine start alpha "$DEMO/layers/alpha" 'echo "hello-from-alpha: hostname=$(hostname) pid=$$"; io_pulse 5 200'
engine start beta "$DEMO/layers/beta" -- sh -c 'echo "hello-from-beta: I see $(ls /proc | grep -c "^[0-9]") processes"; cpu_hog 1; echo beta-done'
sleep 2
engine ps

step "logs, kept per container"
echo "--- engine logs alpha"; engine logs alpha
echo "--- engine logs beta";  engine logs beta

step "a memory hog (soft 40 MiB, hard 64 MiB, the defaults): engine run blocks until it ends"
set +e
engine run hog "$DEMO/layers/hog" 'memory_hog 8 250'
status=$?
set -e
echo "engine run exited with $status"
engine ps
echo "--- dmesg"
dmesg | grep 'container_monitor\].*container=hog ' | tail -n 2

step "shutdown: SIGTERM to the supervisor stops every container and removes the socket"
engine start sleeper "$DEMO/layers/alpha" 'sleep 1000'
kill -TERM $SUP
wait $SUP && echo "supervisor exited 0"
trap - EXIT
[ ! -e "$ENGINE_SOCKET" ] && echo "socket removed"
