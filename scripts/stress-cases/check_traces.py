#!/usr/bin/env python3
"""Checks the trace files of one stress run with `sigtrace info --json` (used by scripts/stress).

usage: check_traces.py CLI RUN_DIR [CHECK...]

Every `*.sigtrace*` file in RUN_DIR must be readable by `sigtrace info --json` (exit 0, valid
JSON). CHECKs (all optional):
  traces=N          exactly N trace files
  traces=stats:KEY  as many trace files as the number after KEY in RUN_DIR/stats
  min-traces=N      at least N trace files (default 1)
  samples           the traces hold at least one sample in all
  ended             every trace has an end record (how the image ended), none "unknown"
  end-signal=N      every trace says its image ended by signal N
  cpu=NS:RATIO      the samples' weight stands for at least RATIO of NS of CPU time
Prints one line per problem; exit status 1 when there is any, 0 otherwise.
"""
import glob
import json
import os
import subprocess
import sys


def main():
    cli, run_dir, checks = sys.argv[1], sys.argv[2], sys.argv[3:]
    files = sorted(glob.glob(os.path.join(run_dir, "*.sigtrace*")))
    problems = []
    infos = []
    for start in range(0, len(files), 200):
        chunk = files[start:start + 200]
        result = subprocess.run([cli, "info", "--json", *chunk], capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"sigtrace info --json failed (exit {result.returncode}): {first_line(result.stderr)}")
            continue
        try:
            value = json.loads(result.stdout)
        except ValueError as error:
            problems.append(f"sigtrace info --json printed no JSON ({error})")
            continue
        infos.extend(value if isinstance(value, list) else [value])

    minimum = 1
    for check in checks:
        name, _, arg = check.partition("=")
        if name == "min-traces":
            minimum = int(arg)
        elif name == "traces":
            if arg.startswith("stats:"):
                expected = read_stat(run_dir, arg[len("stats:"):])
                if expected is None:
                    problems.append(f"the program wrote no '{arg[6:]}' figure into its stats file")
                    continue
            else:
                expected = int(arg)
            if len(files) != expected:
                problems.append(f"{len(files)} trace files, expected {expected} (one per process)")
        elif name == "samples":
            if infos and sum(info.get("samples") or 0 for info in infos) == 0:
                problems.append(f"no samples in {len(infos)} trace(s)")
        elif name == "ended":
            unknown = [info for info in infos if str(info.get("end", "")).startswith("unknown")]
            if unknown:
                problems.append(f"{len(unknown)} of {len(infos)} traces have no end record (end: {unknown[0].get('end')}; e.g. {os.path.basename(unknown[0]['file'])})")
        elif name == "end-signal":
            for info in infos:
                if info.get("end_signal") != int(arg):
                    problems.append(f"{os.path.basename(info['file'])}: end is '{info.get('end')}', expected fatal signal {arg}")
        elif name == "cpu":
            cpu_ns, ratio = arg.split(":")
            cpu_ns, ratio = int(cpu_ns), float(ratio)
            weight = sum(info.get("weight") or 0 for info in infos)
            hz = max((info.get("hz") or 0 for info in infos), default=0)
            covered = weight * 1e9 / hz if hz else 0.0
            if covered < ratio * cpu_ns:
                samples = sum(info.get("samples") or 0 for info in infos)
                problems.append(
                    f"samples stand for {covered / 1e9:.2f} s of CPU, the program had used {cpu_ns / 1e9:.2f} s "
                    f"(< {ratio:.0%}; {samples} samples, weight {weight} at {hz} Hz, {sum(i.get('generations') or 0 for i in infos)} generations)")
        else:
            problems.append(f"check_traces.py: unknown check {check}")
    if len(files) < minimum:
        problems.append(f"{len(files)} trace files, expected at least {minimum}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def read_stat(run_dir, key):
    try:
        with open(os.path.join(run_dir, "stats")) as stats:
            for line in stats:
                words = line.split()
                for i, word in enumerate(words[:-1]):
                    if word == key:
                        return int(words[i + 1])
    except OSError:
        return None
    return None


if __name__ == "__main__":
    sys.exit(main())
