#!/usr/bin/env python3
"""The lifecycle group of scripts/bench (issue 19): what starting and ending things costs under
sigtrace, each row against its bare run and its floor program in the same interleaved pairs.

    lifecycle.py --work DIR --shim LIBSIGTRACE [--cli SIGTRACE] --libprofiler LIBPROFILER
                 [--pairs N] [--quick] [--only ROW,...] --out TABLE.md

Rows (ROW names):
  threads   pthread_create + pthread_join of an empty thread, 1 s (0.3 s quick) of cycles:
            bare; the bare per-thread mechanisms (scripts/micro/thread_cycle.c: a perf
            task-clock event, a POSIX CPU timer, on every thread, the main one too); sigtrace
            (perf events, then SIGTRACE_TIMER=posix). Figures: extra CPU µs per cycle over bare.
  shell     sh -c 'for i in $(seq 300); do /bin/true; done': bare; the floor preload
            (scripts/micro/floor_preload.c: a perf event and a trace file per process);
            sigtrace (default, and SIGTRACE_DRAIN_THREAD=always: a drain thread from the
            start); perf record -F 999 -g; gperftools (libprofiler, CPUPROFILE). Figures: CPU
            and wall / bare.
  true      /bin/true started 200 times (scripts/micro/spawn_loop.c: the median start's CPU
            time, from its rusage): extra CPU µs per start.
  fork      a fork per connection (scripts/micro/fork_loop.c: 300 children of 0.3 ms of CPU, a
            1 ms poll and exit; 100 quick): extra CPU µs per child and in the parent; the floor
            preload follows forks (a new event and file per child).
  python    python3 -c pass started 20 times (spawn_loop, the median start): extra CPU ms per
            start.
  server    Python's http.server.ThreadingHTTPServer (/usr/bin/python3; a thread per request,
            scripts/bench-lib/workloads/thread_server.py) on a free loopback port, and wrk (one
            thread, 2 connections, each request on a new connection: `Connection: close`) for
            2 s (1 s quick): bare; sigtrace (default, and SIGTRACE_TIMER=posix); perf record -F
            999 -g -p on the server; gperftools. Figures: requests / bare requests, and for
            sigtrace the capture: trace weight (`sigtrace info --json`) / (the server's CPU time
            from its rusage × Hz), and the same without sigtrace's drain thread's CPU time (the
            trace's drain.cpu_ns_total), which is not sampled.
  pgbench   PostgreSQL (initdb -A trust as user postgres in a temporary directory, a unix
            socket there), pgbench -i -s 5, then pgbench -S -C -c 4 -j 2 -T 5 (2 quick) against
            a server started with the profiler preloaded into the server only (perf record -p
            on the postmaster for perf). Figure: tps / bare tps.

Every figure is the median over the pairs of the ratio (or difference) to the bare run of the
same pair, with min–max. Timings on a shared machine are noisy: read medians.

Trace files go to a fresh directory in /dev/shm when it exists (--out-dir to choose): on this
VM's ext4, creating a file in a directory after heavy create-and-delete churn costs 0.2-1.5 ms
(ext4's inode allocator skips recently deleted inodes), against 11 µs on tmpfs, which would
swamp both the floor and sigtrace's own cost in every row but the threads one.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def sh(command, env=None, check=True, **kwargs):
    return subprocess.run(command, env=env, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def with_env(extra):
    env = dict(os.environ)
    env.update(extra)
    return env


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.bin = os.path.join(self.work, "bin")
        os.makedirs(self.bin, exist_ok=True)
        out_parent = args.out_dir or ("/dev/shm" if os.path.isdir("/dev/shm") else self.work)
        self.out = os.path.join(out_parent, f"sigtrace-lifecycle-out.{os.getpid()}")
        self.results = {}  # (row, variant, figure) -> [values]
        self.python = os.path.realpath("/usr/bin/python3")

    # ------------------------------------------------------------ helpers

    def build(self):
        micro = os.path.join(REPO, "scripts", "micro")
        sh(["cc", "-O2", "-pthread", "-o", f"{self.bin}/thread_cycle", f"{micro}/thread_cycle.c"])
        sh(["cc", "-O2", "-o", f"{self.bin}/spawn_loop", f"{micro}/spawn_loop.c"])
        sh(["cc", "-O2", "-o", f"{self.bin}/fork_loop", f"{micro}/fork_loop.c"])
        sh(["cc", "-O2", "-shared", "-fPIC", "-pthread", "-o", f"{self.bin}/floor_preload.so", f"{micro}/floor_preload.c"])

    def fresh_out(self):
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        os.chmod(self.out, 0o777)

    def preload(self, variant):
        """The environment a variant adds to the profiled program (None: not preloaded)."""
        sig = {"LD_PRELOAD": self.args.shim, "SIGTRACE_OUTPUT": f"{self.out}/t.%p.sigtrace"}
        return {
            "bare": {},
            "floor": {"LD_PRELOAD": f"{self.bin}/floor_preload.so", "FLOOR_OUT": f"{self.out}/f"},
            "sigtrace": sig,
            "sigtrace, always": dict(sig, SIGTRACE_DRAIN_THREAD="always"),
            "sigtrace, posix": dict(sig, SIGTRACE_TIMER="posix"),
            "gperftools": {"LD_PRELOAD": self.args.libprofiler, "CPUPROFILE": f"{self.out}/g.prof", "CPUPROFILE_FREQUENCY": "999"},
        }[variant]

    def record(self, row, variant, figure, value):
        self.results.setdefault((row, variant, figure), []).append(value)

    def measure(self, command, env):
        """CPU and wall seconds of `command` and its children (scripts/bench-lib/run.py)."""
        out = os.path.join(self.work, "run.json")
        runner = [sys.executable, os.path.join(HERE, "run.py"), "--out", out]
        for name, value in env.items():
            runner += ["--env", f"{name}={value}"]
        sh(runner + ["--"] + command)
        with open(out) as f:
            result = json.load(f)
        return result["cpu_s"], result["wall_s"]

    # ------------------------------------------------------------ rows

    def row_threads(self, pair):
        ms = "300" if self.args.quick else "1000"
        figures = {}
        for variant, mode, env in [
            ("bare", "bare", {}),
            ("floor: perf event", "perf", {}),
            ("floor: POSIX timer", "posix", {}),
            ("sigtrace", "bare", self.preload("sigtrace")),
            ("sigtrace, posix", "bare", self.preload("sigtrace, posix")),
        ]:
            self.fresh_out()
            text = sh([f"{self.bin}/thread_cycle", mode, ms], env=with_env(env)).stdout
            match = re.search(r"([\d.]+) us/cycle wall, ([\d.]+) us/cycle CPU", text)
            figures[variant] = (float(match.group(2)), float(match.group(1)))
        for variant, (cpu, wall) in figures.items():
            if variant != "bare":
                self.record("threads", variant, "extra CPU µs/cycle", cpu - figures["bare"][0])
                self.record("threads", variant, "extra wall µs/cycle", wall - figures["bare"][1])

    def row_shell(self, pair):
        loop = ["sh", "-c", "for i in $(seq 300); do /bin/true; done"]
        base = None
        for variant in ["bare", "floor", "sigtrace", "sigtrace, always", "perf record", "gperftools"]:
            self.fresh_out()
            if variant == "perf record":
                cpu, wall = self.measure(["perf", "record", "-q", "-F", "999", "-g", "-o", f"{self.out}/perf.data", "--"] + loop, {})
            else:
                cpu, wall = self.measure(loop, self.preload(variant))
            if variant == "bare":
                base = (cpu, wall)
            else:
                self.record("shell", variant, "CPU / bare", cpu / base[0])
                self.record("shell", variant, "wall / bare", wall / base[1])

    def spawn_row(self, row, count, program, variants, scale, unit):
        base = None
        for variant in variants:
            self.fresh_out()
            text = sh([f"{self.bin}/spawn_loop", str(count)] + program, env=with_env(self.preload(variant))).stdout
            match = re.search(r"([\d.]+) us/run CPU, ([\d.]+) us/run wall", text)
            cpu, wall = float(match.group(1)), float(match.group(2))
            if variant == "bare":
                base = (cpu, wall)
                self.record(row, "bare", f"CPU {unit}/start", cpu / scale)
            else:
                self.record(row, variant, f"extra CPU {unit}/start", (cpu - base[0]) / scale)
                self.record(row, variant, f"extra wall {unit}/start", (wall - base[1]) / scale)

    def row_true(self, pair):
        self.spawn_row("true", 100 if self.args.quick else 200, ["/bin/true"], ["bare", "floor", "sigtrace", "sigtrace, always"], 1.0, "µs")

    def row_fork(self, pair):
        count = "100" if self.args.quick else "300"
        base = None
        for variant in ["bare", "floor", "sigtrace", "sigtrace, always"]:
            self.fresh_out()
            text = sh([f"{self.bin}/fork_loop", count], env=with_env(self.preload(variant))).stdout
            match = re.search(r"([\d.]+) us/fork children CPU, ([\d.]+) us/fork parent CPU", text)
            children, parent = float(match.group(1)), float(match.group(2))
            if variant == "bare":
                base = (children, parent)
                self.record("fork", "bare", "child CPU µs", children)
            else:
                self.record("fork", variant, "extra child CPU µs", children - base[0])
                self.record("fork", variant, "extra parent CPU µs/fork", parent - base[1])

    def row_python(self, pair):
        self.spawn_row("python", 10 if self.args.quick else 20, [self.python, "-c", "pass"], ["bare", "sigtrace", "sigtrace, always", "gperftools"], 1000.0, "ms")

    # ------------------------------------------------------------ thread-per-request server

    def server_start(self, env):
        """Starts thread_server.py with `env` added and waits for its port (None: it died)."""
        port_file = os.path.join(self.work, "server.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        server = subprocess.Popen([self.python, os.path.join(HERE, "workloads", "thread_server.py"), port_file],
                                  env=with_env(env), stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(self.work, "server.log"), "a"))
        for _ in range(600):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    return server, int(f.read())
            if server.poll() is not None:
                raise SystemExit(f"lifecycle: the server exited with {server.returncode} before listening")
            time.sleep(0.05)
        server.kill()
        raise SystemExit("lifecycle: the server did not listen within 30 s")

    def server_stop(self, server):
        """SIGTERM (the server exits normally), then its CPU seconds from its rusage."""
        server.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
        if server.returncode != 0:
            raise SystemExit(f"lifecycle: the server exited with {server.returncode}")
        return usage.ru_utime + usage.ru_stime

    def server_requests(self, port):
        seconds = "1" if self.args.quick else "2"
        text = sh(["wrk", "-t", "1", "-c", "2", "-d", f"{seconds}s", "-H", "Connection: close", f"http://127.0.0.1:{port}/"]).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

    def trace_info(self):
        """`sigtrace info --json` of the one trace file in the output directory."""
        traces = [name for name in os.listdir(self.out) if name.endswith(".sigtrace")]
        if len(traces) != 1:
            raise SystemExit(f"lifecycle: expected one trace in {self.out}, found {traces}")
        return json.loads(sh([self.args.cli, "info", "--json", os.path.join(self.out, traces[0])]).stdout)

    def row_server(self, pair):
        base = None
        for variant in ["bare", "sigtrace", "sigtrace, posix", "perf record", "gperftools"]:
            self.fresh_out()
            perf = None
            server, port = self.server_start({} if variant == "perf record" else self.preload(variant))
            try:
                if variant == "perf record":
                    perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(server.pid), "-o", f"{self.out}/perf.data"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                rate = self.server_requests(port)
            finally:
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                cpu_s = self.server_stop(server)
            if variant == "bare":
                base = rate
                self.record("server", "bare", "requests/s", rate)
                continue
            self.record("server", variant, "requests / bare", rate / base)
            if variant.startswith("sigtrace"):
                info = self.trace_info()
                self.record("server", variant, "capture", info["weight"] / (cpu_s * info["hz"]))
                drain_s = info["counters"].get("drain.cpu_ns_total", 0) / 1e9
                self.record("server", variant, "capture without the drain thread", info["weight"] / ((cpu_s - drain_s) * info["hz"]))

    # ------------------------------------------------------------ PostgreSQL

    def pg_bin(self, name):
        for version in sorted(os.listdir("/usr/lib/postgresql"), reverse=True):
            path = f"/usr/lib/postgresql/{version}/bin/{name}"
            if os.path.exists(path):
                return path
        raise SystemExit(f"lifecycle: no {name} (install postgresql)")

    def as_postgres(self, command, env=None, **kwargs):
        prefix = [] if os.geteuid() == 101 else ["runuser", "-u", "postgres", "--"]
        environment = ["env"] + [f"{k}={v}" for k, v in (env or {}).items()]
        return sh(prefix + environment + command, **kwargs)

    def pg_setup(self):
        self.pg_dir = tempfile.mkdtemp(prefix="sigtrace-pg.")
        os.chmod(self.pg_dir, 0o755)
        shutil.chown(self.pg_dir, "postgres", "postgres")
        self.pg_data = os.path.join(self.pg_dir, "data")
        self.as_postgres([self.pg_bin("initdb"), "-A", "trust", "-U", "postgres", "-D", self.pg_data])
        self.pg_start({})
        self.as_postgres(["pgbench", "-h", self.pg_dir, "-U", "postgres", "-i", "-s", "5", "postgres"])
        self.pg_stop()

    def pg_start(self, env):
        """Starts the postmaster itself (not through pg_ctl, whose wait loop a preloaded
        profiler of its own upsets) with `env`, and waits until it accepts connections."""
        prefix = [] if os.geteuid() == 101 else ["runuser", "-u", "postgres", "--"]
        environment = ["env"] + [f"{k}={v}" for k, v in env.items()]
        self.postmaster = subprocess.Popen(prefix + environment + [self.pg_bin("postgres"), "-D", self.pg_data, "-k", self.pg_dir,
                                           "-c", "listen_addresses=", "-c", "max_connections=50"],
                                           stdout=subprocess.DEVNULL, stderr=open(f"{self.pg_dir}/log", "a"))
        for _ in range(600):
            if sh(["pg_isready", "-q", "-h", self.pg_dir, "-U", "postgres"], check=False).returncode == 0:
                return
            if self.postmaster.poll() is not None:
                raise SystemExit(f"lifecycle: postgres did not start (see {self.pg_dir}/log)")
            time.sleep(0.05)
        raise SystemExit("lifecycle: postgres did not accept connections within 30 s")

    def pg_stop(self):
        """Fast shutdown (SIGINT to the postmaster), waited for."""
        postmaster = getattr(self, "postmaster", None)
        if postmaster is None or postmaster.poll() is not None:
            return
        with open(f"{self.pg_data}/postmaster.pid") as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGINT)
        postmaster.wait(timeout=60)

    def pgbench_tps(self):
        seconds = "2" if self.args.quick else "5"
        text = sh(["pgbench", "-h", self.pg_dir, "-U", "postgres", "-S", "-C", "-c", "4", "-j", "2", "-T", seconds, "postgres"]).stdout
        return float(re.search(r"tps = ([\d.]+)", text).group(1))

    def row_pgbench(self, pair):
        base = None
        for variant in ["bare", "sigtrace", "sigtrace, always", "sigtrace, posix", "perf record", "gperftools"]:
            self.fresh_out()
            perf = None
            self.pg_start({} if variant == "perf record" else self.preload(variant))
            try:
                if variant == "perf record":
                    with open(f"{self.pg_data}/postmaster.pid") as f:
                        postmaster = f.readline().strip()
                    perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", postmaster, "-o", f"{self.out}/perf.data"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                tps = self.pgbench_tps()
            finally:
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                self.pg_stop()
            if variant == "bare":
                base = tps
                self.record("pgbench", "bare", "tps", tps)
            else:
                self.record("pgbench", variant, "tps / bare", tps / base)

    # ------------------------------------------------------------ table

    def table(self):
        lines = ["| row | variant | figure | median | min–max |", "|---|---|---|---|---|"]
        for (row, variant, figure), values in self.results.items():
            digits = 2 if max(abs(v) for v in values) < 10 else 0
            lines.append(f"| {row} | {variant} | {figure} | {statistics.median(values):.{digits}f} | {min(values):.{digits}f}–{max(values):.{digits}f} |")
        return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--shim", required=True)
    parser.add_argument("--cli", default=None, help="the sigtrace command (default: beside --shim)")
    parser.add_argument("--libprofiler", required=True)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="threads,shell,true,fork,python,server,pgbench")
    parser.add_argument("--out-dir", default=None, help="where the trace files go (default: /dev/shm if present)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    args.cli = args.cli or os.path.join(os.path.dirname(os.path.abspath(args.shim)), "sigtrace")
    bench = Bench(args)
    bench.build()
    rows = args.only.split(",")
    if "pgbench" in rows:
        bench.pg_setup()
    try:
        for pair in range(1, args.pairs + 1):
            for row in rows:
                getattr(bench, f"row_{row}")(pair)
            print(f"lifecycle: pair {pair} of {args.pairs} done", file=sys.stderr)
    finally:
        if "pgbench" in rows:
            bench.pg_stop()
            shutil.rmtree(bench.pg_dir, ignore_errors=True)
        shutil.rmtree(bench.out, ignore_errors=True)
    table = bench.table()
    with open(args.out, "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
