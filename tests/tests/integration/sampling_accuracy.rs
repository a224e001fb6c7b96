//! Sampling accuracy: real C workloads under the shim, traces read back and compared with the
//! CPU time the workloads measured themselves.
//!
//! The tests run alone ([`alone`]), one at a time: each measures sigtrace against its workload's CPU.

use sigtrace_tests::*;
use std::collections::HashMap;

#[test]
fn a_75_25_split_through_a_shared_leaf_is_found_and_captured_by_frame_pointers() {
    let _alone = alone();
    assert_75_25_split("fp");
}

#[test]
fn a_75_25_split_through_a_shared_leaf_is_found_and_captured_by_default() {
    let _alone = alone();
    assert_75_25_split("auto");
}

/// The split workload (built with frame pointers) under `SIGTRACE_UNWIND=unwind`: the leaf
/// `spin` sets up no frame, so only a correct first frame names its two callers. 1 s of CPU at
/// 4000 Hz gives ~4000 samples: heavy's share is then known within ~3 points (4.5 binomial σ).
fn assert_75_25_split(unwind: &str) {
    let dir = scratch_dir("split");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_UNWIND", unwind), ("SIGTRACE_HZ", "4000")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    let header = trace.header.as_ref().expect("header");
    let expected = expected_samples(run.reported_cpu_ns(), u64::from(header.hz));
    let weight = total_weight(&trace) as f64;
    let accounted = accounted_by_tid(&trace).values().sum::<u64>() as f64;
    assert!(accounted >= 0.95 * expected, "captured {weight} (+ dropped) = {accounted} of {expected:.0} expected samples ({} timer)", header.timer);
    assert!(weight <= 1.05 * expected, "captured {weight}, more than {expected:.0} expected");

    let stacks = folded_stacks(&run.traces[0]);
    let heavy = weight_through(&stacks, "heavy") as f64;
    let light = weight_through(&stacks, "light") as f64;
    let share = heavy / (heavy + light);
    let tolerance = share_tolerance(0.75, sample_records(&trace, heavy + light));
    assert!((share - 0.75).abs() <= tolerance, "heavy's share is {share:.3}, expected 0.75 ± {tolerance:.3} (heavy {heavy}, light {light})");
    assert!(heavy + light >= 0.95 * weight, "heavy+light {} of {weight}: the leaf's caller was lost", heavy + light);
    let spin_under_heavy: u64 = stacks.iter().filter(|(f, _)| f.ends_with(&["heavy".to_string(), "spin".to_string()])).map(|(_, c)| c).sum();
    assert!(spin_under_heavy as f64 >= 0.9 * heavy, "spin is named under heavy");
}

/// Sample weight of the threads of `thread_cpu` (tid → CPU time), by tid.
fn workers_weight(trace: &format::Trace, thread_cpu: &HashMap<u32, u64>) -> HashMap<u32, u64> {
    let by_tid = weight_by_tid(trace);
    thread_cpu.keys().map(|tid| (*tid, by_tid.get(tid).copied().unwrap_or(0))).collect()
}

/// 32 threads of 20, 40, 60 and 80 ms of CPU each (1.6 s in all, ~1600 samples at 999 Hz):
/// each thread's share of the samples matches its share of the CPU time within 4.5 binomial σ.
#[test]
fn thirty_two_busy_threads_are_each_sampled_in_proportion() {
    let _alone = alone();
    let dir = scratch_dir("threads");
    let program = compile_c("threads", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["32", "20"], &[], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let trace = run.trace();
    let hz = u64::from(trace.header.as_ref().unwrap().hz);

    let thread_cpu = run.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), 32);
    let weights = workers_weight(&trace, &thread_cpu);
    let workers_cpu: u64 = thread_cpu.values().sum();
    let total: u64 = weights.values().sum();
    let expected = expected_samples(workers_cpu, hz);
    assert!(total as f64 >= 0.95 * expected, "captured {total} of {expected:.0} expected samples");
    let records = sample_records(&trace, total as f64);
    for (tid, cpu) in &thread_cpu {
        let weight = weights[tid];
        assert!(weight > 0, "thread {tid} has no samples");
        let cpu_share = *cpu as f64 / workers_cpu as f64;
        let sample_share = weight as f64 / total as f64;
        let tolerance = share_tolerance(cpu_share, records);
        assert!((cpu_share - sample_share).abs() <= tolerance, "thread {tid}: {sample_share:.4} of samples vs {cpu_share:.4} of CPU (± {tolerance:.4})");
    }
    let traced_threads: std::collections::HashSet<u32> = trace.generations.iter().flat_map(|g| g.threads.iter().map(|t| t.tid)).collect();
    assert!(traced_threads.len() >= 33, "main + 32 workers in the thread tables, found {}", traced_threads.len());
}

/// 128 threads of 5, 10, 15 and 20 ms of CPU each, sampled at 100 Hz: 0.5 to 2 sampling periods.
/// A timer whose first period is whole would miss about a quarter of their time (a thread of
/// 0.5 periods is never sampled). With a random first phase, a thread of f periods gets
/// ⌊f⌋ samples plus one with probability frac(f): the total's expectation is the CPU time × Hz.
#[test]
fn short_threads_are_captured_in_proportion_to_their_cpu_time() {
    let _alone = alone();
    assert_short_threads_captured("short-threads", 128, 5, 100);
}

/// 256 threads of 1 to 4 ms of CPU each at 4000 Hz, all started together. A random first period
/// of a few microseconds made the kernel's timer interrupt (every 10 µs, perf's shortest) take
/// all of a new thread's CPU before its handler could set the real period: the threads burned
/// several times their CPU in the kernel with their samples lost (12% to 47% captured).
#[test]
fn many_new_threads_at_4000_hz_are_captured_without_signal_storms() {
    let _alone = alone();
    assert_short_threads_captured("new-threads-4000", 256, 1, 4000);
}

/// Runs `threads` of 1 to 4 × `unit_ms` of CPU at `hz` and checks that their samples' weight is
/// their CPU time × Hz. A thread of f periods gets ⌊f⌋ or ⌈f⌉ samples (variance frac(f)(1 −
/// frac(f))), and its first sample's weight is rounded at random (variance at most 1/4).
fn assert_short_threads_captured(name: &str, threads: usize, unit_ms: u64, hz: u64) {
    let dir = scratch_dir(name);
    let program = compile_c("threads", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &[&threads.to_string(), &unit_ms.to_string()], &[("SIGTRACE_HZ", &hz.to_string())], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let trace = run.trace();
    let thread_cpu = run.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), threads);
    let captured: u64 = workers_weight(&trace, &thread_cpu).values().sum();
    // A thread's timer is armed while it starts, before its start routine runs: the CPU time
    // it used until then (tens of µs; more when hundreds of threads start at once) may or may
    // not have been sampled.
    let before_routine: u64 = run.cpu_by_id("started tid=").values().sum();
    let cpu: u64 = thread_cpu.values().sum();
    // A thread's exit path, after its last reading of its clock, is sampled too (the sample
    // it takes of itself at exit): the CPU time the trace gives it at its exit bounds that.
    let mut cpu_at_exit: HashMap<u32, u64> = HashMap::new();
    for thread in trace.generations.iter().flat_map(|generation| &generation.threads) {
        let cpu = cpu_at_exit.entry(thread.tid).or_default();
        *cpu = (*cpu).max(thread.cpu_ns);
    }
    let cpu_to_exit: u64 = thread_cpu.iter().map(|(tid, &cpu)| cpu_at_exit.get(tid).copied().unwrap_or(cpu).max(cpu)).sum();
    let (lowest, highest) = (expected_samples(cpu - before_routine, hz), expected_samples(cpu_to_exit, hz));
    let variance: f64 = thread_cpu
        .values()
        .map(|&cpu| {
            let fraction = expected_samples(cpu, hz).fract();
            fraction * (1.0 - fraction) + 0.25
        })
        .sum();
    // Plus two periods for the CPU time after a thread's last reading of its clock.
    let tolerance = SIGMAS * variance.sqrt() + 2.0;
    assert!(
        captured as f64 >= lowest - tolerance && captured as f64 <= highest + tolerance,
        "captured {captured} of {lowest:.0} to {highest:.0} ± {tolerance:.0} expected samples ({:.1}% of the CPU time)",
        captured as f64 / highest * 100.0
    );
}

/// A program that spends most of its CPU time in the kernel (page faults): the perf event may
/// not sample kernel mode, so each user-mode sample must stand for the periods since the
/// previous one, or 90% of the time would vanish from the profile.
///
/// Only the periods before the first record and after the last one can be lost. With user mode a
/// fraction u of the time, records come about every 1/u periods, and each of those two ends
/// loses a geometric number of periods of that mean: their sum exceeds 14.5 means with a
/// probability of ~7e-6 (the gamma(2) tail, like 4.5 σ). 400 ms of CPU at 4000 Hz (1600 periods,
/// ~100 records at u ≈ 6%) bounds the loss to ~15%, far from the 90% lost without the charging.
#[test]
fn kernel_time_is_charged_to_the_user_stack_that_spent_it() {
    let _alone = alone();
    let dir = scratch_dir("page-faults");
    let program = compile_c("page_faults", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["400"], &[("SIGTRACE_HZ", "4000")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let sys_ns = run.reported("sys_ns");
    let cpu_ns = run.reported_cpu_ns();
    assert!(sys_ns * 2 > cpu_ns, "the workload should be mostly kernel time: {sys_ns} of {cpu_ns} ns");
    let trace = run.trace();
    let expected = expected_samples(cpu_ns, 4000);
    let weight = total_weight(&trace) as f64;
    let records = sample_count(&trace) as f64;
    let may_lose = 14.5 * expected / records.max(1.0);
    assert!(may_lose <= 0.5 * expected, "{records} records for {expected:.0} periods: too few to tell charged kernel time from lost");
    assert!(weight >= expected - may_lose, "weight {weight} vs {expected:.0} expected, at most {may_lose:.0} lost ({records} records)");
    assert!(weight <= 1.05 * expected, "weight {weight} vs {expected:.0} expected: periods counted twice");
    let stacks = folded_stacks(&run.traces[0]);
    assert!(weight_through(&stacks, "main") as f64 >= 0.9 * weight, "the weight is charged to main's stacks");
}

/// Runs the 1-thread workload for 400 ms of CPU at 4000 Hz with a tick-limited `timer` (the kernel
/// checks CPU timers on its scheduler tick, 250 Hz here and at most 1000 Hz on any kernel): at
/// most a quarter as many records as periods, but their weight covers CPU time × Hz (within 5%,
/// 80 periods, where the periods after the last tick, at most 16 here, are all that may be lost).
fn assert_tick_limited_but_weighted(timer: &str) {
    let dir = scratch_dir(timer);
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["400"], &[("SIGTRACE_TIMER", timer), ("SIGTRACE_HZ", "4000")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    assert_eq!(trace.header.as_ref().unwrap().timer, timer);
    let expected = expected_samples(run.reported_cpu_ns(), 4000);
    let weight = total_weight(&trace) as f64;
    let records = sample_count(&trace) as f64;
    assert!(weight >= 0.95 * expected && weight <= 1.05 * expected, "{timer}: weight {weight} vs {expected:.0} expected");
    assert!(records < 0.5 * weight, "{timer}: {records} records for weight {weight}; the timer should be tick-limited");
}

#[test]
fn posix_timers_are_tick_limited_but_their_weight_covers_cpu_time() {
    let _alone = alone();
    assert_tick_limited_but_weighted("posix");
}

#[test]
fn the_process_wide_itimer_is_tick_limited_but_weighted_by_cpu_time() {
    let _alone = alone();
    assert_tick_limited_but_weighted("itimer");
}

/// The default (`auto`) gives a thread that computes the perf event, at its full rate, where
/// the kernel allows perf events; elsewhere it stays on its POSIX timer.
#[test]
fn a_computing_thread_is_sampled_by_the_perf_event_by_default_where_the_kernel_allows_it() {
    let _alone = alone();
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(3);
    let dir = scratch_dir("default-timer");
    let program = compile_c("split", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["500"], &[], &dir);
    let trace = run.trace();
    assert_eq!(trace.header.as_ref().unwrap().timer, "auto");
    let main = trace.sources.threads.first().copied().expect("the main thread's source account");
    if paranoid <= 2 {
        assert_eq!(main.last, format::SourceKind::Perf, "{main:?}");
        assert!(main.perf_cpu_ns >= main.posix_cpu_ns * 4, "most of the CPU time on the perf event: {main:?}");
        let records = sample_count(&trace) as f64;
        let expected = expected_samples(run.reported_cpu_ns(), 999);
        assert!(records >= 0.9 * expected, "{records} records for {expected:.0} periods: the full rate");
    } else {
        assert_eq!(main.last, format::SourceKind::Posix, "{main:?}");
    }
}

#[test]
fn a_full_ring_drops_and_counts_instead_of_losing_silently() {
    let _alone = alone();
    let dir = scratch_dir("full-ring");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    // 4 KiB rings hold ~85 records of depth ≤ 3; at 10 000 Hz one fills in ~9 ms of CPU time.
    // The drain thread comes every 10 s, i.e. not before the exit of a run of 300 ms of CPU
    // (~3000 periods), however little of a CPU the run gets (a drain every 200 ms let a run that
    // got 13% of a CPU, under two CPU hogs, keep more than half its samples).
    // (A drain thread: without one, the handler of this single-threaded program would spill
    // its ring at half full and nothing would be dropped.)
    let env =
        [("SIGTRACE_HZ", "10000"), ("SIGTRACE_DEPTH", "3"), ("SIGTRACE_BUFFER_KB", "4"), ("SIGTRACE_DRAIN_MS", "10000"), ("SIGTRACE_DRAIN_THREAD", "always")];
    let run = run_traced(&program, &["300"], &env, &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    let dropped: u64 = trace.generations.iter().flat_map(|g| &g.threads).map(|t| t.dropped).sum();
    let recorded = total_weight(&trace);
    let expected = expected_samples(run.reported_cpu_ns(), 10_000);
    assert!(dropped > 0, "the ring overflowed and the drops were counted");
    // Drops are counted in periods (the weight of the lost samples), as recorded samples are.
    assert!(dropped as f64 >= 0.5 * expected, "most samples were dropped ({dropped} of {expected:.0} periods)");
    let accounted = (recorded + dropped) as f64;
    assert!(accounted >= 0.9 * expected, "recorded {recorded} + dropped {dropped} periods account for {expected:.0} periods");
    let depth_limited = trace.generations.iter().flat_map(|g| &g.counters).filter(|(name, _)| name == "unwind.end.depth_limit").map(|(_, n)| n).sum::<u64>();
    assert!(depth_limited > 0, "stacks deeper than 3 frames (main;heavy;spin under libc) are cut and counted");
    assert!(trace.generations.iter().flat_map(|g| &g.stacks).all(|stack| stack.len() <= 3));
}
