#!/usr/bin/env bash
# Core figures of the sampler, each measured against a baseline run in this same script:
#   * capture: samples (records and weight) / (CPU time × Hz) for 1 thread and 32 threads,
#     per timer source;
#   * the 75/25 split found through a shared leaf;
#   * overhead at 999 Hz on a CPU-bound workload: median wall time with the shim / without;
#   * trace bytes per sample;
#   * start-up cost of the shim on /bin/true (mean over many runs, with and without).
# Usage: scripts/bench-core.sh [runs]   (default 7 runs per timing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
cargo build --release -j2 -q -p sigtrace-shim -p sigtrace-cli
shim=$PWD/target/release/libsigtrace.so
cli=$PWD/target/release/sigtrace
work=$(mktemp -d /tmp/sigtrace-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -g -fno-omit-frame-pointer -o "$work/split" tests/workloads/split.c
gcc -O2 -g -fno-omit-frame-pointer -o "$work/threads" tests/workloads/threads.c -lpthread

now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# capture NAME TIMER PROGRAM ARGS...: prints records/expected and weight/expected.
capture() {
    local name=$1 timer=$2; shift 2
    local dir="$work/capture-$name-$timer"; mkdir -p "$dir"
    SIGTRACE_TIMER=$timer SIGTRACE_OUTPUT="$dir/t.sigtrace" LD_PRELOAD=$shim "$@" >/dev/null 2>"$dir/stderr" || true  # split exits with 3 on purpose
    "$cli" info --json "$dir/t.sigtrace" | python3 -c '
import json, sys
info = json.load(sys.stdin)
expected = info["cpu_ns"] * info["hz"] / 1e9
print(f"  %-10s %-7s records/expected %6.1f%%   weight/expected %6.1f%%   (%d records, weight %d, %.2f s CPU, %d bytes, %.1f bytes/sample)" % (
    sys.argv[1], info["timer"], 100 * info["samples"] / expected, 100 * info["weight"] / expected,
    info["samples"], info["weight"], info["cpu_ns"] / 1e9, int(sys.argv[2]), int(sys.argv[2]) / max(1, info["samples"])))
' "$name" "$(stat -c %s "$dir/t.sigtrace")"
}

echo "== capture (999 Hz)"
for timer in perf posix itimer; do
    capture 1-thread $timer "$work/split" 2000
    capture 32-threads $timer "$work/threads" 32 40000000
done

echo "== 75/25 split through a shared leaf (perf timer)"
SIGTRACE_OUTPUT="$work/split.sigtrace" LD_PRELOAD=$shim "$work/split" 2000 >/dev/null 2>&1 || true
"$cli" export --format folded "$work/split.sigtrace" | python3 -c '
import sys
weights = {"heavy": 0, "light": 0}
for line in sys.stdin:
    stack, count = line.rsplit(" ", 1)
    for name in weights:
        if name in stack.split(";"):
            weights[name] += int(count)
total = sum(weights.values())
print("  heavy %.2f%%  light %.2f%%  (expected 75/25)" % (100 * weights["heavy"] / total, 100 * weights["light"] / total))'

echo "== overhead at 999 Hz (median wall time of $runs runs, split 2000 rounds)"
plain=(); traced=(); posix=()
for _ in $(seq "$runs"); do
    t0=$(now); "$work/split" 2000 >/dev/null 2>&1 || true; t1=$(now); plain+=("$(python3 -c "print($t1 - $t0)")")
    t0=$(now); SIGTRACE_OUTPUT="$work/o.%p.sigtrace" LD_PRELOAD=$shim "$work/split" 2000 >/dev/null 2>&1 || true; t1=$(now); traced+=("$(python3 -c "print($t1 - $t0)")")
    t0=$(now); SIGTRACE_TIMER=posix SIGTRACE_OUTPUT="$work/o.%p.sigtrace" LD_PRELOAD=$shim "$work/split" 2000 >/dev/null 2>&1 || true; t1=$(now); posix+=("$(python3 -c "print($t1 - $t0)")")
done
p=$(median "${plain[@]}"); t=$(median "${traced[@]}"); x=$(median "${posix[@]}")
python3 -c 'import sys; p, t, x = map(float, sys.argv[1:]); print("  without %.3f s   perf %.3f s (ratio %.4f)   posix %.3f s (ratio %.4f)" % (p, t, t / p, x, x / p))' "$p" "$t" "$x"
rm -f "$work"/o.*.sigtrace*

echo "== start-up cost on /bin/true (mean of 200 runs)"
t0=$(now); for _ in $(seq 200); do /bin/true; done; t1=$(now)
t2=$(now); for _ in $(seq 200); do SIGTRACE_OUTPUT="$work/true.sigtrace" LD_PRELOAD=$shim /bin/true; done; t3=$(now)
python3 -c 'import sys; a, b, c, d = map(float, sys.argv[1:]); plain = (b - a) / 200 * 1e3; traced = (d - c) / 200 * 1e3; print("  without %.2f ms   with the shim %.2f ms   (+%.2f ms per process)" % (plain, traced, traced - plain))' "$t0" "$t1" "$t2" "$t3"
ls "$work"/true.sigtrace* | wc -l | xargs printf "  %s traces written (one per run, none overwritten)\n"
