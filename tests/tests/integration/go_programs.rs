//! Go programs under the shim: Go's own code has no CFI, so its frames are walked by frame
//! pointer (Go keeps them on amd64); goroutine stacks end in `runtime.goexit`; Go exits through
//! its own `exit_group`, never libc's `exit`. The workload is `tests/workloads/go/fib`, built
//! with cgo (dynamically linked, so `LD_PRELOAD` reaches it).

use sigtrace_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `tests/workloads/go/NAME` into `dir` with cgo; returns the binary.
fn build_go(name: &str, dir: &Path) -> PathBuf {
    let source = workspace_root().join("tests/workloads/go").join(name);
    let output = dir.join(name);
    let result = Command::new(go())
        .args(["build", "-o"])
        .arg(&output)
        .arg(".")
        .current_dir(&source)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "1")
        .output()
        .expect("go build runs");
    assert!(result.status.success(), "go build {name}: {}", String::from_utf8_lossy(&result.stderr));
    output
}

/// Weight of the samples taken before the unwind tables were ready (walked by frame pointer
/// without the module list; how many depends on how soon the drain thread got a CPU).
fn not_ready_weight(trace: &format::Trace) -> f64 {
    let records = sample_count(trace).max(1) as f64;
    counter(trace, "unwind.method.fp_not_ready") as f64 * total_weight(trace) as f64 / records
}

/// The share of the sample weight that `info` says reached a root.
fn root_share(trace: &Path) -> f64 {
    let info = info_json(trace);
    let to_root = info["unwound_to_root_weight"].as_f64().unwrap_or_else(|| panic!("unwound_to_root_weight in {info}"));
    to_root / info["weight"].as_f64().expect("weight").max(1.0)
}

/// 1 s of CPU in recursive Go code at 999 Hz: ~1000 samples, nearly all in `main.fib` under
/// `main.main`, and each goroutine stack walked to `runtime.goexit`.
#[test]
fn a_cgo_program_is_walked_by_frame_pointer_to_main_main() {
    let _beside_others = beside_others();
    let dir = scratch_dir("go-fib");
    let program = build_go("fib", &dir);
    let plain = run_plain(&program, &["300", "3"], &dir);
    let run = run_traced(&program, &["1000", "3"], &[("SIGTRACE_GENERATION_MS", "200")], &dir);
    assert_eq!(run.output.status.code(), Some(3), "{}", run.stderr);
    assert_eq!(run.output.status.code(), plain.status.code());
    assert_eq!(run.stdout, String::from_utf8_lossy(&plain.stdout));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let trace = run.trace();
    let stacks = folded_stacks(&run.traces[0]);
    let total: u64 = stacks.iter().map(|(_, weight)| weight).sum();
    let walked = total as f64 - not_ready_weight(&trace);
    let under_main = weight_through(&stacks, "main.main") as f64;
    assert!(under_main >= 0.95 * walked, "{under_main} of {walked} walked weight under main.main ({total} in all)");
    let fib_from_goexit: u64 = stacks
        .iter()
        .filter(|(frames, _)| frames.first().is_some_and(|f| f.starts_with("runtime.goexit")) && frames.iter().any(|f| f == "main.fib"))
        .map(|(_, w)| w)
        .sum();
    assert!(fib_from_goexit as f64 >= 0.9 * walked, "{fib_from_goexit} of {walked} weight in main.fib reaches runtime.goexit");
    let roots = root_share(&run.traces[0]);
    assert!(roots >= 0.95, "{roots:.3} of the weight reaches a root");
    let kinds = &info_json(&run.traces[0])["frame_kinds"];
    assert!(kinds["go"].as_u64().unwrap_or(0) > 10 * kinds["native"].as_u64().unwrap_or(0), "info counts Go frames: {kinds}");
}

/// A Go program of 1 s of CPU at the default generation length (1 s): Go exits through its own
/// `exit_group`, so no exit path of sigtrace runs, yet the pieces written each drain period
/// keep ≥ 0.95 of its CPU time (the process's, less the CPU time of sigtrace's drain thread as
/// the last closed generation counted it: an over-estimate of the program's), and `info` names
/// the end.
#[test]
fn a_go_program_of_1_s_keeps_its_cpu_time_though_go_exits_on_its_own() {
    let _alone = alone();
    let dir = scratch_dir("go-fib-exit");
    let program = build_go("fib", &dir);
    let run = run_traced(&program, &["1000"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let trace = run.trace();
    let drain_ns = trace.generations.iter().flat_map(|g| &g.counters).filter(|(name, _)| name == "drain.cpu_ns_total").map(|(_, ns)| *ns).max().unwrap_or(0);
    let covered = total_weight(&trace) as f64 / expected_samples(run.reported_cpu_ns().saturating_sub(drain_ns), 999);
    assert!(covered >= 0.95, "the samples cover {covered:.3} of the CPU time");
    let info = info_json(&run.traces[0]);
    assert!(info["end"].as_str().is_some_and(|end| end.starts_with("without exit path")), "{}", info["end"]);
}

/// Under `sigtrace record`, the same 1 s Go program's trace ends as an exit: the parent writes
/// the exit status it waited for (Go's exit_group ran no exit path sigtrace could use).
#[test]
fn a_go_program_recorded_by_sigtrace_record_ends_as_an_exit() {
    let _beside_others = beside_others();
    let dir = scratch_dir("go-fib-record");
    let program = build_go("fib", &dir);
    let pattern = dir.join("rec.%p.sigtrace");
    let output = Command::new(sigtrace_cli()).args(["record", "-o", pattern.to_str().unwrap(), "--"]).arg(&program).args(["300", "5"]).output().unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
    let traces: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rec.")))
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let info = info_json(&traces[0]);
    assert!(info["end"].as_str().is_some_and(|end| end.starts_with("exit status 5 without libc's exit")), "{}", info["end"]);
}
