//! `sigtrace export --format flamegraph` (and `folded --per-thread/--per-process`) on traces of
//! real programs: the SVG parsed as XML, its title, frame widths and totals checked against
//! `sigtrace info --json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::flame_svg;
use serde_json::Value;
use sigtrace_tests::*;

fn field(info: &Value, name: &str) -> u64 {
    info[name].as_u64().unwrap_or_else(|| panic!("info has {name}: {info}"))
}

/// CPU ns one unit of sample weight stands for in `info`'s file.
fn period_ns(info: &Value) -> u64 {
    1_000_000_000 / field(info, "hz")
}

/// Runs `sigtrace export ARGS… -o OUT TRACES…` and returns what it wrote.
fn export(args: &[&str], traces: &[PathBuf], out: &Path) -> Vec<u8> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["-o".to_string(), out.display().to_string()]);
    all.extend(traces.iter().map(|t| t.display().to_string()));
    let output = cli(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "sigtrace export {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(out).expect("the export was written")
}

/// split.c at 2000 Hz for 400 ms of CPU: heavy() 75%, light() 25%, both through spin().
fn split_trace(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["400"], &[("SIGTRACE_HZ", "2000")], &dir);
    assert_eq!(run.traces.len(), 1, "one trace: {}", run.stderr);
    (dir, run.traces[0].clone())
}

#[test]
fn the_flame_graph_is_titled_proportioned_and_totalled_like_info() {
    let _alone = alone();
    let (dir, trace) = split_trace("flame-split");
    let info = info_json(&trace);
    let svg = flame_svg::parse(&export(&["export", "--format", "flamegraph"], std::slice::from_ref(&trace), &dir.join("split.svg")));

    // The title names the command and the sample count; the subtitle says what a width is.
    let samples = field(&info, "samples");
    assert!(svg.title.contains("split 400"), "title names the command: {}", svg.title);
    assert!(svg.title.contains(&format!("{samples} samples")), "title has info's {samples} samples: {}", svg.title);
    assert!(svg.subtitle.contains("CPU time"), "subtitle: {}", svg.subtitle);

    // The graph's total is the CPU time of info's samples, in ns; the root frame spans it all.
    let cpu_ns = field(&info, "weight") * period_ns(&info);
    assert_eq!(svg.total, cpu_ns, "the graph's total is info's weight × period");
    assert_eq!(svg.all().width, cpu_ns);
    let process_cpu = field(&info, "cpu_ns") as f64;
    assert!((cpu_ns as f64 - process_cpu).abs() < 0.1 * process_cpu, "sampled CPU {cpu_ns} ns vs the process's {process_cpu} ns");
    assert!(svg.all().tooltip.contains("µs of CPU"), "counts are CPU time: {}", svg.all().tooltip);

    // heavy:light is 3:1 within what the samples allow; spin holds both (it is their only callee).
    let (heavy, light) = (svg.width_of("heavy"), svg.width_of("light"));
    assert!(heavy > 0 && light > 0, "frames of heavy and light: {:?}", svg.frames.iter().map(|f| &f.name).collect::<Vec<_>>());
    let trace_data = read_trace(&trace);
    let records = sample_records(&trace_data, (heavy + light) as f64 / period_ns(&info) as f64);
    let share = heavy as f64 / (heavy + light) as f64;
    let tolerance = share_tolerance(0.75, records);
    assert!((share - 0.75).abs() <= tolerance, "heavy's share {share:.3} of heavy+light, expected 0.75 ± {tolerance:.3} over {records:.0} samples");
    // spin holds nearly all of heavy and light (a few samples land in their own code, a few
    // stacks miss spin's caller).
    let spin = svg.width_of("spin");
    assert!(spin.abs_diff(heavy + light) as f64 <= 0.02 * cpu_ns as f64, "spin {spin} vs heavy + light {}", heavy + light);
    assert!(svg.width_of("main") as f64 > 0.95 * cpu_ns as f64, "main holds nearly everything");
}

#[test]
fn icicle_graphs_grow_downwards() {
    let _beside_others = beside_others();
    let (dir, trace) = split_trace("flame-icicle");
    let flame = flame_svg::parse(&export(&["export", "--format", "flamegraph"], std::slice::from_ref(&trace), &dir.join("flame.svg")));
    let icicle = flame_svg::parse(&export(&["export", "--format", "flamegraph", "--icicle"], std::slice::from_ref(&trace), &dir.join("icicle.svg")));
    let y = |svg: &flame_svg::FlameSvg, name: &str| svg.widest(name).y;
    // A flame graph has callees above (smaller y), an icicle graph below.
    assert!(y(&flame, "spin") < y(&flame, "main") && y(&flame, "main") < y(&flame, "all"), "flame graph grows upwards");
    assert!(y(&icicle, "spin") > y(&icicle, "main") && y(&icicle, "main") > y(&icicle, "all"), "icicle graph grows downwards");
    assert_eq!(flame.total, icicle.total);
    let names = |svg: &flame_svg::FlameSvg| svg.frames.iter().map(|f| (f.name.clone(), f.width)).collect::<BTreeSet<_>>();
    assert_eq!(names(&flame), names(&icicle), "the same frames, drawn the other way up");
}

#[test]
fn per_thread_flame_graphs_have_a_root_per_thread() {
    let _alone = alone();
    let dir = scratch_dir("flame-threads");
    let program = compile_c("threads", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["4", "40"], &[("SIGTRACE_HZ", "2000")], &dir);
    let trace = run.traces.first().expect("a trace").clone();
    let info = info_json(&trace);
    let period = period_ns(&info);
    let weights: HashMap<u64, u64> = info["per_thread"].as_array().expect("per_thread").iter().map(|t| (field(t, "tid"), field(t, "weight"))).collect();
    let svg = flame_svg::parse(&export(&["export", "--format", "flamegraph", "--per-thread"], std::slice::from_ref(&trace), &dir.join("threads.svg")));
    let roots = svg.roots();
    let workers = run.cpu_by_id("thread tid=");
    assert_eq!(workers.len(), 4, "four workers: {}", run.stderr);
    for tid in workers.keys() {
        let suffix = format!(" ({tid})");
        let root = roots.iter().find(|r| r.name.ends_with(&suffix)).unwrap_or_else(|| panic!("a root `name ({tid})` among {roots:?}"));
        assert_eq!(root.width, weights[&u64::from(*tid)] * period, "thread {tid}'s root is its CPU time per info");
    }
    assert_eq!(roots.iter().map(|r| r.width).sum::<u64>(), svg.total, "the thread roots split the whole graph");
    assert_eq!(svg.total, field(&info, "weight") * period);

    // With --per-process too: one process root, `threads (pid)`, the threads above it.
    let svg = flame_svg::parse(&export(&["export", "--format", "flamegraph", "--per-process", "--per-thread"], &[trace], &dir.join("both.svg")));
    let roots = svg.roots();
    assert_eq!(roots.len(), 1, "one process: {roots:?}");
    assert_eq!(roots[0].name, format!("threads ({})", field(&info, "pid")));
    assert_eq!(roots[0].width, svg.total);
    assert!(workers.keys().all(|tid| svg.frames.iter().any(|f| f.name.ends_with(&format!(" ({tid})")))), "thread frames under the process");
}

#[test]
fn folded_per_process_has_one_root_per_pid_of_a_process_tree() {
    let _beside_others = beside_others();
    let dir = scratch_dir("folded-forks");
    let program = compile_c("forks", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["100", "100"], &[], &dir);
    assert!(run.traces.len() >= 5, "4 processes and an exec'd image: {:?}", run.traces);
    let infos: Vec<Value> = run.traces.iter().map(|t| info_json(t)).collect();
    let pids: BTreeSet<u64> = infos.iter().map(|i| field(i, "pid")).collect();
    assert_eq!(pids.len(), 4, "four pids: {pids:?}");
    let weight: u64 = infos.iter().map(|i| field(i, "weight")).sum();

    let folded = String::from_utf8(export(&["export", "--format", "folded", "--per-process"], &run.traces, &dir.join("tree.folded"))).expect("UTF-8");
    let mut roots: HashMap<String, u64> = HashMap::new();
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count`");
        let root = stack.split(';').next().expect("a root").to_string();
        *roots.entry(root).or_default() += count.parse::<u64>().expect("a count");
    }
    assert_eq!(roots.len(), pids.len(), "one root per pid: {:?}", roots.keys());
    for pid in &pids {
        assert!(roots.keys().any(|root| root.ends_with(&format!(" ({pid})"))), "a root for pid {pid}: {:?}", roots.keys());
    }
    assert!(roots.keys().any(|root| root.starts_with("forks → ")), "the exec'd child's root names both images: {:?}", roots.keys());
    assert_eq!(roots.values().sum::<u64>(), weight, "the folded total is info's weight over all files");

    // --per-thread under --per-process: the second frame is the thread.
    let folded =
        String::from_utf8(export(&["export", "--format", "folded", "--per-process", "--per-thread"], &run.traces, &dir.join("threads.folded"))).expect("UTF-8");
    for line in folded.lines() {
        let frames: Vec<&str> = line.split(';').collect();
        let pid = frames[0].rsplit_once(" (").map(|(_, pid)| pid.trim_end_matches(')')).expect("`exe (pid)`");
        // Each process has one thread here: its main thread, whose tid is the pid.
        assert!(frames[1].ends_with(&format!(" ({pid})")), "the thread frame under process {pid}: {line}");
    }
}
