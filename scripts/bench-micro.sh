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
python3 - "$work/floor.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(.+?): ([0-9.]+) s CPU, ([0-9]+) signals", line)
    runs.setdefault(m[1], []).append((float(m[2]), int(m[3])))
base = statistics.median(c for c, _ in runs["none"])
for name in ["perf", "posix", "hrtimer only"]:
    cpu = statistics.median(c for c, _ in runs[name])
    events = statistics.median(n for _, n in runs[name]) or 10000 * base  # the hrtimer fires every 100 µs of CPU
    print("  %-13s %.2f µs per event (%.0f events, %.3f s vs %.3f s CPU)" % (name, (cpu - base) / events * 1e6, events, cpu, base))
PY

echo "== the handler against the floor (median of 5 interleaved rounds of 20 000 signals; thread CPU per signal)"
for _ in 1 2 3 4 5; do
    for depth in 8 32 128; do
        "$work/handler_cost" ignore $depth 20000
        "$work/handler_cost" floor $depth 20000
        for unwind in fp dwarf; do
            SIGTRACE_HZ=1 SIGTRACE_UNWIND=$unwind SIGTRACE_DRAIN_MS=2 SIGTRACE_BUFFER_KB=256 SIGTRACE_OUTPUT="$work/handler.sigtrace" LD_PRELOAD="$shim" \
                "$work/handler_cost" sampled $depth 20000 | sed "s/^sampled/$unwind/"
            "$cli" info --json "$work/handler.sigtrace" | python3 -c 'import json, sys; d = json.load(sys.stdin)["dropped"]; d and print("dropped", d)'
            rm -f "$work/handler.sigtrace"
        done
    done
done > "$work/handler.txt"
python3 - "$work/handler.txt" <<'PY'
import collections, re, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("dropped"):
        print("  warning: a ring overflowed (%s); the sigtrace figures are too low" % line.strip())
    m = re.match(r"(\w+) depth (\d+): (\d+) ns", line)
    if m:
        runs[(m[1], int(m[2]))].append(int(m[3]))
print("  %5s  %13s  %13s  %22s  %22s" % ("depth", "syscall only", "floor", "sigtrace fp (× floor)", "sigtrace dwarf (× floor)"))
for depth in (8, 32, 128):
    med = {mode: statistics.median(runs[(mode, depth)]) for mode in ("ignore", "floor", "fp", "dwarf")}
    floor = med["floor"] - med["ignore"]
    cost = {mode: med[mode] - med["ignore"] for mode in ("fp", "dwarf")}
    print("  %5d  %10.0f ns  %10.0f ns  %11.0f ns (%.2f×)  %11.0f ns (%.2f×)" % (depth, med["ignore"], floor, cost["fp"], cost["fp"] / floor, cost["dwarf"], cost["dwarf"] / floor))
print("  (floor and sigtrace: delivery, handler and sigreturn, net of the sending system call)")
PY

echo "== one stack walk (median of 21 batches of 20 000; frames include the harness's)"
CARGO_TARGET_DIR=target/bench-fp RUSTFLAGS=-Cforce-frame-pointers=yes cargo run -q -j2 --release -p sigtrace-unwind --example walk_cost | sed 's/^/  /'

echo "== the drain thread (split at 10 kHz)"
SIGTRACE_HZ=10000 SIGTRACE_OUTPUT="$work/drain.sigtrace" LD_PRELOAD="$shim" "$work/split" 2000 >/dev/null 2>&1 || true
"$cli" info --json "$work/drain.sigtrace" | python3 -c '
import json, sys
info = json.load(sys.stdin)
drain = info["counters"].get("drain.cpu_ns_total", 0)
print("  %.0f ns of drain-thread CPU per sample (%d samples, %.1f ms in all)" % (drain / max(1, info["samples"]), info["samples"], drain / 1e6))'

echo "== reader and exporters (synthetic trace, 10 M samples, 1 000 stacks of 24 frames)"
cargo run -q -j2 --release -p sigtrace-writer --example synthetic_trace -- "$work/synthetic.sigtrace" 10000000 | sed 's/^/  /'
for command in "export --format folded" "report" "info"; do
    start=$(date +%s.%N)
    "$cli" $command "$work/synthetic.sigtrace" > /dev/null
    end=$(date +%s.%N)
    python3 -c 'import sys; s = float(sys.argv[2]) - float(sys.argv[1]); print("  sigtrace %-22s %.2f s, %.1f M samples/s" % (sys.argv[3], s, 10 / s))' "$start" "$end" "$command"
done
