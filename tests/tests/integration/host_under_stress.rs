//! Hosts that strain the shim run to the end as without sigtrace: exit while another thread
//! loads and unloads libraries, threads started together, a timer that lost its perf period (the
//! storm guard), a daemon that closes every descriptor, one that closes low numbers while its
//! threads start, a tight descriptor limit, a program that sandboxes itself, fork storms from
//! several threads, a process whose last thread returns.
//! Regression tests for the ways the shim used to hurt such hosts; each workload is sized in CPU
//! or wall time, and each run is killed after a bound, so a hang fails instead of stalling CI.

use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The stress settings: a fast timer and short generations.
const STRESS: [(&str, &str); 2] = [("SIGTRACE_HZ", "4000"), ("SIGTRACE_GENERATION_MS", "10")];

#[test]
fn exit_while_another_thread_loads_and_unloads_libraries_never_crashes() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-exit-dlopen");
    let program = compile_c("guard_exit_dlopen", &["-O2", "-g"], &dir);
    for run in 0..10 {
        let run_dir = dir.join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let ms = (50 + run * 35).to_string();
        let traced = run_traced_bounded(&program, &[&ms], &STRESS, &run_dir);
        assert_eq!(traced.output.status.code(), Some(3), "run {run} ({ms} ms): {:?}\n{}", traced.output.status, traced.stderr);
        assert_eq!(traced.stdout, "bye\n");
        let trace = traced.trace();
        assert!(trace.end.is_some(), "run {run}: the trace has its end record");
    }
}

#[test]
fn threads_started_together_never_take_a_signal_storm() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-burst");
    let program = compile_c("guard_thread_burst", &["-O2", "-g"], &dir);
    for run in 0..8 {
        let run_dir = dir.join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let traced = run_traced_bounded(&program, &["3", "32", "40"], &STRESS, &run_dir);
        assert!(traced.output.status.success(), "run {run}: {:?}\n{}", traced.output.status, traced.stderr);
        assert_eq!(traced.stdout, "ok\n");
        let trace = traced.trace();
        assert_eq!(counter(&trace, "timer.storms_switched_off"), 0, "run {run}: a timer had to be switched off");
        // 96 threads × 40 ms at 4000 Hz: about 15 000 periods; a storm's samples (weight 1 each,
        // microseconds apart) would add far more. (No lower bound: the kernel time of starting
        // and ending threads after their last sample is not charged, and a loaded machine
        // makes that a large share of such short threads.)
        let expected = traced.reported_cpu_ns() as f64 * 4000.0 / 1e9;
        let weight = total_weight(&trace) as f64;
        assert!(weight < expected * 1.2 + 100.0, "run {run}: weight {weight} for {expected:.0} periods of CPU");
        assert!(weight > 0.0, "run {run}: sampled");
    }
}

#[test]
fn a_daemon_that_closes_every_descriptor_keeps_its_logs_and_is_still_traced() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-daemon");
    let program = compile_c("guard_daemon", &["-O2", "-g"], &dir);
    // close() of sigtrace's numbers answers EBADF, as without sigtrace: nothing is lost.
    let traced = run_traced_bounded(&program, &["300"], &[("SIGTRACE_GENERATION_MS", "50")], &dir);
    assert!(traced.output.status.success(), "{:?}\n{}{}", traced.output.status, traced.stdout, traced.stderr);
    assert_eq!(traced.stdout, "logs intact\n");
    assert!(traced.sigtrace_lines().is_empty(), "{:?}", traced.sigtrace_lines());
    let trace = traced.trace();
    let expected = trace.generations.iter().map(|g| g.process_cpu_ns).max().unwrap_or(0) as f64 * 999.0 / 1e9;
    assert!(total_weight(&trace) as f64 >= 0.8 * expected, "weight {} for {expected:.0} periods: the threads stayed sampled", total_weight(&trace));

    // A close_range system call takes sigtrace's descriptors too: the trace goes on in a new
    // file and nothing lands in the program's logs.
    let raw_dir = dir.join("raw");
    std::fs::create_dir_all(&raw_dir).unwrap();
    let traced = run_traced_bounded(&program, &["300", "raw"], &[("SIGTRACE_GENERATION_MS", "50")], &raw_dir);
    assert!(traced.output.status.success(), "{:?}\n{}{}", traced.output.status, traced.stdout, traced.stderr);
    assert_eq!(traced.stdout, "logs intact\n");
    let lines = traced.sigtrace_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("the program closed the descriptor of") && lines[0].contains("the trace goes on in"), "{lines:?}");
    assert_eq!(traced.traces.len(), 2, "the first trace file and its continuation");
    let continued = read_trace(&traced.traces[1]);
    assert!(continued.header.is_some() && !continued.generations.is_empty(), "the continued trace has a header and generations");
    assert!(sample_count(&continued) > 0);
}

#[test]
fn a_program_closing_low_numbers_while_threads_start_keeps_its_files() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-close-race");
    let program = compile_c("guard_close_race", &["-O2", "-g"], &dir);
    // Each new thread's perf event is opened at the lowest free number before it moves high: the
    // program's close_range and open land in between thousands of times a run.
    for run in 0..2 {
        let run_dir = dir.join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let traced = run_traced_bounded(&program, &["400"], &[], &run_dir);
        assert!(traced.output.status.success(), "run {run}: {:?}\n{}", traced.output.status, traced.stderr);
        assert_eq!(traced.stdout, "files intact\n", "run {run}");
        assert!(traced.sigtrace_lines().is_empty(), "run {run}: a number taken back is not a scarcity: {:?}", traced.sigtrace_lines());
        let trace = traced.trace();
        assert!(trace.end.is_some(), "run {run}: the trace has its end record");
    }
}

#[test]
fn a_tight_descriptor_limit_leaves_the_program_its_descriptors() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-nofile");
    let program = compile_c("guard_nofile", &["-O2", "-g"], &dir);
    let script = format!("ulimit -n 16 && exec {} 100", program.display());
    let plain = std::process::Command::new("sh").args(["-c", &script]).current_dir(&dir).env_remove("LD_PRELOAD").output().unwrap();
    let plain_opened = String::from_utf8_lossy(&plain.stdout).into_owned();
    let traced = run_traced_bounded(Path::new("sh"), &["-c", &script], &[], &dir);
    assert!(traced.output.status.success(), "{}", traced.stderr);
    let count = |text: &str| text.trim().strip_prefix("opened ").and_then(|n| n.parse::<i64>().ok()).expect("an opened count");
    let foreign: i64 = traced.stderr.lines().find_map(|l| l.strip_prefix("foreign_descriptors=")).and_then(|n| n.parse().ok()).expect("a count");
    assert!(foreign <= 3, "sigtrace holds {foreign} descriptors of a program limited to 16");
    assert!(count(&traced.stdout) >= count(&plain_opened) - 3, "opened {} with sigtrace, {} without", traced.stdout.trim(), plain_opened.trim());
    assert!(traced.sigtrace_lines().iter().any(|l| l.contains("file descriptors are scarce")), "{:?}", traced.sigtrace_lines());
    // `sh` is traced too and execs the program, whose trace is the exec chain's second file.
    let trace = traced
        .traces
        .iter()
        .map(|t| read_trace(t))
        .find(|t| t.header.as_ref().is_some_and(|h| h.executable.ends_with("guard_nofile")))
        .expect("the program's trace");
    assert_eq!(trace.header.as_ref().unwrap().timer, "auto");
    assert!(trace.sources.threads.iter().all(|account| account.last == format::SourceKind::Posix && account.perf_cpu_ns == 0), "{:?}", trace.sources);
    assert!(sample_count(&trace) > 0);
}

#[test]
fn a_program_that_sandboxes_itself_runs_as_without_sigtrace() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-sandbox");
    let program = compile_c("guard_sandbox", &["-O2", "-g"], &dir);
    for how in ["prctl", "syscall"] {
        let run_dir = dir.join(how);
        std::fs::create_dir_all(&run_dir).unwrap();
        let plain = run_plain(&program, &["100", how], &run_dir);
        assert!(plain.status.success(), "the workload itself works: {plain:?}");
        let traced = run_traced_bounded(&program, &["100", how], &[], &run_dir);
        assert_eq!(traced.output.status.code(), plain.status.code(), "{how}: {:?}\n{}", traced.output.status, traced.stderr);
        assert_eq!(traced.stdout, String::from_utf8_lossy(&plain.stdout));
        assert!(traced.sigtrace_lines().is_empty(), "{:?}", traced.sigtrace_lines());
        let trace = traced.trace();
        assert_eq!(trace.end.map(|end| end.reason), Some(format::EndReason::Sandbox), "{how}");
        assert!(sample_count(&trace) > 0, "{how}: the samples before the sandbox are kept");
    }
    // The filter survives exec: sigtrace stays off in the new image, with one line.
    let exec_dir = dir.join("exec");
    std::fs::create_dir_all(&exec_dir).unwrap();
    let plain = run_plain(&program, &["50", "exec"], &exec_dir);
    let traced = run_traced_bounded(&program, &["50", "exec"], &[], &exec_dir);
    assert_eq!(traced.output.status.code(), plain.status.code(), "{:?}\n{}", traced.output.status, traced.stderr);
    assert_eq!(traced.stdout, "exec ran\n");
    assert_eq!(traced.sigtrace_lines().len(), 1, "{:?}", traced.sigtrace_lines());
    assert!(traced.sigtrace_lines()[0].contains("seccomp filter"), "{:?}", traced.sigtrace_lines());
}

#[test]
fn a_timer_that_lost_its_period_is_contained_by_the_storm_guard() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-storm");
    // The interposer makes every re-programming of a perf period a no-op: threads whose random
    // first period is short keep it, and take signals up to 32 times faster than the period.
    let interposer = compile_c("drop_perf_period", &["-O2", "-shared", "-fPIC"], &dir);
    let program = compile_c("guard_thread_burst", &["-O2", "-g"], &dir);
    let env = [("SIGTRACE_TIMER", "perf")];
    let mut preload = vec![interposer.display().to_string()];
    preload.push(shim().display().to_string());
    let started = Instant::now();
    let output = Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(&program)
        .args(["1", "32", "150"])
        .current_dir(&dir)
        .env("LD_PRELOAD", preload.join(":"))
        .env("SIGTRACE_OUTPUT", dir.join("trace.%p.sigtrace"))
        .envs(env)
        .output()
        .unwrap();
    assert!(output.status.success(), "{:?}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    let trace = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().to_string_lossy().contains(".sigtrace"))
        .map(|entry| read_trace(&entry.path()))
        .find(|trace| trace.header.as_ref().is_some_and(|h| h.executable.ends_with("guard_thread_burst")))
        .expect("the program's trace");
    let (reprogrammed, switched_off) = (counter(&trace, "timer.storms_reprogrammed"), counter(&trace, "timer.storms_switched_off"));
    // About a fifth of 32 threads draw a first period under a quarter of the period.
    let timer = trace.header.as_ref().map(|header| header.timer.clone()).unwrap_or_default();
    let samples = sample_count(&trace);
    assert!(
        reprogrammed > 0 && switched_off > 0,
        "storms re-programmed {reprogrammed}, switched off {switched_off} (timer {timer}, {samples} samples)\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(100), "the program was slowed to {:?}", started.elapsed());
}

#[test]
fn fork_storms_from_several_threads_never_crash_a_child() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-forks");
    let program = compile_c("guard_fork_storm", &["-O2", "-g"], &dir);
    for run in 0..4 {
        let run_dir = dir.join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let traced = run_traced_bounded(&program, &["6", "700"], &STRESS, &run_dir);
        assert!(traced.output.status.success(), "run {run}: {:?}\n{}{}", traced.output.status, traced.stdout, traced.stderr);
        assert_eq!(traced.stdout, "forks ok\n");
        assert!(traced.traces.len() > 2, "run {run}: children traced too ({} files)", traced.traces.len());
        for path in &traced.traces {
            let trace = read_trace(path);
            assert!(trace.header.is_some(), "{} has its header", path.display());
        }
    }
}

#[test]
fn a_process_ends_when_its_last_thread_returns() {
    let _beside_others = beside_others();
    let dir = scratch_dir("guard-last-thread");
    let program = compile_c("guard_last_thread", &["-O2", "-g"], &dir);
    let traced = run_traced_bounded(&program, &["100"], &[], &dir);
    assert!(traced.output.status.success(), "{:?}\n{}", traced.output.status, traced.stderr);
    assert_eq!(traced.stdout, "child ok\nworker done\n");
    assert_eq!(traced.traces.len(), 2, "parent and child");
    for path in &traced.traces {
        let trace = read_trace(path);
        assert_eq!(trace.end.map(|end| end.reason), Some(format::EndReason::Exit), "{}", path.display());
        assert!(sample_count(&trace) > 0, "{}", path.display());
    }
}
