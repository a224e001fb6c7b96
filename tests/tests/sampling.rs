//! Sampling accuracy: real C workloads under the shim, traces read back and compared with the
//! CPU time the workloads measured themselves.

use sigtrace_tests::*;
use std::collections::HashMap;

/// Samples expected for `cpu_ns` of CPU time at `hz`.
fn expected_samples(cpu_ns: u64, hz: u64) -> f64 {
    cpu_ns as f64 * hz as f64 / 1e9
}

#[test]
fn a_75_25_split_through_a_shared_leaf_is_found_and_captured_by_frame_pointers() {
    assert_75_25_split("fp");
}

#[test]
fn a_75_25_split_through_a_shared_leaf_is_found_and_captured_by_default() {
    assert_75_25_split("auto");
}

/// The split workload (built with frame pointers) under `SIGTRACE_UNWIND=unwind`: the leaf
/// `spin` sets up no frame, so only a correct first frame names its two callers. At 4000 Hz
/// (~5000 samples) the binomial spread of the measured share is ~0.6 points, so the ±3 point
/// bound is not a coin toss.
fn assert_75_25_split(unwind: &str) {
    let dir = scratch_dir("split");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_UNWIND", unwind), ("SIGTRACE_HZ", "4000")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    let header = trace.header.as_ref().expect("header");
    let expected = expected_samples(run.reported_cpu_ns(), u64::from(header.hz));
    let weight = total_weight(&trace) as f64;
    assert!(weight >= 0.95 * expected, "captured {weight} of {expected:.0} expected samples ({} timer)", header.timer);
    assert!(weight <= 1.05 * expected, "captured {weight}, more than {expected:.0} expected");

    let stacks = folded_stacks(&run.traces[0]);
    let heavy = weight_through(&stacks, "heavy") as f64;
    let light = weight_through(&stacks, "light") as f64;
    let share = heavy / (heavy + light);
    assert!((share - 0.75).abs() <= 0.03, "heavy's share is {share:.3}, expected 0.75 ± 0.03 (heavy {heavy}, light {light})");
    assert!(heavy + light >= 0.95 * weight, "heavy+light {} of {weight}: the leaf's caller was lost", heavy + light);
    let spin_under_heavy: u64 = stacks.iter().filter(|(f, _)| f.ends_with(&["heavy".to_string(), "spin".to_string()])).map(|(_, c)| c).sum();
    assert!(spin_under_heavy as f64 >= 0.9 * heavy, "spin is named under heavy");
}

#[test]
fn thirty_two_busy_threads_are_each_sampled_in_proportion() {
    let dir = scratch_dir("threads");
    let program = compile_c("threads", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["32", "40000000"], &[], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let trace = run.trace();
    let hz = u64::from(trace.header.as_ref().unwrap().hz);

    let thread_cpu = run.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), 32);

    let mut weight_by_tid: HashMap<u32, u64> = HashMap::new();
    for generation in &trace.generations {
        for sample in &generation.samples {
            *weight_by_tid.entry(generation.threads[sample.thread as usize].tid).or_default() += u64::from(sample.weight);
        }
    }
    let workers_cpu: u64 = thread_cpu.values().sum();
    let workers_weight: u64 = thread_cpu.keys().map(|tid| weight_by_tid.get(tid).copied().unwrap_or(0)).sum();
    let expected = expected_samples(workers_cpu, hz);
    assert!(workers_weight as f64 >= 0.95 * expected, "captured {workers_weight} of {expected:.0} expected samples");
    for (tid, cpu) in &thread_cpu {
        let weight = weight_by_tid.get(tid).copied().unwrap_or(0);
        assert!(weight > 0, "thread {tid} has no samples");
        let cpu_share = *cpu as f64 / workers_cpu as f64;
        let sample_share = weight as f64 / workers_weight as f64;
        assert!((cpu_share - sample_share).abs() <= 0.02, "thread {tid}: {sample_share:.4} of samples vs {cpu_share:.4} of CPU");
    }
    let traced_threads: std::collections::HashSet<u32> = trace.generations.iter().flat_map(|g| g.threads.iter().map(|t| t.tid)).collect();
    assert!(traced_threads.len() >= 33, "main + 32 workers in the thread tables, found {}", traced_threads.len());
}

/// 128 threads of 0.5 to 2.5 sampling periods of CPU each (100 Hz): a timer whose first period
/// is whole would miss about a quarter of their time (a thread of 0.5 periods is never sampled);
/// with a random first phase the expected count is the CPU time × Hz, and the binomial spread
/// over 128 threads is ~3.5%, so ±12% is a 3.4 σ bound.
#[test]
fn short_threads_are_captured_in_proportion_to_their_cpu_time() {
    let dir = scratch_dir("short-threads");
    let program = compile_c("threads", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["128", "4000000"], &[("SIGTRACE_HZ", "100")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let trace = run.trace();
    let thread_cpu = run.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), 128);
    let mut workers_weight = 0u64;
    for generation in &trace.generations {
        for sample in &generation.samples {
            if thread_cpu.contains_key(&generation.threads[sample.thread as usize].tid) {
                workers_weight += u64::from(sample.weight);
            }
        }
    }
    let expected = expected_samples(thread_cpu.values().sum(), 100);
    let ratio = workers_weight as f64 / expected;
    assert!((0.88..=1.12).contains(&ratio), "captured {workers_weight} of {expected:.0} expected samples ({:.1}%)", ratio * 100.0);
}

/// A program that spends most of its CPU time in the kernel (page faults): the perf event may
/// not sample kernel mode, so each user-mode sample must stand for the periods since the
/// previous one, or 90% of the time would vanish from the profile.
#[test]
fn kernel_time_is_charged_to_the_user_stack_that_spent_it() {
    let dir = scratch_dir("page-faults");
    let program = compile_c("page_faults", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["40"], &[], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    let sys_ns: u64 = run.stderr.lines().find_map(|line| line.strip_prefix("sys_ns=")).and_then(|n| n.trim().parse().ok()).expect("sys_ns line");
    let cpu_ns = run.reported_cpu_ns();
    assert!(sys_ns * 2 > cpu_ns, "the workload should be mostly kernel time: {sys_ns} of {cpu_ns} ns");
    let trace = run.trace();
    let hz = u64::from(trace.header.as_ref().unwrap().hz);
    let expected = expected_samples(cpu_ns, hz);
    let weight = total_weight(&trace) as f64;
    assert!(weight >= 0.9 * expected && weight <= 1.1 * expected, "weight {weight} vs {expected:.0} expected ({} records)", sample_count(&trace));
    let stacks = folded_stacks(&run.traces[0]);
    assert!(weight_through(&stacks, "main") as f64 >= 0.9 * weight, "the weight is charged to main's stacks");
}

/// Runs the 1-thread workload at 999 Hz with a tick-limited `timer` (the kernel checks it on the
/// 250 Hz scheduler tick): far fewer records than periods, but their weight covers CPU time × Hz.
fn assert_tick_limited_but_weighted(timer: &str) {
    let dir = scratch_dir(timer);
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_TIMER", timer), ("SIGTRACE_HZ", "999")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    assert_eq!(trace.header.as_ref().unwrap().timer, timer);
    let expected = expected_samples(run.reported_cpu_ns(), 999);
    let weight = total_weight(&trace) as f64;
    let records = sample_count(&trace) as f64;
    assert!(weight >= 0.95 * expected && weight <= 1.05 * expected, "{timer}: weight {weight} vs {expected:.0} expected");
    assert!(records < 0.5 * weight, "{timer}: {records} records for weight {weight}; the timer should be tick-limited");
}

#[test]
fn posix_timers_are_tick_limited_but_their_weight_covers_cpu_time() {
    assert_tick_limited_but_weighted("posix");
}

#[test]
fn the_process_wide_itimer_is_tick_limited_but_weighted_by_cpu_time() {
    assert_tick_limited_but_weighted("itimer");
}

#[test]
fn the_perf_timer_is_used_by_default_where_the_kernel_allows_it() {
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(3);
    let dir = scratch_dir("default-timer");
    let run = run_traced(std::path::Path::new("/bin/true"), &[], &[], &dir);
    let timer = run.trace().header.unwrap().timer;
    if paranoid <= 2 {
        assert_eq!(timer, "perf");
    } else {
        assert_eq!(timer, "posix");
    }
}

#[test]
fn a_full_ring_drops_and_counts_instead_of_losing_silently() {
    let dir = scratch_dir("full-ring");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    // 4 KiB rings hold ~85 records of depth ≤ 3; at 10 000 Hz one fills in ~9 ms, and the
    // drain thread comes only every 200 ms.
    let env = [("SIGTRACE_HZ", "10000"), ("SIGTRACE_DEPTH", "3"), ("SIGTRACE_BUFFER_KB", "4"), ("SIGTRACE_DRAIN_MS", "200")];
    let run = run_traced(&program, &["500"], &env, &dir);
    assert_eq!(run.output.status.code(), Some(3));
    let trace = run.trace();
    let dropped: u64 = trace.generations.iter().flat_map(|g| &g.threads).map(|t| t.dropped).sum();
    let recorded = total_weight(&trace);
    let expected = expected_samples(run.reported_cpu_ns(), 10_000);
    assert!(dropped > 0, "the ring overflowed and the drops were counted");
    assert!(dropped as f64 >= 0.5 * expected, "most samples were dropped ({dropped} of {expected:.0})");
    assert!((recorded + dropped) as f64 >= 0.9 * expected, "recorded {recorded} + dropped {dropped} account for {expected:.0} periods");
    let depth_limited = trace.generations.iter().flat_map(|g| &g.counters).filter(|(name, _)| name == "unwind.end.depth_limit").map(|(_, n)| n).sum::<u64>();
    assert!(depth_limited > 0, "stacks deeper than 3 frames (main;heavy;spin under libc) are cut and counted");
    assert!(trace.generations.iter().flat_map(|g| &g.stacks).all(|stack| stack.len() <= 3));
}
