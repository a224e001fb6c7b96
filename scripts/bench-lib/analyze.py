#!/usr/bin/env python3
"""Reduce one benchmark run (a directory written by scripts/bench) to one JSON line.

    analyze.py --dir RUN --profiler P --workload W --hz HZ --pair N --expect-status S
               --program PATH --roots NAME,NAME [--split] [--threads]
               [--sigtrace-cli PATH] [--pprof PATH] >> results.jsonl

RUN holds run.json (from run.py: the command as the user runs it) and, for perf, inner.json
(the profiled program alone, run by a second run.py under perf), stderr (the program's),
and the profiler's output: x.*.sigtrace (sigtrace), x.prof (gperftools), perf.data (perf).

Every metric a profiler cannot give is null. Stacks are sets of function names; a sample
counts as "heavy" or "light" when its stack contains that function, and as "reaching the
root" when it contains one of --roots (e.g. main, or start_thread for a worker thread).
"""
import argparse
import glob
import json
import os
import re
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--profiler", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--hz", type=int, required=True)
    parser.add_argument("--pair", type=int, required=True)
    parser.add_argument("--expect-status", type=int, default=0)
    parser.add_argument("--program", required=True)
    parser.add_argument("--roots", default="main")
    parser.add_argument("--split", action="store_true")
    parser.add_argument("--threads", action="store_true")
    parser.add_argument("--sigtrace-cli")
    parser.add_argument("--pprof")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
