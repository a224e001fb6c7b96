//! Differential tests on programs nobody here wrote: Debian's python3 (threads, and a
//! multiprocessing pool started by fork and by spawn), bash pipelines, `make -j2` building a
//! generated C project, gzip and xz, sqlite3, perl, git and `find | sort | wc`.
//!
//! Each program runs without sigtrace and under it, at the defaults and at 4000 Hz with 10 ms
//! generations, and must print the same stdout bytes and end with the same status, with no
//! `sigtrace:` line on stderr. Every process that ran must leave one complete trace per image
//! (a forked child that execs leaves the fork's and the new program's), every image but the
//! last ending in `exec` and the last in a clean exit, and the parent pids must join all the
//! processes into one tree rooted at the started program. Each run is bounded in time: a hang
//! kills the run's process group and fails the test with the command named.
//!
//! Inputs are generated so the output is the same on every run; what legitimately varies
//! (pids, thread ids, CPU times) goes to stderr, which is not compared. The scripts are in
//! `tests/workloads/real/`; `scripts/install-test-deps.sh` installs the programs.

use format::EndReason;
use sigtrace_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Seconds one run (with every process it started) may take before it counts as a hang.
const RUN_SECONDS: u64 = 90;

/// The sigtrace settings a program is traced with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No `SIGTRACE_*` setting but the output pattern.
    Defaults,
    /// `SIGTRACE_HZ=4000 SIGTRACE_GENERATION_MS=10`: many signals, many generation writes.
    Fast,
}

impl Mode {
    fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Mode::Defaults => &[],
            Mode::Fast => &[("SIGTRACE_HZ", "4000"), ("SIGTRACE_GENERATION_MS", "10")],
        }
    }

    fn hz(self) -> f64 {
        match self {
            Mode::Defaults => 999.0,
            Mode::Fast => 4000.0,
        }
    }
}

/// One real program to run: the command, its inputs, and what must come of it.
struct Program {
    name: &'static str,
    /// The program and its arguments (a script named `real/...` is looked up in the workloads).
    command: &'static [&'static str],
    /// Environment on top of `LC_ALL=C` (the same for the plain and the traced run).
    env: fn(&Path) -> Vec<(&'static str, String)>,
    /// Writes the inputs into the (empty) working folder.
    prepare: fn(&Path),
    /// The commands the program needs (from `scripts/install-test-deps.sh`).
    needs: &'static [&'static str],
    /// The exit status the program ends with (checked on the plain run: the workload works).
    status: i32,
    /// How many processes end as each program (see [`canonical_name`]).
    processes: &'static [(&'static str, usize)],
    /// Checks of the outcome particular to this program.
    check: fn(&Outcome, Mode),
}

/// What one run left: status, output, and the pid of the started program.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    pid: u32,
}

/// The traced run and the processes its traces show.
struct Outcome {
    traced: Finished,
    tree: ProcessTree,
}

fn no_env(_: &Path) -> Vec<(&'static str, String)> {
    Vec::new()
}

fn nothing_to_prepare(_: &Path) {}

fn no_more_checks(_: &Outcome, _: Mode) {}

/// The command with each `real/NAME` replaced by the script's path.
fn command_line(program: &Program) -> Vec<String> {
    let scripts = workspace_root().join("tests/workloads/real");
    program.command.iter().map(|arg| arg.replace("real/", &format!("{}/", scripts.display()))).collect()
}

/// Prepares `run_dir/work` and runs `program` there (traced into `run_dir/traces` in the given
/// mode) in a process group of its own, with stdout and stderr in files, and waits for the whole
/// group: a descendant may outlive the program (Python's resource tracker does) and still be
/// writing its trace. Past [`RUN_SECONDS`] the group is killed and the test fails.
fn run_bounded(program: &Program, run_dir: &Path, traced: Option<Mode>) -> Finished {
    let work = run_dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    (program.prepare)(&work);
    let (stdout_path, stderr_path) = (run_dir.join("stdout"), run_dir.join("stderr"));
    let line = command_line(program);
    let mut command = Command::new(&line[0]);
    command
        .args(&line[1..])
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .process_group(0)
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SIGTRACE_") {
            command.env_remove(key);
        }
    }
    for (key, value) in (program.env)(&work) {
        command.env(key, value);
    }
    if let Some(mode) = traced {
        let traces = run_dir.join("traces");
        std::fs::create_dir_all(&traces).unwrap();
        command.env("LD_PRELOAD", shim()).env("SIGTRACE_OUTPUT", traces.join("t.%p.sigtrace"));
        for (key, value) in mode.env() {
            command.env(key, value);
        }
    }
    let described = format!("{} ({}, {})", line.join(" "), program.name, traced.map_or("without sigtrace".to_string(), |mode| format!("traced, {mode:?}")));
    let mut child = command.spawn().unwrap_or_else(|e| panic!("{described} does not start: {e}"));
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(RUN_SECONDS);
    let kill_group = || {
        // SAFETY: kill(2) on the process group this run created (its id is the child's pid).
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            kill_group();
            let _ = child.wait();
            panic!("{described} did not end within {RUN_SECONDS} s: a hang (its process group was killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    while group_has_live_members(pid) {
        if Instant::now() > deadline {
            kill_group();
            panic!("{described}: the program's descendants did not end within {RUN_SECONDS} s: a hang (their process group was killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Finished { status, stdout: std::fs::read(&stdout_path).unwrap(), stderr: String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned(), pid }
}

/// Whether a process of group `pgid` is still running (zombies waiting for a parent's reaping
/// have finished writing).
fn group_has_live_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { return false };
        // After the command name in parentheses: state, ppid, pgrp.
        let Some((_, rest)) = stat.rsplit_once(')') else { return false };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X")
    })
}

/// The traces of one process, by image: the forked copy of its parent (if it was traced before
/// an exec) and each program it exec'd, in order.
struct Process {
    pid: u32,
    parent_pid: u32,
    images: Vec<(PathBuf, format::Trace)>,
}

impl Process {
    /// The program the process ended as.
    fn name(&self) -> String {
        canonical_name(&self.images.last().unwrap().1.header.as_ref().unwrap().executable)
    }
}

/// `x86_64-linux-gnu-gcc-12` → `gcc`, `python3.11` → `python3`, `ld.bfd` → `ld`: the program,
/// without target triple, version or variant.
fn canonical_name(executable: &str) -> String {
    let base = executable.rsplit('/').next().unwrap_or(executable);
    let base = base.split_once("-linux-gnu-").map_or(base, |(_, tool)| tool);
    let base = base.split('.').next().unwrap_or(base);
    match base.rsplit_once('-') {
        Some((name, version)) if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
        _ => base.to_string(),
    }
}

/// Every process of a traced run, by pid.
struct ProcessTree {
    processes: BTreeMap<u32, Process>,
}

impl ProcessTree {
    /// Reads every trace of `dir` (`t.PID.sigtrace`, then `.1`, `.2`… for the images after each
    /// exec) and checks each is complete: header, every chunk decoded, an end record.
    fn read(dir: &Path) -> ProcessTree {
        let mut files: Vec<(u32, u32, PathBuf)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (pid, image) = parse_trace_name(&name).unwrap_or_else(|| panic!("unexpected file {name} among the traces"));
                (pid, image, entry.path())
            })
            .collect();
        files.sort();
        let mut processes: BTreeMap<u32, Process> = BTreeMap::new();
        for (pid, _, path) in files {
            let trace = read_trace(&path);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let header = trace.header.as_ref().unwrap_or_else(|| panic!("{name} has no header: {:?}", trace.stopped_because));
            assert!(trace.stopped_because.is_none() && trace.ignored_bytes == 0, "{name} does not decode completely: {:?}", trace.stopped_because);
            assert!(trace.end.is_some(), "{name} ({}) has no end record", header.executable);
            assert_eq!(header.pid, pid, "{name} is named after its process");
            let process = processes.entry(pid).or_insert(Process { pid, parent_pid: header.parent_pid, images: Vec::new() });
            assert_eq!(header.parent_pid, process.parent_pid, "{name}: every image of pid {pid} has the same parent");
            process.images.push((path, trace));
        }
        for process in processes.values() {
            let ends: Vec<EndReason> = process.images.iter().map(|(_, trace)| trace.end.unwrap().reason).collect();
            let (last, before) = ends.split_last().unwrap();
            assert!(before.iter().all(|&end| end == EndReason::Exec), "pid {}: only the last image may end other than by exec: {ends:?}", process.pid);
            assert!(matches!(last, EndReason::Exit | EndReason::UnderscoreExit), "pid {} ({}) did not end cleanly: {ends:?}", process.pid, process.name());
        }
        ProcessTree { processes }
    }

    /// One line per process: pid, parent, the programs it ran.
    fn describe(&self) -> String {
        let mut text = String::new();
        for process in self.processes.values() {
            let programs: Vec<String> = process.images.iter().map(|(_, t)| canonical_name(&t.header.as_ref().unwrap().executable)).collect();
            let _ = writeln!(text, "  pid {} (parent {}): {}", process.pid, process.parent_pid, programs.join(" → "));
        }
        text
    }

    /// Checks the processes ended as the `expected` programs, and that parent pids join them
    /// into one tree rooted at `root`, the program this test started.
    fn check(&self, expected: &[(&str, usize)], root: u32) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for process in self.processes.values() {
            *counts.entry(process.name()).or_default() += 1;
        }
        let expected: BTreeMap<String, usize> = expected.iter().map(|&(name, count)| (name.to_string(), count)).collect();
        assert_eq!(counts, expected, "processes traced, by the program each ended as:\n{}", self.describe());
        let root_process = self.processes.get(&root).unwrap_or_else(|| panic!("the started program (pid {root}) left no trace:\n{}", self.describe()));
        assert_eq!(root_process.parent_pid, std::process::id(), "the started program's parent is this test");
        for process in self.processes.values().filter(|p| p.pid != root) {
            assert!(
                self.processes.contains_key(&process.parent_pid),
                "pid {}'s parent {} was not traced:\n{}",
                process.pid,
                process.parent_pid,
                self.describe()
            );
        }
    }

    /// The processes that ended as `name`.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Process> + 'a {
        self.processes.values().filter(move |p| p.name() == name)
    }
}

/// `t.1234.sigtrace` → (1234, 0); `t.1234.2.sigtrace` → (1234, 2).
fn parse_trace_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("t.")?.strip_suffix(".sigtrace")?;
    let (pid, image) = rest.split_once('.').unwrap_or((rest, "0"));
    Some((pid.parse().ok()?, image.parse().ok()?))
}

/// Runs `program` plainly and traced in `mode`, and checks what every program must keep:
/// status, stdout, a quiet sigtrace, complete traces of every process.
fn differential(program: &Program, mode: Mode) {
    if let Some(missing) = program.needs.iter().find(|command| !installed(command)) {
        // CI installs every package (`.ci/run` calls scripts/install-test-deps.sh): never skip there.
        assert!(std::env::var_os("CI").is_none(), "{missing} is not installed: scripts/install-test-deps.sh installs it");
        println!("skipped {} ({mode:?}): {missing} is not installed (scripts/install-test-deps.sh installs it)", program.name);
        return;
    }
    let label = format!("{}-{mode:?}", program.name);
    let plain = run_bounded(program, &scratch_dir(&format!("{label}-plain")), None);
    assert_eq!(plain.status.code(), Some(program.status), "{} without sigtrace: {:?}; stderr:\n{}", program.name, plain.status, plain.stderr);
    assert!(!plain.stdout.is_empty(), "{} printed nothing", program.name);
    let run_dir = scratch_dir(&format!("{label}-traced"));
    let traced = run_bounded(program, &run_dir, Some(mode));
    assert_eq!(
        (traced.status.code(), traced.status.signal()),
        (plain.status.code(), plain.status.signal()),
        "{} ({mode:?}): exit status under sigtrace; stderr:\n{}",
        program.name,
        traced.stderr
    );
    assert!(
        traced.stdout == plain.stdout,
        "{} ({mode:?}): stdout under sigtrace differs.\n--- without:\n{}\n--- with:\n{}\n--- stderr with:\n{}",
        program.name,
        String::from_utf8_lossy(&plain.stdout),
        String::from_utf8_lossy(&traced.stdout),
        traced.stderr
    );
    let sigtrace_lines: Vec<&str> = traced.stderr.lines().filter(|line| line.starts_with("sigtrace:")).collect();
    assert!(sigtrace_lines.is_empty(), "{} ({mode:?}): sigtrace complained: {sigtrace_lines:?}", program.name);
    let tree = ProcessTree::read(&run_dir.join("traces"));
    tree.check(program.processes, traced.pid);
    (program.check)(&Outcome { traced, tree }, mode);
}

/// Whether `command` (a path, or a name looked up in `PATH`) is an executable file.
fn installed(command: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if command.contains('/') {
        return executable(Path::new(command));
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(command))))
}

/// `KEY=N` values printed on stderr, by line.
fn stderr_values(stderr: &str, key: &str) -> Vec<u64> {
    let prefix = format!("{key}=");
    stderr.split_whitespace().filter_map(|word| word.strip_prefix(&prefix)?.parse().ok()).collect()
}

// ---------------------------------------------------------------------------------------------
// The programs.

const PYTHON: &str = "/usr/bin/python3";

fn python_env(_: &Path) -> Vec<(&'static str, String)> {
    vec![("PYTHONDONTWRITEBYTECODE", "1".to_string())]
}

/// Each of the 4 burner threads is in the trace with samples standing for at least half its
/// CPU time (a check that sampling ran in every thread; accuracy is `sampling.rs`'s concern).
fn burner_threads_were_sampled(outcome: &Outcome, mode: Mode) {
    let tids = stderr_values(&outcome.traced.stderr, "tid");
    let cpu = stderr_values(&outcome.traced.stderr, "cpu_ns");
    assert_eq!(tids.len(), 4, "{}", outcome.traced.stderr);
    let python = &outcome.tree.processes[&outcome.traced.pid];
    let mut accounted: BTreeMap<u32, u64> = BTreeMap::new();
    for (_, trace) in &python.images {
        for (tid, periods) in accounted_by_tid(trace) {
            *accounted.entry(tid).or_default() += periods;
        }
    }
    for (&tid, &cpu_ns) in tids.iter().zip(&cpu) {
        let expected = expected_samples(cpu_ns, mode.hz() as u64);
        let got = accounted.get(&(tid as u32)).copied().unwrap_or(0) as f64;
        assert!(got >= 0.5 * expected, "thread {tid}: {got} periods for {expected:.0} expected ({cpu_ns} ns of CPU)");
    }
}

const PYTHON_THREADS: Program = Program {
    name: "python3-threads",
    command: &[PYTHON, "real/threads.py", "0.25"],
    env: python_env,
    prepare: nothing_to_prepare,
    needs: &[PYTHON],
    status: 0,
    processes: &[("python3", 1)],
    check: burner_threads_were_sampled,
};

/// The pids the workers printed are traced python3 processes other than the parent.
fn workers_were_traced(outcome: &Outcome, _: Mode) {
    let workers: BTreeSet<u32> = stderr_values(&outcome.traced.stderr, "pid").into_iter().map(|pid| pid as u32).collect();
    let pythons: BTreeSet<u32> = outcome.tree.named("python3").map(|p| p.pid).collect();
    assert!(!workers.is_empty() && workers.is_subset(&pythons), "workers {workers:?} among the traced python3 processes {pythons:?}");
    assert!(!workers.contains(&outcome.traced.pid), "the tasks ran in the workers");
}

/// The parent and its 2 workers (forked copies of it).
const PYTHON_POOL_FORK: Program = Program {
    name: "python3-pool-fork",
    command: &[PYTHON, "real/pool.py", "fork", "0.04"],
    env: python_env,
    prepare: nothing_to_prepare,
    needs: &[PYTHON],
    status: 0,
    processes: &[("python3", 3)],
    check: workers_were_traced,
};

/// The parent, the resource tracker and 2 workers, each a new python3 (fork and exec).
const PYTHON_POOL_SPAWN: Program = Program {
    name: "python3-pool-spawn",
    command: &[PYTHON, "real/pool.py", "spawn", "0.04"],
    env: python_env,
    prepare: nothing_to_prepare,
    needs: &[PYTHON],
    status: 0,
    processes: &[("python3", 4)],
    check: workers_were_traced,
};

fn numbers(work: &Path) {
    let text: String = (0..5000u64).map(|i| format!("{}\n", (i * i * 7 + 3) % 41)).collect();
    std::fs::write(work.join("numbers.txt"), text).unwrap();
}

fn pipeline_inputs(work: &Path) {
    std::fs::create_dir(work.join("inputs")).unwrap();
    numbers(&work.join("inputs"));
}

/// bash; the 5 stages of the pipeline; the command substitution (a bash subshell running seq and
/// wc); the parenthesised subshell (bash) running sort, uniq, sort, sed.
const BASH_PIPELINES: Program = Program {
    name: "bash-pipelines",
    command: &["bash", "real/pipeline.sh"],
    env: no_env,
    prepare: pipeline_inputs,
    needs: &["bash", "seq", "grep", "sort", "tr", "cksum", "wc", "uniq", "sed"],
    status: 7,
    processes: &[("bash", 3), ("seq", 2), ("grep", 1), ("sort", 3), ("tr", 1), ("cksum", 1), ("wc", 1), ("uniq", 1), ("sed", 1)],
    check: no_more_checks,
};

const MAKE_UNITS: usize = 19;

/// A C project of 20 files (main.c and 19 units, each a little arithmetic) and its Makefile:
/// `make` builds `prog` and runs it, which prints each unit's result.
fn c_project(work: &Path) {
    let mut main = String::from("#include <stdio.h>\n");
    let mut objects = String::from("main.o");
    for unit in 1..=MAKE_UNITS {
        let source = format!(
            "unsigned unit{unit:02}(unsigned x) {{\n    unsigned s = x;\n    for (int i = 0; i < 1000 + {unit}; i++)\n        s = s * 1103515245u + {unit}u + (s >> 7);\n    return s;\n}}\n"
        );
        std::fs::write(work.join(format!("unit{unit:02}.c")), source).unwrap();
        let _ = writeln!(main, "unsigned unit{unit:02}(unsigned);");
        let _ = write!(objects, " unit{unit:02}.o");
    }
    main.push_str("int main(void) {\n");
    for unit in 1..=MAKE_UNITS {
        let _ = writeln!(main, "    printf(\"unit{unit:02} %u\\n\", unit{unit:02}({unit}u));");
    }
    main.push_str("    return 0;\n}\n");
    std::fs::write(work.join("main.c"), main).unwrap();
    let makefile = format!("OBJS = {objects}\n.PHONY: all\nall: prog\n\t./prog\nprog: $(OBJS)\n\tgcc -o prog $(OBJS)\n%.o: %.c\n\tgcc -O1 -c $< -o $@\n");
    std::fs::write(work.join("Makefile"), makefile).unwrap();
}

/// make; per source file gcc, cc1 and as; for the link gcc, collect2 and ld; prog.
const MAKE_J2: Program = Program {
    name: "make-j2",
    command: &["make", "-j2", "-s"],
    env: no_env,
    prepare: c_project,
    needs: &["make", "gcc"],
    status: 0,
    processes: &[("make", 1), ("gcc", MAKE_UNITS + 2), ("cc1", MAKE_UNITS + 1), ("as", MAKE_UNITS + 1), ("collect2", 1), ("ld", 1), ("prog", 1)],
    check: no_more_checks,
};

/// 3 MB of text: a counter, a pseudo-random number and a word per line (compressible, not
/// trivially).
fn data_file(work: &Path) {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut text = String::with_capacity(3 << 20);
    let mut line = 0u64;
    while text.len() < 3 << 20 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let _ = writeln!(text, "{line:08} {:06x} {}", state >> 40, words[(state >> 61) as usize]);
        line += 1;
    }
    std::fs::write(work.join("data.bin"), text).unwrap();
}

/// The original's checksum equals both decompressed copies'.
fn round_trips_match(outcome: &Outcome, _: Mode) {
    let stdout = String::from_utf8_lossy(&outcome.traced.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert_eq!((lines[3], lines[4]), (lines[0], lines[0]), "gzip and xz give back the original");
}

/// bash; cksum (5), gzip and xz (one compressing, one decompressing each).
const GZIP_XZ: Program = Program {
    name: "gzip-xz",
    command: &["bash", "real/compress.sh"],
    env: no_env,
    prepare: data_file,
    needs: &["bash", "cksum", "gzip", "xz"],
    status: 0,
    processes: &[("bash", 1), ("cksum", 5), ("gzip", 2), ("xz", 2)],
    check: round_trips_match,
};

const SQLITE3: Program = Program {
    name: "sqlite3",
    command: &["sqlite3", "-batch", "generated.db", ".read real/aggregates.sql"],
    env: no_env,
    prepare: nothing_to_prepare,
    needs: &["sqlite3"],
    status: 0,
    processes: &[("sqlite3", 1)],
    check: no_more_checks,
};

/// perl, its forked child (perl) and sort (exec'd by another forked perl).
const PERL: Program = Program {
    name: "perl",
    command: &["perl", "real/words.pl"],
    env: no_env,
    prepare: numbers,
    needs: &["perl", "sort"],
    status: 3,
    processes: &[("perl", 2), ("sort", 1)],
    check: no_more_checks,
};

/// A tree of 5 folders of 8 files to import.
fn git_tree(work: &Path) {
    for dir in 1..=5 {
        let folder = work.join(format!("tree/dir{dir}"));
        std::fs::create_dir_all(&folder).unwrap();
        for file in 1..=8 {
            let text: String = (1..=dir * file).map(|n| format!("line {n}\n")).collect();
            std::fs::write(folder.join(format!("file{file}.txt")), text).unwrap();
        }
    }
}

/// Fixed names, dates and configuration: the commit ids are the same on every run. The
/// automatic maintenance after each commit stays in the foreground (by default it detaches into
/// a session of its own, which no run could wait for, with an unknowable parent).
fn git_env(work: &Path) -> Vec<(&'static str, String)> {
    let fixed = |value: &str| value.to_string();
    vec![
        ("HOME", work.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", fixed("1")),
        ("GIT_CONFIG_GLOBAL", fixed("/dev/null")),
        ("GIT_AUTHOR_NAME", fixed("Ada Author")),
        ("GIT_AUTHOR_EMAIL", fixed("ada@example.org")),
        ("GIT_AUTHOR_DATE", fixed("2024-01-02T03:04:05+00:00")),
        ("GIT_COMMITTER_NAME", fixed("Cy Committer")),
        ("GIT_COMMITTER_EMAIL", fixed("cy@example.org")),
        ("GIT_COMMITTER_DATE", fixed("2024-01-02T03:04:05+00:00")),
        ("TZ", fixed("UTC")),
        ("GIT_CONFIG_COUNT", fixed("2")),
        ("GIT_CONFIG_KEY_0", fixed("maintenance.autoDetach")),
        ("GIT_CONFIG_VALUE_0", fixed("false")),
        ("GIT_CONFIG_KEY_1", fixed("gc.autoDetach")),
        ("GIT_CONFIG_VALUE_1", fixed("false")),
    ]
}

/// bash; git init, add, commit (twice, each with its `git maintenance run --auto`), rm, log,
/// diff, rev-list and ls-files; cp, sed, wc.
const GIT: Program = Program {
    name: "git",
    command: &["bash", "real/git.sh"],
    env: git_env,
    prepare: git_tree,
    needs: &["bash", "git", "cp", "sed", "wc"],
    status: 0,
    processes: &[("bash", 1), ("git", 11), ("cp", 1), ("sed", 1), ("wc", 1)],
    check: no_more_checks,
};

/// 10 × 10 folders of 20 files of 0 to 1,9 kB.
fn file_tree(work: &Path) {
    for a in 0..10 {
        for b in 0..10 {
            let folder = work.join(format!("tree/a{a}/b{b}"));
            std::fs::create_dir_all(&folder).unwrap();
            for file in 0..20 {
                let size = (a * 131 + b * 17 + file * 97) % 1900;
                std::fs::write(folder.join(format!("f{file}.txt")), vec![b'x'; size]).unwrap();
            }
        }
    }
}

/// bash; find, sort (3 each); wc, cksum, sed.
const FIND_SORT_WC: Program = Program {
    name: "find-sort-wc",
    command: &["bash", "real/find.sh"],
    env: no_env,
    prepare: file_tree,
    needs: &["bash", "find", "sort", "wc", "cksum", "sed"],
    status: 0,
    processes: &[("bash", 1), ("find", 3), ("sort", 3), ("wc", 1), ("cksum", 1), ("sed", 1)],
    check: no_more_checks,
};

macro_rules! differential_tests {
    ($($program:ident: $at_defaults:ident, $at_4000_hz:ident;)*) => {$(
        #[test]
        fn $at_defaults() {
            let _beside_others = beside_others();
            differential(&$program, Mode::Defaults);
        }

        #[test]
        fn $at_4000_hz() {
            let _beside_others = beside_others();
            differential(&$program, Mode::Fast);
        }
    )*};
}

differential_tests! {
    PYTHON_THREADS: python3_threads_at_defaults, python3_threads_at_4000_hz_10_ms_generations;
    PYTHON_POOL_FORK: python3_pool_fork_at_defaults, python3_pool_fork_at_4000_hz_10_ms_generations;
    PYTHON_POOL_SPAWN: python3_pool_spawn_at_defaults, python3_pool_spawn_at_4000_hz_10_ms_generations;
    BASH_PIPELINES: bash_pipelines_at_defaults, bash_pipelines_at_4000_hz_10_ms_generations;
    MAKE_J2: make_j2_at_defaults, make_j2_at_4000_hz_10_ms_generations;
    GZIP_XZ: gzip_xz_at_defaults, gzip_xz_at_4000_hz_10_ms_generations;
    SQLITE3: sqlite3_at_defaults, sqlite3_at_4000_hz_10_ms_generations;
    PERL: perl_at_defaults, perl_at_4000_hz_10_ms_generations;
    GIT: git_at_defaults, git_at_4000_hz_10_ms_generations;
    FIND_SORT_WC: find_sort_wc_at_defaults, find_sort_wc_at_4000_hz_10_ms_generations;
}

#[test]
fn program_names_drop_triple_version_and_variant() {
    assert_eq!(canonical_name("/usr/bin/x86_64-linux-gnu-gcc-12"), "gcc");
    assert_eq!(canonical_name("/usr/bin/python3.11"), "python3");
    assert_eq!(canonical_name("/usr/bin/x86_64-linux-gnu-ld.bfd"), "ld");
    assert_eq!(canonical_name("/usr/lib/gcc/x86_64-linux-gnu/12/cc1"), "cc1");
    assert_eq!(canonical_name("/usr/bin/sqlite3"), "sqlite3");
    assert_eq!(parse_trace_name("t.42.sigtrace"), Some((42, 0)));
    assert_eq!(parse_trace_name("t.42.3.sigtrace"), Some((42, 3)));
    assert_eq!(parse_trace_name("t.42.sigtrace.3"), None);
}
