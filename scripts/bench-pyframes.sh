#!/usr/bin/env bash
# Cost of the signal handler's Python walk per sample, at Python stack depths 1 and 50, in each
# CPython given (default: Debian's python3.11 and pyenv's 3.9, 3.10, 3.12, 3.13 when present),
# with reads by fault-recovering loads ("probe") and by process_vm_readv ("syscall"). The walk is
# timed in-process by pyframes/examples/walk_cost.rs, called through ctypes from the deep frame.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -j2 -p sigtrace-pyframes --example walk_cost >&2
lib="$PWD/target/release/examples/libwalk_cost.so"
pythons=("$@")
if [ ${#pythons[@]} -eq 0 ]; then
    pythons=(/usr/bin/python3.11)
    for minor in 9 10 12 13; do
        for p in "$HOME"/.pyenv/versions/3.$minor.*/bin/python3.$minor; do [ -x "$p" ] && pythons+=("$p"); done
    done
fi
for python in "${pythons[@]}"; do
    "$python" - "$lib" <<'PY'
import ctypes, sys, platform
lib = ctypes.CDLL(sys.argv[1])
lib.sigtrace_bench_walk.restype = ctypes.c_double
lib.sigtrace_bench_walk.argtypes = [ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64), ctypes.c_uint32]
def at_depth(depth, probe):
    if depth > 1:
        return at_depth(depth - 1, probe)
    frames = ctypes.c_uint64()
    runs = [lib.sigtrace_bench_walk(20000, ctypes.byref(frames), probe) for _ in range(7)]
    return sorted(runs)[3], frames.value
# process_vm_readv first: the probe run installs the fault handler for the rest of the process.
for probe in (0, 1):
    for depth in (1, 50):
        ns, frames = at_depth(depth, probe)
        how = "probe  " if probe else "syscall"
        print(f"CPython {platform.python_version()}: {how} depth {depth:>2}: {frames:>3} Python frames walked, {ns / 1000:.2f} us of thread CPU time per walk (median of 7 x 20000)")
PY
done
