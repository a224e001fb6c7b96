#!/usr/bin/env bash
# Installs what the test suite and scripts/stress need on a Debian/Ubuntu machine: gcc and the
# C library headers (C workloads are compiled at test time), python3 and libpython3.11 (profiled by the tests),
# golang-go (the Go stress cases: a cgo program and `go build` under the shim), nodejs and
# openjdk-17-jdk-headless (JIT runtimes: tests/tests/integration/jit_runtimes.rs), and the real
# programs of tests/tests/integration/real_programs.rs: bash, coreutils, findutils, grep, sed, make, gzip,
# xz-utils, sqlite3, perl and git; tmux (sigtrace top's tests); debuginfod and binutils (the debuginfod tests); python3-venv and, in a throwaway environment under target/
# (scripts/otlp-oracle-venv), the official `opentelemetry-proto` package that reads the OTLP export;
# and the servers and anchors of scripts/bench-servers.sh: postgresql (with pgbench; also
# scripts/bench --only lifecycle), nginx-light, wrk, curl, linux-perf and google-perftools.
# Idempotent and quiet: does nothing when everything is already there.
set -euo pipefail

missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -x /usr/bin/python3 ] || missing+=(python3)
# Debian's libpython3.11, opened RTLD_LOCAL by an embedding test program (python_frames).
compgen -G '/usr/lib/*/libpython3.11.so.1.0' >/dev/null || missing+=(libpython3.11)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v go >/dev/null 2>&1 || [ -x /usr/lib/go/bin/go ] || missing+=(golang-go)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
{ command -v java && command -v javac; } >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
# The real programs: each package when one of its commands is missing.
need() {
    local package=$1
    shift
    local command
    for command in "$@"; do
        command -v "$command" >/dev/null 2>&1 || {
            missing+=("$package")
            return
        }
    done
}
need bash bash
need coreutils cksum cp seq sort tr uniq wc
need findutils find
need grep grep
need sed sed
need make make
need gzip gzip
need xz-utils xz
need sqlite3 sqlite3
need perl perl
need git git
# The servers benchmark (scripts/bench-servers.sh).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v pgbench >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
need nginx-light nginx
need wrk wrk
need curl curl
need linux-perf perf
ls /usr/lib/*/libprofiler.so.0 >/dev/null 2>&1 || missing+=(google-perftools)
# sigtrace top's tests drive it in a terminal multiplexer.
need tmux tmux
# The debuginfod tests run Debian's real server (elfutils) and make debug files with binutils.
need debuginfod debuginfod
need binutils objcopy strip readelf

if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    echo "install-test-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$(dirname "$0")/otlp-oracle-venv" >/dev/null
