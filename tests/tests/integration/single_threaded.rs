//! At the default settings (`SIGTRACE_DRAIN_THREAD=with-program-threads`) sigtrace never makes a
//! single-threaded program multithreaded. While the program has one thread, `/proc/self/task` lists one task and a new
//! user namespace can be made; its samples are written at its safe points; the drain thread
//! comes with the program's second thread, and a forked child starts single-threaded again.

use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;

/// `unshare -U -r true`: the kernel refuses a new user namespace to a multithreaded process,
/// so under the seed design it failed ("unshare failed: Invalid argument").
#[test]
fn unshare_of_a_user_namespace_works_and_its_trace_is_complete() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-unshare");
    let unshare = Path::new("/usr/bin/unshare");
    let plain = Command::new(unshare).args(["-U", "-r", "true"]).output().expect("unshare runs");
    let run = run_traced(unshare, &["-U", "-r", "true"], &[], &dir);
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
    let run = run_traced(&program, &["300"], &[("SIGTRACE_GENERATION_MS", "50")], &dir);
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
    let run = run_traced(&program, &["abort", "300"], &[("SIGTRACE_BUFFER_KB", "1024")], &dir);
    assert_eq!(run.output.status.code(), None);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&run.output.status), Some(libc::SIGABRT));
    let trace = run.trace();
    let end = trace.end.expect("end record");
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, libc::SIGABRT as u32));
    let want = expected_samples(run.reported_cpu_ns(), 999);
    let got = total_weight(&trace) as f64;
    assert!(got >= 0.85 * want, "{got} of {want:.0} periods");
}

/// A single-threaded program that computes without any waiting call gives sigtrace no safe
/// point: the sampling handler spills its ring to the file itself. With a 16 KiB ring (~100
/// samples) and 1.5 s of CPU, nothing is dropped, every period is in the trace, and the program
/// still lists one task.
#[test]
fn a_pure_cpu_loop_keeps_every_sample_without_a_thread() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-loop");
    let program = compile_c("single_threaded", &["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"], &dir);
    let run = run_traced(&program, &["1500", "loop"], &[("SIGTRACE_BUFFER_KB", "16")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.reported("single_max_tasks"), 1, "one task: {}", run.stderr);
    let trace = run.trace();
    assert!(trace.end.is_some());
    assert_eq!(trace.ignored_bytes, 0);
    let spills = spill_chunks(&run.traces[0]);
    assert!(spills >= 5, "{spills} spill chunks for ~1500 samples in a ring of ~100");
    let dropped: u64 = trace.generations.iter().flat_map(|g| &g.threads).map(|t| t.dropped).sum();
    assert_eq!(dropped, 0, "no sample dropped for a full ring");
    let want = expected_samples(run.reported("main_cpu_ns"), 999);
    let got = total_weight(&trace) as f64;
    let tolerance = 5.0 * want.sqrt() + 5.0;
    assert!((got - want).abs() <= tolerance, "{got} of {want:.0} periods");
    let stacks = folded_stacks(&run.traces[0]);
    let burning = weight_through(&stacks, "burn_single") as f64;
    assert!(burning >= 0.9 * got, "spilled samples are symbolized: {burning} of {got} through burn_single");
}

/// The same loop killed by SIGKILL: the spills before the kill are in the file, so at most the
/// last ring's worth is lost.
#[test]
fn a_pure_cpu_loop_killed_by_sigkill_loses_at_most_a_ring() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-sigkill");
    let program = compile_c("crash", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let mut child = Command::new(&program)
        .args(["wait", "1500"])
        .current_dir(&dir)
        .env("LD_PRELOAD", shim())
        .env("SIGTRACE_OUTPUT", dir.join("trace.%p.sigtrace"))
        .env("SIGTRACE_BUFFER_KB", "16")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut child, "waiting");
    child.kill().unwrap();
    child.wait().unwrap();
    let cpu_ns: u64 = seen.lines().find_map(|l| l.strip_prefix("cpu_ns=")).unwrap().trim().parse().unwrap();
    let traces: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(".sigtrace")).collect();
    let trace = read_trace(&traces[0]);
    assert!(trace.end.is_none());
    // A 16 KiB ring holds 2048 words: at most ~2048 / 4 samples lost in it.
    let want = expected_samples(cpu_ns, 999);
    let got = total_weight(&trace) as f64;
    assert!(got >= want - 5.0 * want.sqrt() - 512.0 && got >= 0.6 * want, "{got} samples for {want:.0} periods of CPU");
}

/// A program that goes back to one thread (its workers ended) gets back to one task: the drain
/// thread hands the drain work back to the program's thread and ends. Its last phase, a pure
/// CPU loop, is then spilled by the handler, and every thread's CPU time is in the trace.
#[test]
fn the_drain_thread_ends_when_the_program_is_back_to_one_thread() {
    let _beside_others = beside_others();
    let dir = scratch_dir("single-rejoin");
    let program = compile_c("single_threaded", &["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"], &dir);
    let run = run_traced(&program, &["600", "rejoin"], &[("SIGTRACE_BUFFER_KB", "16")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.reported("rejoined_tasks"), 1, "the drain thread ended: {}", run.stderr);
    assert_eq!(run.reported("final_tasks"), 1, "and did not come back: {}", run.stderr);
    let trace = run.trace();
    assert!(trace.end.is_some());
    assert!(spill_chunks(&run.traces[0]) >= 1, "the last phase was spilled");
    let pid = trace.header.as_ref().expect("header").pid;
    let weights = accounted_by_tid(&trace);
    let mut expected: Vec<(u32, u64)> = run.cpu_by_id("T").into_iter().collect();
    expected.push((pid, run.reported("main_cpu_ns")));
    for (tid, cpu_ns) in expected {
        let want = expected_samples(cpu_ns, 999);
        let got = weights.get(&tid).copied().unwrap_or(0) as f64;
        let tolerance = 5.0 * want.sqrt() + 5.0;
        assert!((got - want).abs() <= tolerance, "thread {tid}: {got} of {want:.0} periods");
    }
}

/// A thread that an earlier constructor started before sigtrace's (another preloaded library's)
/// is found at start-up and sampled like the program's others: the start-up's check that the
/// process has a single thread must not take it for one.
#[test]
fn a_thread_started_by_an_earlier_constructor_is_sampled() {
    let _alone = alone();
    let dir = scratch_dir("single-early-thread");
    let program = compile_c("fault_burn", &["-O2", "-g"], &dir);
    let early = compile_c("early_thread", &["-O2", "-g", "-shared", "-fPIC", "-pthread"], &dir);
    // The early thread burns 100 ms of CPU; the main thread 400 ms, so it outlives it.
    let run = run_traced_after_constructors_of(&program, &["400"], &[("EARLY_THREAD_MS", "100")], &dir, &[&early]);
    assert_eq!(run.output.status.code(), Some(3), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let early_tid = run.reported("early_tid") as u32;
    let trace = read_trace(&run.traces[0]);
    let want = expected_samples(run.reported("early_cpu_ns"), 999);
    let got = accounted_by_tid(&trace).get(&early_tid).copied().unwrap_or(0) as f64;
    assert!(got >= 0.85 * want - 5.0 && got <= 1.15 * want + 5.0, "the early thread {early_tid}: {got} of {want:.0} periods");
}
