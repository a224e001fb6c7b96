//! The host behaves as without sigtrace: same stdout, stderr (but for `sigtrace:` lines) and
//! exit status with good and bad settings; no allocation in the handler; no EINTR for blocked
//! threads; existing trace files never overwritten; a valid trace even from a program that does
//! nothing. (Hosts that strain the shim: `host_under_stress`.)

use sigtrace_tests::*;
use std::path::Path;

/// Two threads allocate and free for 250 ms of CPU each under an allocator that aborts if it is
/// called from the sampling handler: at 5000 Hz ~2500 samples land among ~10^7 allocations.
#[test]
fn the_handler_never_allocates() {
    let _beside_others = beside_others();
    let dir = scratch_dir("abort-malloc");
    let interposer = compile_c("abort_malloc", &["-O2", "-shared", "-fPIC"], &dir);
    let program = compile_c("malloc_loop", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced_with_preload(&program, &["250"], &[("SIGTRACE_HZ", "5000")], &dir, &[&interposer]);
    assert!(run.output.status.success(), "the workload died (allocation in the handler?): {:?}\n{}", run.output.status, run.stderr);
    let report = run.stderr.lines().find(|l| l.starts_with("abort_malloc:")).expect("the interposer reported");
    assert!(report.contains("linked=1"), "the interposer must see sigtrace_in_signal_handler: {report}");
    let checked: u64 = report.rsplit("checked=").next().unwrap().parse().unwrap();
    let rounds = run.reported("rounds");
    assert!(checked >= 2 * rounds, "the interposer checked {checked} calls for {rounds} malloc+free pairs");
    let thread_cpu = run.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), 2, "{}", run.stderr);
    let trace = run.trace();
    let expected = expected_samples(thread_cpu.values().sum(), 5000);
    let accounted = accounted_by_tid(&trace);
    let weight: u64 = thread_cpu.keys().map(|tid| accounted.get(tid).copied().unwrap_or(0)).sum();
    assert!(weight as f64 >= 0.9 * expected, "samples were taken (or counted as dropped) while allocating: {weight} of {expected:.0}");
}

/// The program's own ITIMER_PROF outlives its exec under sigtrace as without it: sigtrace
/// samples by per-thread timers and leaves the process's itimer alone when the trace of the
/// image ends.
#[test]
fn the_programs_own_itimer_survives_its_exec() {
    let dir = scratch_dir("itimer-exec");
    let program = compile_c("itimer_exec", &["-O2"], &dir);
    let plain = run_plain(&program, &["arm"], &dir);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "itimer armed\n");
    let traced = run_traced(&program, &["arm"], &[], &dir);
    assert!(traced.output.status.success(), "{}", traced.stderr);
    assert_eq!(traced.stdout, "itimer armed\n");
    assert_eq!(traced.traces.len(), 2, "a trace for each image: {:?}", traced.traces);
}

fn assert_same_behaviour(program: &Path, args: &[&str], env: &[(&str, &str)], expected_sigtrace_lines: usize) -> Run {
    let dir = scratch_dir("behaviour");
    let plain = run_plain(program, args, &dir);
    let traced = run_traced(program, args, env, &dir);
    assert_eq!(traced.output.status.code(), plain.status.code(), "exit status with {env:?}");
    assert_eq!(traced.stdout, String::from_utf8_lossy(&plain.stdout), "stdout with {env:?}");
    let plain_stderr = String::from_utf8_lossy(&plain.stderr).into_owned();
    let strip_numbers = |text: &str| text.lines().filter(|l| !l.starts_with("cpu_ns=")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip_numbers(&traced.host_stderr()), strip_numbers(&plain_stderr), "stderr with {env:?}");
    assert_eq!(traced.sigtrace_lines().len(), expected_sigtrace_lines, "sigtrace lines with {env:?}: {:?}", traced.sigtrace_lines());
    traced
}

#[test]
fn output_and_exit_status_are_unchanged_with_good_and_bad_settings() {
    let _beside_others = beside_others();
    let dir = scratch_dir("behaviour-build");
    let program = compile_c("split", &["-O2", "-fno-omit-frame-pointer"], &dir);
    // 20 ms of CPU per run: these runs check behaviour, not samples.
    let good = assert_same_behaviour(&program, &["20"], &[], 0);
    assert_eq!(good.traces.len(), 1);

    let bad_hz = assert_same_behaviour(&program, &["20"], &[("SIGTRACE_HZ", "fast")], 1);
    assert_eq!(bad_hz.sigtrace_lines()[0], "sigtrace: SIGTRACE_HZ=\"fast\" is not a number; using 999");
    assert_eq!(bad_hz.trace().header.unwrap().hz, 999);

    for (name, value) in
        [("SIGTRACE_TIMER", "hpet"), ("SIGTRACE_DEPTH", "-3"), ("SIGTRACE_SIGNAL", "SIGKILL"), ("SIGTRACE_LOG", "loud"), ("SIGTRACE_GENERATION_MS", "1e3")]
    {
        let run = assert_same_behaviour(&program, &["20"], &[(name, value)], 1);
        assert!(run.sigtrace_lines()[0].contains(name), "{:?}", run.sigtrace_lines());
        assert_eq!(run.traces.len(), 1, "still traced with a bad {name}");
    }

    let unwritable = assert_same_behaviour(&program, &["20"], &[("SIGTRACE_OUTPUT", "/nonexistent/dir/t.%p")], 1);
    assert!(unwritable.sigtrace_lines()[0].contains("cannot create trace file /nonexistent/dir/t."), "{:?}", unwritable.sigtrace_lines());
    assert!(unwritable.sigtrace_lines()[0].ends_with("sigtrace is off"));

    let quiet = assert_same_behaviour(&program, &["20"], &[("SIGTRACE_OUTPUT", "/nonexistent/dir/t.%p"), ("SIGTRACE_LOG", "off")], 0);
    assert!(quiet.traces.is_empty());
}

#[test]
fn programs_reading_stdin_and_using_threads_behave_the_same() {
    let _beside_others = beside_others();
    let dir = scratch_dir("behaviour-threads");
    let program = compile_c("threads", &["-O2", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["8", "2"], &[("SIGTRACE_HZ", "10000")], &dir);
    let plain = run_plain(&program, &["8", "2"], &dir);
    assert_eq!(run.output.status.code(), plain.status.code());
    assert_eq!(run.stdout.as_bytes(), plain.stdout.as_slice());
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
}

/// The main thread burns 300 + 100 ms of CPU at 4000 Hz (~1600 samples) while the other thread
/// is blocked in read() and then in a 300 ms nanosleep.
#[test]
fn a_blocked_thread_gets_no_samples_and_no_eintr() {
    let _beside_others = beside_others();
    let dir = scratch_dir("blocked");
    let program = compile_c("blocked", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["300"], &[("SIGTRACE_HZ", "4000")], &dir);
    assert!(run.output.status.success());
    assert_eq!(run.stdout, "blocked done\n", "no EINTR reached the blocked thread");
    let sleeper: u32 = run.stderr.lines().find_map(|l| l.strip_prefix("sleeper tid=")).and_then(|t| t.trim().parse().ok()).expect("sleeper tid");
    let main_cpu = run.cpu_by_id("main tid=");
    let (&main, &main_cpu_ns) = main_cpu.iter().next().expect("main tid= line");
    let trace = run.trace();
    let mut sleeper_samples = 0;
    let mut sleeper_cpu_ns = 0;
    for generation in &trace.generations {
        for sample in &generation.samples {
            if generation.threads[sample.thread as usize].tid == sleeper {
                sleeper_samples += 1;
            }
        }
        for thread in generation.threads.iter().filter(|thread| thread.tid == sleeper) {
            sleeper_cpu_ns = sleeper_cpu_ns.max(thread.cpu_ns);
        }
    }
    let main_weight = weight_by_tid(&trace).get(&main).copied().unwrap_or(0);
    let expected = expected_samples(main_cpu_ns, 4000);
    assert!(main_weight as f64 >= 0.9 * expected, "the busy main thread was sampled: {main_weight} of {expected:.0}");
    // It blocks for 0.4 s or more (1600 periods at 4000 Hz); only the CPU it used around the
    // blocking calls (starting, printing, waking up: a fraction of a millisecond) may be sampled.
    let allowed = 1.0 + 3.0 * expected_samples(sleeper_cpu_ns, 4000);
    assert!(sleeper_samples as f64 <= allowed, "the blocked thread got {sleeper_samples} samples for {sleeper_cpu_ns} ns of CPU");
}

#[test]
fn a_program_that_does_nothing_leaves_a_valid_trace() {
    let _beside_others = beside_others();
    let dir = scratch_dir("true");
    let run = run_traced(Path::new("/bin/true"), &[], &[], &dir);
    assert!(run.output.status.success());
    assert!(run.sigtrace_lines().is_empty());
    let trace = run.trace();
    assert_eq!(trace.ignored_bytes, 0);
    let header = trace.header.expect("header");
    assert_eq!(header.executable, "/usr/bin/true");
    assert_eq!(trace.generations.len(), 1, "the open generation is written at exit");
    assert!(!trace.generations[0].modules.is_empty(), "modules are listed");
}

#[test]
fn trace_names_are_never_reused() {
    let _beside_others = beside_others();
    let dir = scratch_dir("exclusive");
    let pattern = dir.join("fixed.sigtrace");
    for _ in 0..3 {
        let run = run_traced(Path::new("/bin/true"), &[], &[("SIGTRACE_OUTPUT", pattern.to_str().unwrap())], &dir);
        assert!(run.output.status.success());
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, vec!["fixed.1.sigtrace", "fixed.2.sigtrace", "fixed.sigtrace"], "the counter goes before the extension");
}
