//! Pausing and resuming sampling: `SIGTRACE_PAUSED=1`, `SIGTRACE_TOGGLE_SIGNAL`, and
//! `sigtrace_pause()` / `sigtrace_resume()` found with `dlsym` (the `pause_toggle` workload).
//! The trace holds the CPU time of the resumed parts only, the pauses are events (`events`,
//! the Firefox export), a program toggled while it sleeps and reads sees no `EINTR`, and a
//! handler the program installs for the toggle signal is its own.

use sigtrace_tests::*;

const FLAGS: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer"];
const PART_MS: &str = "400";

/// The weight of the stacks through `function`, and the bound it must meet for `cpu_ns` of
/// sampled CPU at `hz`: the expected count ± 4.5 σ of a count of that size (at least 3 samples).
fn assert_weight_is_cpu(stacks: &[(Vec<String>, u64)], function: &str, cpu_ns: u64, hz: u64) {
    let weight = weight_through(stacks, function) as f64;
    let expected = expected_samples(cpu_ns, hz);
    let tolerance = (SIGMAS * expected.sqrt()).max(3.0);
    assert!((weight - expected).abs() <= tolerance, "{function}: weight {weight}, expected {expected:.0} ± {tolerance:.0} (its CPU time {cpu_ns} ns)");
}

/// Samples in flight when the timers stopped (one per thread at most) may land after a pause.
fn assert_unsampled(stacks: &[(Vec<String>, u64)], function: &str) {
    let weight = weight_through(stacks, function);
    assert!(weight <= 2, "{function} ran while paused, yet weighs {weight}");
}

fn event_lines(trace: &std::path::Path) -> Vec<String> {
    let output = cli(&["events", "--kind", "pause", &trace.display().to_string()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

#[test]
fn paused_for_the_first_half_then_toggled_the_trace_holds_the_second_half() {
    let _alone = alone();
    let dir = scratch_dir("pause-signal");
    let program = compile_c("pause_toggle", FLAGS, &dir);
    let run = run_traced(&program, &["signal", PART_MS], &[("SIGTRACE_PAUSED", "1"), ("SIGTRACE_TOGGLE_SIGNAL", "SIGUSR2")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let trace = run.trace();
    let hz = u64::from(trace.header.as_ref().unwrap().hz);
    let stacks = folded_stacks(&run.traces[0]);
    assert_unsampled(&stacks, "first_half");
    assert_weight_is_cpu(&stacks, "second_half", run.reported("second_ns"), hz);
    let events = event_lines(&run.traces[0]);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].ends_with("sampling paused (start)") && events[1].ends_with("sampling resumed (signal)"), "{events:?}");

    // The Firefox timeline shows the paused interval.
    let out = dir.join("profile.json");
    let export = cli(&["export", "--format", "firefox", "-o", &out.display().to_string(), &run.traces[0].display().to_string()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let json = std::fs::read_to_string(&out).expect("the export");
    assert!(json.contains("sampling paused (start)"), "no paused marker in the Firefox profile");
}

#[test]
fn a_program_pauses_and_resumes_itself_through_dlsym_and_runs_unchanged_without_sigtrace() {
    let _alone = alone();
    let dir = scratch_dir("pause-call");
    let program = compile_c("pause_toggle", FLAGS, &dir);
    let plain = run_plain(&program, &["call", "50"], &dir);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "pause_toggle call done 1\n");
    let run = run_traced(&program, &["call", PART_MS], &[("SIGTRACE_PAUSED", "1")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    assert_eq!(run.stdout, "pause_toggle call done 1\n");
    let trace = run.trace();
    let hz = u64::from(trace.header.as_ref().unwrap().hz);
    let stacks = folded_stacks(&run.traces[0]);
    assert_unsampled(&stacks, "first_half");
    assert_weight_is_cpu(&stacks, "second_half", run.reported("second_ns"), hz);
    assert_unsampled(&stacks, "third_part");
    let events = event_lines(&run.traces[0]);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[1].ends_with("sampling resumed (call)") && events[2].ends_with("sampling paused (call)"), "{events:?}");
}

/// A thread sends the process the toggle signal every 20 ms while the main thread sleeps
/// (`nanosleep`, `usleep`) and reads a pipe: no call fails with `EINTR`, no sleep is short.
#[test]
fn a_program_toggled_while_it_sleeps_and_reads_sees_no_eintr() {
    let _beside_others = beside_others();
    let dir = scratch_dir("pause-waits");
    let program = compile_c("pause_toggle", FLAGS, &dir);
    let run = run_traced_bounded(&program, &["waits", "1000"], &[("SIGTRACE_TOGGLE_SIGNAL", "SIGUSR2")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}\n{}", run.output.status, run.stdout, run.stderr);
    assert!(run.stdout.contains("waits ok after"), "{}", run.stdout);
    // The program's own trace (its forked writers write theirs): many toggles were taken.
    let mut paused = 0;
    for trace in &run.traces {
        paused += event_lines(trace).iter().filter(|line| line.contains("sampling paused (signal)")).count();
    }
    assert!(paused >= 5, "only {paused} pauses by the toggle signal");
}

/// The toggle signal is the process's: a thread waiting in `epoll_wait` is woken for it, and
/// another (the sender, unblocking it at once) takes it first; `epoll_wait` then fails with
/// `EINTR` with no handler run on its thread (20 of 20 waits before the fix). None may reach
/// the program.
#[test]
fn a_toggle_another_thread_takes_never_fails_a_wait_with_eintr() {
    let _beside_others = beside_others();
    let dir = scratch_dir("pause-other-thread");
    let program = compile_c("toggled_waits", &["-O2", "-g", "-pthread"], &dir);
    let run = run_traced_bounded(&program, &["1000"], &[("SIGTRACE_TOGGLE_SIGNAL", "SIGUSR2")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}\n{}", run.output.status, run.stdout, run.stderr);
    let count = |key: &str| -> u64 {
        run.stdout
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {}", run.stdout))
    };
    assert!(count("waits=") >= 10, "{}", run.stdout);
    assert_eq!(count("eintr="), 0, "{}", run.stdout);
}

#[test]
fn a_handler_the_program_installs_for_the_toggle_signal_is_its_own() {
    let _beside_others = beside_others();
    let dir = scratch_dir("pause-own");
    let program = compile_c("pause_toggle", FLAGS, &dir);
    let run = run_traced(&program, &["own"], &[("SIGTRACE_TOGGLE_SIGNAL", "SIGUSR2")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    assert_eq!(run.stdout, "own handler ran\n");
    let lines = run.sigtrace_lines();
    assert_eq!(lines, ["sigtrace: the program installed its own action for SIGUSR2: it no longer toggles sampling (SIGTRACE_TOGGLE_SIGNAL)"]);
    assert!(event_lines(&run.traces[0]).is_empty(), "the program's signal toggled sampling");
}

#[test]
fn a_toggle_signal_that_cannot_be_taken_is_refused_in_one_line() {
    let _beside_others = beside_others();
    let dir = scratch_dir("pause-refused");
    let program = compile_c("pause_toggle", FLAGS, &dir);
    let run = run_traced(&program, &["call", "20"], &[("SIGTRACE_TOGGLE_SIGNAL", "SIGSEGV")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let lines = run.sigtrace_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("sigtrace: SIGTRACE_TOGGLE_SIGNAL=\"SIGSEGV\" is not a signal sigtrace can take"), "{lines:?}");
}
