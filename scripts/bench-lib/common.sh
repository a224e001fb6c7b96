# shellcheck shell=bash disable=SC2034  # shim, cli and work are for the scripts that source this
# Shared set-up of the scripts/bench-*.sh benchmarks; source it from the repository root.
# Builds sigtrace, sets $shim and $cli, makes a work folder $work (removed on exit) and
# defines now, median, and figures and analyze, which run figures.py and analyze.py of
# this folder (each subcommand computes and prints one figure; see their docstrings).
cargo build --release -j2 -q -p sigtrace-shim -p sigtrace-cli
shim=$PWD/target/release/libsigtrace.so
cli=$PWD/target/release/sigtrace
bench_lib=$PWD/scripts/bench-lib
work=$(mktemp -d "/tmp/sigtrace-${1:-bench}.XXXXXX")
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
figures() { python3 "$bench_lib/figures.py" "$@"; }
analyze() { python3 "$bench_lib/analyze.py" "$@"; }
median() { analyze median "$@"; }
