#!/usr/bin/env bash
# Micro-benchmarks (issue 5), each against its own baseline in this run:
#   * the floor: an empty SA_SIGINFO handler driven by tgkill, by a perf task-clock event at
#     10 kHz and by a POSIX thread CPU timer; and the perf event's hrtimer with no signal;
#   * the handler against the floor at depths 8/32/128: signals a thread sends itself that look
#     like perf-timer signals, taken by a bare frame-pointer walker (the floor) or by
#     sigtrace's handler with SIGTRACE_UNWIND=fp and =dwarf;
#   * one stack walk, frame pointers vs DWARF, at depths 8/32/128 (no signal);
#   * the drain thread's CPU per sample (a 10 kHz run of the split workload);
#   * reader and exporters on a synthetic 10-million-sample trace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib/common.sh micro
gcc -O2 -o "$work/floor" scripts/micro/signal_floor.c
gcc -O2 -o "$work/hrtimer" scripts/micro/hrtimer_only.c
gcc -O2 -g -fno-omit-frame-pointer -o "$work/split" tests/workloads/split.c
gcc -O2 -fno-omit-frame-pointer -o "$work/handler_cost" scripts/micro/handler_cost.c

echo "== the floor (empty handler; 3 runs each, 300 M loop iterations at 10 kHz of CPU time)"
"$work/floor" tgkill | sed 's/^/  /'
for _ in 1 2 3; do "$work/floor" none; "$work/floor" perf; "$work/floor" posix; "$work/hrtimer"; done > "$work/floor.txt"
analyze floor "$work/floor.txt"

echo "== the handler against the floor (median of 5 interleaved rounds of 20 000 signals; thread CPU per signal)"
for _ in 1 2 3 4 5; do
    for depth in 8 32 128; do
        "$work/handler_cost" ignore $depth 20000
        "$work/handler_cost" floor $depth 20000
        for unwind in fp dwarf; do
            SIGTRACE_HZ=1 SIGTRACE_UNWIND=$unwind SIGTRACE_DRAIN_MS=2 SIGTRACE_BUFFER_KB=256 SIGTRACE_OUTPUT="$work/handler.sigtrace" LD_PRELOAD="$shim" \
                "$work/handler_cost" sampled $depth 20000 | sed "s/^sampled/$unwind/"
            "$cli" info --json "$work/handler.sigtrace" | figures dropped
            rm -f "$work/handler.sigtrace"
        done
    done
done > "$work/handler.txt"
analyze handler "$work/handler.txt"

echo "== one stack walk (median of 21 batches of 20 000; frames include the harness's)"
CARGO_TARGET_DIR=target/bench-fp RUSTFLAGS=-Cforce-frame-pointers=yes cargo run -q -j2 --release -p sigtrace-unwind --example walk_cost | sed 's/^/  /'

echo "== the drain thread (split at 10 kHz)"
SIGTRACE_HZ=10000 SIGTRACE_OUTPUT="$work/drain.sigtrace" LD_PRELOAD="$shim" "$work/split" 2000 >/dev/null 2>&1 || true
"$cli" info --json "$work/drain.sigtrace" | figures drain

echo "== reader and exporters (synthetic trace, 10 M samples, 1 000 stacks of 24 frames)"
synthetic_samples=10000000
cargo run -q -j2 --release -p sigtrace-format --example synthetic_trace -- "$work/synthetic.sigtrace" "$synthetic_samples" | sed 's/^/  /'
for command in "export --format folded" "report" "info"; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # $command is a subcommand and its options, split on purpose
    "$cli" $command "$work/synthetic.sigtrace" > /dev/null
    end=$(date +%s.%N)
    analyze rate "$start" "$end" "$command" "$synthetic_samples"
done
