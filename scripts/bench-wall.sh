#!/usr/bin/env bash
# Wall-clock mode's cost (issue 13), each figure against a baseline run in this same script:
#   * ns per call of the interposed wrappers: read(fd of /dev/zero, buf, 1) and an uncontended
#     pthread_mutex_lock/unlock pair, looped for 1 s of wall time each, without the shim (with
#     and without a second thread), with the shim in cpu mode and in wall mode; SIGTRACE_HZ=1
#     takes the CPU-time sampling out of the figure (one signal a second), so what is left is
#     the wrappers. CPU ns per call of the looping thread, median (min–max) of the runs;
#   * the drain thread's CPU with 1000 idle threads at SIGTRACE_WALL_HZ=100, blocked in
#     pthread_cond_wait, in read() on a pipe, and in a loop of 50 ms nanosleeps, for 3 s: as a
#     share of one core over the run and after the first generation (start-up left out), in
#     wall mode against the same program in cpu mode, with the wall.* counters (stacks walked,
#     reused, torn); the target is under 1% of a core;
#   * with --10k, the same for 10 000 threads in pthread_cond_wait (one run of each mode).
# Usage: scripts/bench-wall.sh [runs] [--10k]   (default 5 runs per figure)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
big=false
for argument in "$@"; do
    case $argument in
        --10k) big=true ;;
        *) runs=$argument ;;
    esac
done
source scripts/bench-lib/common.sh wall
gcc -O2 -g -fno-omit-frame-pointer -o "$work/wrapper_cost" scripts/micro/wrapper_cost.c -lpthread
gcc -O2 -g -fno-omit-frame-pointer -o "$work/idle_threads" scripts/micro/idle_threads.c -lpthread

echo "== interposed calls: CPU ns per call, 1 s loops, $runs interleaved runs (SIGTRACE_HZ=1: one CPU-time sample a second)"
for _ in $(seq "$runs"); do
    for call in read mutex; do
        echo "alone $("$work/wrapper_cost" $call 1000 alone)"
        echo "plain $("$work/wrapper_cost" $call 1000)"
        for mode in cpu wall; do
            echo "$mode $(SIGTRACE_MODE=$mode SIGTRACE_HZ=1 SIGTRACE_OUTPUT="$work/wrapper.sigtrace" LD_PRELOAD="$shim" "$work/wrapper_cost" $call 1000)"
            rm -f "$work"/wrapper.sigtrace*
        done
    done
done > "$work/wrappers.txt"
analyze wrappers "$work/wrappers.txt"
echo "  (no shim, one thread: libc skips the cancellation points and lock atomics of a multi-threaded"
echo "   process; a traced process always has sigtrace's own thread, so 'no shim' runs a second, idle one)"

# idle KIND THREADS MODE [VARIABLE=VALUE…]: one run of idle_threads for 3 s, its trace reduced
# to a line of figures.py wall-drain.
idle() {
    local kind=$1 threads=$2 mode=$3; shift 3
    rm -f "$work"/idle.sigtrace*
    env "$@" SIGTRACE_MODE="$mode" SIGTRACE_WALL_HZ=100 SIGTRACE_OUTPUT="$work/idle.sigtrace" LD_PRELOAD="$shim" \
        "$work/idle_threads" "$kind" "$threads" 3000 >/dev/null 2>"$work/idle.stderr" || { cat "$work/idle.stderr" >&2; return 1; }
    python3 scripts/read_trace.py "$work/idle.sigtrace" | figures wall-drain "$kind $mode"
}

echo "== the drain thread with 1000 idle threads for 3 s, SIGTRACE_WALL_HZ=100 ($runs interleaved runs; median (min–max))"
for _ in $(seq "$runs"); do
    for kind in cond read sleep; do
        for mode in cpu wall; do
            idle $kind 1000 $mode
        done
    done
done > "$work/idle.txt"
analyze idle "$work/idle.txt"

if $big; then
    echo "== the drain thread with 10 000 threads in pthread_cond_wait for 3 s (one run of each mode)"
    for mode in cpu wall; do
        idle cond 10000 $mode SIGTRACE_MAX_THREADS=10240
    done > "$work/idle10k.txt"
    analyze idle "$work/idle10k.txt"
fi
