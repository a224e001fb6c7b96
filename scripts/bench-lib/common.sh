# Shared set-up of the scripts/bench-*.sh benchmarks; source it from the repository root.
# Builds sigtrace, sets $shim and $cli, makes a work folder $work (removed on exit) and
# defines now and median.
cargo build --release -j2 -q -p sigtrace-shim -p sigtrace-cli
shim=$PWD/target/release/libsigtrace.so
cli=$PWD/target/release/sigtrace
work=$(mktemp -d "/tmp/sigtrace-${1:-bench}.XXXXXX")
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
