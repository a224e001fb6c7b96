#!/usr/bin/env python3
"""Reduce benchmark measurements to figures: medians, differences and ratios against a baseline.

    analyze.py reduce --dir RUN --profiler P --workload W --hz HZ --pair N --expect-status S
                      --program PATH --roots NAME,NAME [--split] [--threads]
                      [--sigtrace-cli PATH] [--pprof PATH] >> results.jsonl

reduce: one benchmark run (a directory written by scripts/bench) to one JSON line.
RUN holds run.json (from run.py: the command as the user runs it) and, for perf, inner.json
(the profiled program alone, run by a second run.py under perf), stderr (the program's),
and the profiler's output: x.*.sigtrace (sigtrace), x.prof (gperftools), perf.data (perf).

Every metric a profiler cannot give is null. Stacks are sets of function names; a sample
counts as "heavy" or "light" when its stack contains that function, and as "reaching the
root" when it contains one of --roots (e.g. main, or start_thread for a worker thread).

The other subcommands serve scripts/bench-{core,micro,unwind,export}.sh; each prints the
lines of one figure (see `analyze.py SUBCOMMAND -h` and the functions' docstrings):

    analyze.py median X...                            the median of the numbers
    analyze.py elapsed START END                      END - START (seconds from `date +%s.%N`)
    analyze.py overhead RUNS_FILE SAMPLES_10K         bench-core.sh: wall and CPU with / without
    analyze.py startup T0 T1 T2 T3 [--runs N]         bench-core.sh: start-up cost of the shim
    analyze.py floor FLOOR_FILE                       bench-micro.sh: cost per signal, empty handler
    analyze.py handler HANDLER_FILE                   bench-micro.sh: the handler against the floor
    analyze.py rate START END COMMAND SAMPLES        bench-micro.sh: a reader command's rate
    analyze.py sample-cost METHOD BASE TRACED SAMPLES bench-unwind.sh: CPU per sample
    analyze.py cpu-wall CPU0 CPU1 WALL0 WALL1         bench-unwind.sh: CPU and wall with / without
    analyze.py resources NAME SECONDS RSS_KB BYTES SAMPLES [BASELINE_S]
                                                      bench-export.sh: one command's time and memory
    analyze.py wrappers WRAPPER_FILE                  bench-wall.sh: ns per interposed call
    analyze.py idle IDLE_FILE [--target PERCENT]      bench-wall.sh: drain-thread CPU with idle threads
"""
import argparse
import collections
import glob
import json
import os
import re
import statistics
import struct
import subprocess
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def stack_metrics(stacks, roots, split):
    """stacks: iterable of (set of function names, weight)."""
    total = heavy = light = rooted = 0
    for names, weight in stacks:
        total += weight
        if names & roots:
            rooted += weight
        if split:
            if "heavy" in names:
                heavy += weight
            elif "light" in names:
                light += weight
    out = {"stack_weight": total, "root_share": rooted / total if total else None}
    if split:
        attributed = heavy + light
        out["split_attributed"] = attributed / total if total else None
        out["heavy_share"] = heavy / attributed if attributed else None
    return out


def folded(lines):
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            yield {strip_address(name) for name in stack.split(";")}, int(count)


def strip_address(name):
    # google-pprof --collapsed writes local symbols as "name<0000000000001220>"
    return re.sub(r"<[0-9a-f]+>$", "", name)


def thread_truth(stderr_path):
    truth = {}
    with open(stderr_path, errors="replace") as f:
        for line in f:
            m = re.match(r"thread tid=(\d+) cpu_ns=(\d+)", line)
            if m:
                truth[int(m.group(1))] = int(m.group(2))
    return truth


def thread_error(truth, measured):
    """Largest |measured share - true share| over the workload's threads, in points (0-100).
    Shares are taken among the threads the workload reported (the idle main thread is left out)."""
    if not truth:
        return None
    true_total = sum(truth.values())
    got_total = sum(measured.get(tid, 0) for tid in truth)
    if not got_total:
        return None
    return 100 * max(abs(measured.get(tid, 0) / got_total - cpu / true_total) for tid, cpu in truth.items())


def sigtrace_metrics(args, run_dir):
    files = sorted(glob.glob(os.path.join(run_dir, "x.*.sigtrace*")))
    if not files:
        return {"error": "no trace file"}
    info = json.loads(subprocess.run([args.sigtrace_cli, "info", "--json", *files], check=True,
                                     capture_output=True, text=True).stdout)
    infos = info if isinstance(info, list) else [info]
    out = {
        "records": sum(i["samples"] for i in infos),
        "weight": sum(i["weight"] for i in infos),
        "dropped": sum(i.get("dropped", 0) for i in infos),
        "bytes": sum(os.path.getsize(f) for f in files),
        "timer": infos[0].get("timer"),
    }
    export = subprocess.run([args.sigtrace_cli, "export", "--format", "folded", *files], check=True,
                            capture_output=True, text=True).stdout
    out.update(stack_metrics(folded(export.splitlines()), args.roots, args.split))
    if args.threads:
        per_thread = {}
        for i in infos:
            for t in i.get("per_thread", []):
                per_thread[t["tid"]] = per_thread.get(t["tid"], 0) + t["weight"]
        out["thread_error"] = thread_error(thread_truth(os.path.join(run_dir, "stderr")), per_thread)
    return out


def gperftools_samples(path):
    """Sum of the counts in a gperftools CPU profile (legacy binary format, native words)."""
    with open(path, "rb") as f:
        data = f.read()
    words = struct.unpack("<%dQ" % (len(data) // 8), data[: len(data) // 8 * 8])
    if words[:2] != (0, 3):
        raise ValueError("not a gperftools CPU profile")
    i, total = 2 + 3, 0  # header: 0, 3 (header words after these two), 0, period, 0
    while i + 1 < len(words):
        count, depth = words[i], words[i + 1]
        if count == 0 and depth == 1 and words[i + 2] == 0:  # trailer
            break
        total += count
        i += 2 + depth
    return total


def gperftools_metrics(args, run_dir):
    path = os.path.join(run_dir, "x.prof")
    if not os.path.exists(path):
        return {"error": "no profile"}
    samples = gperftools_samples(path)
    out = {"records": samples, "weight": samples, "bytes": os.path.getsize(path)}
    if args.pprof:
        collapsed = subprocess.run([args.pprof, "--collapsed", args.program, path],
                                   capture_output=True, text=True).stdout
        out.update(stack_metrics(folded(collapsed.splitlines()), args.roots, args.split))
    return out


def perf_samples(data, pid):
    """(samples of pid as (names, tid) pairs, number of samples in the file) from perf script."""
    script = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,ip,sym", "--max-stack", "2048"],
                            capture_output=True, text=True)
    samples, everything, current = [], 0, None
    for line in script.stdout.splitlines():
        m = re.match(r"\s*(\d+)/(\d+)\s*$", line)
        if m:
            everything += 1
            current = (set(), int(m.group(2))) if int(m.group(1)) == pid else None
            if current:
                samples.append(current)
        elif current is not None and line.strip():
            parts = line.split(None, 1)
            if len(parts) == 2:
                current[0].add(re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0].strip()))
    return samples, everything


def perf_metrics(args, run_dir):
    path = os.path.join(run_dir, "perf.data")
    inner = os.path.join(run_dir, "inner.json")
    if not (os.path.exists(path) and os.path.exists(inner)):
        return {"error": "no perf.data"}
    samples, everything = perf_samples(path, load(inner)["pid"])
    out = {"records": len(samples), "weight": len(samples), "bytes": os.path.getsize(path),
           "file_samples": everything}
    out.update(stack_metrics(((names, 1) for names, _ in samples), args.roots, args.split))
    if args.threads:
        per_thread = {}
        for _, tid in samples:
            per_thread[tid] = per_thread.get(tid, 0) + 1
        out["thread_error"] = thread_error(thread_truth(os.path.join(run_dir, "stderr")), per_thread)
    return out


def reduce(args):
    """One benchmark run of scripts/bench (the directory args.dir) as one JSON line: the run's
    times and status, the profiler's figures (records, weight, bytes, stack shares, per-thread
    error) and capture against CPU time × Hz."""
    args.roots = set(args.roots.split(","))

    outer = load(os.path.join(args.dir, "run.json"))
    record = {"workload": args.workload, "hz": args.hz, "profiler": args.profiler, "pair": args.pair,
              "wall_s": outer["wall_s"], "cpu_s": outer["cpu_s"], "total_cpu_s": outer["cpu_s"],
              "status": outer["status"], "timed_out": outer["timed_out"]}
    if args.profiler.startswith("perf"):
        inner_path = os.path.join(args.dir, "inner.json")
        if os.path.exists(inner_path):
            inner = load(inner_path)
            record["cpu_s"] = inner["cpu_s"]  # the profiled program alone
            record["total_cpu_s"] = outer["cpu_s"] - inner["self_cpu_s"]  # + perf, - the inner runner
            record["status"] = inner["status"]
        else:
            record["error"] = "perf did not run the program"
    record["ok"] = record["status"] == args.expect_status and not record["timed_out"]
    try:
        if args.profiler == "sigtrace":
            record.update(sigtrace_metrics(args, args.dir))
        elif args.profiler == "gperftools":
            record.update(gperftools_metrics(args, args.dir))
        elif args.profiler.startswith("perf"):
            record.update(perf_metrics(args, args.dir))
    except (subprocess.CalledProcessError, ValueError, KeyError, OSError) as error:
        record["error"] = str(error).strip()[:200]
    if "weight" in record and record["cpu_s"] > 0:
        expected = record["cpu_s"] * args.hz
        record["capture_weight"] = record["weight"] / expected
        record["capture_records"] = record["records"] / expected
        record["bytes_per_sample"] = record["bytes"] / record["records"] if record["records"] else None
    json.dump(record, sys.stdout)
    sys.stdout.write("\n")


def median(values):
    """The median of the numbers VALUES (strings or numbers), as a float."""
    return statistics.median(float(x) for x in values)


def elapsed(start, end):
    """Seconds from START to END, two `date +%s.%N` readings."""
    return float(end) - float(start)


def overhead(runs_path, samples_10k):
    """bench-core.sh's overhead: RUNS_PATH holds "label wall_s cpu_ns" lines, several runs per
    label (plain, perf-999, posix-999, perf-10000). For each label: median and minimum wall time
    and CPU time, each as a ratio to the plain runs'. Then the cost of one sample at 10 kHz:
    the extra median CPU of perf-10000 over plain divided by SAMPLES_10K, the mean number of
    samples of its traces. Yields the lines to print."""
    runs = {}
    with open(runs_path) as f:
        for line in f:
            fields = line.split()
            if len(fields) != 3:
                yield "  (a run printed no cpu_ns: %r)" % line.strip()
                continue
            label, wall, cpu = fields
            runs.setdefault(label, []).append((float(wall), int(cpu)))
    base_wall = [w for w, _ in runs["plain"]]
    base_cpu = [c for _, c in runs["plain"]]
    for label in ["plain", "perf-999", "posix-999", "perf-10000"]:
        wall = [w for w, _ in runs[label]]
        cpu = [c for _, c in runs[label]]
        yield ("  %-11s wall median %.3f s (ratio %.4f), min %.3f s (ratio %.4f); CPU median %.3f s (ratio %.4f), min ratio %.4f" % (
            label, statistics.median(wall), statistics.median(wall) / statistics.median(base_wall), min(wall), min(wall) / min(base_wall),
            statistics.median(cpu) / 1e9, statistics.median(cpu) / statistics.median(base_cpu), min(cpu) / min(base_cpu)))
    extra = statistics.median(c for _, c in runs["perf-10000"]) - statistics.median(base_cpu)
    yield "  cost per sample at 10 kHz (signal delivery + handler, from CPU medians): %.2f µs over %.0f samples per run" % (
        extra / samples_10k / 1e3, samples_10k)


def startup(t0, t1, t2, t3, runs):
    """Start-up cost of the shim: mean time per process of RUNS runs of /bin/true without the
    shim (from T0 to T1) and with it (from T2 to T3), and the difference, in milliseconds."""
    plain = (t1 - t0) / runs * 1e3
    traced = (t3 - t2) / runs * 1e3
    return "  without %.2f ms   with the shim %.2f ms   (+%.2f ms per process)" % (plain, traced, traced - plain)


def floor(floor_path):
    """bench-micro.sh's floor: FLOOR_PATH holds "NAME: S s CPU, N signals" lines of
    signal_floor and hrtimer_only, several runs of each. Per timer (perf, posix, hrtimer only):
    its median CPU time less that of the run without a timer (none), per event (its median
    signal count, or one event per 100 µs of CPU for the hrtimer, which sends no signal).
    Yields the lines to print."""
    runs = {}
    with open(floor_path) as f:
        for line in f:
            m = re.match(r"(.+?): ([0-9.]+) s CPU, ([0-9]+) signals", line)
            runs.setdefault(m[1], []).append((float(m[2]), int(m[3])))
    base = statistics.median(c for c, _ in runs["none"])
    for name in ["perf", "posix", "hrtimer only"]:
        cpu = statistics.median(c for c, _ in runs[name])
        events = statistics.median(n for _, n in runs[name]) or 10000 * base  # the hrtimer fires every 100 µs of CPU
        yield "  %-13s %.2f µs per event (%.0f events, %.3f s vs %.3f s CPU)" % (name, (cpu - base) / events * 1e6, events, cpu, base)


def handler(handler_path):
    """bench-micro.sh's handler against the floor: HANDLER_PATH holds "MODE depth D: N ns" lines
    of handler_cost (modes ignore, floor, fp, dwarf; several rounds) and "dropped N" lines from
    traces that lost samples. Per depth: the median thread CPU per signal of the sending system
    call alone (ignore), and of floor, fp and dwarf net of it, fp and dwarf also as multiples of
    the floor. Yields the lines to print: a warning per "dropped" line, then the table."""
    runs = collections.defaultdict(list)
    with open(handler_path) as f:
        for line in f:
            if line.startswith("dropped"):
                yield "  warning: a ring overflowed (%s); the sigtrace figures are too low" % line.strip()
            m = re.match(r"(\w+) depth (\d+): (\d+) ns", line)
            if m:
                runs[(m[1], int(m[2]))].append(int(m[3]))
    yield ("  %5s  %13s  %13s  %22s  %22s" % ("depth", "syscall only", "floor", "sigtrace fp (× floor)", "sigtrace dwarf (× floor)"))
    for depth in (8, 32, 128):
        med = {mode: statistics.median(runs[(mode, depth)]) for mode in ("ignore", "floor", "fp", "dwarf")}
        floor_ns = med["floor"] - med["ignore"]
        cost = {mode: med[mode] - med["ignore"] for mode in ("fp", "dwarf")}
        yield ("  %5d  %10.0f ns  %10.0f ns  %11.0f ns (%.2f×)  %11.0f ns (%.2f×)" % (
            depth, med["ignore"], floor_ns, cost["fp"], cost["fp"] / floor_ns, cost["dwarf"], cost["dwarf"] / floor_ns))
    yield "  (floor and sigtrace: delivery, handler and sigreturn, net of the sending system call)"


def rate(start, end, command, samples):
    """Wall time of one `sigtrace COMMAND` from START to END and its rate in millions of
    samples per second over a trace of SAMPLES samples."""
    seconds = end - start
    return "  sigtrace %-22s %.2f s, %.1f M samples/s" % (command, seconds, samples / 1e6 / seconds)


def sample_cost(method, base, traced, samples):
    """bench-unwind.sh's cost per sample with unwinder METHOD: the extra CPU seconds of the
    traced runs (TRACED) over the runs without the shim (BASE) per sample (SAMPLES, all three
    medians), and that extra as a share of BASE at 10 kHz and scaled to 999 Hz."""
    return "  %-5s %.0f samples, %.3f s CPU vs %.3f s without: %.2f µs per sample (%.1f%% at 10 kHz, ~%.2f%% at 999 Hz)" % (
        method, samples, traced, base, (traced - base) / samples * 1e6, 100 * (traced - base) / base, 100 * (traced - base) / base / 10)


def cpu_wall(cpu_without, cpu_with, wall_without, wall_with):
    """CPU and wall seconds without and with the shim (medians) and the ratios with / without."""
    return "  CPU %.3f s without, %.3f s with (ratio %.4f); wall %.3f s vs %.3f s (ratio %.4f)" % (
        cpu_without, cpu_with, cpu_with / cpu_without, wall_without, wall_with, wall_with / wall_without)


def resources(name, seconds, rss_kb, size, samples, baseline):
    """bench-export.sh's row for one command over a trace of SAMPLES samples: wall SECONDS,
    samples per second, peak RSS (RSS_KB from /usr/bin/time's %M), output SIZE in bytes, and
    the time as a multiple of the BASELINE seconds (`sigtrace info`'s), or "baseline" when
    there is none (the baseline's own row)."""
    ratio = f"{seconds / float(baseline):5.2f}× info" if baseline else "baseline"
    return f"  {name:<22} {seconds:7.2f} s  {samples / max(seconds, 1e-9) / 1e6:6.2f} M samples/s  peak RSS {rss_kb / 1024:8.1f} MiB  output {size / 1e6:9.2f} MB  {ratio}"


def spread(values, unit="ns"):
    """"median (min–max)" of VALUES."""
    return "%6.1f %s (%.1f–%.1f)" % (statistics.median(values), unit, min(values), max(values))


def wrappers(wrapper_path):
    """bench-wall.sh's wrapper cost: WRAPPER_PATH holds "CONFIG NAME: N calls in S s, X ns/call
    CPU, Y ns/call wall" lines of wrapper_cost, several interleaved runs of each CONFIG (alone:
    no shim and no second thread; plain: no shim; cpu and wall: the shim in that mode). Per call
    NAME: the median (min–max) CPU ns per call of each configuration, then the extra ns per call
    of wall mode over plain and over cpu mode and of cpu mode over plain, as differences of the
    medians and of the minimums (the minimum is the run least disturbed by the machine's other
    work). Yields the lines to print."""
    runs = collections.defaultdict(list)
    with open(wrapper_path) as f:
        for line in f:
            m = re.match(r"(\w+) (\w+): \d+ calls in [0-9.]+ s, ([0-9.]+) ns/call CPU", line)
            if m:
                runs[(m[2], m[1])].append(float(m[3]))
    labels = {"alone": "no shim, one thread", "plain": "no shim", "cpu": "SIGTRACE_MODE=cpu", "wall": "SIGTRACE_MODE=wall"}
    for name in dict.fromkeys(name for name, _ in runs):
        yield "  %s (CPU ns per call: median (min–max) of %d runs)" % (name, len(runs[(name, "plain")]))
        for config, label in labels.items():
            if runs[(name, config)]:
                yield "    %-20s %s" % (label, spread(runs[(name, config)]))

        def extra(over, base):
            a, b = runs[(name, over)], runs[(name, base)]
            return "%+6.1f ns (minimums %+.1f ns)" % (statistics.median(a) - statistics.median(b), min(a) - min(b))

        yield "    wall mode over no shim  %s" % extra("wall", "plain")
        yield "    wall mode over cpu mode %s" % extra("wall", "cpu")
        yield "    cpu mode over no shim   %s" % extra("cpu", "plain")


def idle(idle_path, target):
    """bench-wall.sh's drain thread with idle threads: IDLE_PATH holds "KIND MODE RUN_NS DRAIN_NS
    STEADY_NS STEADY_DRAIN_NS WALKS REUSED TORN NOT_READY" lines (figures.py wall-drain; several
    runs per KIND and MODE). Per KIND: the drain thread's CPU as a share of one core over the run
    and from the end of the first generation on (steady), medians over the runs, in cpu and wall
    mode; wall mode's extra drain CPU per sampled blocked thread (walked or reused) over the run;
    the wall.* counters of the median run; and whether the steady share stays under TARGET
    percent. Yields the lines to print."""
    runs = collections.defaultdict(list)
    with open(idle_path) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 10:
                runs[(fields[0], fields[1])].append([int(x) for x in fields[2:]])
    for kind in dict.fromkeys(kind for kind, _ in runs):
        shares = {}
        for mode in ("cpu", "wall"):
            rows = runs[(kind, mode)]
            if not rows:
                continue
            whole = [100 * r[1] / r[0] for r in rows]
            steady = [100 * r[3] / r[2] if r[2] else 0 for r in rows]
            shares[mode] = (statistics.median(r[1] for r in rows), statistics.median(whole))
            line = "  %-6s %-4s drain %7.1f ms CPU in %.2f s: %s of a core; steady %s" % (
                kind, mode, statistics.median(r[1] for r in rows) / 1e6, statistics.median(r[0] for r in rows) / 1e9, spread(whole, "%"), spread(steady, "%"))
            if mode == "wall":
                middle = sorted(rows, key=lambda r: r[1])[len(rows) // 2]
                visits = statistics.median(r[4] + r[5] for r in rows)
                extra = shares["wall"][0] - shares["cpu"][0] if "cpu" in shares else 0
                line += "\n  %-11s wall.walks %d, wall.reused %d, wall.torn %d, wall.not_ready %d; %.0f ns of extra drain CPU per blocked thread sampled" % (
                    "", middle[4], middle[5], middle[6], middle[7], extra / max(1, visits))
                verdict = "met" if statistics.median(steady) < target else "MISSED"
                line += "\n  %-11s target: steady share under %g%% of a core: %s" % ("", target, verdict)
            yield line


def helptext(function):
    """FUNCTION's docstring as argparse help (on one line, % escaped)."""
    return " ".join(function.__doc__.split()).replace("%", "%%")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("reduce", help=helptext(reduce), description=helptext(reduce))
    p.add_argument("--dir", required=True)
    p.add_argument("--profiler", required=True)
    p.add_argument("--workload", required=True)
    p.add_argument("--hz", type=int, required=True)
    p.add_argument("--pair", type=int, required=True)
    p.add_argument("--expect-status", type=int, default=0)
    p.add_argument("--program", required=True)
    p.add_argument("--roots", default="main")
    p.add_argument("--split", action="store_true")
    p.add_argument("--threads", action="store_true")
    p.add_argument("--sigtrace-cli")
    p.add_argument("--pprof")

    p = commands.add_parser("median", help=helptext(median), description=helptext(median))
    p.add_argument("values", nargs="+")
    p = commands.add_parser("elapsed", help=helptext(elapsed), description=helptext(elapsed))
    p.add_argument("start")
    p.add_argument("end")
    p = commands.add_parser("overhead", help=helptext(overhead), description=helptext(overhead))
    p.add_argument("runs_path")
    p.add_argument("samples_10k", type=float)
    p = commands.add_parser("startup", help=helptext(startup), description=helptext(startup))
    p.add_argument("times", type=float, nargs=4, metavar="T")
    p.add_argument("--runs", type=int, default=200)
    p = commands.add_parser("floor", help=helptext(floor), description=helptext(floor))
    p.add_argument("floor_path")
    p = commands.add_parser("handler", help=helptext(handler), description=helptext(handler))
    p.add_argument("handler_path")
    p = commands.add_parser("rate", help=helptext(rate), description=helptext(rate))
    p.add_argument("start", type=float)
    p.add_argument("end", type=float)
    p.add_argument("sigtrace_command")
    p.add_argument("samples", type=int)
    p = commands.add_parser("sample-cost", help=helptext(sample_cost), description=helptext(sample_cost))
    p.add_argument("method")
    p.add_argument("figures", type=float, nargs=3, metavar="BASE TRACED SAMPLES")
    p = commands.add_parser("cpu-wall", help=helptext(cpu_wall), description=helptext(cpu_wall))
    p.add_argument("figures", type=float, nargs=4, metavar="CPU_WITHOUT CPU_WITH WALL_WITHOUT WALL_WITH")
    p = commands.add_parser("wrappers", help=helptext(wrappers), description=helptext(wrappers))
    p.add_argument("wrapper_path")
    p = commands.add_parser("idle", help=helptext(idle), description=helptext(idle))
    p.add_argument("idle_path")
    p.add_argument("--target", type=float, default=1.0)
    p = commands.add_parser("resources", help=helptext(resources), description=helptext(resources))
    p.add_argument("name")
    p.add_argument("seconds", type=float)
    p.add_argument("rss_kb", type=int)
    p.add_argument("size", type=int)
    p.add_argument("samples", type=int)
    p.add_argument("baseline", nargs="?", default="")
    args = parser.parse_args()

    if args.command == "reduce":
        reduce(args)
        return
    if args.command == "median":
        lines = [median(args.values)]
    elif args.command == "elapsed":
        lines = [elapsed(args.start, args.end)]
    elif args.command == "overhead":
        lines = overhead(args.runs_path, args.samples_10k)
    elif args.command == "startup":
        lines = [startup(*args.times, args.runs)]
    elif args.command == "floor":
        lines = floor(args.floor_path)
    elif args.command == "handler":
        lines = handler(args.handler_path)
    elif args.command == "rate":
        lines = [rate(args.start, args.end, args.sigtrace_command, args.samples)]
    elif args.command == "sample-cost":
        lines = [sample_cost(args.method, *args.figures)]
    elif args.command == "cpu-wall":
        lines = [cpu_wall(*args.figures)]
    elif args.command == "wrappers":
        lines = wrappers(args.wrapper_path)
    elif args.command == "idle":
        lines = idle(args.idle_path, args.target)
    else:
        lines = [resources(args.name, args.seconds, args.rss_kb, args.size, args.samples, args.baseline)]
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
