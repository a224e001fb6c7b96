//! Complete stacks without frame pointers: DWARF CFI unwinding in the handler, on C workloads
//! built with `-fomit-frame-pointer`, libc callbacks, Debian's python3, `dlopen`ed code, threads
//! on tiny stacks and a Rust thread sampled on its small alternate signal stack.

use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;

const NO_FP: &[&str] = &["-O2", "-g", "-fomit-frame-pointer"];

/// Share of the sample weight whose stack contains `function`, out of the weight walked once the
/// unwind tables were ready (see `not_ready_weight`).
fn share_through(trace: &format::Trace, stacks: &[(Vec<String>, u64)], function: &str) -> f64 {
    let total: u64 = stacks.iter().map(|(_, c)| c).sum();
    weight_through(stacks, function) as f64 / (total as f64 - not_ready_weight(trace)).max(1.0)
}

/// Weight of the samples taken before the drain thread had read the modules' unwind tables:
/// they are walked by frame pointers (useless in code built without them) and counted as
/// `unwind.method.fp_not_ready`. How many fall in that start-up window depends on how soon the
/// drain thread gets a CPU (5 of ~100 samples on a busy machine), not on the unwinder, so the
/// unwinding bounds leave them out.
fn not_ready_weight(trace: &format::Trace) -> f64 {
    let records = sample_count(trace).max(1) as f64;
    counter(trace, "unwind.method.fp_not_ready") as f64 * total_weight(trace) as f64 / records
}

/// 1 s of CPU at 4000 Hz: ~4000 samples, heavy's 75% share known within ~3 points (4.5 σ).
#[test]
fn a_split_without_frame_pointers_reaches_main_with_the_right_shares() {
    let _beside_others = beside_others();
    let dir = scratch_dir("nofp-split");
    let program = compile_c("split", NO_FP, &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_HZ", "4000")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let stacks = folded_stacks(&run.traces[0]);
    let trace = run.trace();
    let reach_main = share_through(&trace, &stacks, "main");
    assert!(reach_main >= 0.99, "{:.4} of the weight reaches main", reach_main);
    let (heavy, light) = (weight_through(&stacks, "heavy") as f64, weight_through(&stacks, "light") as f64);
    let share = heavy / (heavy + light);
    let tolerance = share_tolerance(0.75, sample_records(&trace, heavy + light));
    assert!((share - 0.75).abs() <= tolerance, "heavy's share {share:.3}, expected 0.75 ± {tolerance:.3} (heavy {heavy}, light {light})");
    assert!(counter(&trace, "unwind.method.dwarf") > 0);
}

#[test]
fn recursion_200_deep_without_frame_pointers_reaches_main() {
    let _beside_others = beside_others();
    let dir = scratch_dir("nofp-deep");
    let program = compile_c("deep", NO_FP, &dir);
    // 300 ms of CPU at the bottom of the recursion: ~300 samples 201 frames deep.
    let run = run_traced(&program, &["200", "300"], &[("SIGTRACE_DEPTH", "512")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let stacks = folded_stacks(&run.traces[0]);
    let reach_main = share_through(&run.trace(), &stacks, "main");
    assert!(reach_main >= 0.99, "{reach_main:.4} of the weight reaches main");
    let deepest = stacks.iter().map(|(frames, _)| frames.iter().filter(|f| *f == "recurse").count()).max().unwrap_or(0);
    assert_eq!(deepest, 201, "all 201 activations of recurse are in the stack");
}

#[test]
fn the_depth_limit_is_honoured_and_counted() {
    let _beside_others = beside_others();
    let dir = scratch_dir("depth-limit");
    let program = compile_c("deep", NO_FP, &dir);
    let run = run_traced(&program, &["200", "100"], &[("SIGTRACE_DEPTH", "50")], &dir);
    assert!(run.output.status.success());
    let trace = run.trace();
    assert!(trace.generations.iter().flat_map(|g| &g.stacks).all(|stack| stack.len() <= 50));
    let limited = counter(&trace, "unwind.end.depth_limit");
    let walked = sample_count(&trace) - counter(&trace, "unwind.method.fp_not_ready");
    assert!(limited as f64 >= 0.95 * walked as f64, "{limited} of {walked} samples walked with the unwind tables hit the limit");
}

/// qsort with a comparison function that burns CPU, for 300 ms of CPU at 999 Hz: nearly all
/// the time is in the callback, so at least half of ~300 samples must be in it.
#[test]
fn a_callback_called_by_libc_qsort_reaches_main() {
    let _beside_others = beside_others();
    let dir = scratch_dir("qsort");
    let program = compile_c("qsort_cb", NO_FP, &dir);
    let run = run_traced(&program, &["300"], &[], &dir);
    assert!(run.output.status.success());
    let stacks = folded_stacks(&run.traces[0]);
    let callback: Vec<_> = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == "compare")).collect();
    let total: u64 = callback.iter().map(|(_, c)| c).sum();
    let through_main: u64 = callback.iter().filter(|(frames, _)| frames.iter().any(|f| f == "main")).map(|(_, c)| c).sum();
    let expected = expected_samples(run.reported_cpu_ns(), 999);
    assert!(total as f64 >= 0.5 * expected, "the callback was sampled ({total} of {expected:.0} samples)");
    let walked = total as f64 - not_ready_weight(&run.trace());
    assert!(through_main as f64 >= 0.95 * walked, "{through_main} of {total} callback samples reach main");
    assert!(callback.iter().any(|(frames, _)| frames.iter().any(|f| f.contains("qsort"))), "libc's qsort frames are in the stacks");
}

/// A Python loop that runs until it has burned 30 times the CPU time python took to start (and at
/// least 300 ms): start-up and exit, where the interpreter loop is not on the stack, are then a
/// few percent of the samples on any machine.
const PYTHON_LOOP: &str = "\
import time
def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
start = time.process_time()
budget = max(0.3, 30 * start)
rounds = 0
while time.process_time() - start < budget:
    work(10_000)
    rounds += 1
print(rounds > 0)
";

#[test]
fn debian_python3_running_a_python_loop_reaches_main() {
    let _beside_others = beside_others();
    let python = Path::new("/usr/bin/python3");
    assert!(python.exists(), "Debian's python3 is installed by .ci/run");
    let dir = scratch_dir("python");
    let run = run_traced(python, &["-c", PYTHON_LOOP], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let stacks = folded_stacks(&run.traces[0]);
    // Debian strips python's own `main`; the libc function that calls it marks that main was reached.
    let trace = run.trace();
    let reach_main = share_through(&trace, &stacks, "__libc_start_call_main");
    assert!(reach_main >= 0.95, "{reach_main:.4} of python's samples reach main");
    // The interpreter's loop shows as the Python functions it ran (tests/…/python_frames.rs).
    assert!(share_through(&trace, &stacks, "<module>") >= 0.9, "the interpreter loop is in the stacks");
}

/// 200 ms of CPU in a dlopen'ed library, then 150 ms after dlclose, at 2000 Hz (~400 and ~300
/// samples): each phase must get at least 80% of the samples its CPU time stands for.
#[test]
fn code_loaded_with_dlopen_is_named_and_unwound_and_dlclose_is_safe() {
    let _beside_others = beside_others();
    let dir = scratch_dir("dlopen");
    compile_c("burn", &["-O2", "-g", "-fomit-frame-pointer", "-shared", "-fPIC"], &dir);
    std::fs::rename(dir.join("burn.so"), dir.join("libburn.so")).unwrap();
    let host = compile_c("dl_host", NO_FP, &dir);
    let library = dir.join("libburn.so");
    let run = run_traced(&host, &[library.to_str().unwrap(), "200", "150"], &[("SIGTRACE_HZ", "2000")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, "dl done\n");
    let stacks = folded_stacks(&run.traces[0]);
    let in_library: Vec<_> = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == "burn_inner")).collect();
    let library_weight: u64 = in_library.iter().map(|(_, c)| c).sum();
    let library_expected = expected_samples(run.reported("library_cpu_ns"), 2000);
    assert!(library_weight as f64 >= 0.8 * library_expected, "the library's code was sampled and named ({library_weight} of {library_expected:.0})");
    let full: u64 = in_library.iter().filter(|(frames, _)| frames.windows(3).any(|w| w == ["main", "burn_outer", "burn_inner"])).map(|(_, c)| c).sum();
    let walked = library_weight as f64 - not_ready_weight(&run.trace());
    assert!(full as f64 >= 0.99 * walked, "{full} of {library_weight} library samples unwind main;burn_outer;burn_inner");
    let after_weight = weight_through(&stacks, "after_unload");
    let after_expected = expected_samples(run.reported("after_unload_cpu_ns"), 2000);
    assert!(after_weight as f64 >= 0.8 * after_expected, "sampling went on after dlclose ({after_weight} of {after_expected:.0})");
}

/// A thread on a 16 KiB stack burns 200 ms of CPU (~200 samples at 999 Hz): its stack has no
/// room for a DWARF walk, which therefore runs on sigtrace's own walk stack.
#[test]
fn a_thread_with_a_tiny_stack_is_walked_by_dwarf_on_sigtraces_own_stack() {
    let _beside_others = beside_others();
    let dir = scratch_dir("small-stack");
    let program = compile_c("small_stack", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &[], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, "small stack done\n");
    let trace = run.trace();
    let dwarf = counter(&trace, "unwind.method.dwarf");
    assert!(dwarf as f64 >= 0.9 * sample_count(&trace) as f64 - 10.0, "{dwarf} of {} samples walked by DWARF", sample_count(&trace));
    assert_eq!(counter(&trace, "unwind.method.fp_no_stack_room"), 0, "no fallback for want of stack room");
}

#[test]
fn a_rust_thread_sampled_on_its_small_alternate_stack_unwinds_completely() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-rust-altstack");
    let source = workspace_root().join("tests/workloads/rust_alt_stack.rs");
    let program = dir.join("rust_alt_stack");
    let built = Command::new("rustc").args(["-O", "-g", "-o"]).arg(&program).arg(&source).output().expect("rustc runs");
    assert!(built.status.success(), "rustc: {}", String::from_utf8_lossy(&built.stderr));
    let traced = run_traced_bounded(&program, &["600"], &[], &dir);
    assert!(traced.output.status.success(), "{}", traced.stderr);
    let stacks = folded_stacks(&traced.traces[0]);
    let total: u64 = stacks.iter().map(|(_, weight)| weight).sum();
    // Frame pointers alone see one `mid` of the 21 calls (the compiler may fold the innermost
    // into its caller); the DWARF walk, on sigtrace's own stack, sees them all.
    let deep: u64 = stacks.iter().filter(|(frames, _)| frames.iter().filter(|f| f.ends_with("::mid")).count() >= 20).map(|(_, w)| w).sum();
    assert!(total > 0 && deep as f64 >= 0.9 * total as f64, "{deep} of {total} samples show 20 or more frames of mid");
    assert!(counter(&traced.trace(), "unwind.method.dwarf") as f64 >= 0.9 * sample_count(&traced.trace()) as f64);
}

/// 300 ms of CPU reading CLOCK_MONOTONIC through the vDSO at 999 Hz: most of the ~300 samples
/// land in the vDSO (at least a quarter of them must).
#[test]
fn samples_in_the_vdso_unwind_to_main() {
    let _beside_others = beside_others();
    let dir = scratch_dir("vdso");
    let program = compile_c("vdso_loop", NO_FP, &dir);
    let run = run_traced(&program, &["300"], &[], &dir);
    assert!(run.output.status.success());
    let stacks = folded_stacks(&run.traces[0]);
    let in_vdso: Vec<_> = stacks.iter().filter(|(frames, _)| frames.last().is_some_and(|leaf| leaf.contains("vdso"))).collect();
    let total: u64 = in_vdso.iter().map(|(_, c)| c).sum();
    let through_main: u64 = in_vdso.iter().filter(|(frames, _)| frames.windows(2).any(|w| w == ["main", "read_clocks"])).map(|(_, c)| c).sum();
    let expected = expected_samples(run.reported_cpu_ns(), 999);
    assert!(total as f64 >= 0.25 * expected, "samples landed in the vDSO ({total} of {expected:.0}): {stacks:?}");
    let walked = total as f64 - not_ready_weight(&run.trace());
    assert!(through_main as f64 >= 0.95 * walked, "{through_main} of {total} vDSO samples unwind through read_clocks to main");
}
