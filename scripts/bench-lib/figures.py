#!/usr/bin/env python3
"""Figures from sigtrace's own output, for the scripts/bench-*.sh benchmarks.

    figures.py capture NAME TRACE_BYTES < info.json   # bench-core.sh: capture against CPU × Hz
    figures.py split < stacks.folded                   # bench-core.sh: the 75/25 split
    figures.py reach MARKER NAME < stacks.folded       # bench-unwind.sh: stacks reaching main
    figures.py samples < info.json                     # sample records (mean over the files)
    figures.py dropped < info.json                     # bench-micro.sh: "dropped N" if any
    figures.py drain < info.json                       # bench-micro.sh: drain-thread CPU per sample
    figures.py formats < export-help.txt               # bench-export.sh: the export formats
    figures.py wall-drain LABEL < trace.json           # bench-wall.sh: drain-thread CPU and wall.* counters

trace.json is the output of scripts/read_trace.py (the trace generation by generation);
info.json is the output of `sigtrace info --json` (one object, or a list of them when it was
given several files); stacks.folded is the output of `sigtrace export --format folded` (one
"frame;frame;… count" line per stack); export-help.txt is the output of `sigtrace export -h`.
Each subcommand prints one line (formats: a space-separated list).
"""
import argparse
import json
import re
import sys

from analyze import helptext  # this folder is on the path when a script here runs


def infos(data):
    """The `sigtrace info --json` objects in DATA: a list whether one file or several was read."""
    return data if isinstance(data, list) else [data]


def folded_stacks(lines):
    """(list of frame names, count) for each line of `sigtrace export --format folded`."""
    for line in lines:
        stack, count = line.rsplit(" ", 1)
        yield stack.split(";"), int(count)


def capture(info, name, trace_bytes):
    """Capture of one trace: sample records and sample weight over the samples expected from
    its CPU time at its rate (cpu_ns × hz), with the trace's bytes per sample record."""
    expected = info["cpu_ns"] * info["hz"] / 1e9
    return "  %-10s %-7s records/expected %6.1f%%   weight/expected %6.1f%%   (%d records, weight %d, %.2f s CPU, %d bytes, %.1f bytes/sample)" % (
        name, info["timer"], 100 * info["samples"] / expected, 100 * info["weight"] / expected,
        info["samples"], info["weight"], info["cpu_ns"] / 1e9, trace_bytes, trace_bytes / max(1, info["samples"]))


def split(lines):
    """Shares of the weight whose stacks contain `heavy` and `light` (the split workload, which
    spends 75% / 25% of its time under them), among the weight under either."""
    weights = {"heavy": 0, "light": 0}
    for frames, count in folded_stacks(lines):
        for name in weights:
            if name in frames:
                weights[name] += count
    total = sum(weights.values())
    return "  heavy %.2f%%  light %.2f%%  (expected 75/25)" % (100 * weights["heavy"] / total, 100 * weights["light"] / total)


def reach(lines, marker, name):
    """Share of the weight whose stacks contain the frame MARKER (e.g. main): how often the
    unwinder walked all the way up."""
    total = reached = 0
    for frames, count in folded_stacks(lines):
        total += count
        reached += count if marker in frames else 0
    return "  %-28s %6.2f%% of %d samples" % (name, 100 * reached / max(1, total), total)


def samples(data):
    """Sample records per trace: the count of one trace, the mean over several."""
    traces = infos(data)
    if len(traces) == 1:
        return str(traces[0]["samples"])
    return str(sum(i["samples"] for i in traces) / len(traces))


def dropped(info):
    """"dropped N" when the trace lost samples to a full ring, else nothing (None)."""
    return "dropped %s" % info["dropped"] if info["dropped"] else None


def drain(info):
    """CPU time of the drain thread (the drain.cpu_ns_total counter) per sample record."""
    cpu = info["counters"].get("drain.cpu_ns_total", 0)
    return "  %.0f ns of drain-thread CPU per sample (%d samples, %.1f ms in all)" % (
        cpu / max(1, info["samples"]), info["samples"], cpu / 1e6)


def wall_drain(trace, label):
    """One line for analyze.py's idle: "LABEL RUN_NS DRAIN_NS STEADY_NS STEADY_DRAIN_NS WALKS REUSED
    TORN NOT_READY". RUN_NS is the trace's span (header start to the last generation's end) and
    DRAIN_NS the drain thread's CPU time in it (the last generation's drain.cpu_ns_total, a
    running total); STEADY_* are the same from the end of the first generation on, which leaves
    out start-up (thread creation, the unwind tables, each thread's first stack walk). The wall.*
    counters are summed over the generations (each generation counts its own)."""
    generations = trace["generations"]
    tick_ns = 1e9 / trace["header"]["clock_hz"]
    start = trace["header"]["start_clock_ns"]
    end = generations[-1]["end_time"] * tick_ns
    first_end = generations[0]["end_time"] * tick_ns
    drain = [g["counters"].get("drain.cpu_ns_total", 0) for g in generations]
    wall = [sum(g["counters"].get("wall." + name, 0) for g in generations) for name in ("walks", "reused", "torn", "not_ready")]
    return "%s %d %d %d %d %d %d %d %d" % (label, end - start, drain[-1], end - first_end, drain[-1] - drain[0], *wall)


def formats(help_text):
    """The values `sigtrace export --format` accepts, from its help ("folded" if not found)."""
    match = re.search(r"possible values: ([^\]]+)\]", help_text)
    return " ".join(v.strip() for v in match.group(1).split(",")) if match else "folded"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("capture", help=helptext(capture), description=helptext(capture))
    p.add_argument("name")
    p.add_argument("trace_bytes", type=int)
    commands.add_parser("split", help=helptext(split), description=helptext(split))
    p = commands.add_parser("reach", help=helptext(reach), description=helptext(reach))
    p.add_argument("marker")
    p.add_argument("name")
    commands.add_parser("samples", help=helptext(samples), description=helptext(samples))
    commands.add_parser("dropped", help=helptext(dropped), description=helptext(dropped))
    commands.add_parser("drain", help=helptext(drain), description=helptext(drain))
    commands.add_parser("formats", help=helptext(formats), description=helptext(formats))
    p = commands.add_parser("wall-drain", help=helptext(wall_drain), description=helptext(wall_drain))
    p.add_argument("label")
    args = parser.parse_args()

    if args.command == "capture":
        line = capture(json.load(sys.stdin), args.name, args.trace_bytes)
    elif args.command == "split":
        line = split(sys.stdin)
    elif args.command == "reach":
        line = reach(sys.stdin, args.marker, args.name)
    elif args.command == "samples":
        line = samples(json.load(sys.stdin))
    elif args.command == "dropped":
        line = dropped(json.load(sys.stdin))
    elif args.command == "drain":
        line = drain(json.load(sys.stdin))
    elif args.command == "wall-drain":
        line = wall_drain(json.load(sys.stdin), args.label)
    else:
        line = formats(sys.stdin.read())
    if line is not None:
        print(line)


if __name__ == "__main__":
    main()
