#!/usr/bin/env bash
# Core figures of the sampler, each measured against a baseline run in this same script:
#   * capture: samples (records and weight) / (CPU time × Hz) for 1 thread and 32 threads,
#     per timer source;
#   * the 75/25 split found through a shared leaf;
#   * overhead at 999 Hz on a fixed amount of work (python3): median wall and CPU time with the shim / without;
#   * trace bytes per sample;
#   * start-up cost of the shim on /bin/true (mean over many runs, with and without).
# Usage: scripts/bench-core.sh [runs]   (default 7 runs per timing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
source scripts/bench-lib/common.sh bench
gcc -O2 -g -fno-omit-frame-pointer -o "$work/split" tests/workloads/split.c
gcc -O2 -g -fno-omit-frame-pointer -o "$work/threads" tests/workloads/threads.c -lpthread


# capture NAME TIMER PROGRAM ARGS...: prints records/expected and weight/expected.
capture() {
    local name=$1 timer=$2; shift 2
    local dir="$work/capture-$name-$timer"; mkdir -p "$dir"
    SIGTRACE_TIMER=$timer SIGTRACE_OUTPUT="$dir/t.sigtrace" LD_PRELOAD=$shim "$@" >/dev/null 2>"$dir/stderr" || true  # split exits with 3 on purpose
    "$cli" info --json "$dir/t.sigtrace" | figures capture "$name" "$(stat -c %s "$dir/t.sigtrace")"
}

echo "== capture (999 Hz)"
for timer in perf posix itimer; do
    capture 1-thread $timer "$work/split" 2000
    capture 32-threads $timer "$work/threads" 32 20  # 20 ms units: ~1.6 s of CPU
done

echo "== 75/25 split through a shared leaf (perf timer)"
SIGTRACE_OUTPUT="$work/split.sigtrace" LD_PRELOAD=$shim "$work/split" 2000 >/dev/null 2>&1 || true
"$cli" export --format folded "$work/split.sigtrace" | figures split

echo "== overhead (python3 summing squares below 8 million, $runs runs of each, interleaved)"
# A fixed amount of work (the C workloads run until a CPU budget is spent, which hides any
# overhead). Each run reports wall time and the command's CPU time from wait4 (which includes
# the time spent delivering and handling sampling signals). Medians and minimums are printed:
# this VM's steal time moves single runs by several percent.
overhead_run() {  # label NAME=VALUE… : appends "label wall cpu_ns" to $work/overhead
    local label=$1; shift
    local t0 t1 cpu_s variables=()
    for variable in "$@"; do variables+=(--env "$variable"); done
    t0=$(now)
    cpu_s=$(python3 "$bench_lib/run.py" --print cpu_s "${variables[@]}" -- /usr/bin/python3 "$bench_lib/workloads/square_sum.py")
    t1=$(now)
    echo "$label $(analyze elapsed "$t0" "$t1") $(awk -v s="$cpu_s" 'BEGIN { printf "%.0f", s * 1e9 }')" >> "$work/overhead"
}
for _ in $(seq "$runs"); do
    overhead_run plain
    overhead_run perf-999 SIGTRACE_OUTPUT="$work/o.%p.sigtrace" LD_PRELOAD="$shim"
    overhead_run posix-999 SIGTRACE_TIMER=posix SIGTRACE_OUTPUT="$work/o.%p.sigtrace" LD_PRELOAD="$shim"
    overhead_run perf-10000 SIGTRACE_HZ=10000 SIGTRACE_OUTPUT="$work/o10k.%p.sigtrace" LD_PRELOAD="$shim"
done
samples_10k=$("$cli" info --json "$work"/o10k.*.sigtrace | figures samples)
analyze overhead "$work/overhead" "$samples_10k"
rm -f "$work"/o.*.sigtrace* "$work"/o10k.*.sigtrace*

echo "== start-up cost on /bin/true (mean of 200 runs)"
t0=$(now); for _ in $(seq 200); do /bin/true; done; t1=$(now)
t2=$(now); for _ in $(seq 200); do SIGTRACE_OUTPUT="$work/true.sigtrace" LD_PRELOAD=$shim /bin/true; done; t3=$(now)
analyze startup --runs 200 "$t0" "$t1" "$t2" "$t3"
find "$work" -maxdepth 1 -name 'true.sigtrace*' | wc -l | xargs printf "  %s traces written (one per run, none overwritten)\n"
