//! Short threads counted without bias (issue 19, item 4): a thread that lives less than a
//! sampling period gets its first sample after a random phase drawn at its arming (short phases
//! included, one-shot), its start-up CPU time is sampled on its start-up path and the sampling
//! moments it passed without a sample on its exit path, so its expected weight is its CPU time. The same work done by thousands of threads of 0.4 ms
//! and by one long thread must then give the same weight and the same per-function shares.

use sigtrace_tests::*;

const HZ: u64 = 999;
/// CPU time of each workload's units, ms.
const TOTAL_MS: &str = "2500";
/// CPU time of one unit, µs: under the 1 ms period at 999 Hz.
const UNIT_US: &str = "400";

/// What a run of `short_threads HOW TOTAL_MS UNIT_US LEAD_US` at `hz` gave: the weight through
/// work_a and through work_b, and the CPU time spent in each, ns.
fn measure(how: &str, hz: u64, unit_us: &str, lead_us: &str) -> (f64, f64, f64, f64) {
    let dir = scratch_dir(&format!("short-threads-{how}-{hz}-{lead_us}"));
    let program = compile_c("short_threads", &["-O2", "-g", "-fno-omit-frame-pointer", "-pthread"], &dir);
    let run = run_traced(&program, &[how, TOTAL_MS, unit_us, lead_us], &[("SIGTRACE_HZ", &hz.to_string())], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    if how == "short" {
        assert!(run.reported("threads") > 1000, "{}", run.stderr);
    }
    let stacks = folded_stacks(&run.traces[0]);
    let dropped: u64 = run.trace().generations.iter().flat_map(|g| &g.threads).map(|t| t.dropped).sum();
    assert_eq!(dropped, 0, "{how}: no sample dropped");
    (weight_through(&stacks, "work_a") as f64, weight_through(&stacks, "work_b") as f64, run.reported("a_ns") as f64, run.reported("b_ns") as f64)
}

#[test]
fn many_short_threads_weigh_and_split_like_one_long_thread() {
    let _alone = alone();
    let short = measure("short", HZ, UNIT_US, "0");
    let long = measure("long", HZ, UNIT_US, "0");
    let mut shares = Vec::new();
    for (how, (a, b, a_ns, b_ns)) in [("short", short), ("long", long)] {
        let weight = a + b;
        let want = expected_samples((a_ns + b_ns) as u64, HZ);
        // A short thread's sample count is a draw (0 or 1 per thread, mostly): its spread is
        // at most that of independent draws, sqrt(n).
        let tolerance = SIGMAS * want.sqrt() + 5.0;
        assert!((weight - want).abs() <= tolerance, "{how}: weight {weight} for {want:.0} periods of CPU (±{tolerance:.0})");
        let true_share = a_ns / (a_ns + b_ns);
        let share = a / weight;
        assert!((share - true_share).abs() <= share_tolerance(true_share, weight), "{how}: work_a {share:.3} of the weight, {true_share:.3} of the CPU");
        shares.push(share);
        eprintln!("{how}: weight {weight} for {want:.0} periods; work_a share {share:.4} (CPU {true_share:.4})");
    }
    let gap = (shares[0] - shares[1]).abs();
    let p = (shares[0] + shares[1]) / 2.0;
    let n = (short.0 + short.1).min(long.0 + long.1);
    let allowed = share_tolerance(p, n) * std::f64::consts::SQRT_2;
    assert!(gap <= allowed, "work_a's share: {:.4} with short threads, {:.4} with one thread (±{allowed:.4})", shares[0], shares[1]);
}

/// A short thread's first function is charged its own CPU time, not sigtrace's start-up code's.
/// The perf event's first period is never under the kernel's timer floor (20 µs), so a phase
/// due in the start-up code is sampled after that floor, in the program's code, unless the
/// start-up code takes it. So work_a's share of the weight (beside its share of the CPU) must be
/// the same whether work_a is its thread's first function or comes after another one
/// (work_lead): what the clocks around each unit miss is the same in both. Units of 100 µs at
/// 4000 Hz make the start-up code's moments large beside work_a's 25 µs: given to the first
/// function, they raised work_a's share by 0.04–0.05 over the other layout here (bound ±0.03).
#[test]
fn the_first_function_of_short_threads_weighs_as_when_it_is_not_first() {
    let _alone = alone();
    let mut excess = Vec::new();
    let mut samples = f64::MAX;
    for lead_us in ["0", "40"] {
        let (a, b, a_ns, b_ns) = measure("short", 4000, "100", lead_us);
        excess.push(a / (a + b) - a_ns / (a_ns + b_ns));
        samples = samples.min(a + b);
        eprintln!("work_a after {lead_us} µs of work_lead: {:.4} of the weight, {:.4} of the CPU", a / (a + b), a_ns / (a_ns + b_ns));
    }
    let allowed = share_tolerance(0.25, samples) * std::f64::consts::SQRT_2;
    let gap = excess[0] - excess[1];
    assert!(
        gap.abs() <= allowed,
        "work_a's share over its CPU share: {:+.4} as its thread's first function, {:+.4} after work_lead (±{allowed:.4})",
        excess[0],
        excess[1]
    );
}

/// The drain forgets the threads that exited once their last samples are written: a program that
/// started over a thousand short threads (a thread per request) ends its generations knowing
/// only its live threads, not every thread it ever ran (whose pieces named them: each would stay
/// for the life of the process).
#[test]
fn the_drain_keeps_no_record_of_threads_that_exited() {
    let dir = scratch_dir("short-threads-forgotten");
    let program = compile_c("short_threads", &["-O2", "-g", "-pthread"], &dir);
    let run = run_traced(&program, &["short", "500", UNIT_US], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let threads = run.reported("threads");
    assert!(threads > 1000, "{}", run.stderr);
    let trace = run.trace();
    let sampled: std::collections::HashSet<u32> = trace.generations.iter().flat_map(|g| g.samples.iter().map(|s| g.threads[s.thread as usize].tid)).collect();
    assert!(sampled.len() > 100, "{} threads sampled", sampled.len());
    let most_known = trace
        .generations
        .iter()
        .flat_map(|g| &g.counters)
        .filter(|(name, _)| name == format::counters::THREADS_KNOWN)
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0);
    // The main thread, and the unit thread running at a close.
    assert!(most_known <= 4, "the drain knew {most_known} threads at a close, of {threads} started");
}
