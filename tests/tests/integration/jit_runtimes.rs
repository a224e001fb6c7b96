//! Runtimes that compile code at run time, run as their users run them for profilers: V8
//! (`node --perf-basic-prof`, and `--perf-prof`'s jitdump), CPython 3.12 (`-X perf`) and 3.13
//! (`-X perf_jit`'s jitdump), OpenJDK 17 (`-XX:+PreserveFramePointer
//! -XX:+DumpPerfMapAtExit`). Their perf maps and jitdumps are copied into the trace (or, for the JVM, read at
//! report time: it writes the map at exit), JIT frames are named, stacks walk through the
//! generated code to the process's or thread's root, and the program's output and exit status
//! are those of a plain run. Workloads: `tests/workloads/jit/`.

use sigtrace_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Outermost functions of a complete stack (root first in folded stacks).
const ROOTS: [&str; 4] = ["_start", "start_thread", "clone3", "clone"];

/// (share of the weight whose stack names a frame matching `hot`, share whose stack starts at a
/// root, share that does both) of the trace's folded stacks.
fn shares(trace: &Path, hot: impl Fn(&str) -> bool) -> (f64, f64, f64) {
    shares_of(folded_stacks(trace), hot)
}

/// As [`shares`], of the raw native stacks (`--no-python`: the interpreter's frames are not
/// replaced by the Python frames sigtrace reads itself).
fn native_shares(trace: &Path, hot: impl Fn(&str) -> bool) -> (f64, f64, f64) {
    shares_of(folded_stacks_with(trace, &["--no-python"]), hot)
}

fn shares_of(stacks: Vec<(Vec<String>, u64)>, hot: impl Fn(&str) -> bool) -> (f64, f64, f64) {
    let total = stacks.iter().map(|(_, w)| w).sum::<u64>().max(1) as f64;
    let named = |frames: &[String]| frames.iter().any(|f| hot(f));
    let rooted = |frames: &[String]| frames.first().is_some_and(|f| ROOTS.contains(&f.as_str()));
    let share = |keep: &dyn Fn(&[String]) -> bool| stacks.iter().filter(|(f, _)| keep(f)).map(|(_, w)| w).sum::<u64>() as f64 / total;
    (share(&named), share(&rooted), share(&|f| named(f) && rooted(f)))
}

/// Removes the perf maps the runtime left in /tmp for the traced and the plain run (called once
/// the trace was read: the JVM's map is read at report time).
fn remove_perf_maps(trace: &Path, plain_pid: u32) {
    let traced_pid = read_trace(trace).header.map_or(0, |header| header.pid);
    for pid in [traced_pid, plain_pid] {
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    }
}

/// Runs `program ARGS` plainly and traced in `dir`; checks the same stdout and exit status, no
/// `sigtrace:` line and one trace with JIT symbols or a perf map; returns the trace's path.
fn run_both(program: &Path, args: &[&str], dir: &Path) -> (PathBuf, u32) {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("LD_PRELOAD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the runtime starts");
    let plain_pid = child.id();
    let plain = child.wait_with_output().expect("the plain run ends");
    let run = run_traced(program, args, &[], dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.output.status.code(), plain.status.code());
    assert_eq!(run.stdout, String::from_utf8_lossy(&plain.stdout));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.traces.len(), 1, "{:?}", run.traces);
    (run.traces[0].clone(), plain_pid)
}

/// node --perf-basic-prof, 1.5 s of CPU in a recursive `fib`: ≥ 0.80 of the weight names it
/// (the rest is start-up, compilation and GC), ≥ 0.90 reaches a root, and the map was copied
/// into the trace as the program ran.
#[test]
fn node_with_perf_basic_prof_names_javascript_on_complete_stacks() {
    let _beside_others = beside_others();
    let dir = scratch_dir("jit-node");
    let script = workspace_root().join("tests/workloads/jit/fib.js");
    let script = script.to_str().unwrap();
    let (trace, plain_pid) = run_both(Path::new("node"), &["--perf-basic-prof", script, "1500"], &dir);
    assert!(!read_trace(&trace).jit_symbols.is_empty(), "the perf map is in the trace");
    let kinds = &info_json(&trace)["frame_kinds"];
    assert!(kinds["jit"].as_u64().unwrap_or(0) > 0 && kinds["native"].as_u64().unwrap_or(0) > 0, "info counts JIT and native frames: {kinds}");
    let (named, rooted, both) = shares(&trace, |f| f.starts_with("JS:") && f.contains("fib fib.js") || f.contains("fib /") && f.contains("fib.js"));
    assert!(named >= 0.80, "{named:.3} of the weight names fib");
    assert!(rooted >= 0.90, "{rooted:.3} of the weight reaches a root");
    assert!(both >= 0.75, "{both:.3} of the weight names fib on a complete stack");
    remove_perf_maps(&trace, plain_pid);
}

/// The newest CPython `3.MINOR` of pyenv (this machine image has 3.12 and 3.13; skipped
/// elsewhere).
fn pyenv_python(minor: &str) -> Option<PathBuf> {
    let root = PathBuf::from(std::env::var_os("PYENV_ROOT").unwrap_or_else(|| "/root/.pyenv".into())).join("versions");
    let prefix = format!("{minor}.");
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(root).ok()?.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix))).collect();
    found.sort();
    found.pop().map(|dir| dir.join(format!("bin/python{minor}"))).filter(|python| python.is_file())
}

/// Checks a CPython run with perf trampolines (`py::NAME:FILE`, named by the perf map or the
/// jitdump): both the mixed stacks (Python frames sigtrace read itself in place of the
/// interpreter's) and the raw native ones name `fib` and reach a root through the trampolines.
fn assert_python_trampoline_stacks(trace: &Path) {
    let (named, rooted, both) = shares(trace, |f| f == "fib" || f.starts_with("py::fib:"));
    assert!(named >= 0.85, "{named:.3} of the weight names fib");
    assert!(rooted >= 0.90, "{rooted:.3} of the weight reaches a root");
    assert!(both >= 0.80, "{both:.3} of the weight names fib on a complete stack");
    let (named, rooted, both) = native_shares(trace, |f| f.starts_with("py::fib:"));
    assert!(named >= 0.85, "native stacks: {named:.3} of the weight names py::fib");
    assert!(rooted >= 0.90, "native stacks: {rooted:.3} of the weight reaches a root");
    assert!(both >= 0.80, "native stacks: {both:.3} of the weight names py::fib on a complete stack");
}

/// CPython 3.12 -X perf (a trampoline per Python function, named in the perf map; the
/// trampolines keep no frame pointer: `add rsp, 8; ret` after the call is read instead):
/// ≥ 0.85 names the hot Python function, ≥ 0.90 reaches a root (perf: 0.10).
#[test]
fn cpython_3_12_with_x_perf_names_python_on_complete_stacks() {
    let _beside_others = beside_others();
    let Some(python) = pyenv_python("3.12") else {
        println!("no CPython 3.12 under pyenv: skipped");
        return;
    };
    let dir = scratch_dir("jit-python");
    let script = workspace_root().join("tests/workloads/jit/fib.py");
    let (trace, plain_pid) = run_both(&python, &["-X", "perf", script.to_str().unwrap(), "1500"], &dir);
    assert_python_trampoline_stacks(&trace);
    remove_perf_maps(&trace, plain_pid);
}

/// CPython 3.13 -X perf_jit: the same trampolines, named in a jitdump (`/tmp/jit-PID.dump`,
/// found through the interpreter's marker mapping of it) rather than a perf map. The trace holds
/// the names (the file is gone when the trace is read).
#[test]
fn cpython_3_13_with_x_perf_jit_names_python_from_its_jitdump() {
    let _beside_others = beside_others();
    let Some(python) = pyenv_python("3.13") else {
        println!("no CPython 3.13 under pyenv: skipped");
        return;
    };
    let dir = scratch_dir("jit-python-jitdump");
    let script = workspace_root().join("tests/workloads/jit/fib.py");
    let (trace, plain_pid) = run_both(&python, &["-X", "perf_jit", script.to_str().unwrap(), "1500"], &dir);
    let traced_pid = read_trace(&trace).header.map_or(0, |header| header.pid);
    for pid in [traced_pid, plain_pid] {
        let _ = std::fs::remove_file(format!("/tmp/jit-{pid}.dump"));
    }
    assert!(!std::path::Path::new(&format!("/tmp/perf-{traced_pid}.map")).exists(), "-X perf_jit writes no perf map");
    assert!(read_trace(&trace).jit_symbols.iter().any(|symbol| symbol.name.starts_with("py::fib:")), "the jitdump's names are in the trace");
    assert_python_trampoline_stacks(&trace);
}

/// node --perf-prof writes a jitdump (`jit-PID.dump` in its working directory) instead of a
/// perf map: the same bounds as with --perf-basic-prof.
#[test]
fn node_with_perf_prof_names_javascript_from_its_jitdump() {
    let _beside_others = beside_others();
    let dir = scratch_dir("jit-node-jitdump");
    let script = workspace_root().join("tests/workloads/jit/fib.js");
    let (trace, _) = run_both(Path::new("node"), &["--perf-prof", script.to_str().unwrap(), "1500"], &dir);
    let traced_pid = read_trace(&trace).header.map_or(0, |header| header.pid);
    assert!(dir.join(format!("jit-{traced_pid}.dump")).is_file(), "node wrote its jitdump where it runs");
    assert!(!std::path::Path::new(&format!("/tmp/perf-{traced_pid}.map")).exists(), "--perf-prof writes no perf map");
    assert!(!read_trace(&trace).jit_symbols.is_empty(), "the jitdump's names are in the trace");
    let (named, rooted, both) = shares(&trace, |f| f.starts_with("JS:") && f.contains("fib ") && f.contains("fib.js"));
    assert!(named >= 0.80, "{named:.3} of the weight names fib");
    assert!(rooted >= 0.90, "{rooted:.3} of the weight reaches a root");
    assert!(both >= 0.75, "{both:.3} of the weight names fib on a complete stack");
}

/// OpenJDK 17 with frame pointers and the perf map it writes at exit (read at report time):
/// ≥ 0.70 names the hot Java method, ≥ 0.80 reaches a root (perf: 0.00).
#[test]
fn openjdk_17_with_frame_pointers_names_java_on_complete_stacks() {
    let _beside_others = beside_others();
    let dir = scratch_dir("jit-java");
    let source = workspace_root().join("tests/workloads/jit/Fib.java");
    let compiled = Command::new("javac").arg("-d").arg(&dir).arg(&source).output().expect("javac runs (scripts/install-test-deps.sh)");
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let args = ["-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions", "-XX:+DumpPerfMapAtExit", "-cp", dir.to_str().unwrap(), "Fib", "2000"];
    let (trace, plain_pid) = run_both(Path::new("java"), &args, &dir);
    let (named, rooted, both) = shares(&trace, |f| f.contains("Fib.fib"));
    assert!(named >= 0.70, "{named:.3} of the weight names Fib.fib");
    assert!(rooted >= 0.80, "{rooted:.3} of the weight reaches a root");
    assert!(both >= 0.65, "{both:.3} of the weight names Fib.fib on a complete stack");
    remove_perf_maps(&trace, plain_pid);
}
