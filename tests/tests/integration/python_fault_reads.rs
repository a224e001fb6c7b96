//! Python frames read by fault-recovering loads (`pyframes::probe`) beside the program's own
//! fault handling: deep stacks read whole, the program's SIGSEGV handler (faulthandler) still
//! runs and the process dies exactly as without sigtrace, and no probe runs while the program's
//! handler is in place or the thread blocks the fault signals. Workload:
//! `tests/workloads/python/faults.py` (60 nested calls of `recurse`).

use super::python_frames::interpreters;
use sigtrace_tests::{beside_others, folded_stacks, run_plain, run_traced, scratch_dir, workspace_root};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

const DEPTH: usize = 60;

fn workload() -> String {
    workspace_root().join("tests/workloads/python/faults.py").display().to_string()
}

/// Sample weight by the number of `recurse` frames in the stack.
fn weight_by_depth(trace: &std::path::Path) -> BTreeMap<usize, u64> {
    let mut depths = BTreeMap::new();
    for (frames, weight) in folded_stacks(trace) {
        *depths.entry(frames.iter().filter(|frame| *frame == "recurse").count()).or_default() += weight;
    }
    depths
}

/// 3.9 and 3.10 frames are heap objects: with no fault-recovering read, the walk's budget of
/// system calls ends it after about twenty frames.
fn heap_frames(version: &str) -> bool {
    matches!(version, "3.9" | "3.10")
}

#[test]
fn a_deep_python_stack_is_read_whole() {
    let _guard = beside_others();
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_fault_reads_deep_{version}"));
        let run = run_traced(&python, &[&workload(), "deep", "0.5"], &[("SIGTRACE_HZ", "2000")], &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let depths = weight_by_depth(&run.traces[0]);
        let in_recurse: u64 = depths.iter().filter(|(depth, _)| **depth > 0).map(|(_, weight)| weight).sum();
        let whole = depths.get(&DEPTH).copied().unwrap_or(0);
        assert!(in_recurse >= 200, "{version}: only {in_recurse} samples in recurse: {depths:?}");
        assert!(whole as f64 >= 0.95 * in_recurse as f64, "{version}: {whole} of {in_recurse} samples show all {DEPTH} frames: {depths:?}");
    }
}

#[test]
fn the_programs_fault_handler_runs_and_the_process_dies_as_without_sigtrace() {
    let _guard = beside_others();
    for (version, python) in interpreters() {
        for mode in ["toggle", "fault"] {
            let dir = scratch_dir(&format!("python_fault_reads_{mode}_{version}"));
            let args = [workload(), mode.to_string(), "0.6".to_string()];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let plain = run_plain(&python, &args, &dir);
            let run = run_traced(&python, &args, &[("SIGTRACE_HZ", "4000")], &dir);
            assert_eq!(plain.status.signal(), Some(libc::SIGSEGV), "{version} {mode}: the workload faults on purpose");
            assert_eq!(run.output.status.signal(), Some(libc::SIGSEGV), "{version} {mode}: {}", run.stderr);
            assert_eq!(run.stdout, String::from_utf8_lossy(&plain.stdout), "{version} {mode}");
            assert_eq!(run.host_stderr(), String::from_utf8_lossy(&plain.stderr), "{version} {mode}");
            if mode == "toggle" {
                assert!(run.stderr.contains("Fatal Python error: Segmentation fault"), "{version}: faulthandler's report: {}", run.stderr);
            }
            assert_eq!(run.traces.len(), 1, "{version} {mode}: {:?}", run.traces);
            let depths = weight_by_depth(&run.traces[0]);
            assert!(depths.get(&DEPTH).copied().unwrap_or(0) > 0, "{version} {mode}: whole stacks read: {depths:?}");
            if mode == "toggle" && heap_frames(version) {
                // While faulthandler's handlers are in place, no probe runs: the walk falls back
                // to system calls and stops short.
                let short: u64 = depths.iter().filter(|(depth, _)| (1..DEPTH).contains(*depth)).map(|(_, weight)| weight).sum();
                assert!(short > 0, "{version}: no stack read by system calls while faulthandler was enabled: {depths:?}");
            }
        }
    }
}

#[test]
fn no_probe_runs_in_a_thread_that_blocks_the_fault_signals() {
    let _guard = beside_others();
    for (version, python) in interpreters().into_iter().filter(|(version, _)| heap_frames(version)) {
        let dir = scratch_dir(&format!("python_fault_reads_blocked_{version}"));
        let run = run_traced(&python, &[&workload(), "blocked", "0.4"], &[("SIGTRACE_HZ", "2000")], &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let depths = weight_by_depth(&run.traces[0]);
        let in_recurse: u64 = depths.iter().filter(|(depth, _)| **depth > 0).map(|(_, weight)| weight).sum();
        assert!(in_recurse >= 100, "{version}: only {in_recurse} samples in recurse: {depths:?}");
        assert_eq!(depths.get(&DEPTH), None, "{version}: whole stacks need probes, which a blocked SIGSEGV forbids: {depths:?}");
    }
}
