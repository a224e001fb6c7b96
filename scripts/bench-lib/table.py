#!/usr/bin/env python3
"""Turn results.jsonl (one line per run, from analyze.py) into the markdown table.

    table.py RESULTS.jsonl --header TEXT > latest.md
    table.py --update-md docs/BENCHMARKS.md latest.md   # replace the section between the markers

Overheads are ratios to the no-profiler run of the same workload in the same pair (the runs
of a pair follow each other, so machine drift cancels); the table gives the median of the
paired ratios and their min–max. Capture, accuracy and bytes per sample are medians over
the pairs.
"""
import argparse
import json
import statistics
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PROFILER_ORDER = ["none", "sigtrace", "gperftools", "perf", "perf-dwarf"]
PROFILER_NAMES = {
    "none": "—",
    "sigtrace": "sigtrace",
    "gperftools": "gperftools",
    "perf": "perf -g (FP)",
    "perf-dwarf": "perf dwarf,65528",
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_cell(ratios):
    ratios = [r for r in ratios if r is not None]
    if not ratios:
        return "n/a"
    cell = "%.3f×" % statistics.median(ratios)
    if len(ratios) > 1:
        cell += " (%.3f–%.3f)" % (min(ratios), max(ratios))
    return cell


def pct(value, digits=1):
    return "n/a" if value is None else "%.*f%%" % (digits, 100 * value)


def table(runs):
    workloads = list(dict.fromkeys(r["workload"] for r in runs))
    baseline = {(r["workload"], r["pair"]): r for r in runs if r["profiler"] == "none" and r["ok"]}
    lines = [
        "| workload | Hz | profiler | CPU overhead, target (median, min–max) | with the profiler's own process "
        "| wall overhead | capture: weight (records) | accuracy | stacks reaching root | bytes/sample |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for workload in workloads:
        base = [r for r in runs if r["workload"] == workload and r["profiler"] == "none"]
        ok_base = [r for r in base if r["ok"]]
        lines.append("| %s | | no profiler | %s CPU | | %s wall | | | | |" % (
            workload,
            "%.2f s" % median(r["cpu_s"] for r in ok_base) if ok_base else "n/a",
            "%.2f s" % median(r["wall_s"] for r in ok_base) if ok_base else "n/a"))
        keys = sorted({(r["hz"], r["profiler"]) for r in runs if r["workload"] == workload and r["profiler"] != "none"},
                      key=lambda k: (k[0], PROFILER_ORDER.index(k[1]) if k[1] in PROFILER_ORDER else 99))
        for hz, profiler in keys:
            group = [r for r in runs if r["workload"] == workload and r["hz"] == hz and r["profiler"] == profiler]
            good = [r for r in group if r["ok"] and "error" not in r]
            bad = len(group) - len(good)
            if bad:
                reasons = sorted({r.get("error") or ("timed out" if r.get("timed_out") else "exit status %s" % r["status"])
                                  for r in group if r not in good})
                notes.append("%s %d Hz %s: %d of %d runs left out (%s)" % (workload, hz, profiler, bad, len(group), "; ".join(reasons)))
            pairs = [(r, baseline.get((workload, r["pair"]))) for r in good]
            pairs = [(r, b) for r, b in pairs if b]
            cpu = ratio_cell([r["cpu_s"] / b["cpu_s"] for r, b in pairs])
            total = ratio_cell([r["total_cpu_s"] / b["cpu_s"] for r, b in pairs]) if profiler.startswith("perf") else "same"
            wall = ratio_cell([r["wall_s"] / b["wall_s"] for r, b in pairs])
            weight = median(r.get("capture_weight") for r in good)
            records = median(r.get("capture_records") for r in good)
            capture = pct(weight)
            if weight is not None and records is not None and abs(weight - records) > 0.005:
                capture += " (%s)" % pct(records)
            accuracy = ""
            heavy = median(r.get("heavy_share") for r in good)
            if any("split_attributed" in r for r in good):
                attributed = median(r.get("split_attributed") for r in good)
                if heavy is None or attributed is None or attributed < 0.5:
                    accuracy = "split: n/a (%s of samples under heavy/light)" % pct(attributed or 0, 0)
                else:
                    accuracy = "split err %.1f pt" % abs(100 * heavy - 75)
                    if attributed is not None and attributed < 0.99:
                        accuracy += " (%s of weight under heavy/light)" % pct(attributed, 0)
            thread_err = median(r.get("thread_error") for r in good)
            if any(r.get("thread_error") is not None for r in good):
                accuracy = "thread err %.2f pt" % thread_err
            elif "threads" in workload and profiler == "gperftools":
                accuracy = "n/a (no thread ids)"
            root = pct(median(r.get("root_share") for r in good))
            bps = median(r.get("bytes_per_sample") for r in good)
            lines.append("| | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                hz, PROFILER_NAMES.get(profiler, profiler), cpu, total, wall, capture, accuracy or "",
                root, "n/a" if bps is None else "%.1f" % bps))
    if notes:
        lines.append("")
        lines.extend("* " + n for n in notes)
    return "\n".join(lines) + "\n"


def update_md(md_path, section_path):
    with open(md_path) as f:
        text = f.read()
    with open(section_path) as f:
        section = f.read().strip("\n")
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        sys.exit("%s: markers %s / %s not found" % (md_path, BEGIN, END))
    text = text[: begin + len(BEGIN)] + "\n" + section + "\n" + text[end:]
    with open(md_path, "w") as f:
        f.write(text)


def progress(results):
    """One line about the last run in RESULTS, for the log."""
    with open(results) as f:
        r = json.loads(f.readlines()[-1])
    capture = " capture %5.1f%%" % (100 * r["capture_weight"]) if r.get("capture_weight") is not None else ""
    problem = "" if r["ok"] and "error" not in r else "  !! status %s %s" % (r["status"], r.get("error", ""))
    print("  pair %-2d %-10s %4s %-11s cpu %6.2f s  wall %6.2f s%s%s" % (
        r["pair"], r["workload"], r["hz"] or "", r["profiler"], r["cpu_s"], r["wall_s"], capture, problem))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="?")
    parser.add_argument("--progress", metavar="RESULTS", help="print one line about the last run")
    parser.add_argument("--header", default="")
    parser.add_argument("--update-md", nargs=2, metavar=("MD", "SECTION"))
    args = parser.parse_args()
    if args.update_md:
        update_md(*args.update_md)
        return
    if args.progress:
        progress(args.progress)
        return
    with open(args.results) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    sys.stdout.write(args.header + table(runs))


if __name__ == "__main__":
    main()
