//! Fault injection: the trace file deleted or its directory removed mid-run, a file size limit
//! and a full file system, interrupted and short writes, a refused perf event, a refused
//! `timer_create`, a full thread registry and a tiny ring. In each the host runs as without
//! sigtrace (same stdout, stderr and exit status as a plain run under the same limits),
//! sigtrace says what happened in exactly one `sigtrace:` line, the trace written before the
//! fault decodes, and samples that were lost are counted in it. The tests run alone
//! ([`alone`]), one at a time: several compare the samples with the workload's CPU time.

use sigtrace_tests::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A resource limit set in the child before it runs the program (plain and traced alike).
type Limit = (libc::__rlimit_resource_t, u64);

/// How a run is traced: the `SIGTRACE_OUTPUT` pattern, extra environment, libraries preloaded
/// before the shim.
struct Traced<'a> {
    output: &'a str,
    env: &'a [(&'a str, &'a str)],
    preload: &'a [&'a Path],
}

/// Runs `program args` with `limits`, under the shim (after `preload`) when `traced`, with the
/// trace written to `output` (a `SIGTRACE_OUTPUT` pattern) and the extra environment `env`.
fn run(program: &Path, args: &[&str], dir: &Path, traced: Option<Traced>, limits: &[Limit]) -> Output {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).env_remove("LD_PRELOAD");
    if let Some(Traced { output, env, preload }) = traced {
        let mut libraries: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
        libraries.push(shim().display().to_string());
        command.env("LD_PRELOAD", libraries.join(":")).env("SIGTRACE_OUTPUT", output).envs(env.iter().copied());
    }
    let limits = limits.to_vec();
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, which
    // is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            for &(resource, value) in &limits {
                let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.output().expect("workload runs")
}

/// Runs `program args` plainly and under the shim, each in its own folder of a fresh scratch
/// folder (`{dir}` in `args` and in a `SIGTRACE_OUTPUT` of `env` names it; each has an empty
/// `out` subfolder), and checks that the host behaved the same. Returns the traced run, with
/// the trace files found anywhere under its folder.
fn run_both(name: &str, program: &Path, args: &[&str], env: &[(&str, &str)], preload: &[&Path], limits: &[Limit]) -> Run {
    let dir = scratch_dir(name);
    let (plain_dir, traced_dir) = (dir.join("plain"), dir.join("traced"));
    std::fs::create_dir_all(plain_dir.join("out")).unwrap();
    std::fs::create_dir_all(traced_dir.join("out")).unwrap();
    let expand = |text: &str, folder: &Path| text.replace("{dir}", &folder.display().to_string());
    let plain_args: Vec<String> = args.iter().map(|a| expand(a, &plain_dir)).collect();
    let traced_args: Vec<String> = args.iter().map(|a| expand(a, &traced_dir)).collect();
    let plain_args: Vec<&str> = plain_args.iter().map(String::as_str).collect();
    let traced_args: Vec<&str> = traced_args.iter().map(String::as_str).collect();
    let output = env.iter().find(|(k, _)| *k == "SIGTRACE_OUTPUT").map(|(_, v)| expand(v, &traced_dir));
    let output = output.unwrap_or_else(|| traced_dir.join("trace.%p.sigtrace").display().to_string());
    let env: Vec<(&str, &str)> = env.iter().copied().filter(|(k, _)| *k != "SIGTRACE_OUTPUT").collect();
    let plain = run(program, &plain_args, &plain_dir, None, limits);
    let output = run(program, &traced_args, &traced_dir, Some(Traced { output: &output, env: &env, preload }), limits);
    let traced = Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        traces: trace_files(&traced_dir),
        output,
    };
    assert_same_host_behaviour(&plain, &traced);
    traced
}

/// The trace files under `dir` (any depth), sorted.
fn trace_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.is_dir() {
            found.extend(trace_files(&path));
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".sigtrace")) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Lines a workload or interposer prints whose numbers differ from run to run.
fn varying(line: &str) -> bool {
    ["cpu_ns=", "thread tid=", "started tid=", "short_write:", "no_perf:"].iter().any(|prefix| line.starts_with(prefix))
}

fn assert_same_host_behaviour(plain: &Output, traced: &Run) {
    assert_eq!(traced.output.status.code(), plain.status.code(), "exit status {:?}; stderr:\n{}", traced.output.status, traced.stderr);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&traced.output.status), None, "killed by a signal:\n{}", traced.stderr);
    assert_eq!(traced.stdout, String::from_utf8_lossy(&plain.stdout), "stdout; stderr:\n{}", traced.stderr);
    let host = |text: &str| text.lines().filter(|l| !varying(l) && !l.starts_with("sigtrace:")).collect::<Vec<_>>().join("\n");
    assert_eq!(host(&traced.stderr), host(&String::from_utf8_lossy(&plain.stderr)), "the host's stderr");
}

/// The one `sigtrace:` line of `run`, which must hold every one of `words`.
fn one_line_naming(run: &Run, words: &[&str]) -> String {
    let lines = run.sigtrace_lines();
    eprintln!("{lines:?}");
    assert_eq!(lines.len(), 1, "exactly one sigtrace line: {lines:?}");
    for word in words {
        assert!(lines[0].contains(word), "the line names {word:?}: {}", lines[0]);
    }
    lines[0].clone()
}

/// A trace that decodes to its last byte: header, generations numbered without gaps, and no
/// bytes the reader had to give up on.
fn assert_decodes_completely(trace: &format::Trace, what: &str) {
    assert!(trace.header.is_some(), "{what}: header");
    assert!(trace.stopped_because.is_none(), "{what}: the reader stopped: {:?}", trace.stopped_because);
    assert_eq!(trace.ignored_bytes, 0, "{what}: ignored bytes");
    assert!(!trace.generations.is_empty(), "{what}: generations");
    for pair in trace.generations.windows(2) {
        // A spill (docs/FORMAT.md) carries the sequence of the generation that follows it.
        let next = pair[1].sequence;
        assert!(next == pair[0].sequence + 1 || next == pair[0].sequence, "{what}: generations follow each other");
    }
}

fn fault_burn(dir: &Path) -> PathBuf {
    compile_c("fault_burn", &["-O2", "-g", "-fno-omit-frame-pointer"], dir)
}

/// The trace file is deleted half-way through 300 ms of CPU: at the next generation end sigtrace
/// sees its file has no name left, says so, and goes on in a new file under the free name,
/// which holds about the second half of the run. (Before, the rest of the trace went into the
/// deleted file, lost without a word.)
#[test]
fn a_deleted_trace_file_is_reported_and_the_trace_goes_on_in_a_new_file() {
    let _alone = alone();
    let build = scratch_dir("fault-unlink-build");
    let program = fault_burn(&build);
    // Seen at a generation end: the drain thread's (a single-threaded program's spills go on
    // into the deleted file until its next safe point).
    let env = [("SIGTRACE_GENERATION_MS", "20"), ("SIGTRACE_DRAIN_THREAD", "always")];
    let traced = run_both("fault-unlink", &program, &["300", "unlink", "{dir}"], &env, &[], &[]);
    one_line_naming(&traced, &["was deleted", "the trace goes on in"]);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the new file");
    assert!(trace.end.is_some(), "the new file ends with the end record");
    assert!(trace.generations[0].sequence > 1, "the new file continues the generations");
    let expected = expected_samples(traced.reported_cpu_ns(), 999);
    let accounted = accounted_by_tid(&trace).values().sum::<u64>() as f64;
    eprintln!("new file: {accounted} of {expected:.0} periods, generations from {}", trace.generations[0].sequence);
    assert!(accounted >= 0.3 * expected && accounted <= 0.85 * expected, "the new file holds about the second half: {accounted} of {expected:.0} periods");
}

/// The same deletion in a single-threaded program without a drain thread (the default): the
/// handler's spills stop at once (the file has no name left) and keep the samples in the ring;
/// at its exit the drain sees the deletion, says so in the same line, and writes them to a new
/// file.
#[test]
fn a_deleted_trace_file_stops_the_spills_and_the_trace_goes_on_in_a_new_file() {
    let _alone = alone();
    let build = scratch_dir("fault-unlink-spill-build");
    let program = fault_burn(&build);
    let env = [("SIGTRACE_GENERATION_MS", "20")];
    let traced = run_both("fault-unlink-spill", &program, &["300", "unlink", "{dir}"], &env, &[], &[]);
    one_line_naming(&traced, &["was deleted", "the trace goes on in"]);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the new file");
    assert!(trace.end.is_some(), "the new file ends with the end record");
    let expected = expected_samples(traced.reported_cpu_ns(), 999);
    let accounted = accounted_by_tid(&trace).values().sum::<u64>() as f64;
    let dropped: u64 = trace.generations.iter().flat_map(|g| &g.threads).map(|t| t.dropped).sum();
    eprintln!("new file: {accounted} of {expected:.0} periods, {dropped} dropped");
    // The spills before the deletion went with the deleted file; the ring (64 KiB) holds the
    // second half.
    assert!(accounted >= 0.3 * expected && accounted <= 0.85 * expected, "the new file holds about the second half: {accounted} of {expected:.0} periods");
}

/// The trace file's directory is removed half-way: no new file can be made there, so sigtrace
/// says so once and stops; the host runs on.
#[test]
fn a_removed_trace_directory_is_reported_and_tracing_stops() {
    let _alone = alone();
    let build = scratch_dir("fault-rmdir-build");
    let program = fault_burn(&build);
    let env = [("SIGTRACE_GENERATION_MS", "20"), ("SIGTRACE_OUTPUT", "{dir}/out/trace.%p.sigtrace")];
    let traced = run_both("fault-rmdir", &program, &["300", "rmdir", "{dir}/out"], &env, &[], &[]);
    one_line_naming(&traced, &["was deleted", "no new one can be created", "sigtrace is off"]);
    assert!(traced.traces.is_empty(), "no trace file anywhere: {:?}", traced.traces);
}

/// A file size limit (`RLIMIT_FSIZE`) the trace reaches mid-run: a write past it would raise
/// SIGXFSZ, which kills by default. sigtrace never makes that write, says once that the file is
/// full, and the file holds the complete generations written before.
#[test]
fn a_file_size_limit_reached_mid_run_ends_the_trace_with_one_line() {
    let _alone = alone();
    let build = scratch_dir("fault-fsize-build");
    let program = fault_burn(&build);
    let limit = 12 * 1024;
    let env = [("SIGTRACE_HZ", "4000"), ("SIGTRACE_GENERATION_MS", "20")];
    let traced = run_both("fault-fsize", &program, &["600"], &env, &[], &[(libc::RLIMIT_FSIZE, limit)]);
    one_line_naming(&traced, &["file size limit", "RLIMIT_FSIZE", "sigtrace is off"]);
    let size = std::fs::metadata(&traced.traces[0]).unwrap().len();
    eprintln!("{size} bytes under a limit of {limit}");
    assert!(size <= limit, "{size} bytes written under a limit of {limit}");
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the full file");
    assert!(trace.end.is_none(), "the end record did not fit");
}

/// The limit is reached by the last write, made by the exiting main thread (the generation
/// period is longer than the run): the kernel would send SIGXFSZ to the program's own thread
/// and kill it (before: exit by SIGXFSZ instead of status 3).
#[test]
fn a_file_size_limit_reached_by_the_final_write_never_kills_the_host() {
    let _alone = alone();
    let build = scratch_dir("fault-fsize-exit-build");
    let program = fault_burn(&build);
    let limit = 2048;
    let env = [("SIGTRACE_HZ", "4000"), ("SIGTRACE_GENERATION_MS", "100000")];
    let traced = run_both("fault-fsize-exit", &program, &["300"], &env, &[], &[(libc::RLIMIT_FSIZE, limit)]);
    one_line_naming(&traced, &["file size limit"]);
    let bytes = std::fs::read(&traced.traces[0]).unwrap();
    assert!(bytes.len() as u64 <= limit);
    let trace = format::read_trace(&bytes);
    assert!(trace.header.is_some() && trace.stopped_because.is_none() && trace.ignored_bytes == 0, "the header stays readable");
}

/// Unmounts a tmpfs when the test ends, passed or failed.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A real full file system: a 64 KiB tmpfs, filled but for 8 KiB. Writes fail with ENOSPC, some
/// after writing part of a generation: the file is cut back to its last complete generation.
/// Needs root to mount; skipped with a printed reason otherwise.
#[test]
fn a_full_file_system_ends_the_trace_with_one_line() {
    let _alone = alone();
    let build = scratch_dir("fault-enospc-build");
    let program = fault_burn(&build);
    let dir = scratch_dir("fault-enospc");
    let mount_point = dir.join("small");
    std::fs::create_dir_all(&mount_point).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&mount_point).output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (needs root): {mounted:?}");
        return;
    }
    let _unmount = Mounted(mount_point.clone());
    std::fs::write(mount_point.join("filler"), vec![1u8; 56 * 1024]).unwrap();
    let output = mount_point.join("trace.%p.sigtrace").display().to_string();
    let env = [("SIGTRACE_HZ", "4000"), ("SIGTRACE_GENERATION_MS", "20")];
    std::fs::create_dir_all(dir.join("plain")).unwrap();
    let plain = run(&program, &["600"], &dir.join("plain"), None, &[]);
    let out = run(&program, &["600"], &dir, Some(Traced { output: &output, env: &env, preload: &[] }), &[]);
    let traced = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        traces: trace_files(&mount_point),
        output: out,
    };
    assert_same_host_behaviour(&plain, &traced);
    one_line_naming(&traced, &["file system", "is full", "sigtrace is off"]);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the file on the full file system");
    assert!(trace.end.is_none(), "the end record did not fit");
}

/// Every third write to the trace file fails with EINTR and every third writes a third of its
/// bytes (an interposed `write`, preloaded before the shim): the trace is complete all the same.
#[test]
fn interrupted_and_short_writes_lose_nothing() {
    let _alone = alone();
    let build = scratch_dir("fault-short-build");
    let program = fault_burn(&build);
    let interposer = compile_c("fault_short_write", &["-O2", "-shared", "-fPIC"], &build);
    let env = [("SIGTRACE_GENERATION_MS", "20")];
    let traced = run_both("fault-short", &program, &["300"], &env, &[&interposer], &[]);
    assert!(traced.sigtrace_lines().is_empty(), "{:?}", traced.sigtrace_lines());
    let report = traced.stderr.lines().find(|l| l.starts_with("short_write:")).expect("the interposer reported");
    let count = |key: &str| -> u64 { report.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|n| n.parse().ok()).unwrap_or(0) };
    eprintln!("{report}");
    assert!(count("eintr=") >= 5 && count("short=") >= 5, "faults were injected: {report}");
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the trace");
    assert!(trace.end.is_some(), "the end record");
    let expected = expected_samples(traced.reported_cpu_ns(), 999);
    let accounted = accounted_by_tid(&trace).values().sum::<u64>() as f64;
    eprintln!("short writes: {accounted} of {expected:.0} periods");
    assert!(accounted >= 0.9 * expected, "{accounted} of {expected:.0} periods");
}

/// perf events refused (as with `perf_event_paranoid` 3; an interposed `syscall` answers EACCES):
/// `SIGTRACE_TIMER=perf` stops with one line; `auto` falls back to POSIX timers silently (the
/// fallback is said at `SIGTRACE_LOG=info`) and samples the whole run.
#[test]
fn a_refused_perf_event_stops_perf_with_one_line_and_auto_falls_back() {
    let _alone = alone();
    let build = scratch_dir("fault-perf-build");
    let program = fault_burn(&build);
    let interposer = compile_c("fault_no_perf", &["-O2", "-shared", "-fPIC"], &build);
    let traced = run_both("fault-perf", &program, &["100"], &[("SIGTRACE_TIMER", "perf")], &[&interposer], &[]);
    one_line_naming(&traced, &["perf_event_open refused", "sigtrace is off"]);
    assert!(traced.stderr.contains("no_perf: refused=1"), "{}", traced.stderr);
    assert!(traced.traces.is_empty(), "no trace is started: {:?}", traced.traces);

    let traced = run_both("fault-perf-auto", &program, &["300"], &[], &[&interposer], &[]);
    assert!(traced.sigtrace_lines().is_empty(), "{:?}", traced.sigtrace_lines());
    assert!(!traced.stderr.contains("no_perf: refused=0"), "the interposer refused perf: {}", traced.stderr);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the trace");
    assert_eq!(trace.header.as_ref().unwrap().timer, "auto");
    assert!(trace.sources.threads.iter().all(|account| account.last == format::SourceKind::Posix && account.moves_to_perf == 0), "{:?}", trace.sources);
    let expected = expected_samples(traced.reported_cpu_ns(), 999);
    let weight = total_weight(&trace) as f64;
    eprintln!("posix fallback: weight {weight} for {expected:.0} periods");
    assert!(weight >= 0.9 * expected && weight <= 1.1 * expected, "weight {weight} for {expected:.0} periods");
}

/// `timer_create` refused: with `RLIMIT_SIGPENDING` 0 (`ulimit -i 0`) the kernel cannot queue a
/// timer's signal. `SIGTRACE_TIMER=posix` stops with one line; the host runs the same.
#[test]
fn a_refused_timer_create_stops_tracing_with_one_line() {
    let _alone = alone();
    let build = scratch_dir("fault-timer-build");
    let program = fault_burn(&build);
    let traced = run_both("fault-timer", &program, &["100"], &[("SIGTRACE_TIMER", "posix")], &[], &[(libc::RLIMIT_SIGPENDING, 0)]);
    one_line_naming(&traced, &["timer_create refused", "sigtrace is off"]);
    assert!(traced.traces.is_empty(), "no trace is started: {:?}", traced.traces);
}

/// 64 threads with room for 4 (`SIGTRACE_MAX_THREADS=4`): one line, and the CPU time of the
/// threads left unsampled is counted as dropped periods (`dropped.no_slot`), so recorded plus
/// dropped covers the workers' CPU time. (Before, those periods were lost without a count.)
#[test]
fn a_full_thread_registry_counts_the_threads_it_leaves_unsampled() {
    let _alone = alone();
    let build = scratch_dir("fault-registry-build");
    let program = compile_c("threads", &["-O2", "-g", "-fno-omit-frame-pointer"], &build);
    let traced = run_both("fault-registry", &program, &["64", "3"], &[("SIGTRACE_MAX_THREADS", "4")], &[], &[]);
    one_line_naming(&traced, &["thread registry full (4 threads", "not sampled"]);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the trace");
    let thread_cpu = traced.cpu_by_id("thread tid=");
    assert_eq!(thread_cpu.len(), 64);
    let without_slot = counter(&trace, "threads.without_slot");
    assert!(without_slot >= 32, "{without_slot} threads found the registry full");
    let accounted_by = accounted_by_tid(&trace);
    let sampled: u64 = thread_cpu.keys().map(|tid| accounted_by.get(tid).copied().unwrap_or(0)).sum();
    let no_slot = counter(&trace, "dropped.no_slot");
    let expected = expected_samples(thread_cpu.values().sum(), 999);
    // The CPU a sampled thread used before its timer was armed, and after its last sample, may be
    // missing: a few periods in all; an unsampled thread's periods are rounded (± 1/2 each).
    let accounted = (sampled + no_slot) as f64;
    let tolerance = 0.05 * expected + 10.0;
    eprintln!("{without_slot} threads without a slot; sampled {sampled} + dropped.no_slot {no_slot} of {expected:.0} periods");
    assert!(
        (accounted - expected).abs() <= tolerance,
        "sampled {sampled} + dropped.no_slot {no_slot} = {accounted} of {expected:.0} periods (± {tolerance:.0})"
    );
    assert!(no_slot as f64 >= 0.5 * expected, "most of the CPU time was on unsampled threads: {no_slot} of {expected:.0}");
}

/// A 4 KiB ring (depth 8, so the ring is not enlarged for deep stacks) at 4000 Hz, drained every
/// 500 ms: each drain finds a full ring, the rest is dropped and counted, and sigtrace says so once.
#[test]
fn a_4_kib_ring_at_4000_hz_drops_counts_and_says_so_once() {
    let _alone = alone();
    let build = scratch_dir("fault-ring-build");
    let program = fault_burn(&build);
    // The drain thread's rounds (a generation's end drains too), too far apart for the ring (a
    // single-threaded program without one spills its ring from the handler instead:
    // single_threaded.rs). The ring holds ~60 records: it overflows in a round as long as the
    // program gets 3 % of a CPU, and most periods are dropped above 5 % (a loaded machine gave
    // it 11 %; with 50 ms rounds, it then dropped nothing).
    let env = [
        ("SIGTRACE_HZ", "4000"),
        ("SIGTRACE_BUFFER_KB", "4"),
        ("SIGTRACE_DEPTH", "8"),
        ("SIGTRACE_DRAIN_MS", "500"),
        ("SIGTRACE_GENERATION_MS", "500"),
        ("SIGTRACE_DRAIN_THREAD", "always"),
    ];
    let traced = run_both("fault-ring", &program, &["400"], &env, &[], &[]);
    one_line_naming(&traced, &["ring overflowed", "dropped", "SIGTRACE_BUFFER_KB"]);
    let trace = traced.trace();
    assert_decodes_completely(&trace, "the trace");
    assert!(trace.end.is_some());
    let dropped: u64 = dropped_by_tid(&trace).values().sum();
    let recorded = total_weight(&trace);
    let expected = expected_samples(traced.reported_cpu_ns(), 4000);
    eprintln!("recorded {recorded} + dropped {dropped} of {expected:.0} periods");
    assert!(dropped as f64 >= 0.3 * expected, "most periods were dropped: {dropped} of {expected:.0}");
    let accounted = (recorded + dropped) as f64;
    assert!(accounted >= 0.9 * expected && accounted <= 1.1 * expected, "recorded {recorded} + dropped {dropped} of {expected:.0} periods");
}
