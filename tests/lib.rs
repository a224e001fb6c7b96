//! Helpers shared by the integration tests: build the shim and the CLI, compile C workloads,
//! run them under `LD_PRELOAD`, and read the traces back with the project's own reader.

use format::Trace;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The workspace root (the folder holding this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds `libsigtrace.so` and `sigtrace` in release mode once per test process.
fn build_release_artifacts() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-j2", "-p", "sigtrace-shim", "-p", "sigtrace-cli"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --release failed");
    });
}

/// Path of the release `libsigtrace.so`.
pub fn shim() -> PathBuf {
    build_release_artifacts();
    target_dir().join("release/libsigtrace.so")
}

/// Path of the release `sigtrace` binary.
pub fn sigtrace_cli() -> PathBuf {
    build_release_artifacts();
    target_dir().join("release/sigtrace")
}

/// A fresh, empty folder for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = target_dir().join("test-scratch").join(format!("{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Compiles `tests/workloads/<name>.c` with gcc and `flags` into `dir`; returns the binary
/// (or shared object, when `flags` contains `-shared`).
pub fn compile_c(name: &str, flags: &[&str], dir: &Path) -> PathBuf {
    let source = workspace_root().join("tests/workloads").join(format!("{name}.c"));
    let shared = flags.contains(&"-shared");
    let output = dir.join(if shared { format!("{name}.so") } else { name.to_string() });
    let result = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&output)
        .arg(&source)
        .args(if shared { vec!["-ldl"] } else { vec!["-lpthread"] })
        .output()
        .expect("gcc runs");
    assert!(result.status.success(), "gcc failed for {name}: {}", String::from_utf8_lossy(&result.stderr));
    output
}

/// What one traced run produced.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
    /// Trace files written into the run's folder, sorted.
    pub traces: Vec<PathBuf>,
}

impl Run {
    /// The single trace of the run.
    pub fn trace(&self) -> Trace {
        assert_eq!(self.traces.len(), 1, "expected one trace, found {:?}; stderr: {}", self.traces, self.stderr);
        read_trace(&self.traces[0])
    }

    /// The `cpu_ns=N` figure the workload printed on stderr (its own CPU time).
    pub fn reported_cpu_ns(&self) -> u64 {
        self.reported("cpu_ns")
    }

    /// The `<key>=N` figure the workload printed on stderr (the last one).
    pub fn reported(&self, key: &str) -> u64 {
        let prefix = format!("{key}=");
        self.stderr
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .next_back()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key}= line in stderr: {}", self.stderr))
    }

    /// The `<prefix><id> cpu_ns=<n>` lines the workload printed on stderr (per thread or per
    /// process CPU time), as id → ns.
    pub fn cpu_by_id(&self, prefix: &str) -> std::collections::HashMap<u32, u64> {
        self.stderr
            .lines()
            .filter_map(|line| {
                let (id, cpu) = line.strip_prefix(prefix)?.split_once(" cpu_ns=")?;
                Some((id.parse().ok()?, cpu.trim().parse().ok()?))
            })
            .collect()
    }

    /// stderr without sigtrace's own lines.
    pub fn host_stderr(&self) -> String {
        self.stderr.lines().filter(|line| !line.starts_with("sigtrace:")).map(|line| format!("{line}\n")).collect()
    }

    pub fn sigtrace_lines(&self) -> Vec<String> {
        self.stderr.lines().filter(|line| line.starts_with("sigtrace:")).map(str::to_string).collect()
    }
}

/// Runs `program` with `args` under the shim (preloaded after `extra_preload`, if any), with
/// the trace written into `dir` and the extra environment `env`.
pub fn run_traced(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    run_traced_with_preload(program, args, env, dir, &[])
}

pub fn run_traced_with_preload(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path, extra_preload: &[&Path]) -> Run {
    let mut preload: Vec<String> = extra_preload.iter().map(|p| p.display().to_string()).collect();
    preload.push(shim().display().to_string());
    run_traced_with_preload_list(program, args, env, dir, &preload)
}

/// Runs `program` under the shim with `libraries` after it in `LD_PRELOAD`: the dynamic loader
/// runs the constructors of later preloads first, so theirs run before sigtrace's.
pub fn run_traced_after_constructors_of(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path, libraries: &[&Path]) -> Run {
    let mut preload = vec![shim().display().to_string()];
    preload.extend(libraries.iter().map(|p| p.display().to_string()));
    run_traced_with_preload_list(program, args, env, dir, &preload)
}

fn run_traced_with_preload_list(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path, preload: &[String]) -> Run {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).env("LD_PRELOAD", preload.join(":")).env("SIGTRACE_OUTPUT", dir.join("trace.%p.sigtrace"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("workload runs");
    finish_run(output, dir)
}

/// Seconds a run of [`run_traced_bounded`] may take before it counts as a hang.
pub const RUN_SECONDS: u64 = 60;

/// Runs `program ARGS` under the shim (`sh -c SCRIPT` when `program` is `sh`), killed if it
/// outlives [`RUN_SECONDS`]; stdout and stderr go through files, so a hang cannot block reading.
pub fn run_traced_bounded(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    let (stdout_path, stderr_path) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env("LD_PRELOAD", shim())
        .env("SIGTRACE_OUTPUT", dir.join("trace.%p.sigtrace"))
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("workload starts");
    let deadline = Instant::now() + Duration::from_secs(RUN_SECONDS);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} {args:?} hung for {RUN_SECONDS} s (killed)", program.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = std::fs::read(&stdout_path).unwrap();
    let stderr = std::fs::read(&stderr_path).unwrap();
    let mut traces: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains(".sigtrace")).collect();
    sort_in_creation_order(&mut traces);
    Run {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        output: Output { status, stdout, stderr },
        traces,
    }
}

/// Sorts trace files in the order the shim creates them: each process's files by the time its
/// first file was created (pids wrap, so `t.1000.sigtrace` may be a child of `t.992.sigtrace`),
/// each name before the names numbered after it when it was taken (`t.7.sigtrace`,
/// `t.7.1.sigtrace`, `t.7.2.sigtrace`: the counter goes before the extension).
pub fn sort_in_creation_order(paths: &mut [PathBuf]) {
    let names: std::collections::HashSet<PathBuf> = paths.iter().cloned().collect();
    let created = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.created()).ok();
    let key = |path: &PathBuf| -> (Option<std::time::SystemTime>, PathBuf, u64) {
        let numbered = path.to_str().and_then(|text| {
            let stem = text.strip_suffix(".sigtrace")?;
            let (base, counter) = stem.rsplit_once('.')?;
            let first = PathBuf::from(format!("{base}.sigtrace"));
            names.contains(&first).then_some((first, counter.parse().ok()?))
        });
        let (first, counter) = numbered.unwrap_or_else(|| (path.clone(), 0));
        (created(&first), first, counter)
    };
    paths.sort_by_cached_key(key);
}

/// What `child` writes to its piped stderr up to and including the first read that holds
/// `marker`; fails if the child ends before writing it.
pub fn stderr_until(child: &mut std::process::Child, marker: &str) -> String {
    let stderr = child.stderr.as_mut().expect("a piped stderr");
    let mut seen = String::new();
    let mut buffer = [0u8; 256];
    while !seen.contains(marker) {
        let n = std::io::Read::read(stderr, &mut buffer).unwrap();
        assert!(n > 0, "the workload ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    seen
}

/// Runs `program` without the shim (the baseline for behaviour comparisons).
pub fn run_plain(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program).args(args).current_dir(dir).env_remove("LD_PRELOAD").output().expect("workload runs")
}

fn finish_run(output: Output, dir: &Path) -> Run {
    let mut traces: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("run dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".sigtrace")))
        .collect();
    sort_in_creation_order(&mut traces);
    Run { stdout: String::from_utf8_lossy(&output.stdout).into_owned(), stderr: String::from_utf8_lossy(&output.stderr).into_owned(), output, traces }
}

pub fn read_trace(path: &Path) -> Trace {
    format::read_trace(&std::fs::read(path).expect("trace readable"))
}

/// Total weight of all samples of a trace.
pub fn total_weight(trace: &Trace) -> u64 {
    trace.generations.iter().flat_map(|g| &g.samples).map(|s| u64::from(s.weight)).sum()
}

/// Number of sample records of a trace.
pub fn sample_count(trace: &Trace) -> u64 {
    trace.generations.iter().map(|g| g.samples.len() as u64).sum()
}

/// How many sample records stand for `weight` of a trace's sample weight (records of a
/// tick-limited timer carry several periods each; a share spreads by the records, not the weight).
pub fn sample_records(trace: &Trace, weight: f64) -> f64 {
    weight * sample_count(trace) as f64 / total_weight(trace).max(1) as f64
}

/// Sample weight of a trace by thread id.
pub fn weight_by_tid(trace: &Trace) -> std::collections::HashMap<u32, u64> {
    let mut weights = std::collections::HashMap::new();
    for generation in &trace.generations {
        for sample in &generation.samples {
            *weights.entry(generation.threads[sample.thread as usize].tid).or_default() += u64::from(sample.weight);
        }
    }
    weights
}

/// Periods the threads of `trace` lost to full rings (counted, never silent), by tid.
pub fn dropped_by_tid(trace: &Trace) -> std::collections::HashMap<u32, u64> {
    let mut dropped = std::collections::HashMap::new();
    for thread in trace.generations.iter().flat_map(|g| &g.threads) {
        *dropped.entry(thread.tid).or_default() += thread.dropped;
    }
    dropped
}

/// Recorded plus dropped periods, by tid: what the CPU time must add up to (a starved drain
/// thread on a loaded machine drops samples, and counts them).
pub fn accounted_by_tid(trace: &Trace) -> std::collections::HashMap<u32, u64> {
    let mut accounted = weight_by_tid(trace);
    for (tid, dropped) in dropped_by_tid(trace) {
        *accounted.entry(tid).or_default() += dropped;
    }
    accounted
}

/// The spill chunks of a trace file (samples its signal handler wrote, docs/FORMAT.md "Spill").
pub fn spill_chunks(path: &Path) -> usize {
    let mut reader = format::TraceReader::new(std::fs::File::open(path).expect("the trace opens"));
    std::iter::from_fn(|| reader.next_chunk()).filter(|chunk| matches!(chunk, format::Chunk::Spill(_))).count()
}

/// Sum of the counter `name` over all generations of a trace.
pub fn counter(trace: &Trace, name: &str) -> u64 {
    trace.generations.iter().flat_map(|g| &g.counters).filter(|(n, _)| n == name).map(|(_, v)| v).sum()
}

/// Samples a thread's CPU timer at `hz` must deliver for `cpu_ns` of CPU time.
pub fn expected_samples(cpu_ns: u64, hz: u64) -> f64 {
    cpu_ns as f64 * hz as f64 / 1e9
}

/// How many standard deviations a statistical bound allows: a 4.5 σ miss has a probability of
/// ~7e-6, so a suite of a few hundred such bounds fails by chance about once in 500 runs.
pub const SIGMAS: f64 = 4.5;

/// The allowed gap between a measured share and its true value `p` when the share is counted
/// over `n` samples: `SIGMAS` binomial standard deviations, sqrt(p(1-p)/n) each. Samples of a
/// periodic CPU timer spread far less than independent draws, so this bound is conservative.
pub fn share_tolerance(p: f64, n: f64) -> f64 {
    SIGMAS * (p * (1.0 - p) / n.max(1.0)).sqrt()
}

/// Runs `sigtrace ARGS` and returns its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(sigtrace_cli()).args(args).output().expect("sigtrace runs")
}

/// `sigtrace info --json TRACE`, which must succeed.
pub fn info_json(trace: &Path) -> serde_json::Value {
    let output = cli(&["info", "--json", &trace.display().to_string()]);
    assert!(output.status.success(), "sigtrace info {} failed: {}", trace.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("info --json is JSON")
}

/// Folded stacks (`frame;frame COUNT`, root first) of `trace`, from `sigtrace export`.
/// Asserts that no caller is a bare address (`0x…`, in no module): only the interrupted
/// instruction may be code outside every module (JIT code); a return address never is.
pub fn folded_stacks(trace: &Path) -> Vec<(Vec<String>, u64)> {
    folded_stacks_with(trace, &[])
}

/// As [`folded_stacks`], with more options of `export` (e.g. `--no-python`).
pub fn folded_stacks_with(trace: &Path, options: &[&str]) -> Vec<(Vec<String>, u64)> {
    let path = trace.display().to_string();
    let args: Vec<&str> = ["export", "--format", "folded"].iter().copied().chain(options.iter().copied()).chain([path.as_str()]).collect();
    let output = cli(&args);
    assert!(output.status.success(), "sigtrace export failed: {}", String::from_utf8_lossy(&output.stderr));
    let stacks: Vec<(Vec<String>, u64)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (stack, count) = line.rsplit_once(' ')?;
            Some((stack.split(';').map(str::to_string).collect(), count.parse().ok()?))
        })
        .collect();
    for (frames, _) in &stacks {
        let callers = &frames[..frames.len().saturating_sub(1)];
        assert!(!callers.iter().any(|frame| frame.starts_with("0x")), "a caller that is not code: {frames:?}");
    }
    stacks
}

/// Weight of the folded stacks in which `function` appears (anywhere).
pub fn weight_through(stacks: &[(Vec<String>, u64)], function: &str) -> u64 {
    stacks.iter().filter(|(frames, _)| frames.iter().any(|f| f == function)).map(|(_, count)| count).sum()
}

/// Everything the Rust reader decoded of a trace, as JSON: the shape `scripts/read_trace.py`
/// prints (tests/tests/integration/trace_format/format_md_reader.rs) and the golden traces'
/// expectations (tests/tests/integration/trace_format/golden_traces.rs).
pub fn trace_as_json(trace: &Trace) -> serde_json::Value {
    use serde_json::{json, Value};
    let header = trace.header.as_ref().map(|h| {
        json!({"pid": h.pid, "parent_pid": h.parent_pid, "executable": h.executable, "args": h.args, "clock": h.clock, "clock_hz": h.clock_hz,
               "start_clock_ns": h.start_clock_ns, "start_unix_ns": h.start_unix_ns, "hz": h.hz, "timer": h.timer, "mode": h.mode,
               "max_depth": h.max_depth, "generation_ms": h.generation_ms})
    });
    let generations: Vec<Value> = trace
        .generations
        .iter()
        .map(|g| {
            let tid = |index: u32| g.threads[index as usize].tid;
            let mut view = json!({
                "sequence": g.sequence, "start_time": g.start_time, "end_time": g.end_time, "process_cpu_ns": g.process_cpu_ns,
                "threads": g.threads.iter().map(|t| json!({"tid": t.tid, "name": t.name, "cpu_ns": t.cpu_ns, "dropped": t.dropped, "exited": t.exited})).collect::<Vec<_>>(),
                "modules": g.modules.iter().map(|m| json!({"path": m.path, "base": m.base, "start": m.start, "end": m.end,
                    "build_id": m.build_id.iter().map(|b| format!("{b:02x}")).collect::<String>()})).collect::<Vec<_>>(),
                "counters": g.counters.iter().map(|(name, value)| (name.clone(), json!(value))).collect::<serde_json::Map<_, _>>(),
                "samples": g.samples.iter().map(|s| json!({"time": s.time, "tid": tid(s.thread), "weight": s.weight,
                    "frames": g.stacks.get(s.stack as usize).expect("the stack of a sample").collect::<Vec<u64>>()})).collect::<Vec<_>>(),
                "walks": g.stack_walks,
                "events": g.events.iter().map(|e| json!({"time": e.time, "tid": tid(e.thread), "kind": e.kind.code(), "category": e.category,
                    "text": e.text})).collect::<Vec<_>>(),
            });
            name_python_frames(g, &mut view);
            view
        })
        .collect();
    let end = trace.end.map(|e| json!({"reason": e.reason.code(), "signal": e.signal, "time": e.time}));
    let mut view = json!({"header": header, "generations": generations, "end": end, "ignored_bytes": trace.ignored_bytes});
    if trace.pieces_recovered > 0 {
        view["pieces_recovered"] = json!(trace.pieces_recovered);
    }
    if !trace.jit_symbols.is_empty() {
        view["jit_symbols"] =
            trace.jit_symbols.iter().map(|s| json!({"time": s.time, "start": s.start, "size": s.size, "name": s.name})).collect::<Vec<_>>().into();
    }
    view
}

/// As `scripts/read_trace.py` shows them: the generation's Python code table (when it has
/// one) and, for each sample with Python frames, the list of them in stack order.
fn name_python_frames(g: &format::Generation, view: &mut serde_json::Value) {
    use serde_json::json;
    if !g.python_code.is_empty() {
        view["python_code"] = g.python_code.iter().map(|c| json!({"name": c.name, "file": c.file, "first_line": c.first_line})).collect::<Vec<_>>().into();
    }
    for (sample, shown) in g.samples.iter().zip(view["samples"].as_array_mut().expect("samples")) {
        let python: Vec<_> = g
            .stacks
            .get(sample.stack as usize)
            .expect("the stack of a sample")
            .filter_map(format::python::PythonFrame::from_word)
            .map(|frame| json!({"name": g.python_code.get(frame.code as usize).map(|c| c.name.clone()), "line": frame.line, "entry": frame.entry}))
            .collect();
        if !python.is_empty() {
            shown["python"] = python.into();
        }
    }
}

/// The golden traces checked in under `golden/` (see docs/FORMAT.md), sorted by name.
pub fn golden_traces() -> Vec<PathBuf> {
    let dir = workspace_root().join("golden");
    let mut traces: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("golden/").flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sigtrace")).collect();
    traces.sort();
    traces
}

/// The suite is one test binary whose tests run in parallel threads; this lock keeps a test that
/// must run alone from running beside any other. Every test that starts a program takes either
/// [`alone`] or [`beside_others`] first, for its whole run (a test that starts no process, such
/// as a pure function's, takes neither). Nested takes deadlock: a test takes one guard, once.
static WHO_RUNS: RwLock<()> = RwLock::new(());

/// Held by a test that measures sigtrace against its workload's CPU time (or whose bound assumes
/// its threads get a CPU soon), for its whole run: no other test runs meanwhile. Tick-limited
/// timers (POSIX, itimer) lose the CPU time after their last tick check, which grows with
/// contention: beside ten busy tests on two cores they captured 85%, alone 99%.
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    WHO_RUNS.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held by every other test that starts a program, for its whole run: such tests run beside each
/// other, never beside one that holds [`alone`] (a waiting [`alone`] goes first: std's lock on
/// Linux lets no new reader in while a writer waits).
pub fn beside_others() -> RwLockReadGuard<'static, ()> {
    WHO_RUNS.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `go` command: from PATH, else Debian's golang-go location.
pub fn go() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("go")).find(|go| go.is_file()));
    let found = on_path.or_else(|| Some(PathBuf::from("/usr/lib/go/bin/go")).filter(|go| go.is_file()));
    found.expect("go not found on PATH nor at /usr/lib/go/bin/go: run scripts/install-test-deps.sh")
}

/// `go tool pprof ARGS FILE`'s stdout; fails the test when pprof fails. Its scratch files go
/// next to the profile.
pub fn go_tool_pprof(args: &[&str], file: &Path) -> String {
    let scratch = file.parent().expect("the profile is in a folder");
    let output = Command::new(go())
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .env("PPROF_TMPDIR", scratch)
        .env("HOME", scratch)
        .env("GOCACHE", scratch.join("gocache"))
        .output()
        .expect("go tool pprof runs");
    assert!(output.status.success(), "go tool pprof {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
