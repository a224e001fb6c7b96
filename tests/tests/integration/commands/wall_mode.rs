//! Wall-clock mode through every command: one run of `wall_mix` recorded with
//! `sigtrace record --mode wall --wall-hz 200` (shared by the tests of this module), then read by
//! `info --json` (each thread's wall time by state against its lifetime), `report --by-call`,
//! `report --state`, `export --format pprof` opened by the real `go tool pprof`, and
//! `export --format firefox` (the reader's blocked stretches as markers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use sigtrace_tests::*;

/// How long `wall_mix` runs its threads, ms.
const RUN_MS: u64 = 1500;
/// The wall-clock tick rate asked for (`--wall-hz`).
const WALL_HZ: u64 = 200;
/// ns of one wall-clock tick.
const TICK_NS: u64 = 1_000_000_000 / WALL_HZ;

/// The recorded run.
struct Recorded {
    dir: PathBuf,
    trace: PathBuf,
    /// `sigtrace record`'s stderr.
    stderr: String,
    info: Value,
    /// tid → (name, lifetime ns): from its start event to its exit event; the main thread's
    /// from the trace's start to its end.
    lifetimes: BTreeMap<u64, (String, u64)>,
}

/// `wall_mix` recorded once for every test of this module (its 1.5 s are the cost of all of them).
fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    // A test calls this before it takes `beside_others`: the recording takes `alone`.
    RECORDED.get_or_init(|| {
        let _alone = alone();
        let dir = scratch_dir("wall-cli");
        let program = compile_c("wall_mix", &["-O2", "-g"], &dir);
        let pattern = dir.join("wall.%p.sigtrace").display().to_string();
        let wall_hz = WALL_HZ.to_string();
        let output = Command::new(sigtrace_cli())
            .args(["record", "--mode", "wall", "--wall-hz", &wall_hz, "-o", &pattern, "--"])
            .arg(&program)
            .arg(RUN_MS.to_string())
            .current_dir(&dir)
            .env_remove("SIGTRACE_MODE")
            .env_remove("SIGTRACE_WALL_HZ")
            .output()
            .expect("sigtrace record runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "record failed: {stderr}");
        assert!(stdout.contains("eintr=0 short_sleeps=0"), "no call was disturbed: {stdout}");
        let traces: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the run's folder")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "sigtrace"))
            .collect();
        assert_eq!(traces.len(), 1, "one trace: {traces:?}; {stderr}");
        let trace = traces[0].clone();
        let info = info_json(&trace);
        let lifetimes = lifetimes(&trace, &info);
        Recorded { dir, trace, stderr, info, lifetimes }
    })
}

/// Each thread's lifetime from `sigtrace events --json`.
fn lifetimes(trace: &Path, info: &Value) -> BTreeMap<u64, (String, u64)> {
    let output = cli(&["events", "--json", &trace.display().to_string()]);
    assert!(output.status.success(), "events failed: {}", String::from_utf8_lossy(&output.stderr));
    let (mut starts, mut exits) = (BTreeMap::new(), BTreeMap::new());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let event: Value = serde_json::from_str(line).expect("one JSON object per line");
        let (tid, at) = (event["tid"].as_u64().expect("tid"), event["unix_ns"].as_u64().expect("unix_ns"));
        match event["event"].as_str() {
            Some("thread_start") => starts.insert(tid, at),
            Some("thread_exit") => exits.insert(tid, at),
            _ => None,
        };
    }
    let (pid, duration) = (info["pid"].as_u64().unwrap(), info["duration_ns"].as_u64().unwrap());
    info["per_thread"]
        .as_array()
        .expect("per_thread")
        .iter()
        .map(|thread| {
            let tid = thread["tid"].as_u64().unwrap();
            let name = thread["name"].as_str().unwrap_or_default().to_string();
            let lifetime = if tid == pid {
                duration
            } else {
                let (Some(&from), Some(&to)) = (starts.get(&tid), exits.get(&tid)) else { panic!("thread {tid} ({name}) starts and exits") };
                to - from
            };
            (tid, (name, lifetime))
        })
        .collect()
}

fn thread<'a>(recorded: &'a Recorded, name: &str) -> &'a Value {
    recorded.info["per_thread"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("thread {name}: {}", recorded.info))
}

/// `sigtrace ARGS… TRACE`'s stdout; it must succeed.
fn sigtrace(args: &[&str], trace: &Path) -> String {
    let mut all: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    all.push(trace.display().to_string());
    let output = cli(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "sigtrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn record_mode_wall_writes_a_wall_trace_at_the_wall_rate_asked_for() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let header = read_trace(&recorded.trace).header.expect("a header");
    assert_eq!(header.mode, "wall");
    assert_eq!(recorded.info["mode"], "wall");
    assert!(recorded.stderr.contains(&format!("and waiting threads' wall time at {WALL_HZ} Hz (mode wall)")), "the start line: {}", recorded.stderr);
    assert!(recorded.stderr.contains("; wall time "), "the closing line gives the wall time by state: {}", recorded.stderr);
    // The reader is blocked all its life: a sample per tick at most (a late tick is one
    // sample of more weight).
    let reader = thread(recorded, "reader");
    let (_, lifetime) = &recorded.lifetimes[&reader["tid"].as_u64().unwrap()];
    let ticks = *lifetime as f64 / TICK_NS as f64;
    let samples = reader["samples"].as_u64().unwrap() as f64;
    assert!(samples <= ticks + 2.0 && samples > 0.0, "reader: {samples} samples in {ticks:.0} ticks of {WALL_HZ} Hz");
    // What the command is given (the shim's tests check that it follows it).
    let output = cli(&[
        "record",
        "--mode",
        "wall",
        "--wall-hz",
        "250",
        "-o",
        &recorded.dir.join("env.%p.sigtrace").display().to_string(),
        "--",
        "sh",
        "-c",
        "echo $SIGTRACE_MODE $SIGTRACE_WALL_HZ",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "wall 250\n");

    // The flags are checked by clap.
    for bad in [["--wall-hz", "0"], ["--wall-hz", "1001"], ["--mode", "idle"]] {
        let output = cli(&["record", bad[0], bad[1], "--", "true"]);
        assert_eq!(output.status.code(), Some(2), "{bad:?} is refused");
        assert!(String::from_utf8_lossy(&output.stderr).contains(bad[0]), "the error names {}", bad[0]);
    }
}

#[test]
fn info_gives_each_threads_wall_time_by_state_and_it_covers_the_threads_life() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let info = &recorded.info;
    let field = |value: &Value, key: &str| value[key].as_u64().unwrap_or_else(|| panic!("{key} in {value}"));
    let period = field(info, "period_ns");
    let mut sum = [0u64; 4];
    for thread in info["per_thread"].as_array().unwrap() {
        let [wall, running, runnable, blocked] = ["wall_ns", "running_ns", "runnable_ns", "blocked_ns"].map(|key| field(thread, key));
        assert_eq!(wall, running + runnable + blocked, "the states add up: {thread}");
        assert_eq!(wall, field(thread, "weight") * period, "the wall time is the weight's: {thread}");
        for (total, part) in sum.iter_mut().zip([wall, running, runnable, blocked]) {
            *total += part;
        }
        // Every thread's life is accounted for, running, waiting for a CPU or blocked, and no
        // time twice: within a tick at either end (and 1% for a drain thread late under load).
        let (name, lifetime) = &recorded.lifetimes[&field(thread, "tid")];
        assert!(wall <= lifetime + 2 * TICK_NS && wall + 2 * TICK_NS + lifetime / 100 >= *lifetime, "{name}: wall {wall} ns in a life of {lifetime} ns");
    }
    assert_eq!(sum, ["wall_ns", "running_ns", "runnable_ns", "blocked_ns"].map(|key| field(info, key)), "the file's totals are the threads'");

    // The threads that wait all the time are blocked all the time.
    for name in ["sleeper", "reader", "poller", "raw_reader"] {
        let thread = thread(recorded, name);
        assert!(field(thread, "blocked_ns") as f64 >= 0.98 * field(thread, "wall_ns") as f64, "{name} is blocked: {thread}");
    }
    // The busy thread runs: its wall time is CPU time, captured as in cpu mode.
    let busy = thread(recorded, "busy");
    let (running, cpu) = (field(busy, "running_ns"), field(busy, "cpu_ns"));
    assert!(running as f64 >= 0.9 * cpu as f64 && running <= cpu + 2 * period, "busy: running {running} ns for {cpu} ns of CPU");
    // The capture ratio is of running samples only: about 1, never the wall time's ~5.
    let ratio = info["capture_ratio"].as_f64().unwrap();
    assert!((0.8..=1.1).contains(&ratio), "capture ratio {ratio}");
    assert_eq!(field(info, "sampled_cpu_ns"), field(info, "running_ns"));

    let text = sigtrace(&["info"], &recorded.trace);
    assert!(text.contains("mode wall") && text.contains("wall time by state:") && text.contains("wall.walks:"), "{text}");
}

#[test]
fn report_by_call_names_each_blocking_call_and_where_it_was_made() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let text = sigtrace(&["report", "--by-call"], &recorded.trace);
    assert!(text.contains("unit: wall time") && text.lines().nth(1).is_some_and(|l| l.starts_with("wall time ")), "{text}");
    // call → (wall time s, share %, samples, caller)
    let rows: BTreeMap<String, (f64, f64, u64, String)> = text
        .lines()
        .skip_while(|line| !line.starts_with("blocking call"))
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let share = fields[3].trim_end_matches('%').parse().expect("a share");
            (fields[0].to_string(), (fields[1].parse().expect("seconds"), share, fields[4].parse().expect("samples"), fields[5..].join(" ")))
        })
        .collect();
    let wall_s = recorded.info["wall_ns"].as_u64().unwrap() as f64 / 1e9;
    for (call, caller) in [("pthread_mutex_lock", "wait_for_the_lock"), ("read", "read_the_pipe"), ("epoll_wait", "poll_for_events")] {
        let (seconds, share, samples, found) = rows.get(call).unwrap_or_else(|| panic!("{call} in {text}"));
        assert_eq!(found, caller, "{call} is called from {caller}: {text}");
        assert!(*samples > 0 && *seconds >= 0.5 * RUN_MS as f64 / 1e3, "{call}: {seconds} s in {samples} samples: {text}");
        assert!((share - seconds / wall_s * 100.0).abs() < 0.1, "{call}'s share is of all the wall time: {text}");
    }
    assert!(rows.contains_key("sleep") || rows.contains_key("nanosleep"), "{text}");
    // A read through syscall(2), which sigtrace does not interpose, is named from /proc.
    assert!(rows.get("syscall:read").is_some_and(|row| row.0 >= 0.5 * RUN_MS as f64 / 1e3), "{text}");
    let sleeping: f64 = ["sleep", "nanosleep"].iter().filter_map(|call| rows.get(*call)).map(|row| row.0).sum();
    assert!(sleeping >= RUN_MS as f64 / 1e3, "the sleeper sleeps all the run: {text}");
}

#[test]
fn report_state_blocked_shows_where_threads_waited_not_where_they_ran() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let text = sigtrace(&["report", "--state", "blocked", "--top", "8"], &recorded.trace);
    assert!(text.lines().any(|line| line.starts_with("only blocked samples: ")), "{text}");
    let rows = |text: &str| -> Vec<String> {
        let table = text.lines().skip_while(|line| !line.trim_start().starts_with("self")).skip(1);
        table.map(|line| line.split_whitespace().skip(4).collect::<Vec<_>>().join(" ")).collect()
    };
    let functions = rows(&text);
    assert!(functions.len() >= 4 && functions[..4].iter().all(|f| f.starts_with("[blocked: ")), "the calls lead: {text}");
    assert!(!functions[..5].iter().any(|f| f.starts_with("burn_holding_the_lock")), "the busy thread's work is not blocked time: {text}");
    let running = sigtrace(&["report", "--state", "running", "--top", "3"], &recorded.trace);
    let functions = rows(&running);
    assert!(functions[0].starts_with("burn_holding_the_lock") && !functions.iter().any(|f| f.starts_with('[')), "{running}");
    let output = cli(&["report", "--state", "asleep", &recorded.trace.display().to_string()]);
    assert_eq!(output.status.code(), Some(2), "an unknown state is refused");
}

/// `-top`'s rows: function → its flat value as printed (`0` when none).
fn top_rows(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 6 && fields[1].ends_with('%')).then(|| (fields[5..].join(" "), fields[0].to_string()))
        })
        .collect()
}

#[test]
fn pprof_holds_wall_time_labelled_by_state_and_call() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let profile = recorded.dir.join("wall.pb.gz");
    let output = cli(&["export", "--format", "pprof", "-o", &profile.display().to_string(), &recorded.trace.display().to_string()]);
    assert!(output.status.success() && output.stderr.is_empty(), "export: {}", String::from_utf8_lossy(&output.stderr));

    let top = go_tool_pprof(&["-top"], &profile);
    assert!(top.lines().any(|line| line == "Type: wall"), "{top}");
    // Every sample's values, summed (`-raw`: `  COUNT  NS: LOCATIONS` lines).
    let raw = go_tool_pprof(&["-raw"], &profile);
    let (samples, ns) = raw
        .lines()
        .skip_while(|line| line.trim_end() != "Samples:")
        .take_while(|line| line.trim_end() != "Locations")
        .filter_map(|line| {
            let values: Vec<u64> = line.split_once(':')?.0.split_whitespace().map(|v| v.parse().ok()).collect::<Option<_>>()?;
            (values.len() == 2).then(|| (values[0], values[1]))
        })
        .fold((0, 0), |(count, total), (c, n)| (count + c, total + n));
    assert_eq!((samples, ns), (recorded.info["samples"].as_u64().unwrap(), recorded.info["wall_ns"].as_u64().unwrap()), "pprof's totals are info's");
    assert!(raw.contains("state:[blocked]") && raw.contains("call:[read]") && raw.contains("state:[running]"), "the labels: {raw}");

    let blocked = top_rows(&go_tool_pprof(&["-top", "-tagfocus=state=blocked"], &profile));
    let running = top_rows(&go_tool_pprof(&["-top", "-tagfocus=state=running"], &profile));
    assert!(blocked.contains_key("read_the_pipe") && blocked.contains_key("[blocked: read]"), "{blocked:?}");
    // Blocked samples end in the call's frame, never in the program's work (the busy thread
    // may block on the lock inside burn_holding_the_lock when the waiter holds it, below it).
    assert!(blocked.iter().all(|(function, flat)| function.starts_with("[blocked: ") || flat == "0"), "{blocked:?}");
    assert!(running.get("burn_holding_the_lock").is_some_and(|flat| flat != "0"), "{running:?}");
    assert!(!running.keys().any(|f| f.starts_with("[blocked")), "{running:?}");
    let reads = top_rows(&go_tool_pprof(&["-top", "-tagfocus=call=read"], &profile));
    assert!(reads.contains_key("read_the_pipe") && !reads.contains_key("poll_for_events"), "{reads:?}");
}

#[test]
fn firefox_shows_the_readers_wait_as_a_blocked_marker() {
    let recorded = recorded();
    let _beside_others = beside_others();
    let json: Value = serde_json::from_str(&sigtrace(&["export", "--format", "firefox"], &recorded.trace)).expect("JSON");
    let reader = json["threads"].as_array().unwrap().iter().find(|t| t["name"] == "reader").expect("the reader thread");
    let markers = &reader["markers"];
    let strings = reader["stringArray"].as_array().unwrap();
    let blocked: Vec<(f64, f64)> = (0..markers["length"].as_u64().unwrap() as usize)
        .filter(|&i| strings[markers["name"][i].as_u64().unwrap() as usize] == "blocked: read")
        .map(|i| (markers["startTime"][i].as_f64().unwrap(), markers["endTime"][i].as_f64().unwrap()))
        .collect();
    assert!(!blocked.is_empty(), "a blocked marker on the reader: {markers}");
    // The reader blocks in one read all its life: its markers cover its blocked time.
    let covered_ms: f64 = blocked.iter().map(|(start, end)| end - start).sum();
    let blocked_ms = thread(recorded, "reader")["blocked_ns"].as_u64().unwrap() as f64 / 1e6;
    assert!((covered_ms - blocked_ms).abs() <= TICK_NS as f64 / 1e6, "markers cover {covered_ms} ms of {blocked_ms} ms blocked: {blocked:?}");
    // CPU deltas only from running samples: the reader has almost none.
    let cpu_us: u64 = reader["samples"]["threadCPUDelta"].as_array().unwrap().iter().filter_map(Value::as_u64).sum();
    let running_us = thread(recorded, "reader")["running_ns"].as_u64().unwrap() / 1000;
    assert!(cpu_us <= running_us + 1, "the reader's CPU deltas {cpu_us} µs, its running time {running_us} µs");
}
