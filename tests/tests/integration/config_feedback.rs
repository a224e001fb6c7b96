//! Configuration a user cannot get wrong silently: an unknown `SIGTRACE_*` variable and a
//! boolean that is not exactly `0`/`1` each give one `sigtrace:` line and change nothing of the
//! program's behaviour; `info` says when a tick-limited timer sampled below the requested rate,
//! and names stacks cut at `SIGTRACE_DEPTH`.

use std::path::{Path, PathBuf};

use sigtrace_tests::*;

/// events.c forks a child (no exec: the configuration is read once, in the parent).
fn events_program(dir: &Path) -> PathBuf {
    let include = format!("-I{}", workspace_root().join("shim/include").display());
    compile_c("events", &["-O2", "-g", &include, "-ldl"], dir)
}

/// Runs `program ARGS` plainly and traced with `env`; asserts the same stdout, host stderr and
/// exit status, and returns the traced run.
fn same_as_plain(program: &Path, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    let plain = run_plain(program, args, dir);
    let run = run_traced(program, args, env, dir);
    assert_eq!(run.output.status.code(), plain.status.code(), "exit status");
    assert_eq!(run.stdout, String::from_utf8_lossy(&plain.stdout), "stdout");
    assert_eq!(run.host_stderr(), String::from_utf8_lossy(&plain.stderr), "the program's own stderr");
    run
}

#[test]
fn an_unknown_variable_is_named_once_with_the_closest_known_name() {
    let _beside_others = beside_others();
    let dir = scratch_dir("config-unknown");
    let program = events_program(&dir);
    let run = same_as_plain(&program, &["fork"], &[("SIGTRACE_FREQ", "100")], &dir);
    assert_eq!(run.sigtrace_lines(), ["sigtrace: unknown variable SIGTRACE_FREQ (did you mean SIGTRACE_HZ?)"], "once, not again in the forked child");
    assert_eq!(run.traces.len(), 2, "traced as without the variable: {:?}", run.traces);

    // A shell's own output, stderr and exit status pass through; a typo of a long name.
    let dir = scratch_dir("config-unknown-sh");
    let script = "echo out; echo err >&2; exit 3";
    let run = same_as_plain(Path::new("/bin/sh"), &["-c", script], &[("SIGTRACE_GENERATIONS_MS", "20")], &dir);
    assert_eq!(run.output.status.code(), Some(3));
    assert_eq!(run.sigtrace_lines(), ["sigtrace: unknown variable SIGTRACE_GENERATIONS_MS (did you mean SIGTRACE_GENERATION_MS?)"]);
}

#[test]
fn a_process_tree_reports_a_problem_once_from_its_root() {
    let _beside_others = beside_others();
    // The shell forks and execs three programs, each of which reads the same environment: a
    // build of hundreds of processes must not repeat the line hundreds of times.
    let dir = scratch_dir("config-tree");
    let script = "/bin/true; /bin/true; /bin/echo done";
    let run = same_as_plain(Path::new("/bin/sh"), &["-c", script], &[("SIGTRACE_FREQ", "100"), ("SIGTRACE_FOLLOW_FORK", "yes")], &dir);
    assert_eq!(
        run.sigtrace_lines(),
        ["sigtrace: unknown variable SIGTRACE_FREQ (did you mean SIGTRACE_HZ?)", "sigtrace: SIGTRACE_FOLLOW_FORK=\"yes\" is not 0 or 1; using 1"],
        "once each, from the shell, not from the programs it started"
    );
    assert_eq!(run.traces.len(), 4, "the shell and its three programs are traced: {:?}", run.traces);
}

#[test]
fn a_boolean_other_than_0_or_1_is_one_line_and_the_default() {
    let _beside_others = beside_others();
    let dir = scratch_dir("config-bool");
    let program = events_program(&dir);
    let run = same_as_plain(&program, &["fork"], &[("SIGTRACE_FOLLOW_FORK", "yes")], &dir);
    assert_eq!(run.sigtrace_lines(), ["sigtrace: SIGTRACE_FOLLOW_FORK=\"yes\" is not 0 or 1; using 1"]);
    assert_eq!(run.traces.len(), 2, "the default (1): the forked child is traced: {:?}", run.traces);

    let dir = scratch_dir("config-bool-0");
    let run = same_as_plain(&program, &["fork"], &[("SIGTRACE_FOLLOW_FORK", "0")], &dir);
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.traces.len(), 1, "0 is taken: the child is not traced: {:?}", run.traces);
}

/// The value of the `key:` row of `info`'s text, if there is one.
fn row(text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}:");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).map(|value| value.trim().to_string())
}

/// POSIX thread CPU timers are checked on the scheduler tick: asked for 999 Hz on a 250 Hz
/// kernel they deliver ~250 records per CPU second (each weighted by the periods it stands for),
/// and `info` says so. The rate it shows is records over the thread's CPU time; checked here
/// against the workload's own CPU clock, within SIGMAS Poisson deviations of the record count.
#[test]
fn info_shows_the_effective_rate_of_a_tick_limited_timer() {
    let _alone = alone();
    let dir = scratch_dir("config-effective-rate");
    let program = compile_c("deep", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["10", "1000"], &[("SIGTRACE_TIMER", "posix")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let file = run.traces[0].display().to_string();
    let info = info_json(Path::new(&file));
    assert_eq!(info["timer"], "posix");
    let records = info["samples"].as_u64().expect("samples") as f64;
    let cpu_s = run.reported_cpu_ns() as f64 / 1e9;
    let effective = info["effective_hz"].as_f64().expect("effective_hz");
    let measured = records / cpu_s;
    let tolerance = SIGMAS * records.sqrt() / cpu_s;
    assert!((effective - measured).abs() <= tolerance, "effective {effective:.1} Hz, records / CPU {measured:.1} Hz (± {tolerance:.1})");

    let text = String::from_utf8_lossy(&cli(&["info", &file]).stdout).into_owned();
    let expected = cpu_s * 999.0;
    let clearly_short = records < 0.9 * expected - SIGMAS * expected.sqrt();
    assert_eq!(info["tick_limited"], clearly_short, "{records} records for {expected:.0} periods");
    if clearly_short {
        let shown = row(&text, "effective rate").unwrap_or_else(|| panic!("no effective rate row:\n{text}"));
        let hz: f64 = shown.strip_suffix(" Hz (tick-limited)").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{shown}"));
        assert!((hz - effective).abs() <= 0.5, "{shown} vs {effective}");
    } else {
        // A kernel ticking at 1000 Hz keeps up with 999 Hz: nothing to say.
        assert_eq!(row(&text, "effective rate"), None, "{text}");
    }

    // The perf timer is not tick-limited: no such row, whatever the rate.
    let dir = scratch_dir("config-effective-rate-perf");
    let run = run_traced(&program, &["10", "200"], &[("SIGTRACE_TIMER", "perf")], &dir);
    let text = String::from_utf8_lossy(&cli(&["info", &run.traces[0].display().to_string()]).stdout).into_owned();
    if row(&text, "sampling").is_some_and(|sampling| sampling.contains("timer perf")) {
        assert_eq!(row(&text, "effective rate"), None, "{text}");
    }
}

#[test]
fn info_names_the_depth_limit_end() {
    let _beside_others = beside_others();
    let dir = scratch_dir("config-depth-limit");
    let program = compile_c("deep", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["200", "200"], &[("SIGTRACE_DEPTH", "4")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let text = String::from_utf8_lossy(&cli(&["info", &run.traces[0].display().to_string()]).stdout).into_owned();
    let early = row(&text, "early ends").unwrap_or_else(|| panic!("no early ends row:\n{text}"));
    let label = "depth limit (SIGTRACE_DEPTH=4) ";
    let count: u64 = early
        .split(", ")
        .find_map(|entry| entry.strip_prefix(label))
        .map(|n| n.replace(',', "").parse().expect("a count"))
        .unwrap_or_else(|| panic!("no `{label}N` in: {early}"));
    let samples = sample_count(&run.trace());
    assert!(count as f64 >= 0.9 * samples as f64, "{count} of {samples} stacks cut at depth 4 (200-deep recursion)");
}
