//! `--from`, `--to` and `--last`: a window keeps exactly the samples whose own time is in it
//! (counted again here from the raw trace), and a one-second window of a busy thread holds the
//! CPU time the thread itself says it spent in that second (tests/workloads/window_burn.c prints
//! its CPU clock against the wall clock every ~5 ms of CPU), within 5%.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sigtrace_tests::*;

const NS: u64 = 1_000_000_000;

/// `sigtrace ARGS…`, which must succeed, as text.
fn sigtrace_text(args: &[&str]) -> String {
    let output = cli(args);
    assert!(output.status.success(), "sigtrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn info_json_with(trace: &Path, window: &[&str]) -> Value {
    let mut args = vec!["info", "--json"];
    args.extend(window);
    let trace = trace.display().to_string();
    args.push(&trace);
    serde_json::from_str(&sigtrace_text(&args)).expect("info --json is JSON")
}

/// The (Unix ns, weight) of every sample of the raw trace, read with the format's reader.
fn raw_samples(trace: &Path) -> Vec<(u64, u64)> {
    let trace = read_trace(trace);
    let header = trace.header.as_ref().expect("a header");
    let unix = |ticks: u64| header.start_unix_ns + (u128::from(ticks) * 1_000_000_000 / u128::from(header.clock_hz)) as u64 - header.start_clock_ns;
    trace.generations.iter().flat_map(|g| g.samples.iter().map(move |s| (s.time, u64::from(s.weight)))).map(|(t, w)| (unix(t), w)).collect()
}

/// The thread's CPU time at Unix time `t`, linearly between the workload's `at` lines.
fn cpu_at(points: &[(u64, u64)], t: u64) -> f64 {
    let after = points.iter().position(|&(at, _)| at >= t).expect("a point after the window's end");
    assert!(after > 0, "a point before the window's start");
    let ((t0, c0), (t1, c1)) = (points[after - 1], points[after]);
    c0 as f64 + (c1 - c0) as f64 * (t - t0) as f64 / (t1 - t0).max(1) as f64
}

#[test]
fn a_one_second_window_holds_the_cpu_time_of_that_second_and_exactly_its_samples() {
    let _guard = beside_others();
    let dir = scratch_dir("time_window");
    let program = compile_c("window_burn", &["-O2", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["3000"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, "window_burn done\n");
    let trace = &run.traces[0];
    let points: Vec<(u64, u64)> = run
        .stderr
        .lines()
        .filter_map(|line| {
            let (t, cpu) = line.strip_prefix("at unix_ns=")?.split_once(" cpu_ns=")?;
            Some((t.parse().ok()?, cpu.trim().parse().ok()?))
        })
        .collect();

    let info = info_json_with(trace, &["--from", "1", "--to", "2"]);
    let window = &info["window"];
    let (from, to) = (window["from_unix_ns"].as_u64().unwrap(), window["to_unix_ns"].as_u64().unwrap());
    let start = info["start_unix_ns"].as_u64().unwrap();
    assert_eq!((from - start, to - start), (NS, 2 * NS), "offsets count from the trace's start");

    // Exactly the samples whose time is in [from, to).
    let raw = raw_samples(trace);
    let kept: Vec<&(u64, u64)> = raw.iter().filter(|(t, _)| (from..to).contains(t)).collect();
    assert_eq!(info["samples"].as_u64().unwrap(), kept.len() as u64);
    let weight: u64 = kept.iter().map(|(_, w)| w).sum();
    assert_eq!(info["weight"].as_u64().unwrap(), weight);
    assert_eq!(window["samples_in_file"].as_u64().unwrap(), raw.len() as u64, "info says what the whole file held");

    // The weight is the CPU time the thread spent in that second (1 s when it had a core to itself).
    let sampled_ns = info["sampled_cpu_ns"].as_u64().unwrap() as f64;
    let spent_ns = cpu_at(&points, to) - cpu_at(&points, from);
    eprintln!("window 1 s..2 s: sampled {:.4} s of CPU, the thread spent {:.4} s", sampled_ns / 1e9, spent_ns / 1e9);
    assert!(spent_ns > 0.2e9, "the thread ran for {spent_ns} ns in the window: the machine is too busy to tell");
    assert!((sampled_ns - spent_ns).abs() <= 0.05 * spent_ns, "sampled {sampled_ns} ns of CPU in the window, the thread spent {spent_ns} ns");

    // `report` over the same window shows the same samples; a wall-clock window (local time,
    // as `date` prints it) is the same window.
    let trace_arg = trace.display().to_string();
    let report = sigtrace_text(&["report", "--from", "1", "--to", "2", &trace_arg]);
    assert!(report.starts_with(&format!("{} samples, weight {weight} ", kept.len())), "{report}");
    let clock = |unix_ns: u64| {
        let output = Command::new("date").arg("-d").arg(format!("@{}.{:09}", unix_ns / NS, unix_ns % NS)).arg("+%H:%M:%S.%N").output().expect("date runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let by_clock = info_json_with(trace, &["--from", &clock(from), "--to", &clock(to)]);
    assert_eq!(by_clock["samples"], info["samples"], "{} to {}", clock(from), clock(to));

    // --last: the samples of the last half second of the trace.
    let last = info_json_with(trace, &["--last", "500ms"]);
    let end = last["window"]["to_unix_ns"].as_u64().unwrap();
    let in_last = raw.iter().filter(|(t, _)| *t + NS / 2 >= end && *t < end).count() as u64;
    assert_eq!(last["samples"].as_u64().unwrap(), in_last);
    assert!(in_last > 0 && in_last < raw.len() as u64);

    // An empty window is one line and exit status 2.
    let empty = cli(&["report", "--from", "2", "--to", "1", &trace_arg]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).starts_with("sigtrace: the time window is empty"));
}
