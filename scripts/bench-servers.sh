#!/usr/bin/env bash
# Servers under sigtrace: programs that block and wake thousands of times a second, where a
# per-thread perf event costs a hrtimer re-programming at every context switch.
#
#   scripts/bench-servers.sh [--pairs N] [--only pingpong,pgbench,nginx]
#   (also: scripts/bench --only servers)
#
# For every pair (default 3) and every server it runs, back to back: the bare server, then each
# profiler; each figure is a throughput ratio to the bare run of the same pair, so drift of the
# machine cancels. The table gives the median and min–max of the ratios.
#   pingpong  two threads pinned to one CPU ping-ponging a byte over pipes for 3 s
#             (scripts/bench-lib/servers/pingpong.c), with the floors: the same program arming a
#             bare perf event or a bare POSIX CPU timer per thread at 999 Hz itself
#   pgbench   PostgreSQL (Debian's), initdb -A trust as user postgres into a temporary folder, on
#             a unix socket there, the profiler on the server only; pgbench -i -s 5 once, then
#             pgbench -S -c 4 -j 2 -T 6 per run; pg_ctl stop -m fast
#   nginx     nginx (Debian's nginx-light), one worker, a 600-byte page on loopback, wrk -t 2 -c 8
#             -d 5 s (keep-alive connections)
# Profilers: sigtrace at its defaults (SIGTRACE_TIMER=auto) and forced to perf and to posix,
# `perf record -F 999 -g`, gperftools' libprofiler at 999 Hz. What they need is installed by
# scripts/install-test-deps.sh. Writes target/bench/servers.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir=${CARGO_TARGET_DIR:-$repo/target}/bench
pairs=3 only=pingpong,pgbench,nginx
while (($#)); do
    case $1 in
        --pairs) pairs=${2:?}; shift ;;
        --pairs=*) pairs=${1#*=} ;;
        --only) only=${2:?}; shift ;;
        --only=*) only=${1#*=} ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        *) echo "bench-servers: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "bench-servers: --pairs needs a positive number" >&2; exit 2; }
log() { printf 'bench-servers: %s\n' "$*" >&2; }
export LC_ALL=C

"$repo/scripts/install-test-deps.sh"
libprofiler=$(dpkg -L libgoogle-perftools4 | grep -m1 '/libprofiler\.so\.0$')
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)

(cd "$repo" && cargo build --release -j2 -q -p sigtrace-shim -p sigtrace-cli)
shim=$repo/target/release/libsigtrace.so
work=$(mktemp -d /tmp/sigtrace-servers.XXXXXX)
chmod 755 "$work"
cleanup() {
    [[ -f $work/pg/data/postmaster.pid ]] && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/data" stop -m immediate >/dev/null 2>&1
    [[ -f $work/nginx/nginx.pid ]] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
results=$work/results.tsv
: >"$results"
mkdir -p "$work/bin"
cc -O2 -o "$work/bin/pingpong" "$repo/scripts/bench-lib/servers/pingpong.c" -lpthread

# profiler_env PROFILER TRACES: the environment (as env(1) arguments) that puts PROFILER into a
# program, its files into TRACES; empty for none and for perf (which wraps the command).
profiler_env() {
    case $1 in
        sigtrace) echo "LD_PRELOAD=$shim SIGTRACE_OUTPUT=$2/t.%p.sigtrace" ;;
        sigtrace-perf) echo "LD_PRELOAD=$shim SIGTRACE_OUTPUT=$2/t.%p.sigtrace SIGTRACE_TIMER=perf" ;;
        sigtrace-posix) echo "LD_PRELOAD=$shim SIGTRACE_OUTPUT=$2/t.%p.sigtrace SIGTRACE_TIMER=posix" ;;
        gperftools) echo "LD_PRELOAD=$libprofiler CPUPROFILE=$2/g.prof CPUPROFILE_FREQUENCY=999" ;;
        *) echo "" ;;
    esac
}
# profiler_wrap PROFILER TRACES: the command prefix `perf record` needs (else nothing).
profiler_wrap() {
    [[ $1 == perf ]] && echo "perf record -q -F 999 -g -o $2/perf.data --"
    return 0
}
fresh_traces() {  # a folder any server user may write its files into
    rm -rf "$work/traces" && mkdir -p "$work/traces" && chmod 1777 "$work/traces"
}
record() {  # SERVER PROFILER PAIR THROUGHPUT
    printf '%s\t%s\t%s\t%s\n' "$@" >>"$results"
    log "pair $3: $1 $2: $4"
}

# ---------------------------------------------------------------- pingpong

pingpong_run() {  # PROFILER PAIR
    local mechanism=none profiler=$1
    case $profiler in floor-perf) mechanism=perf ;; floor-posix) mechanism=posix ;; esac
    fresh_traces
    local line
    # shellcheck disable=SC2046  # the environment and wrapper are words
    line=$(env $(profiler_env "$profiler" "$work/traces") $(profiler_wrap "$profiler" "$work/traces") "$work/bin/pingpong" "$mechanism" 3 | grep round_trips_per_s)
    record pingpong "$profiler" "$2" "${line#*=}"
}

# ---------------------------------------------------------------- pgbench

pg_setup() {
    mkdir -p "$work/pg" && chown postgres: "$work/pg"
    runuser -u postgres -- "$pg_bin/initdb" -A trust -D "$work/pg/data" >/dev/null
    pg_start none && runuser -u postgres -- pgbench -h "$work/pg" -i -s 5 -q postgres >/dev/null 2>&1 && pg_stop
}
pg_start() {  # PROFILER
    fresh_traces
    # shellcheck disable=SC2046
    runuser -u postgres -- env $(profiler_env "$1" "$work/traces") $(profiler_wrap "$1" "$work/traces") \
        "$pg_bin/postgres" -D "$work/pg/data" -k "$work/pg" -c listen_addresses= >"$work/pg/log" 2>&1 &
    local tries
    for tries in $(seq 100); do
        "$pg_bin/pg_isready" -q -h "$work/pg" && return 0
        sleep 0.1
    done
    log "postgres did not start: $(tail -n3 "$work/pg/log")"
    return 1
}
pg_stop() {
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/data" stop -m fast >/dev/null
    wait 2>/dev/null || true
}
pgbench_run() {  # PROFILER PAIR
    pg_start "$1"
    local tps
    tps=$(runuser -u postgres -- pgbench -h "$work/pg" -S -c 4 -j 2 -T 6 postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
    pg_stop
    record pgbench "$1" "$2" "$tps"
}

# ---------------------------------------------------------------- nginx

nginx_setup() {
    mkdir -p "$work/nginx/www"
    head -c 600 /dev/zero | tr '\0' 'x' >"$work/nginx/www/index.html"
    nginx_port=$((20000 + RANDOM % 20000))
    cat >"$work/nginx/nginx.conf" <<CONF
user root;
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$nginx_port; root $work/nginx/www; }
}
CONF
}
nginx_run() {  # PROFILER PAIR
    fresh_traces
    rm -f "$work/nginx/nginx.pid"
    # shellcheck disable=SC2046
    env $(profiler_env "$1" "$work/traces") $(profiler_wrap "$1" "$work/traces") \
        nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >/dev/null 2>&1 &
    local server=$! tries
    for tries in $(seq 100); do
        [[ -s $work/nginx/nginx.pid ]] && curl -sf "http://127.0.0.1:$nginx_port/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local rps
    rps=$(wrk -t 2 -c 8 -d 5s "http://127.0.0.1:$nginx_port/index.html" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
    kill -QUIT "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    record nginx "$1" "$2" "$rps"
}

# ---------------------------------------------------------------- runs

IFS=, read -r -a servers <<<"$only"
for server in "${servers[@]}"; do
    case $server in
        pingpong) ;;
        pgbench) pg_setup ;;
        nginx) nginx_setup ;;
        *) log "unknown server $server (known: pingpong, pgbench, nginx)"; exit 2 ;;
    esac
done
for ((pair = 1; pair <= pairs; pair++)); do
    for server in "${servers[@]}"; do
        profilers=(none sigtrace sigtrace-posix sigtrace-perf perf gperftools)
        [[ $server == pingpong ]] && profilers=(none floor-perf floor-posix "${profilers[@]:1}")
        for profiler in "${profilers[@]}"; do
            "${server}_run" "$profiler" "$pair"
        done
    done
done

mkdir -p "$out_dir"
python3 - "$results" >"$out_dir/servers.md" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(dict)
for line in open(sys.argv[1]):
    server, profiler, pair, value = line.rstrip("\n").split("\t")
    if value:
        runs[(server, pair)][profiler] = float(value)
ratios, bare = defaultdict(list), defaultdict(list)
order = []
for (server, pair), by_profiler in runs.items():
    base = by_profiler.get("none")
    if not base:
        continue
    bare[server].append(base)
    for profiler, value in by_profiler.items():
        if (server, profiler) not in order:
            order.append((server, profiler))
        ratios[(server, profiler)].append(value / base)
names = {"none": "bare", "floor-perf": "floor: a bare perf event per thread", "floor-posix": "floor: a bare POSIX timer per thread",
         "sigtrace": "sigtrace (defaults: auto)", "sigtrace-posix": "sigtrace, SIGTRACE_TIMER=posix", "sigtrace-perf": "sigtrace, SIGTRACE_TIMER=perf",
         "perf": "perf record -F 999 -g", "gperftools": "gperftools, 999 Hz"}
unit = {"pingpong": "round trips/s", "pgbench": "tps", "nginx": "requests/s"}
print("| server | profiler | kept of bare throughput (median) | min–max | pairs |")
print("|---|---|---|---|---|")
for server, profiler in order:
    values = ratios[(server, profiler)]
    label = names.get(profiler, profiler)
    if profiler == "none":
        label += f" ({statistics.median(bare[server]):,.0f} {unit.get(server, '')})"
    print(f"| {server} | {label} | {statistics.median(values):.2f} | {min(values):.2f}–{max(values):.2f} | {len(values)} |")
PY
cat "$out_dir/servers.md"
log "table in $out_dir/servers.md"
