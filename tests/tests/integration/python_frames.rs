//! Python frames in the stacks of real CPython interpreters (Debian's `python3`, 3.11, and
//! pyenv's 3.9, 3.10, 3.12 and 3.13 where the machine has them): the hot Python function with its callers in order,
//! threads with their own functions, a forked child. Workload: `tests/workloads/python/frames.py`.

use sigtrace_tests::{beside_others, compile_c, folded_stacks, folded_stacks_with, read_trace, run_traced, scratch_dir, workspace_root};
use std::path::{Path, PathBuf};

/// The interpreters on this machine whose frames sigtrace reads, with a name for messages.
pub(crate) fn interpreters() -> Vec<(&'static str, PathBuf)> {
    let candidates = [
        ("3.9", "/root/.pyenv/versions/3.9.18/bin/python3.9"),
        ("3.10", "/root/.pyenv/versions/3.10.13/bin/python3.10"),
        ("3.11", "/usr/bin/python3.11"),
        ("3.12", "/root/.pyenv/versions/3.12.1/bin/python3.12"),
        ("3.13", "/root/.pyenv/versions/3.13.0/bin/python3.13"),
    ];
    let found: Vec<_> = candidates.iter().filter(|(_, path)| Path::new(path).exists()).map(|(name, path)| (*name, PathBuf::from(path))).collect();
    assert!(found.iter().any(|(name, _)| *name == "3.11"), "Debian's python3.11 is installed by scripts/install-test-deps.sh");
    for (name, path) in &candidates {
        if !Path::new(path).exists() {
            eprintln!("python_frames: CPython {name} not on this machine ({path}); its cases are skipped");
        }
    }
    found
}

fn workload() -> String {
    workspace_root().join("tests/workloads/python/frames.py").display().to_string()
}

/// Whether `frames` (root first) holds `sequence` as consecutive frames.
fn holds_in_order(frames: &[String], sequence: &[&str]) -> bool {
    frames.windows(sequence.len()).any(|window| window.iter().zip(sequence).all(|(frame, wanted)| frame == wanted))
}

/// Whether `frames` (root first) holds `sequence` in this order, other frames (the
/// interpreter's own, resuming a generator or a coroutine) allowed between.
fn holds_in_sequence(frames: &[String], sequence: &[&str]) -> bool {
    let mut wanted = sequence.iter().peekable();
    for frame in frames {
        if wanted.peek().is_some_and(|&&name| name == frame) {
            wanted.next();
        }
    }
    wanted.peek().is_none()
}

/// Whether `frames` holds the Python `callers` in order: as consecutive frames from 3.11 on
/// (a Python call runs in the same evaluation frame), with the interpreter's C call frames
/// between them on 3.9 and 3.10 (each Python call is a C call into a new evaluation frame).
fn holds_callers(version: &str, frames: &[String], callers: &[&str]) -> bool {
    if matches!(version, "3.9" | "3.10") {
        holds_in_sequence(frames, callers) && frames.iter().filter(|frame| callers.contains(&frame.as_str())).count() == callers.len()
    } else {
        holds_in_order(frames, callers)
    }
}

fn weight(stacks: &[(Vec<String>, u64)], keep: impl Fn(&[String]) -> bool) -> u64 {
    stacks.iter().filter(|(frames, _)| keep(frames)).map(|(_, count)| count).sum()
}

#[test]
fn the_hot_python_function_has_its_callers_in_order() {
    let _guard = beside_others();
    hot_function_has_its_callers_in_order("main", &[]);
}

/// Runs the single-threaded hot loop under every interpreter with `env` and checks its stacks;
/// returns each version's trace.
pub(crate) fn hot_function_has_its_callers_in_order(label: &str, env: &[(&str, &str)]) -> Vec<(&'static str, PathBuf)> {
    let mut traces = Vec::new();
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_{label}_{version}"));
        let run = run_traced(&python, &[&workload(), "main", "1.0"], env, &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        assert!(run.sigtrace_lines().is_empty(), "{version}: {:?}", run.sigtrace_lines());
        let stacks = folded_stacks(&run.traces[0]);
        let total = weight(&stacks, |_| true);
        let named = weight(&stacks, |frames| holds_callers(version, frames, &["<module>", "spin_outer", "spin_middle", "spin_leaf"]));
        let rooted = weight(&stacks, |frames| frames.first().is_some_and(|root| root == "_start"));
        let share = named as f64 / total as f64;
        assert!(total >= 200, "{version}: only {total} samples");
        assert!(share >= 0.90, "{version}: {share:.3} of the weight names spin_leaf under its callers; stacks: {:?}", &stacks[..stacks.len().min(5)]);
        assert!(rooted as f64 / total as f64 >= 0.95, "{version}: {rooted} of {total} reach _start");
        // The raw native stacks name no Python function.
        let raw = sigtrace_tests::cli(&["export", "--format", "folded", "--no-python", &run.traces[0].display().to_string()]);
        let raw = String::from_utf8_lossy(&raw.stdout);
        assert!(!raw.contains("spin_leaf") && raw.contains("_PyEval_EvalFrameDefault"), "{version}: --no-python shows {}", &raw[..raw.len().min(400)]);
        traces.push((version, run.traces[0].clone()));
    }
    traces
}

/// Each thread's samples carry its own Python frames: two threads of 0.3 s and 0.6 s of CPU in
/// work_a and work_b, the weight through each a third and two thirds. The threads are sampled
/// by perf events where the kernel allows them: this test is about where samples are, and a
/// POSIX timer, which `auto` gives a thread that switches often (the GIL hands over ~1 500
/// times a CPU-second, at ~28 µs a switch for a perf event on this VM), may not fire for
/// hundreds of ms of CPU on a loaded machine; the exit's own sample then carries those
/// periods on the exit path (beside two CPU hogs, 306 of work_b's 600, and work_a held 0.50).
#[test]
fn two_python_threads_hold_their_own_shares() {
    let _guard = beside_others();
    let env: &[(&str, &str)] = if crate::timer_sources::perf_allowed() { &[("SIGTRACE_TIMER", "perf")] } else { &[] };
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_threads_{version}"));
        let run = run_traced(&python, &[&workload(), "threads", "0.3", "0.6"], env, &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let stacks = folded_stacks(&run.traces[0]);
        let a = weight(&stacks, |frames| frames.iter().any(|f| f == "work_a"));
        let b = weight(&stacks, |frames| frames.iter().any(|f| f == "work_b"));
        let mixed = weight(&stacks, |frames| frames.iter().any(|f| f == "work_a") && frames.iter().any(|f| f == "work_b"));
        assert_eq!(mixed, 0, "{version}: stacks mixing both threads' functions");
        let share_a = a as f64 / (a + b) as f64;
        let exits = weight(&stacks, |frames| frames.iter().any(|f| f.starts_with("sigtrace::lifecycle::threads::release_exiting_thread")));
        // Thread CPU times 0.3 s and 0.6 s: a third; the GIL switches cost each thread alike.
        assert!((share_a - 1.0 / 3.0).abs() <= 0.1, "{version}: work_a holds {share_a:.3} of the two threads' weight ({a} vs {b}; {exits} on exit paths)");
        let total = weight(&stacks, |_| true);
        assert!((a + b) as f64 >= 0.8 * total as f64, "{version}: only {} of {total} name a thread's function", a + b);
    }
}

/// A thread is often sampled before it binds its Python thread state (always by its start-up
/// sample, when it has one): its first walks find no state of its own, and it must be looked for
/// again soon, not after 64 walks (64 periods and more of a thread's CPU without its Python
/// frames; before, beside two CPU hogs, work_b lost half its weight so). Eight threads in turn,
/// each 20 ms of CPU in work_a at 10 kHz: all but a few periods of each (its start-up,
/// threading's own code around work_a) name work_a. Its exit path's own sample is left out: it
/// stands for the moments its timer passed without a sample, many for a POSIX timer on a loaded
/// machine (`auto` may move a thread to one), and is taken where the thread is then.
#[test]
fn a_thread_sampled_before_it_binds_its_python_state_gets_its_frames_soon() {
    let _guard = beside_others();
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_one_by_one_{version}"));
        let run = run_traced(&python, &[&workload(), "one_by_one", "8", "0.02"], &[("SIGTRACE_HZ", "10000")], &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let pid = read_trace(&run.traces[0]).header.expect("a header").pid;
        let main_root = |frames: &[String]| frames.first().is_some_and(|root| root.ends_with(&format!("({pid})")));
        let stacks = folded_stacks_with(&run.traces[0], &["--per-thread"]);
        let mut workers: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        let exit_sample = |frames: &[String]| frames.iter().any(|f| f.starts_with("sigtrace::lifecycle::threads::release_exiting_thread"));
        for (frames, count) in stacks.iter().filter(|(frames, _)| !main_root(frames) && !exit_sample(frames)) {
            let worker = workers.entry(frames[0].clone()).or_default();
            worker.0 += count;
            if frames.iter().any(|f| f == "work_a") {
                worker.1 += count;
            }
        }
        assert_eq!(workers.len(), 8, "{version}: the eight threads: {workers:?}");
        for (thread, (total, in_work)) in &workers {
            assert!(*total >= 100, "{version}: {thread} was sampled: weight {total}");
            assert!(total - in_work < 32, "{version}: {thread}: {in_work} of its weight {total} names work_a");
        }
    }
}

#[test]
fn a_forked_child_keeps_its_python_frames() {
    let _guard = beside_others();
    forked_child_keeps_its_python_frames("fork", &[]);
}

/// Runs the forking workload under every interpreter with `env` and checks the child's stacks.
pub(crate) fn forked_child_keeps_its_python_frames(label: &str, env: &[(&str, &str)]) {
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_{label}_{version}"));
        let run = run_traced(&python, &[&workload(), "fork", "0.4"], env, &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        assert_eq!(run.traces.len(), 2, "{version}: a trace per process: {:?}", run.traces);
        let child = run.traces.iter().map(|trace| folded_stacks(trace)).max_by_key(|stacks| weight(stacks, |_| true)).unwrap();
        let total = weight(&child, |_| true);
        let named = weight(&child, |frames| holds_callers(version, frames, &["spin_outer", "spin_middle", "spin_leaf"]));
        assert!(named as f64 >= 0.90 * total as f64, "{version}: the child's {named} of {total} name spin_leaf under its callers");
    }
}

#[test]
fn generator_and_coroutine_frames_run_on_top_of_their_callers() {
    let _guard = beside_others();
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_generators_{version}"));
        let run = run_traced(&python, &[&workload(), "generators", "0.8"], &[], &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let stacks = folded_stacks(&run.traces[0]);
        let total = weight(&stacks, |_| true);
        let generator = weight(&stacks, |frames| holds_in_sequence(frames, &["consume", "produce", "spin_leaf"]));
        let coroutine = weight(&stacks, |frames| holds_in_sequence(frames, &["outer_coroutine", "inner_coroutine", "spin_leaf"]));
        // Half of the CPU time each, less start-up and the event loop's own share.
        for (what, share) in [("generator", generator as f64 / total as f64), ("coroutine", coroutine as f64 / total as f64)] {
            assert!(share >= 0.35, "{version}: {share:.3} of the weight shows the {what} frames in order; stacks: {:?}", &stacks[..stacks.len().min(4)]);
        }
    }
}

/// Wall mode: a thread sleeping in `time.sleep` is sampled by the drain thread from outside
/// (blocked samples), with its Python frames read by `process_vm_readv`.
#[test]
fn blocked_samples_in_wall_mode_carry_python_frames() {
    let _guard = beside_others();
    for (version, python) in interpreters() {
        let dir = scratch_dir(&format!("python_frames_wall_{version}"));
        let run = run_traced(&python, &[&workload(), "sleeps", "0.6"], &[("SIGTRACE_MODE", "wall")], &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let stacks = folded_stacks(&run.traces[0]);
        let total = weight(&stacks, |_| true);
        let named = weight(&stacks, |frames| holds_callers(version, frames, &["<module>", "sleeper_outer", "sleeper_leaf"]));
        assert!(total >= 200, "{version}: only {total} of wall weight");
        // The wall time in sleeper_leaf, measured by the program: its start-up, its end and the
        // lines between the sleeps take longer on a loaded machine, the sleeps do not. Allowed:
        // a sample stands for the wall time since its thread's previous tick, which may have
        // found it between two sleeps.
        let slept = sigtrace_tests::expected_samples(run.reported("slept_ns"), u64::from(read_trace(&run.traces[0]).header.expect("a header").hz));
        assert!(
            named as f64 >= 0.9 * slept,
            "{version}: {named} of {total} name sleeper_leaf under its callers, for {slept:.0} periods of sleeps; {:?}",
            &stacks[..stacks.len().min(3)]
        );
    }
}

/// A program embedding CPython: it opens a `libpython` with `RTLD_LOCAL` (`_PyRuntime` is not in
/// the global scope) and runs Python code in it (`tests/workloads/embed_python.c`).
#[test]
fn an_interpreter_opened_rtld_local_by_an_embedding_program_is_found() {
    let _guard = beside_others();
    let debian = std::fs::read_dir("/usr/lib").unwrap().flatten().map(|dir| dir.path().join("libpython3.11.so.1.0")).find(|path| path.exists());
    let debian = debian.expect("Debian's libpython3.11 is installed by scripts/install-test-deps.sh");
    let mut libraries = vec![("3.11", debian, None)];
    for (version, home) in [("3.9", "/root/.pyenv/versions/3.9.18"), ("3.12", "/root/.pyenv/versions/3.12.1")] {
        let library = Path::new(home).join(format!("lib/libpython{version}.so.1.0"));
        if library.exists() {
            libraries.push((version, library, Some(home)));
        }
    }
    let code = "import time\n\
                def hot_embedded(seconds):\n    end = time.thread_time() + seconds\n    while time.thread_time() < end:\n        sorted(range(300, 0, -1))\n\
                def caller_embedded():\n    hot_embedded(0.6)\n\
                caller_embedded()\n";
    for (version, library, home) in libraries {
        let dir = scratch_dir(&format!("python_frames_embedded_{version}"));
        let program = compile_c("embed_python", &["-O1"], &dir);
        let env: Vec<(&str, &str)> = home.map(|home| ("PYTHONHOME", home)).into_iter().collect();
        let run = run_traced(&program, &[&library.display().to_string(), code], &env, &dir);
        assert!(run.output.status.success(), "{version}: {}", run.stderr);
        let stacks = folded_stacks(&run.traces[0]);
        let total = weight(&stacks, |_| true);
        let named = weight(&stacks, |frames| holds_callers(version, frames, &["<module>", "caller_embedded", "hot_embedded"]));
        assert!(named as f64 >= 0.80 * total as f64, "{version}: {named} of {total} name hot_embedded under its callers; {:?}", &stacks[..stacks.len().min(3)]);
    }
}
