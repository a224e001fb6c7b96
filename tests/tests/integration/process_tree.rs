//! Following the process tree and losing nothing on the way out: fork, exec, `_exit`, fatal
//! signals, `SIGKILL`, `exit` under running threads, the program's own signal handlers, many
//! short-lived threads.

use sigtrace_tests::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

const FLAGS: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer"];

/// Runs the crash workload ending `how`, traced and plain; checks the status is the same and the
/// trace holds at least `min_share` of CPU time × Hz. Returns the trace.
fn crash_run(how: &str, min_share: f64) -> format::Trace {
    let dir = scratch_dir(&format!("crash-{how}"));
    let program = compile_c("crash", FLAGS, &dir);
    let plain = run_plain(&program, &[how, "300"], &dir);
    let run = run_traced(&program, &[how, "1500"], &[], &dir);
    assert_eq!(run.output.status.code(), plain.status.code(), "{how}: exit code");
    assert_eq!(run.output.status.signal(), plain.status.signal(), "{how}: killing signal");
    assert_eq!(run.stdout, format!("about to {how}\n"));
    let trace = run.trace();
    let expected = run.reported_cpu_ns() as f64 * 999.0 / 1e9;
    let weight = total_weight(&trace) as f64;
    assert!(weight >= min_share * expected, "{how}: {weight} of {expected:.0} expected samples in the trace");
    trace
}

#[test]
fn abort_writes_the_open_generation_and_dies_of_sigabrt() {
    let _beside_others = beside_others();
    let trace = crash_run("abort", 0.85);
    let end = trace.end.expect("end record");
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, libc::SIGABRT as u32));
}

#[test]
fn a_segfault_writes_the_open_generation_and_dies_of_sigsegv() {
    let _beside_others = beside_others();
    let trace = crash_run("segv", 0.85);
    let end = trace.end.expect("end record");
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, libc::SIGSEGV as u32));
}

/// The main thread calls exit(7) once it has burned 100 ms of CPU and each of its four spinning
/// threads at least 50 ms (50 periods at 999 Hz): all five must have samples.
#[test]
fn exit_under_running_threads_writes_the_open_generation() {
    let _beside_others = beside_others();
    let dir = scratch_dir("exit-busy");
    let program = compile_c("exit_busy", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &[], &[], &dir);
    assert_eq!(run.output.status.code(), Some(7));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let trace = run.trace();
    assert_eq!(trace.ignored_bytes, 0);
    let sampled: std::collections::HashSet<u32> = trace.generations.iter().flat_map(|g| g.samples.iter().map(|s| g.threads[s.thread as usize].tid)).collect();
    assert_eq!(sampled.len(), 5, "main and its four spinners were sampled");
}

#[test]
fn underscore_exit_writes_the_open_generation() {
    let _beside_others = beside_others();
    let trace = crash_run("_exit", 0.85);
    assert_eq!(trace.end.map(|e| e.reason), Some(format::EndReason::UnderscoreExit));
}

#[test]
fn sigkill_costs_at_most_the_open_generation() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sigkill");
    let program = compile_c("crash", FLAGS, &dir);
    let mut child = Command::new(&program)
        .args(["wait", "1500"])
        .current_dir(&dir)
        .env("LD_PRELOAD", shim())
        .env("SIGTRACE_OUTPUT", dir.join("trace.%p.sigtrace"))
        .env("SIGTRACE_GENERATION_MS", "200")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut child, "waiting");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    let cpu_ns: f64 = seen.lines().find_map(|l| l.strip_prefix("cpu_ns=")).unwrap().trim().parse().unwrap();
    let traces: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(".sigtrace")).collect();
    let trace = read_trace(&traces[0]);
    assert!(trace.end.is_none(), "a killed process leaves no end record");
    let weight = total_weight(&trace) as f64;
    assert!(weight >= 0.6 * cpu_ns * 999.0 / 1e9, "{weight} samples for {cpu_ns} ns of CPU");
}

/// The parent burns 2 × 150 ms of CPU, each child 200 ms (~200 samples at 999 Hz).
#[test]
fn forked_children_and_an_exec_get_traces_of_their_own() {
    let _beside_others = beside_others();
    let dir = scratch_dir("forks");
    let program = compile_c("forks", FLAGS, &dir);
    let run = run_traced(&program, &[], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.stdout.contains("forks done, 0 failures"), "{}", run.stdout);
    assert_eq!(run.traces.len(), 5, "parent, 3 children, the shell: {:?}", run.traces);
    let cpu_by_pid = run.cpu_by_id("pid=");
    assert_eq!(cpu_by_pid.len(), 4);
    let mut shell_seen = false;
    let mut parent_pid = 0;
    for path in &run.traces {
        let trace = read_trace(path);
        let header = trace.header.clone().unwrap();
        let stacks = folded_stacks(path);
        let child_weight = weight_through(&stacks, "child_work");
        let parent_weight = weight_through(&stacks, "parent_work");
        if header.executable.ends_with("sh") || header.executable.contains("dash") || header.executable.contains("bash") {
            shell_seen = true;
            assert_eq!(child_weight + parent_weight, 0, "the shell's trace holds only the shell");
            continue;
        }
        let cpu = cpu_by_pid[&header.pid] as f64;
        if parent_weight > 0 {
            parent_pid = header.pid;
            assert_eq!(child_weight, 0, "children's work is not in the parent's trace");
        } else {
            assert!(child_weight > 0, "child {} sampled its work", header.pid);
            // A child's CPU clock starts at zero at fork: its samples stand for its own CPU time
            // only, never for the parent's (5% leaves ~10 periods for rounding at 200 ms).
            assert!((total_weight(&trace) as f64) < cpu * 999.0 / 1e9 * 1.05, "child {}: no sample counted twice", header.pid);
        }
    }
    assert!(shell_seen, "the exec'd shell was traced");
    assert!(parent_pid != 0);
}

/// 20 rounds of 5 ms of CPU with SIGPROF blocked and 15 ms unblocked under the program's own
/// 100 Hz ITIMER_PROF: its handler runs ~30 times, sigtrace takes ~400 samples.
#[test]
fn the_programs_own_sigprof_handler_and_itimer_keep_working() {
    let _beside_others = beside_others();
    let dir = scratch_dir("own-sigprof");
    let program = compile_c("own_sigprof", FLAGS, &dir);
    let run = run_traced(&program, &[], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, "own handler ran yes\n", "{}", run.stderr);
    let trace = run.trace();
    let expected = run.reported_cpu_ns() as f64 * 999.0 / 1e9;
    let weight = total_weight(&trace) as f64;
    assert!(weight >= 0.95 * expected, "sampling went on: {weight} of {expected:.0}");
}

/// The program changes its SIGPROF action in a tight loop while its own itimer sends it
/// SIGPROF: a signal landing while sigtrace records the new action once made the forwarding
/// handler wait forever for that write (every run hung). `timeout` turns a hang into a failure.
#[test]
fn the_program_changing_its_sigprof_action_under_its_own_itimer_never_hangs() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sigaction-storm");
    let program = compile_c("sigaction_storm", FLAGS, &dir);
    let run = run_traced(Path::new("timeout"), &["-s", "KILL", "30", program.to_str().unwrap(), "0.5"], &[], &dir);
    assert!(run.output.status.success(), "{:?} (killed after 30 s: hung)\n{}", run.output.status, run.stderr);
    let handled: u32 = run.stdout.trim().strip_prefix("handled ").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(handled > 0, "the program's handler ran: {:?}", run.stdout);
}

/// 10 000 threads of 200 µs of CPU each, 64 at a time.
#[test]
fn ten_thousand_short_lived_threads_in_waves_run_in_bounded_memory() {
    let _beside_others = beside_others();
    let dir = scratch_dir("waves");
    let program = compile_c("thread_waves", FLAGS, &dir);
    let plain = run_plain(&program, &["10000"], &dir);
    let run = run_traced(&program, &["10000"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let peak = |stderr: &str| -> u64 { stderr.lines().find_map(|l| l.strip_prefix("peak_rss_kb=")).unwrap().trim().parse().unwrap() };
    let (plain_kb, traced_kb) = (peak(&String::from_utf8_lossy(&plain.stderr)), peak(&run.stderr));
    println!("peak RSS: {plain_kb} kB without sigtrace, {traced_kb} kB with");
    assert!(traced_kb < plain_kb + 64 * 1024, "peak RSS {traced_kb} kB vs {plain_kb} kB without sigtrace");
    let trace = run.trace();
    let threads: std::collections::HashSet<u32> = trace.generations.iter().flat_map(|g| g.threads.iter().map(|t| t.tid)).collect();
    assert!(threads.len() > 5000, "most threads appear in the trace ({})", threads.len());
}

#[test]
fn a_shell_pipeline_and_a_parallel_make_are_traced_with_unchanged_output() {
    let _beside_others = beside_others();
    let dir = scratch_dir("make");
    for n in 0..4 {
        std::fs::write(dir.join(format!("unit{n}.c")), format!("int unit{n}(int x) {{ return x * {n} + 1; }}\n")).unwrap();
    }
    std::fs::write(dir.join("main.c"), "int unit0(int);\nint main(void) { return unit0(1) - 1; }\n").unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "OBJS = main.o unit0.o unit1.o unit2.o unit3.o\nprog: $(OBJS)\n\tgcc -o prog $(OBJS)\n%.o: %.c\n\tgcc -O2 -c $< -o $@\nclean:\n\trm -f prog *.o\n",
    )
    .unwrap();
    let make = |traced: bool| {
        let mut command = Command::new("make");
        command.args(["-j2", "-s", "prog"]).current_dir(&dir);
        if traced {
            command.env("LD_PRELOAD", shim()).env("SIGTRACE_OUTPUT", dir.join("t.%e.%p.sigtrace"));
        }
        let output = command.output().unwrap();
        let _ = Command::new("make").args(["-s", "clean"]).current_dir(&dir).output();
        output
    };
    let plain = make(false);
    let traced = make(true);
    assert!(plain.status.success());
    assert_eq!(traced.status.code(), plain.status.code());
    assert_eq!(traced.stdout, plain.stdout);
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("t.")).collect();
    assert!(names.iter().any(|n| n.starts_with("t.make.")), "make was traced: {names:?}");
    let compilers = names.iter().filter(|n| n.starts_with("t.cc1.")).count();
    assert_eq!(compilers, 5, "every compiler process was traced: {names:?}");
    for name in &names {
        let trace = read_trace(&dir.join(name));
        assert!(trace.header.is_some() && trace.stopped_because.is_none(), "{name} is a complete trace");
    }

    let pipeline = |traced: bool| {
        let mut command = Command::new("bash");
        command.args(["-c", "seq 1 20000 | sort -r | head -n 3; echo status ${PIPESTATUS[*]}"]).current_dir(&dir);
        if traced {
            command.env("LD_PRELOAD", shim()).env("SIGTRACE_OUTPUT", dir.join("p.%e.%p.sigtrace"));
        }
        command.output().unwrap()
    };
    let (plain, traced) = (pipeline(false), pipeline(true));
    assert_eq!(traced.stdout, plain.stdout);
    assert_eq!(traced.status.code(), plain.status.code());
    let traced_programs: std::collections::HashSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("p.")).and_then(|n| n.split('.').next()).map(str::to_string))
        .collect();
    for program in ["bash", "seq", "sort", "head"] {
        assert!(traced_programs.contains(program), "{program} was traced: {traced_programs:?}");
    }
}

#[test]
fn follow_fork_and_exec_can_be_switched_off() {
    let _beside_others = beside_others();
    let dir = scratch_dir("no-follow");
    let program = compile_c("forks", FLAGS, &dir);
    let run = run_traced(&program, &[], &[("SIGTRACE_FOLLOW_FORK", "0")], &dir);
    assert!(run.output.status.success());
    assert_eq!(run.traces.len(), 2, "the parent and the exec'd shell (a new image is traced again): {:?}", run.traces);
    let dir = scratch_dir("no-follow-exec");
    let run = run_traced(&program, &[], &[("SIGTRACE_FOLLOW_EXEC", "0")], &dir);
    assert!(run.output.status.success());
    assert_eq!(run.traces.len(), 4, "parent and 3 children, not the shell: {:?}", run.traces);
}

/// An image started by `exec` counts its CPU time from its own start: the process's CPU clock
/// goes on across `exec`, and the 300 ms the first image burnt are not the second image's (its
/// `info` said 0.6 of its CPU time was outside its samples).
#[test]
fn an_execd_image_counts_its_cpu_time_from_its_own_start() {
    let _beside_others = beside_others();
    let dir = scratch_dir("exec-cpu");
    let program = compile_c("exec_burn", FLAGS, &dir);
    let run = run_traced(&program, &["first", "300", "200"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.traces.len(), 2, "one trace an image: {:?}", run.traces);
    let second = run.traces.iter().find(|path| read_trace(path).header.is_some_and(|header| header.args.iter().any(|arg| arg == "second")));
    let info = info_json(second.expect("the second image's trace"));
    let main_cpu = run.reported_cpu_ns() - run.reported("image_start_cpu_ns");
    let cpu = info["cpu_ns"].as_u64().expect("cpu_ns");
    // The trace begins before main (the loader and sigtrace's start-up: a few ms at most here)
    // and ends after it.
    assert!(cpu >= main_cpu && cpu <= main_cpu + 30_000_000, "the second image's CPU time: {cpu} ns in its trace, {main_cpu} ns in its main");
    // Weights add up to the sampled CPU time (~200 periods here).
    let capture = info["capture_ratio"].as_f64().expect("capture_ratio");
    assert!(capture > 0.8, "the second image's capture: {capture}");
}

/// Builds the annotation workload against the installed header.
fn annotate_program(dir: &Path) -> std::path::PathBuf {
    let include = workspace_root().join("shim/include");
    let include_flag = format!("-I{}", include.display());
    compile_c("annotate", &["-O2", "-g", "-fno-omit-frame-pointer", &include_flag, "-ldl"], dir)
}

/// The named worker burns 50 ms of CPU, the "hot" and "cold" regions 100 ms each (~100 samples
/// each at 999 Hz, so each region's report names its function).
#[test]
fn annotations_threads_and_names_are_in_the_trace() {
    let _beside_others = beside_others();
    let dir = scratch_dir("annotate");
    let program = annotate_program(&dir);
    let plain = run_plain(&program, &[], &dir);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "annotate done\n", "runs unchanged without sigtrace");
    let run = run_traced(&program, &[], &[], &dir);
    assert!(run.output.status.success());
    let trace = run.trace();
    let events: Vec<&format::Event> = trace.generations.iter().flat_map(|g| &g.events).collect();
    assert!(events.iter().any(|e| e.kind == format::EventKind::Log && e.category == "app" && e.text == "starting"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.kind == format::EventKind::RegionBegin).count(), 2);
    let worker = trace.generations.iter().flat_map(|g| &g.threads).find(|t| t.name == "named-worker").expect("the thread's name was picked up");
    let worker_tid = worker.tid;
    let worker_events: Vec<format::EventKind> =
        trace.generations.iter().flat_map(|g| g.events.iter().filter(move |e| g.threads[e.thread as usize].tid == worker_tid).map(|e| e.kind)).collect();
    assert_eq!(worker_events, vec![format::EventKind::ThreadStart, format::EventKind::ThreadExit]);

    let report = |region: &str| String::from_utf8_lossy(&cli(&["report", "--region", region, run.traces[0].to_str().unwrap()]).stdout).into_owned();
    let (hot, cold) = (report("hot"), report("cold"));
    assert!(hot.contains(" hot_work ") && !hot.contains(" cold_work "), "{hot}");
    assert!(cold.contains(" cold_work ") && !cold.contains(" hot_work "), "{cold}");
}

#[test]
fn a_log_message_right_before_a_crash_is_kept() {
    let _beside_others = beside_others();
    let dir = scratch_dir("annotate-crash");
    let program = annotate_program(&dir);
    let run = run_traced(&program, &["crash"], &[], &dir);
    assert_eq!(run.output.status.signal(), Some(libc::SIGABRT));
    let trace = run.trace();
    assert!(trace.generations.iter().flat_map(|g| &g.events).any(|e| e.category == "app" && e.text == "about to crash"));
}

#[test]
fn a_sample_signal_arriving_after_its_thread_closed_its_timer_never_kills_the_host() {
    let _beside_others = beside_others();
    // At 10 kHz a thread's last perf signal can still be pending when its exit closes the
    // event; taken for the program's own SIGPROF (left at SIG_DFL) it killed the host with
    // "Profiling timer expired" — the pprof-rs bug. 3000 short threads (200 µs of CPU each,
    // two periods) hit that window.
    let dir = scratch_dir("late-signals");
    let program = compile_c("thread_waves", FLAGS, &dir);
    for _ in 0..2 {
        let run = run_traced(&program, &["3000"], &[("SIGTRACE_HZ", "10000")], &dir);
        assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.stderr);
    }
}
