//! Wall-clock mode (`SIGTRACE_MODE=wall`) on a program whose threads sleep, wait on a pipe (through
//! libc's `read`, and through a raw `syscall`), a mutex and epoll, and burn CPU: every thread's wall time is accounted, each in the right
//! state and call, with stacks that reach the waiting function, and no thread is ever
//! interrupted (no `EINTR`, no shortened `sleep`).

use std::collections::HashMap;

use format::{call_name, EventKind, ThreadState, Trace};
use sigtrace_tests::*;

/// How long the threads run, ms (the sleeper's last `sleep(1)` may add up to a second).
const RUN_MS: &str = "1500";

/// One thread's wall time by state (ns) and its lifetime (ns), with the calls it was blocked in.
#[derive(Debug, Default)]
struct ThreadWall {
    running: u64,
    runnable: u64,
    blocked: u64,
    calls: HashMap<String, u64>,
    lifetime: u64,
}

impl ThreadWall {
    fn accounted(&self) -> u64 {
        self.running + self.runnable + self.blocked
    }

    /// The share of its lifetime spent in `ns`, in points.
    fn points(&self, ns: u64) -> f64 {
        100.0 * ns as f64 / self.lifetime.max(1) as f64
    }

    /// The call it was blocked in most.
    fn main_call(&self) -> &str {
        self.calls.iter().max_by_key(|(_, ns)| **ns).map_or("", |(name, _)| name.as_str())
    }
}

/// Wall time per thread name, from the trace's samples and thread start/exit events.
fn wall_by_thread(trace: &Trace) -> HashMap<String, ThreadWall> {
    let header = trace.header.as_ref().expect("a header");
    assert_eq!(header.mode, "wall");
    let period = 1_000_000_000 / u64::from(header.hz);
    let mut names = HashMap::new();
    let mut lives: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut walls: HashMap<u32, ThreadWall> = HashMap::new();
    let trace_end = trace.generations.last().map_or(0, |generation| generation.end_time);
    for generation in &trace.generations {
        for sample in &generation.samples {
            let thread = &generation.threads[sample.thread as usize];
            let wall = walls.entry(thread.tid).or_default();
            let ns = u64::from(sample.weight) * period;
            match sample.state.state {
                ThreadState::Running => wall.running += ns,
                ThreadState::Runnable => wall.runnable += ns,
                ThreadState::Blocked => {
                    wall.blocked += ns;
                    *wall.calls.entry(call_name(sample.state.call)).or_default() += ns;
                }
            }
        }
        for thread in &generation.threads {
            if !thread.name.is_empty() {
                names.insert(thread.tid, thread.name.clone());
            }
        }
        for event in &generation.events {
            let tid = generation.threads[event.thread as usize].tid;
            let life = lives.entry(tid).or_insert((generation.start_time, trace_end));
            match event.kind {
                EventKind::ThreadStart => life.0 = event.time,
                EventKind::ThreadExit => life.1 = event.time,
                _ => {}
            }
        }
    }
    let ns_per_tick = 1_000_000_000 / header.clock_hz.max(1);
    walls
        .into_iter()
        .map(|(tid, mut wall)| {
            let (start, end) = lives.get(&tid).copied().unwrap_or((0, 0));
            wall.lifetime = end.saturating_sub(start) * ns_per_tick;
            (names.get(&tid).cloned().unwrap_or_default(), wall)
        })
        .collect()
}

/// Runs wall_mix compiled with `flags` in wall mode and checks states, calls, stacks and that
/// no call was interrupted.
fn check_wall_mix(flags: &[&str], label: &str) {
    let dir = scratch_dir(&format!("wall-{label}"));
    let program = compile_c("wall_mix", flags, &dir);
    let run = run_traced(&program, &[RUN_MS], &[("SIGTRACE_MODE", "wall")], &dir);
    assert!(run.output.status.success(), "{label}: wall_mix failed: {}", run.stderr);
    assert_eq!(run.stdout.trim(), "eintr=0 short_sleeps=0", "{label}: a blocking call was interrupted");
    assert!(run.sigtrace_lines().is_empty(), "{label}: {:?}", run.sigtrace_lines());
    let trace = run.trace();
    let walls = wall_by_thread(&trace);
    let thread = |name: &str| walls.get(name).unwrap_or_else(|| panic!("{label}: no thread {name} in {:?}", walls.keys().collect::<Vec<_>>()));

    // Every thread's states add up to its lifetime (a blocked sample stands for the wall time
    // since the previous tick: within a tick or two of 10 ms, and 5 points).
    for name in ["busy", "sleeper", "reader", "waiter", "poller", "raw_reader", "wall_mix"] {
        let wall = thread(name);
        let points = wall.points(wall.accounted());
        assert!((points - 100.0).abs() <= 5.0, "{label}: {name} accounted {points:.1}% of its {} ms: {wall:?}", wall.lifetime / 1_000_000);
    }
    // Each in the right state and call.
    let busy = thread("busy");
    // It sleeps 100 µs every 100 ms, and takes the mutex the waiter queues on: on a loaded
    // machine those calls last longer (a woken thread waits for a CPU inside its call).
    assert!(busy.points(busy.running + busy.runnable) >= 85.0, "{label}: busy is on a CPU or waiting for one: {busy:?}");
    // Blocked, but for its wake-ups: the waiter is woken ten times a second and then waits for
    // a CPU (runnable) and runs, as long as the machine's load makes it: the kernel's count of
    // that time (schedstat: on a CPU plus waiting for one) is not blocked. Without that count,
    // 15 points are allowed for it. The others wake rarely.
    let waiter = thread("waiter");
    let waiter_unblocked = run.stderr.lines().find_map(|line| line.strip_prefix("waiter unblocked_ns=")?.trim().parse::<u64>().ok());
    let waiter_least_blocked = waiter_unblocked.map_or(85.0, |ns| 95.0 - waiter.points(ns));
    for (name, calls, least_blocked) in [
        ("sleeper", &["sleep", "nanosleep"][..], 95.0),
        ("reader", &["read"][..], 95.0),
        ("waiter", &["pthread_mutex_lock"][..], waiter_least_blocked),
        ("poller", &["epoll_wait"][..], 95.0),
        // Through `syscall(SYS_read, …)`: not interposed, found through /proc.
        ("raw_reader", &["syscall:read"][..], 95.0),
        ("wall_mix", &["usleep"][..], 90.0),
    ] {
        let wall = thread(name);
        assert!(wall.points(wall.blocked) >= least_blocked, "{label}: {name} is blocked: {wall:?}");
        assert!(calls.contains(&wall.main_call()), "{label}: {name} waits in {calls:?}: {wall:?}");
    }

    // The blocked stacks reach the waiting function, its thread's function and the thread's root.
    let stacks = folded_stacks(&run.traces[0]);
    for (function, thread_function) in
        [("sleep_a_while", "sleeper"), ("read_the_pipe", "reader"), ("wait_for_the_lock", "waiter"), ("poll_for_events", "poller")]
    {
        let through: Vec<&Vec<String>> = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == function)).map(|(frames, _)| frames).collect();
        assert!(!through.is_empty(), "{label}: no stack through {function}");
        let heaviest = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == function)).max_by_key(|(_, weight)| *weight).map(|(frames, _)| frames);
        let frames = heaviest.expect("a stack");
        assert!(frames.iter().any(|f| f == thread_function) && frames.iter().any(|f| f == "start_thread"), "{label}: {function}'s stack: {frames:?}");
    }
    let main_stack = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == "main")).max_by_key(|(_, weight)| *weight).map(|(frames, _)| frames);
    assert!(main_stack.is_some_and(|frames| frames.first().is_some_and(|root| root == "_start")), "{label}: main's stack: {main_stack:?}");
}

#[test]
fn every_thread_is_accounted_in_its_state_and_call_with_frame_pointers() {
    let _alone = alone();
    check_wall_mix(&["-O2", "-g", "-fno-omit-frame-pointer"], "fp");
}

#[test]
fn every_thread_is_accounted_in_its_state_and_call_without_frame_pointers() {
    let _alone = alone();
    check_wall_mix(&["-O2", "-g", "-fomit-frame-pointer"], "nofp");
}

#[test]
fn cpu_mode_has_no_states_and_wall_mode_needs_no_signal_for_a_sleeping_thread() {
    let _beside_others = beside_others();
    let dir = scratch_dir("wall-cpu");
    let program = compile_c("wall_mix", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["300"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "eintr=0 short_sleeps=0");
    let trace = run.trace();
    assert_eq!(trace.header.as_ref().map(|header| header.mode.as_str()), Some("cpu"));
    let states: Vec<_> =
        trace.generations.iter().flat_map(|generation| &generation.samples).filter(|sample| sample.state.state != ThreadState::Running).collect();
    assert!(states.is_empty(), "a cpu trace has running samples only: {:?}", states.first());
    let sleeper_weight: u64 = trace
        .generations
        .iter()
        .flat_map(|generation| generation.samples.iter().filter(|sample| generation.threads[sample.thread as usize].name == "sleeper"))
        .map(|sample| u64::from(sample.weight))
        .sum();
    assert!(sleeper_weight <= 5, "a sleeping thread has almost no CPU samples: {sleeper_weight}");
}

#[test]
fn a_call_left_by_longjmp_stops_counting_as_blocked_once_its_thread_runs() {
    let _alone = alone();
    let dir = scratch_dir("wall-longjmp");
    let program = compile_c("wall_longjmp", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_MODE", "wall")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "jumped");
    let walls = wall_by_thread(&run.trace());
    let main = walls.get("wall_longjmp").expect("the main thread");
    // Blocked in read for the 300 ms until the alarm, and found running once its CPU samples
    // reach the drain thread (a drain period and a look or two later).
    let read_ms = main.calls.get("read").copied().unwrap_or(0) / 1_000_000;
    assert!((250..=600).contains(&read_ms), "blocked in read for {read_ms} ms: {main:?}");
    let points = main.points(main.accounted());
    assert!((points - 100.0).abs() <= 10.0, "accounted {points:.1}% of its life: {main:?}");
}

#[test]
fn threads_sharing_one_cpu_are_runnable_when_they_do_not_run() {
    let _alone = alone();
    let dir = scratch_dir("wall-pinned");
    let program = compile_c("wall_pinned", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["1000"], &[("SIGTRACE_MODE", "wall")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let walls = wall_by_thread(&run.trace());
    for name in ["burner_a", "burner_b"] {
        let wall = walls.get(name).unwrap_or_else(|| panic!("no {name}"));
        // Two threads on one CPU: each runs at most about half the time (less when others share
        // that CPU too) and waits for it the rest; together the states cover its life.
        let (running, runnable) = (wall.points(wall.running), wall.points(wall.runnable));
        assert!(running <= 65.0 && runnable >= 30.0, "{name}: running {running:.1}%, runnable {runnable:.1}%: {wall:?}");
        assert!(wall.points(wall.blocked) <= 5.0, "{name} never blocks: {wall:?}");
        let points = wall.points(wall.accounted());
        assert!((points - 100.0).abs() <= 5.0, "{name} accounted {points:.1}% of its life: {wall:?}");
    }
    // A runnable sample carries the stack the thread last ran in.
    let stacks = folded_stacks(&run.traces[0]);
    let burning = weight_through(&stacks, "burn_on_cpu0");
    let total: u64 = stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == "burner")).map(|(_, weight)| weight).sum();
    assert!(burning * 100 >= total * 95, "runnable time lands in burn_on_cpu0: {burning} of {total}");
}
