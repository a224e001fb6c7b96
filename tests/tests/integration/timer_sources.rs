//! `SIGTRACE_TIMER=auto`: each thread sampled by the source its context switches make cheapest
//! (a perf event while it computes, a POSIX timer while it switches), the moves recorded in the
//! trace's sources and shown by `info`, the weights still adding up to the CPU time.
//!
//! The tests run alone ([`alone`]): they compare samples with the workloads' CPU time.

use format::SourceKind;
use sigtrace_tests::*;

/// Perf events need `perf_event_paranoid` ≤ 2; above, `auto` keeps every thread on POSIX.
pub(crate) fn perf_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok().and_then(|s| s.trim().parse::<i32>().ok()).unwrap_or(3) <= 2
}

/// Sample records (not weight) of thread `tid`.
fn records_of(trace: &format::Trace, tid: u32) -> u64 {
    trace.generations.iter().map(|g| g.samples.iter().filter(|s| g.threads[s.thread as usize].tid == tid).count() as u64).sum()
}

#[test]
fn a_thread_that_computes_then_serves_then_computes_moves_with_it() {
    let _alone = alone();
    let dir = scratch_dir("compute-serve");
    let program = compile_c("compute_serve", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["400", "400"], &[], &dir);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let trace = run.trace();
    let header = trace.header.as_ref().expect("header");
    assert_eq!(header.timer, "auto");
    let main_tid = header.pid;
    let main_cpu = run.reported("main cpu_ns");
    let account =
        |tid: u32| trace.sources.threads.iter().find(|t| t.tid == tid).copied().unwrap_or_else(|| panic!("no source account of {tid}: {:?}", trace.sources));
    let main = account(main_tid);
    let peer_tid = trace.sources.threads.iter().map(|t| t.tid).find(|&tid| tid != main_tid).expect("the peer's account");
    let peer = account(peer_tid);
    eprintln!("main {main:?}\npeer {peer:?}\nswitch cost {} ns", trace.sources.switch_cost_ns);

    // The weights add up to the CPU time whatever the source, across the moves.
    let expected = expected_samples(main_cpu, u64::from(header.hz));
    let accounted = accounted_by_tid(&trace).get(&main_tid).copied().unwrap_or(0) as f64;
    assert!((0.9 * expected..=1.1 * expected).contains(&accounted), "main: weight {accounted} for {expected:.0} periods of CPU");
    let sourced = (main.perf_cpu_ns + main.posix_cpu_ns) as f64;
    assert!((sourced - main_cpu as f64).abs() <= 0.05 * main_cpu as f64, "the sources account for {sourced} ns of {main_cpu} ns");

    if !perf_allowed() {
        for account in [main, peer] {
            assert_eq!((account.last, account.moves_to_perf), (SourceKind::Posix, 0), "{account:?}");
        }
        return;
    }
    // The peer only ever serves: it leaves its perf event at its first look, after 5 ms of
    // CPU (its waiting calls look too: it takes few samples, its overflows in the kernel being
    // dropped), and never earns it back. (A peer starved of CPU on a crowded machine may not
    // have used a window's worth.)
    assert_eq!(peer.moves_to_perf, 0, "{peer:?}");
    if peer.perf_cpu_ns + peer.posix_cpu_ns >= 20_000_000 {
        assert_eq!((peer.last, peer.moves_to_posix), (SourceKind::Posix, 1), "{peer:?}");
        assert!(peer.perf_cpu_ns <= 20_000_000, "{peer:?}");
    }
    // Computing keeps the perf event, serving loses it, computing earns it back.
    assert_eq!(main.last, SourceKind::Perf, "{main:?}");
    assert!(main.moves_to_perf >= 1 && main.moves_to_posix >= 1, "{main:?}");
    assert!(trace.sources.switch_cost_ns > 0, "the per-switch cost was measured");
    // While computing, the full rate: a POSIX timer would give a quarter of it (250 Hz ticks).
    // (On a loaded machine the preemptions of the second computing phase may keep it on POSIX
    // for a while: they cost a perf event too.)
    let computing_ns = run.reported("phase1_ns") + run.reported("phase3_ns");
    let records = records_of(&trace, main_tid) as f64;
    let full_rate = expected_samples(computing_ns, u64::from(header.hz));
    assert!(records >= 0.4 * full_rate, "main: {records} records for {full_rate:.0} periods of computing");

    let info = info_json(&run.traces[0]);
    let sources = info["sources"].as_array().expect("info lists the sources");
    assert!(sources.iter().any(|s| s["tid"] == main_tid && s["source"] == "perf" && s["moves_to_posix"].as_u64() >= Some(1)), "{info}");
    let text = String::from_utf8_lossy(&cli(&["info", run.traces[0].to_str().unwrap()]).stdout).to_string();
    assert!(text.contains("sampling sources") && text.contains("to perf: few switches: it computes"), "{text}");
}

/// The per-switch price is measured (15 enable/disable pairs of a perf event: ~0.4–0.6 ms of a
/// short process's CPU on a virtual machine) only when a thread's window held voluntary
/// switches to price: a single-threaded loop that never waits never pays for it, and keeps its
/// perf event through every window. (A loaded machine may make even a loop wait now and then,
/// on a page or a lock of the kernel's: such a run proves nothing and is run again.)
#[test]
fn a_thread_that_never_waits_pays_for_no_switch_price() {
    let _guard = beside_others();
    let build = scratch_dir("never-waits-build");
    let program = compile_c("single_threaded", &["-O2", "-g", "-pthread"], &build);
    let mut runs_without_a_wait = 0;
    for attempt in 0..4 {
        let dir = scratch_dir(&format!("never-waits-{attempt}"));
        let run = run_traced(&program, &["100", "loop"], &[], &dir);
        assert!(run.output.status.success(), "{}", run.stderr);
        assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
        if run.reported("voluntary_switches") != 0 {
            continue;
        }
        runs_without_a_wait += 1;
        let trace = run.trace();
        let header = trace.header.as_ref().expect("header");
        assert_eq!(header.timer, "auto");
        assert_eq!(trace.sources.switch_cost_ns, 0, "no window had a switch to price: {:?}", trace.sources);
        let main = trace.sources.threads.iter().find(|t| t.tid == header.pid).copied().expect("the thread's account");
        let expected = if perf_allowed() { SourceKind::Perf } else { SourceKind::Posix };
        assert_eq!((main.last, main.moves_to_perf, main.moves_to_posix), (expected, 0, 0), "{main:?}");
        assert!(main.perf_cpu_ns + main.posix_cpu_ns >= 50_000_000, "at least ten 5 ms windows were looked at: {main:?}");
    }
    assert!(runs_without_a_wait > 0, "every run waited: nothing was checked");
}

/// A thread that waits once every 10 ms of its CPU time (a program reading its files) keeps its
/// perf event without the per-switch cost being measured: even at twice the dearest cost ever
/// measured, a window's waits stay under the 4% that would move it (the measurement alone costs
/// a short program ~0.2 ms on a VM). A run that waited more than its slices (a loaded machine)
/// proves nothing and is run again.
#[test]
fn a_thread_that_waits_rarely_pays_for_no_switch_price() {
    let _guard = beside_others();
    let build = scratch_dir("rare-waits-build");
    let program = compile_c("rare_waits", &["-O2", "-g"], &build);
    let mut checked = 0;
    for attempt in 0..4 {
        let dir = scratch_dir(&format!("rare-waits-{attempt}"));
        let run = run_traced(&program, &["200"], &[], &dir);
        assert!(run.output.status.success(), "{}", run.stderr);
        assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
        let (slices, switches) = (run.reported("slices"), run.reported("voluntary_switches"));
        assert!(switches > 0, "{}", run.stderr);
        if switches > slices + 1 {
            continue;
        }
        checked += 1;
        let trace = run.trace();
        assert_eq!(trace.sources.switch_cost_ns, 0, "{switches} waits in {slices} slices of 10 ms were priced: {:?}", trace.sources);
        let header = trace.header.as_ref().expect("header");
        let main = trace.sources.threads.iter().find(|t| t.tid == header.pid).copied().expect("the thread's account");
        assert_eq!((main.moves_to_perf, main.moves_to_posix), (0, 0), "{main:?}");
    }
    assert!(checked > 0, "every run waited more than once a slice: nothing was checked");
}

#[test]
fn a_forced_source_never_moves() {
    let _alone = alone();
    let build = scratch_dir("forced-source");
    let program = compile_c("compute_serve", &["-O2", "-g"], &build);
    let mut forced = vec![("posix", SourceKind::Posix)];
    if perf_allowed() {
        forced.push(("perf", SourceKind::Perf));
    }
    for (name, kind) in forced {
        let dir = scratch_dir(&format!("forced-source-{name}"));
        let run = run_traced(&program, &["100", "100"], &[("SIGTRACE_TIMER", name)], &dir);
        assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
        let trace = run.trace();
        assert_eq!(trace.header.as_ref().unwrap().timer, name);
        assert_eq!(trace.sources.threads.len(), 2, "{:?}", trace.sources);
        for account in &trace.sources.threads {
            assert_eq!((account.last, account.moves_to_perf, account.moves_to_posix), (kind, 0, 0), "{account:?}");
        }
        assert_eq!(counter(&trace, "timer.moves_to_perf") + counter(&trace, "timer.moves_to_posix"), 0);
    }
}

/// Wall-clock mode samples running threads with the same per-thread timers: the same choice.
#[test]
fn wall_mode_chooses_the_running_samples_source_the_same_way() {
    let _alone = alone();
    let dir = scratch_dir("compute-serve-wall");
    let program = compile_c("compute_serve", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["300", "300"], &[("SIGTRACE_MODE", "wall")], &dir);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
    let trace = run.trace();
    let header = trace.header.as_ref().expect("header");
    assert_eq!((header.mode.as_str(), header.timer.as_str()), ("wall", "auto"));
    let main = trace.sources.threads.iter().find(|t| t.tid == header.pid).copied().expect("the main thread's account");
    let peer = trace.sources.threads.iter().find(|t| t.tid != header.pid).copied().expect("the peer's account");
    if perf_allowed() {
        assert_eq!(main.last, SourceKind::Perf, "{main:?}");
        assert!(main.moves_to_posix >= 1, "{main:?}");
        if peer.perf_cpu_ns + peer.posix_cpu_ns >= 20_000_000 {
            assert_eq!(peer.last, SourceKind::Posix, "{peer:?}");
        }
    }
    let sourced = (main.perf_cpu_ns + main.posix_cpu_ns) as f64;
    let main_cpu = run.reported("main cpu_ns") as f64;
    assert!((sourced - main_cpu).abs() <= 0.05 * main_cpu, "the sources account for {sourced} ns of {main_cpu} ns");
}

/// A POSIX timer fires on scheduler ticks only, so the CPU time since its last signal (up to
/// a tick; on a loaded machine, 100 ms of CPU and more) has no sample when the process ends:
/// the exiting thread samples it on its exit path. Ten runs of 5 ms of computing at 10 kHz,
/// each ending right after it. (Before, at 250 Hz ticks, the weight was 85–187 of 500 periods.)
/// The timer counts the moments from its random phase (less than a period after it was armed,
/// before main) to the exit (after main): at least main's periods less one per run.
#[test]
fn a_posix_timer_s_last_moments_are_sampled_when_the_process_exits() {
    let _alone = alone();
    assert_exit_tail_sampled("posix", 1.0);
}

/// The process-wide itimer is tick-limited too, and weighs a sample by the process CPU time
/// since the previous one: the CPU time after its last signal had no sample (beside two CPU
/// hogs, 1469 of 1600 periods in `sampling_accuracy`); the thread that ends the process samples
/// it on its exit path. Each itimer sample rounds its CPU time to whole periods (±½ each, one
/// or two signals a run here) and the tail at random (< 1): two periods a run either way.
/// (Without the tail, beside two CPU hogs: weight 77 for 500 periods of main.)
#[test]
fn the_process_wide_itimer_s_last_cpu_time_is_sampled_when_the_process_exits() {
    let _alone = alone();
    assert_exit_tail_sampled("itimer", 2.0);
}

/// Ten runs of 5 ms of computing at 10 kHz under `timer`, each ending right after it: the
/// weight is at least main's periods and at most the thread's whole CPU time's, within `slack`
/// periods a run.
fn assert_exit_tail_sampled(timer: &str, slack: f64) {
    let build = scratch_dir(&format!("{timer}-exit-tail-build"));
    let program = compile_c("exit_tail", &["-O2", "-g", "-fno-omit-frame-pointer"], &build);
    let (hz, runs) = (10_000u64, 10);
    let (mut weight, mut main_periods, mut thread_periods) = (0u64, 0.0, 0.0);
    for run_index in 0..runs {
        let dir = scratch_dir(&format!("{timer}-exit-tail-{run_index}"));
        let run = run_traced(&program, &["5"], &[("SIGTRACE_TIMER", timer), ("SIGTRACE_HZ", "10000")], &dir);
        assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
        assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
        let trace = run.trace();
        assert!(trace.end.is_some(), "the trace ended cleanly");
        weight += total_weight(&trace);
        main_periods += expected_samples(run.reported("main cpu_ns"), hz);
        let thread_cpu = trace.generations.last().and_then(|g| g.threads.iter().map(|t| t.cpu_ns).max()).unwrap_or(0);
        thread_periods += expected_samples(thread_cpu, hz);
    }
    let (weight, slack) = (weight as f64, slack * runs as f64);
    eprintln!("{timer} exit tails: weight {weight} for {main_periods:.0} periods in main, {thread_periods:.0} in the thread");
    assert!(weight >= main_periods - slack, "{timer}: weight {weight} for {main_periods:.0} periods of main's CPU");
    assert!(weight <= thread_periods + slack, "{timer}: weight {weight} for {thread_periods:.0} periods of the thread's CPU");
}

/// A forked child's thread starts on the source its forking thread had: a server that has left
/// its perf event for a POSIX timer forks a worker, which starts on a POSIX timer (not on a perf
/// event it would pay for at every switch of a short life) and earns a perf event by computing.
#[test]
fn a_forked_child_starts_on_the_source_of_its_forking_thread() {
    let _alone = alone();
    let dir = scratch_dir("serve-then-fork");
    let program = compile_c("serve_then_fork", &["-O2", "-g", "-pthread"], &dir);
    let run = run_traced(&program, &["300", "100"], &[], &dir);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.traces.len(), 2, "parent and child: {:?}", run.traces);
    let child_pid = run.reported("child_pid") as u32;
    let traces: Vec<format::Trace> = run.traces.iter().map(|path| read_trace(path)).collect();
    let pid_of = |trace: &format::Trace| trace.header.as_ref().expect("header").pid;
    let parent = traces.iter().find(|trace| pid_of(trace) != child_pid).expect("the parent's trace");
    let child = traces.iter().find(|trace| pid_of(trace) == child_pid).expect("the child's trace");
    let account = |trace: &format::Trace, tid: u32| {
        trace.sources.threads.iter().find(|t| t.tid == tid).copied().unwrap_or_else(|| panic!("no account of {tid}: {:?}", trace.sources))
    };
    let server = account(parent, pid_of(parent));
    let worker = account(child, child_pid);
    eprintln!("server {server:?}\nworker {worker:?}");

    // Whatever the source, the worker's weight is its CPU time.
    let expected = expected_samples(run.reported("child cpu_ns"), 999);
    let accounted = accounted_by_tid(child).get(&child_pid).copied().unwrap_or(0) as f64;
    assert!((0.85 * expected - 5.0..=1.15 * expected + 5.0).contains(&accounted), "worker: weight {accounted} for {expected:.0} periods of CPU");
    if !perf_allowed() || server.last != SourceKind::Posix {
        // No perf events, or a server starved of CPU on a crowded machine that did not use a
        // window's worth of it to be moved.
        return;
    }
    assert!(worker.posix_cpu_ns > 0, "the worker started on a POSIX timer, as its forking thread was: {worker:?}");
    assert!(worker.moves_to_perf >= 1 && worker.last == SourceKind::Perf, "computing earned it a perf event: {worker:?}");
}
