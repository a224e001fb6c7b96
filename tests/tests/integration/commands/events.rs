//! `sigtrace events`: the events of a real traced run (tests/workloads/events.c: two threads
//! whose regions interleave, log messages, a forked child) in time order, with the region each
//! end closes, the thread names, times within the run, the `--tid`/`--kind` filters and the JSON
//! form; and `report --region` naming the regions that exist when the one asked for does not.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sigtrace_tests::*;

/// Compiles events.c against the installed header.
fn events_program(dir: &Path) -> PathBuf {
    let include = format!("-I{}", workspace_root().join("shim/include").display());
    compile_c("events", &["-O2", "-g", &include, "-ldl"], dir)
}

fn unix_ns_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos() as u64
}

/// A traced run of events.c with `args`, and the Unix time (ns) just before it started and just
/// after it ended.
fn traced_run(name: &str, args: &[&str]) -> (Run, u64, u64) {
    let dir = scratch_dir(name);
    let program = events_program(&dir);
    let plain = run_plain(&program, args, &dir);
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "events done\n", "runs unchanged without sigtrace");
    let before = unix_ns_now();
    let run = run_traced(&program, args, &[], &dir);
    let after = unix_ns_now();
    assert!(run.output.status.success(), "{}", run.stderr);
    assert_eq!(run.stdout, "events done\n");
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    (run, before, after)
}

fn text_of(output: &std::process::Output) -> String {
    assert!(output.status.success(), "sigtrace failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `sigtrace events ARGS… FILES…` as JSON objects.
fn json_events(args: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let mut all: Vec<String> = ["events", "--json"].iter().chain(args).map(|s| s.to_string()).collect();
    all.extend(files.iter().map(|f| f.display().to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    text_of(&cli(&all)).lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

/// What an event says, as the text form puts it (`region begin outer`, `log main: start`).
fn describe(event: &Value) -> String {
    let kind = event["event"].as_str().expect("event kind");
    match kind {
        "thread_start" => "thread start".into(),
        "thread_exit" => "thread exit".into(),
        "region_begin" => format!("region begin {}", event["region"].as_str().expect("region name")),
        "region_end" => format!("region end {}", event["region"].as_str().expect("the closed region is named")),
        "log" => format!("log {}: {}", event["category"].as_str().expect("category"), event["text"].as_str().expect("text")),
        other => panic!("unknown event kind {other}"),
    }
}

/// The events of one tid, described, in order.
fn of_tid(events: &[Value], tid: u64) -> Vec<String> {
    events.iter().filter(|e| e["tid"] == tid).map(describe).collect()
}

#[test]
fn events_come_in_time_order_with_their_threads_and_the_regions_they_close() {
    let _beside_others = beside_others();
    let (run, before, after) = traced_run("events", &[]);
    let events = json_events(&[], &run.traces);
    let main_tid = events.iter().find(|e| e["thread"] == "events").expect("the main thread's events")["tid"].as_u64().expect("tid");
    let worker_tid = events.iter().find(|e| e["thread"] == "ev-worker").expect("the worker's events, by its name")["tid"].as_u64().expect("tid");
    assert_ne!(main_tid, worker_tid);
    assert_eq!(
        of_tid(&events, worker_tid),
        ["thread start", "region begin outer", "log worker: inside", "region begin inner", "region end inner", "region end outer", "thread exit"]
    );
    assert_eq!(
        of_tid(&events, main_tid),
        ["thread start", "log main: start", "region begin main-work", "log main: worker is inside", "region end main-work", "log main: done"]
    );
    assert_eq!(events.len(), 13, "{events:#?}");

    // Time order, within the run; `time` is seconds since the trace's start.
    let unix: Vec<u64> = events.iter().map(|e| e["unix_ns"].as_u64().expect("unix_ns")).collect();
    assert!(unix.windows(2).all(|pair| pair[0] <= pair[1]), "{unix:?}");
    assert!(before <= unix[0] && unix[unix.len() - 1] <= after, "events at {unix:?} outside the run [{before}, {after}]");
    let info = info_json(&run.traces[0]);
    let start = info["start_unix_ns"].as_u64().expect("start_unix_ns");
    for (event, &ns) in events.iter().zip(&unix) {
        let time = event["time"].as_f64().expect("time");
        assert!((time - (ns - start) as f64 / 1e9).abs() < 1e-6, "{event}");
    }
    // The handshakes order the threads' events: the main thread's log falls inside the worker's
    // "inner" region, the worker's ends after "main-work" ended.
    let at = |what: &str, tid: u64| events.iter().position(|e| e["tid"] == tid && describe(e) == what).unwrap_or_else(|| panic!("no {what}"));
    assert!(at("region begin inner", worker_tid) < at("log main: worker is inside", main_tid));
    assert!(at("region end main-work", main_tid) < at("region end inner", worker_tid));

    // The text form: the same events, one line each, time first.
    let text = text_of(&cli(&["events", &run.traces[0].display().to_string()]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len(), "{text}");
    for (line, event) in lines.iter().zip(&events) {
        let time: f64 = line.split_whitespace().next().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no time first: {line}"));
        assert!((time - event["time"].as_f64().expect("time")).abs() < 1e-6, "{line} / {event}");
        assert!(line.contains(&format!(" {}/{} ", event["pid"], event["tid"])), "{line}");
        assert!(line.contains(&format!(" {} ", event["thread"].as_str().expect("thread"))), "{line}");
        assert!(line.ends_with(&format!("  {}", describe(event))), "{line}");
    }
}

#[test]
fn the_filters_keep_a_thread_or_a_kind_and_ends_keep_their_names() {
    let _beside_others = beside_others();
    let (run, _, _) = traced_run("events-filters", &[]);
    let all = json_events(&[], &run.traces);
    let worker = all.iter().find(|e| e["thread"] == "ev-worker").expect("worker events")["tid"].as_u64().expect("tid");
    let worker_tid = worker.to_string();

    let only_worker = json_events(&["--tid", &worker_tid], &run.traces);
    assert_eq!(only_worker.len(), 7);
    assert!(only_worker.iter().all(|e| e["tid"] == worker));

    let logs = json_events(&["--kind", "log"], &run.traces);
    assert_eq!(logs.iter().map(describe).collect::<Vec<_>>(), ["log main: start", "log worker: inside", "log main: worker is inside", "log main: done"]);

    let threads = json_events(&["--kind", "thread"], &run.traces);
    assert_eq!(threads.iter().map(describe).collect::<Vec<_>>(), ["thread start", "thread start", "thread exit"]);

    let worker_regions = json_events(&["--kind", "region", "--tid", &worker_tid], &run.traces);
    assert_eq!(worker_regions.iter().map(describe).collect::<Vec<_>>(), ["region begin outer", "region begin inner", "region end inner", "region end outer"]);

    let both = json_events(&["--kind", "region", "--kind", "log"], &run.traces);
    assert_eq!(both.len(), 4 + 6);

    // A filter that keeps nothing: no lines, one `sigtrace:` line saying so, success.
    let none = cli(&["events", "--tid", "1", &run.traces[0].display().to_string()]);
    assert!(none.status.success());
    assert!(none.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&none.stderr), "sigtrace: no events match the filters\n");
}

#[test]
fn the_files_of_a_process_tree_are_merged_by_time() {
    let _beside_others = beside_others();
    let (run, before, after) = traced_run("events-fork", &["fork"]);
    assert_eq!(run.traces.len(), 2, "parent and child: {:?}", run.traces);
    let events = json_events(&[], &run.traces);
    let pids: std::collections::BTreeSet<u64> = events.iter().map(|e| e["pid"].as_u64().expect("pid")).collect();
    assert_eq!(pids.len(), 2, "{events:#?}");
    let unix: Vec<u64> = events.iter().map(|e| e["unix_ns"].as_u64().expect("unix_ns")).collect();
    assert!(unix.windows(2).all(|pair| pair[0] <= pair[1]), "{unix:?}");
    assert!(before <= unix[0] && unix[unix.len() - 1] <= after);
    let described: Vec<String> = events.iter().map(describe).collect();
    let position = |what: &str| described.iter().position(|d| d == what).unwrap_or_else(|| panic!("no {what}: {described:?}"));
    assert!(position("region end outer") < position("log child: hello"));
    assert!(position("log child: hello") < position("log main: child done"));
    assert_eq!(described.last().map(String::as_str), Some("log main: done"));
    // Times count from the earliest file's start, whatever the order the files are given in.
    let mut reversed = run.traces.clone();
    reversed.reverse();
    assert_eq!(json_events(&[], &reversed), events);
    assert!(events[0]["time"].as_f64().expect("time") >= 0.0);
}

#[test]
fn report_of_a_region_that_does_not_exist_lists_those_that_do() {
    let _beside_others = beside_others();
    let (run, _, _) = traced_run("events-region", &[]);
    let file = run.traces[0].display().to_string();
    let missing = cli(&["report", "--region", "nosuch", &file]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty(), "no empty report: {}", String::from_utf8_lossy(&missing.stdout));
    assert_eq!(String::from_utf8_lossy(&missing.stderr), "sigtrace: no region named \"nosuch\"; the traces have \"inner\", \"main-work\", \"outer\"\n");
    let found = cli(&["report", "--region", "main-work", &file]);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    assert!(String::from_utf8_lossy(&found.stdout).contains(" burn "), "{}", String::from_utf8_lossy(&found.stdout));

    // A trace without regions says so.
    let dir = scratch_dir("events-no-regions");
    let program = compile_c("deep", &["-O2", "-g"], &dir);
    let plain = run_traced(&program, &["10", "30"], &[], &dir);
    let missing = cli(&["report", "--region", "hot", &plain.traces[0].display().to_string()]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&missing.stderr), "sigtrace: no region named \"hot\": the traces have no regions (sigtrace_region_begin)\n");
}
