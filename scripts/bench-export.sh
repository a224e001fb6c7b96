#!/usr/bin/env bash
# Export throughput and peak memory on a large trace, against a baseline in this same script:
#   * the trace: Debian's python3 running a JSON/regex/sort loop on two threads, recorded at
#     999 Hz, then copied generation by generation (writer/examples/replicate_trace, each copy
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
cargo build --release -j2 -q -p sigtrace-writer --example replicate_trace
cat >"$work/work.py" <<'PY'
import threading, time, json, re
def churn(seconds):
    data = [{"k": i, "v": str(i) * 3} for i in range(2000)]
    while time.thread_time() < seconds:
        s = json.dumps(data); json.loads(s)
        re.findall(r"\d+", s)
        sorted(data, key=lambda d: d["v"])
threads = [threading.Thread(target=churn, args=(3,), name=f"worker{i}") for i in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
PY
SIGTRACE_OUTPUT="$work/small.sigtrace" SIGTRACE_HZ=999 LD_PRELOAD=$shim /usr/bin/python3 "$work/work.py"
target/release/examples/replicate_trace "$work/small.sigtrace" "$work/big.sigtrace" "$samples"
echo "trace: $(stat -c %s "$work/big.sigtrace") bytes, $("$cli" info --json "$work/big.sigtrace" | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])') samples"

# measure NAME OUTPUT COMMAND...: prints wall seconds, peak RSS and output size; sets $seconds.
measure() {
    local name=$1 output=$2; shift 2
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$output" 2>"$work/stderr" || { echo "  $name: failed: $(tail -1 "$work/stderr")"; seconds=; return; }
    read -r seconds rss <"$work/time"
    local size; size=$(stat -c %s "$output")
    python3 -c '
import sys
name, seconds, rss, size, samples, base = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ratio = f"{seconds / float(base):5.2f}× info" if base else "baseline"
print(f"  {name:<22} {seconds:7.2f} s  {samples / max(seconds, 1e-9) / 1e6:6.2f} M samples/s  peak RSS {rss / 1024:8.1f} MiB  output {size / 1e6:9.2f} MB  {ratio}")
' "$name" "$seconds" "$rss" "$size" "$samples" "${base:-}"
}

base=
measure "info (baseline)" "$work/info.out" "$cli" info "$work/big.sigtrace"
base=$seconds
measure "report" "$work/report.out" "$cli" report "$work/big.sigtrace"
for format in $("$cli" export -h | python3 -c '
import re, sys
text = sys.stdin.read()
match = re.search(r"possible values: ([^\]]+)\]", text)
print(" ".join(v.strip() for v in match.group(1).split(",")) if match else "folded")
'); do
    measure "export $format" "$work/export.$format" "$cli" export --format "$format" "$work/big.sigtrace"
done
