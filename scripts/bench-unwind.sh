#!/usr/bin/env bash
# Unwinding figures, each against a baseline run in this same script:
#   * cost of one walk, frame pointers vs DWARF, at depths 8/32/128 (in-process, no signal:
#     unwind/examples/walk_cost.rs, built with frame pointers so both methods walk one stack);
#   * cost per sample with frame pointers and with DWARF (signal delivery + handler), from the
#     extra CPU time of a 10 kHz run over a run without the shim, divided by its samples
#     (median of the runs), on a 30-deep recursion built with frame pointers;
#   * the share of samples whose stack reaches main, per workload, with the default unwinder;
#   * the overhead at 999 Hz on Debian's python3 running a pure-Python loop
#     (scripts/bench-lib/workloads/square_sum.py).
# Usage: scripts/bench-unwind.sh [runs]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
source scripts/bench-lib/common.sh unwind
gcc -O2 -g -fno-omit-frame-pointer -o "$work/deep-fp" tests/workloads/deep.c
gcc -O2 -g -fomit-frame-pointer -o "$work/deep-nofp" tests/workloads/deep.c
gcc -O2 -g -fomit-frame-pointer -o "$work/split-nofp" tests/workloads/split.c
gcc -O2 -g -fomit-frame-pointer -o "$work/qsort" tests/workloads/qsort_cb.c
python_loop=$bench_lib/workloads/square_sum.py

cpu_seconds() {  # runs "$@", prints user+sys CPU seconds of the child
    python3 "$bench_lib/run.py" --print cpu_s -- "$@"
}

echo "== cost of one walk (median of 21 batches of 20 000 walks; frames include the harness's)"
CARGO_TARGET_DIR=target/bench-fp RUSTFLAGS=-Cforce-frame-pointers=yes cargo run -q -j2 --release -p sigtrace-unwind --example walk_cost | sed 's/^/  /'

echo "== cost per sample at 10 kHz ($runs runs, median; deep-fp: 30 frames of recursion with frame pointers)"
for method in fp dwarf; do
    base=(); traced=(); samples=()
    for i in $(seq "$runs"); do
        base+=("$(cpu_seconds "$work/deep-fp" 30 30)")
        traced+=("$(cpu_seconds env LD_PRELOAD="$shim" SIGTRACE_HZ=10000 SIGTRACE_UNWIND=$method SIGTRACE_OUTPUT="$work/c-$method-$i.sigtrace" "$work/deep-fp" 30 30)")
        samples+=("$("$cli" info --json "$work/c-$method-$i.sigtrace" | figures samples)")
    done
    analyze sample-cost "$method" "$(median "${base[@]}")" "$(median "${traced[@]}")" "$(median "${samples[@]}")"
done

echo "== stacks reaching main (default unwinder, 999 Hz)"
reach() {  # name marker program args…
    local name=$1 marker=$2; shift 2
    env LD_PRELOAD="$shim" SIGTRACE_DEPTH=512 SIGTRACE_OUTPUT="$work/r-$name.sigtrace" "$@" >/dev/null 2>&1 || true
    "$cli" export --format folded "$work/r-$name.sigtrace" | figures reach "$marker" "$name"
}
reach "split, no frame pointers" main "$work/split-nofp" 1000
reach "recursion 200 deep, no fp" main "$work/deep-nofp" 200 40
reach "qsort callback" main "$work/qsort" 30
reach "python3 loop" __libc_start_call_main /usr/bin/python3 "$python_loop"

echo "== overhead at 999 Hz on python3 ($runs runs, interleaved, median)"
plain=(); traced=(); plain_wall=(); traced_wall=()
for i in $(seq "$runs"); do
    t0=$(date +%s.%N); plain+=("$(cpu_seconds /usr/bin/python3 "$python_loop")"); t1=$(date +%s.%N)
    traced+=("$(cpu_seconds env LD_PRELOAD="$shim" SIGTRACE_OUTPUT="$work/p-$i.sigtrace" /usr/bin/python3 "$python_loop")"); t2=$(date +%s.%N)
    plain_wall+=("$(analyze elapsed "$t0" "$t1")"); traced_wall+=("$(analyze elapsed "$t1" "$t2")")
done
analyze cpu-wall \
    "$(median "${plain[@]}")" "$(median "${traced[@]}")" "$(median "${plain_wall[@]}")" "$(median "${traced_wall[@]}")"
