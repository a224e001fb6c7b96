#!/usr/bin/env bash
# Export throughput and peak memory on a large trace, against a baseline in this same script:
#   * the trace: Debian's python3 running a JSON/regex/sort loop on two threads
#     (scripts/bench-lib/workloads/json_regex_sort.py), recorded at
#     999 Hz, then copied generation by generation (format/examples/replicate_trace, each copy
#     later in time) until it holds SAMPLES sample records (default 10 million);
#   * baseline: `sigtrace info` on it (reads and decodes every generation, symbolises only
#     the roots of stacks);
#   * each export format and `report`: wall time, samples per second, peak RSS, output size,
#     and time relative to the baseline.
# Usage: scripts/bench-export.sh [SAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-10000000}
source scripts/bench-lib/common.sh bench-export
cargo build --release -j2 -q -p sigtrace-format --example replicate_trace
SIGTRACE_OUTPUT="$work/small.sigtrace" SIGTRACE_HZ=999 LD_PRELOAD=$shim /usr/bin/python3 "$bench_lib/workloads/json_regex_sort.py"
target/release/examples/replicate_trace "$work/small.sigtrace" "$work/big.sigtrace" "$samples"
echo "trace: $(stat -c %s "$work/big.sigtrace") bytes, $("$cli" info --json "$work/big.sigtrace" | figures samples) samples"

# measure NAME OUTPUT COMMAND...: prints wall seconds, peak RSS and output size; sets $seconds.
measure() {
    local name=$1 output=$2; shift 2
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$output" 2>"$work/stderr" || { echo "  $name: failed: $(tail -1 "$work/stderr")"; seconds=; return; }
    read -r seconds rss <"$work/time"
    local size; size=$(stat -c %s "$output")
    analyze resources "$name" "$seconds" "$rss" "$size" "$samples" "${base:-}"
}

base=
measure "info (baseline)" "$work/info.out" "$cli" info "$work/big.sigtrace"
base=$seconds
measure "report" "$work/report.out" "$cli" report "$work/big.sigtrace"
for format in $("$cli" export -h | figures formats); do
    measure "export $format" "$work/export.$format" "$cli" export --format "$format" "$work/big.sigtrace"
done
