//! `SIGTRACE_DRAIN_THREAD=with-program-threads`: sigtrace never makes a single-threaded program
//! multithreaded. While the program has one thread, `/proc/self/task` lists one task and a new
//! user namespace can be made; its samples are written at its safe points; the drain thread
//! comes with the program's second thread, and a forked child starts single-threaded again.

use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;

const SINGLE: (&str, &str) = ("SIGTRACE_DRAIN_THREAD", "with-program-threads");

/// `unshare -U -r true`: the kernel refuses a new user namespace to a multithreaded process,
/// so under the seed design it failed ("unshare failed: Invalid argument").
#[test]
fn unshare_of_a_user_namespace_works_and_its_trace_is_complete() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-unshare");
    let unshare = Path::new("/usr/bin/unshare");
    let plain = Command::new(unshare).args(["-U", "-r", "true"]).output().expect("unshare runs");
    let run = run_traced(unshare, &["-U", "-r", "true"], &[SINGLE], &dir);
    assert_eq!(run.output.status.code(), plain.status.code(), "traced: {} plain: {}", run.stderr, String::from_utf8_lossy(&plain.stderr));
    assert!(plain.status.success(), "this machine refuses unprivileged user namespaces: {}", String::from_utf8_lossy(&plain.stderr));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    // unshare execs true: one trace per image, each complete and ended.
    assert_eq!(run.traces.len(), 2, "{:?}", run.traces);
    for path in &run.traces {
        let trace = read_trace(path);
        assert_eq!(trace.ignored_bytes, 0, "{}", path.display());
        assert!(trace.end.is_some(), "{} has its end record", path.display());
    }
}

/// The workload counts its own tasks while it is single-threaded, in a forked child, and once
/// it started two threads; every phase's CPU time is in the traces.
#[test]
fn a_single_threaded_program_lists_one_task_and_keeps_every_phase_sampled() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-phases");
    let program = compile_c("single_threaded", &["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"], &dir);
    let run = run_traced(&program, &["300"], &[SINGLE, ("SIGTRACE_GENERATION_MS", "50")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.reported("single_max_tasks"), 1, "one task while single-threaded: {}", run.stderr);
    assert_eq!(run.reported("child_status"), 0, "the forked child saw one task: {}", run.stderr);
    let threaded = run.reported("threaded_tasks");
    assert!((3..=4).contains(&threaded), "main, two threads and sigtrace's drain thread: {threaded}");
    assert_eq!(run.traces.len(), 2, "parent and child: {:?}", run.traces);

    let parent = read_trace(&run.traces[0]);
    assert!(parent.end.is_some());
    let pid = parent.header.as_ref().expect("header").pid;
    // Generations of 50 ms closed at the single-threaded phase's safe points, before any thread.
    let single_generations = parent.generations.iter().filter(|g| !g.samples.is_empty() && g.threads.iter().all(|t| t.tid == pid)).count();
    assert!(single_generations >= 3, "{single_generations} generations written while single-threaded");
    let weights = accounted_by_tid(&parent);
    let mut expected: Vec<(u32, u64)> = run.cpu_by_id("T").into_iter().collect();
    expected.push((pid, run.reported("main_cpu_ns")));
    for (tid, cpu_ns) in expected {
        let want = expected_samples(cpu_ns, 999);
        let got = weights.get(&tid).copied().unwrap_or(0) as f64;
        assert!(got >= 0.85 * want - 5.0 && got <= 1.15 * want + 5.0, "thread {tid}: {got} of {want:.0} periods");
    }
    let child = read_trace(&run.traces[1]);
    assert!(child.end.is_some());
    let want = expected_samples(100_000_000, 999);
    let got = total_weight(&child) as f64;
    assert!(got >= 0.8 * want, "the child: {got} of {want:.0} periods");
}

/// Without a drain thread, the thread a fatal signal kills writes the open generation itself.
#[test]
fn a_single_threaded_program_killed_by_abort_keeps_its_open_generation() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-abort");
    let program = compile_c("crash", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    // A ring large enough for the whole run: no safe point comes before abort().
    let run = run_traced(&program, &["abort", "300"], &[SINGLE, ("SIGTRACE_BUFFER_KB", "1024")], &dir);
    assert_eq!(run.output.status.code(), None);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&run.output.status), Some(libc::SIGABRT));
    let trace = run.trace();
    let end = trace.end.expect("end record");
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, libc::SIGABRT as u32));
    let want = expected_samples(run.reported_cpu_ns(), 999);
    let got = total_weight(&trace) as f64;
    assert!(got >= 0.85 * want, "{got} of {want:.0} periods");
}
