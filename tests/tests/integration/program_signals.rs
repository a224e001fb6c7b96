//! The program's signals are its own: its mask, pending set and actions read back as it set
//! them, its own sampling-signal deliveries wait while it blocks that signal, the signals it
//! ignores or handles behave as without sigtrace (no `EINTR`, `SIG_IGN` kept across exec), and
//! every signal that kills by default writes the open generation first and then kills the
//! process exactly as before. Every run is time-bounded: a hang fails, it never blocks.

use sigtrace_tests::*;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLAGS: &[&str] = &["-O2", "-g", "-fno-omit-frame-pointer"];
/// Seconds after which a run is killed (a hang fails the test instead of blocking the suite).
const BOUND_S: &str = "60";
const HZ: f64 = 999.0;

/// `timeout -s KILL 60 program args…` as (program, args) for `run_plain` / `run_traced`.
fn bounded<'a>(program: &'a Path, args: &[&'a str]) -> (&'static Path, Vec<&'a str>) {
    let mut all = vec!["-s", "KILL", BOUND_S, program.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    (Path::new("timeout"), all)
}

/// Runs `program args` without and with the shim (each time-bounded) and checks stdout and the
/// exit status are the same; returns the traced run.
fn same_as_plain(program: &Path, args: &[&str], dir: &Path) -> Run {
    let (timeout, all) = bounded(program, args);
    let plain = run_plain(timeout, &all, dir);
    let traced = run_traced(timeout, &all, &[], dir);
    assert_ne!(plain.status.signal(), Some(libc::SIGKILL), "the plain run hung: {}", String::from_utf8_lossy(&plain.stderr));
    assert_ne!(traced.output.status.signal(), Some(libc::SIGKILL), "the traced run hung (killed after {BOUND_S} s)\n{}", traced.stderr);
    assert_eq!(traced.stdout, String::from_utf8_lossy(&plain.stdout), "stdout differs with sigtrace\n{}", traced.stderr);
    assert_eq!(traced.output.status.code(), plain.status.code(), "exit code\n{}", traced.stderr);
    assert_eq!(traced.output.status.signal(), plain.status.signal(), "killing signal\n{}", traced.stderr);
    assert!(traced.sigtrace_lines().is_empty(), "{:?}", traced.sigtrace_lines());
    traced
}

/// The trace written by the image of `program` (the run may hold traces of `timeout` and `sh`).
fn trace_of(run: &Run, program: &Path) -> format::Trace {
    let name = program.file_name().unwrap().to_str().unwrap();
    let mut found: Vec<format::Trace> = run
        .traces
        .iter()
        .map(|path| read_trace(path))
        .filter(|trace| trace.header.as_ref().is_some_and(|h| h.executable.ends_with(&format!("/{name}"))))
        .collect();
    assert_eq!(found.len(), 1, "one trace of {name} among {:?}", run.traces);
    found.pop().unwrap()
}

#[test]
fn the_program_reads_back_the_signal_mask_and_sigprof_action_it_set() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-view");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let run = same_as_plain(&program, &["view"], &dir);
    assert!(run.stdout.contains("after sigprocmask(SIG_BLOCK, PROF|USR1): sigprocmask 4000200 PROF=1"), "{}", run.stdout);
}

/// With sigtrace switched off at start-up (its output cannot be created), threads are created
/// without its trampoline: they still start with the program's mask.
#[test]
fn the_mask_view_holds_when_sigtrace_is_off() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-off");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let (timeout, args) = bounded(&program, &["view"]);
    let plain = run_plain(timeout, &args, &dir);
    let off = run_traced(timeout, &args, &[("SIGTRACE_OUTPUT", "/nonexistent/trace.%p")], &dir);
    let lines = off.sigtrace_lines();
    assert!(!lines.is_empty() && lines.iter().all(|line| line.ends_with("sigtrace is off")), "{}", off.stderr);
    assert_eq!(off.stdout, String::from_utf8_lossy(&plain.stdout));
    assert_eq!(off.output.status.code(), plain.status.code());
}

#[test]
fn its_own_sigprof_waits_while_it_blocks_sigprof_and_arrives_when_unblocked() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-held");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let run = same_as_plain(&program, &["held", "400"], &dir);
    assert_eq!(run.stdout, "while blocked: 0 calls, SIGPROF pending 1; after unblocking: 1 calls, pending 0\n");
    // Sampling went on while the program had SIGPROF blocked.
    let trace = trace_of(&run, &program);
    let expected = 0.4 * HZ;
    let weight = total_weight(&trace) as f64;
    assert!(weight >= 0.8 * expected, "{weight} samples for at least 400 ms of CPU ({expected:.0} expected)");
}

#[test]
fn sigsuspend_lets_a_held_sigprof_in() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-suspend");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let run = same_as_plain(&program, &["suspend"], &dir);
    assert_eq!(run.stdout, "before sigsuspend: 0 calls; sigsuspend returned -1 (EINTR) after 1 calls; PROF blocked after: 1\n");
}

#[test]
fn sigwait_and_sigtimedwait_take_a_held_sigprof() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-wait");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let run = same_as_plain(&program, &["wait"], &dir);
    assert!(run.stdout.starts_with("sigwait returned 0 with signal 27, 0 calls\n"), "{}", run.stdout);
}

#[test]
fn a_blocked_sigprof_and_its_pending_signal_survive_exec() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-mask-exec");
    let program = compile_c("sig_mask", FLAGS, &dir);
    let run = same_as_plain(&program, &["exec"], &dir);
    assert_eq!(run.stdout, "before exec: 0 calls\nafter exec: PROF blocked 1, pending 1\n");
}

#[test]
fn a_program_that_handles_or_ignores_signals_behaves_the_same() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-handled");
    let program = compile_c("sig_handled", FLAGS, &dir);
    let run = same_as_plain(&program, &[], &dir);
    assert!(run.stdout.contains("nanosleep returned 0\npoll returned 0\n"), "{}", run.stdout);
    assert_eq!(run.output.status.signal(), Some(libc::SIGTERM));
    // Once the program put SIGTERM back to SIG_DFL, sigtrace watched it again.
    let end = trace_of(&run, &program).end.expect("an end record");
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, libc::SIGTERM as u32));
}

#[test]
fn an_ignored_signal_stays_ignored_across_exec_and_from_start_up() {
    let _beside_others = beside_others();
    let dir = scratch_dir("sig-exec-ign");
    let program = compile_c("sig_exec_ign", FLAGS, &dir);
    for signal in ["HUP", "PROF", "ABRT", "TERM"] {
        let run = same_as_plain(&program, &["exec", signal], &dir);
        assert_eq!(run.stdout, "alive\n", "SIG{signal} ignored before exec");
    }
    let nohup = Path::new("nohup");
    let (timeout, mut args) = bounded(nohup, &[]);
    args.extend(["--", program.to_str().unwrap(), "inherited"]);
    let plain = run_plain(timeout, &args, &dir);
    let traced = run_traced(timeout, &args, &[], &dir);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "at start: SIGHUP ignored, SIGINT not ignored\nsurvived SIGHUP\n");
    assert_eq!(traced.stdout, String::from_utf8_lossy(&plain.stdout), "{}", traced.stderr);
    assert_eq!(traced.output.status.code(), Some(0));
}

/// A running child killed with SIGKILL if it is still running after the bound (what its
/// threads were doing then is kept for the failure message).
struct Watched {
    child: Child,
    done: Arc<AtomicBool>,
    hung: Arc<std::sync::Mutex<Option<String>>>,
}

/// State and signal masks of every thread of `pid`, from /proc.
fn thread_states(pid: libc::pid_t) -> String {
    let mut text = String::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let wanted: Vec<&str> = status.lines().filter(|l| ["State", "SigPnd", "SigBlk"].iter().any(|k| l.starts_with(k))).collect();
        text.push_str(&format!("task {}: {}\n", task.file_name().to_string_lossy(), wanted.join(", ")));
    }
    text
}

impl Watched {
    fn spawn(mut command: Command) -> Watched {
        let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("workload starts");
        let done = Arc::new(AtomicBool::new(false));
        let hung = Arc::new(std::sync::Mutex::new(None));
        let (pid, flag, report) = (child.id() as libc::pid_t, done.clone(), hung.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if flag.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !flag.load(Ordering::Acquire) {
                *report.lock().unwrap() = Some(thread_states(pid));
                // SAFETY: kill has no memory-safety preconditions; the child is not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        Watched { child, done, hung }
    }

    /// Reads stderr until a line `ready`; returns what was read.
    fn wait_ready(&mut self) -> String {
        let stderr = self.child.stderr.as_mut().unwrap();
        let mut seen = String::new();
        let mut buffer = [0u8; 256];
        while !seen.lines().any(|l| l == "ready") {
            let n = stderr.read(&mut buffer).unwrap();
            if n == 0 {
                let status = self.child.wait().unwrap();
                self.done.store(true, Ordering::Release);
                let hung = self.hung.lock().unwrap().clone();
                panic!("the workload ended before it was ready ({status:?}; hung and killed after 60 s: {hung:?}): {seen}");
            }
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        seen
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let mut rest = String::new();
        let _ = self.child.stderr.as_mut().unwrap().read_to_string(&mut rest);
        let status = self.child.wait().unwrap();
        self.done.store(true, Ordering::Release);
        (status, rest)
    }
}

/// Runs `sig_busy budget_ms` (traced when `dir_for_trace` is given), sends it `signal` once it
/// has burnt its budget, and returns its status, its CPU time at that point and the rest of
/// its stderr.
fn busy_run(program: &Path, budget_ms: &str, core: bool, signal: i32, traced_into: Option<&Path>, dir: &Path) -> (ExitStatus, f64, String) {
    let mut command = Command::new(program);
    command.arg(budget_ms).current_dir(dir).env_remove("LD_PRELOAD");
    // The signal starts at its default action even if whoever runs the tests ignores it (a
    // shell's background job ignores SIGINT and SIGQUIT).
    // SAFETY: signal() is async-signal-safe, as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(signal, libc::SIG_DFL);
            Ok(())
        })
    };
    if core {
        command.arg("core");
    }
    if let Some(trace_dir) = traced_into {
        command.env("LD_PRELOAD", shim()).env("SIGTRACE_OUTPUT", trace_dir.join("trace.%p.sigtrace"));
    }
    let mut watched = Watched::spawn(command);
    let seen = watched.wait_ready();
    let cpu_ns: f64 = seen.lines().find_map(|l| l.strip_prefix("cpu_ns=")).unwrap().trim().parse().unwrap();
    // SAFETY: kill has no memory-safety preconditions; the child is running and not reaped.
    unsafe { libc::kill(watched.child.id() as libc::pid_t, signal) };
    let (status, rest) = watched.finish();
    assert_ne!(status.signal(), Some(libc::SIGKILL), "the run hung");
    (status, cpu_ns, rest)
}

fn the_only_trace(dir: &Path) -> PathBuf {
    let traces: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(".sigtrace")).collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    traces.into_iter().next().unwrap()
}

/// Sends `signal` to a busy traced program after `budget_ms` of CPU: it dies of that signal
/// (core dump or not, as without sigtrace), and its trace holds the open generation and names
/// the signal.
fn killed_by(signal: i32, name: &str, budget_ms: &str, check_core: bool) {
    let dir = scratch_dir(&format!("sig-kill-{name}"));
    let program = compile_c("sig_busy", FLAGS, &dir);
    let trace_dir = dir.join(format!("traced-{name}"));
    std::fs::create_dir_all(&trace_dir).unwrap();
    let (status, cpu_ns, stderr) = busy_run(&program, budget_ms, check_core, signal, Some(&trace_dir), &trace_dir);
    assert_eq!(status.signal(), Some(signal), "{name}: killed by the same signal: {status:?}\n{stderr}");
    assert!(!stderr.contains("sigtrace:"), "{stderr}");
    if check_core {
        let plain_dir = dir.join(format!("plain-{name}"));
        std::fs::create_dir_all(&plain_dir).unwrap();
        let (plain, _, _) = busy_run(&program, "50", true, signal, None, &plain_dir);
        assert_eq!(status.core_dumped(), plain.core_dumped(), "{name}: core dumped as without sigtrace");
        let _ = std::fs::remove_dir_all(&plain_dir);
        for entry in std::fs::read_dir(&trace_dir).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("core") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let path = the_only_trace(&trace_dir);
    let trace = read_trace(&path);
    let end = trace.end.unwrap_or_else(|| panic!("{name}: no end record: the open generation was lost"));
    assert_eq!((end.reason, end.signal), (format::EndReason::FatalSignal, signal as u32), "{name}");
    let expected = cpu_ns * HZ / 1e9;
    let weight = total_weight(&trace) as f64;
    println!("{name}: {weight} samples for {:.0} ms of CPU ({expected:.0} expected)", cpu_ns / 1e6);
    assert!(weight >= 0.8 * expected, "{name}: {weight} samples for {cpu_ns} ns of CPU ({expected:.0} expected)");
    let info = cli(&["info", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.lines().any(|l| l.contains("ended") && l.contains(name)), "{name}: info names the signal:\n{text}");
}

#[test]
fn sigterm_writes_the_open_generation_and_kills_as_before() {
    let _beside_others = beside_others();
    killed_by(libc::SIGTERM, "SIGTERM", "1000", false);
}

#[test]
fn sigint_writes_the_open_generation_and_kills_as_before() {
    let _beside_others = beside_others();
    killed_by(libc::SIGINT, "SIGINT", "1000", false);
}

#[test]
fn sighup_writes_the_open_generation_and_kills_as_before() {
    let _beside_others = beside_others();
    killed_by(libc::SIGHUP, "SIGHUP", "1000", false);
}

#[test]
fn every_other_signal_that_kills_by_default_writes_the_open_generation() {
    let _beside_others = beside_others();
    let signals = [
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
        (libc::SIGTRAP, "SIGTRAP"),
    ];
    for (signal, name) in signals {
        killed_by(signal, name, "300", true);
    }
}

/// Go requires every signal handler in the process to run on the thread's alternate stack
/// (`SA_ONSTACK`): without it the sampling handler overran goroutine stacks and `go build`
/// died with "fatal error: unexpected return pc" (4 runs of 4 here). Skipped without `go`.
#[test]
fn go_build_runs_under_the_shim_without_crashing() {
    let _beside_others = beside_others();
    if Command::new("go").arg("version").output().is_err() {
        println!("go is not installed: skipped");
        return;
    }
    let dir = scratch_dir("go-build");
    std::fs::write(dir.join("main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n").unwrap();
    std::fs::write(dir.join("go.mod"), "module hello\n\ngo 1.19\n").unwrap();
    for round in 0..2 {
        let cache = dir.join(format!("cache-{round}"));
        let env = [("GOCACHE", cache.to_str().unwrap()), ("GOPROXY", "off"), ("GOFLAGS", ""), ("CGO_ENABLED", "1")];
        let run = run_traced(Path::new("timeout"), &["-s", "KILL", "300", "go", "build", "-o", "hello", "."], &env, &dir);
        assert!(run.output.status.success(), "go build, round {round}: {:?}\n{}", run.output.status, run.stderr);
        assert!(!run.stderr.contains("fatal error"), "{}", run.stderr);
    }
    let hello = run_plain(&dir.join("hello"), &[], &dir);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");
}
