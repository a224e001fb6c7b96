//! The Firefox export of profiles built in memory: empty, without frames, with inline frames
//! in a module, and with references no real trace has (unknown threads, stacks and frames,
//! unmatched region ends, huge weights): it never panics and keeps what it can.

use std::path::PathBuf;

use format::{EventKind, SampleState, StackTable, NO_NODE};
use serde_json::Value;

use super::render;
use crate::profile::{Location, Mapping, ProcessInfo, Profile, ProfileEvent, ProfileSample, ThreadInfo};
use crate::symbolize::FrameName;

const START: u64 = 1_700_000_000_000_000_000;

fn parse(profile: &Profile) -> Value {
    serde_json::from_slice(&render(profile)).expect("the export is JSON")
}

fn process(pid: u32, executable: &str, start: u64, end: u64) -> ProcessInfo {
    ProcessInfo {
        pid,
        parent_pid: 1,
        executable: executable.into(),
        args: vec![executable.into(), "--flag".into()],
        hz: 1000,
        timer: "perf".into(),
        mode: "cpu".into(),
        period_ns: 1_000_000,
        start_unix_ns: start,
        end_unix_ns: end,
        path: PathBuf::from("t.sigtrace"),
    }
}

fn sample(unix_ns: u64, thread: u32, stack: u32, weight: u64) -> ProfileSample {
    ProfileSample { unix_ns, thread, stack, weight, time_ns: weight.saturating_mul(1_000_000), state: SampleState::RUNNING }
}

fn event(unix_ns: u64, thread: u32, kind: EventKind, text: &str) -> ProfileEvent {
    ProfileEvent { unix_ns, thread, kind, category: String::new(), text: text.into() }
}

fn column(thread: &Value, table: &str, column: &str) -> Vec<Value> {
    thread[table][column].as_array().cloned().unwrap_or_else(|| panic!("{table}.{column}"))
}

#[test]
fn an_empty_profile_is_a_profile_without_threads() {
    let json = parse(&Profile::default());
    assert_eq!(json["threads"].as_array().map(Vec::len), Some(0));
    assert_eq!(json["libs"].as_array().map(Vec::len), Some(0));
    assert_eq!(json["meta"]["product"], "sigtrace");
}

#[test]
fn samples_without_frames_keep_their_times_weights_and_cpu() {
    let mut profile = Profile::default();
    profile.processes.push(process(10, "/bin/app", START, START + 10_000_000));
    profile.threads.push(ThreadInfo { pid: 10, tid: 10, name: "app".into() });
    profile.stacks.push_leaf(NO_NODE);
    profile.samples = vec![sample(START + 1_000_000, 0, 0, 1), sample(START + 2_000_000, 0, 0, 3)];
    let json = parse(&profile);
    let threads = json["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 1);
    let thread = &threads[0];
    assert_eq!((thread["pid"].as_str(), thread["tid"].as_str(), thread["isMainThread"].as_bool()), (Some("10"), Some("10"), Some(true)));
    assert_eq!(column(thread, "samples", "stack"), vec![Value::Null, Value::Null]);
    assert_eq!(column(thread, "samples", "weight"), vec![1, 3]);
    assert_eq!(column(thread, "samples", "threadCPUDelta"), vec![1000, 3000]);
    assert_eq!(column(thread, "samples", "timeDeltas"), vec![1.0, 1.0]);
    assert_eq!(json["meta"]["interval"], 1.0);
    assert_eq!(json["meta"]["product"], "/bin/app --flag");
    assert_eq!(thread["registerTime"], 0.0);
    assert_eq!(thread["unregisterTime"], 10.0);
}

#[test]
fn inline_frames_are_frames_of_their_module() {
    let mut profile = Profile::default();
    profile.processes.push(process(10, "/bin/app", START, START + 10_000_000));
    profile.threads.push(ThreadInfo { pid: 10, tid: 11, name: "worker".into() });
    profile.mappings.push(Mapping { path: "/bin/app".into(), build_id: vec![0xab; 20], file_name: "app".into() });
    for name in ["inlined", "outer", "main"] {
        profile.frames.push(FrameName::unresolved(name.into(), "app".into()));
    }
    profile.frames.push(FrameName::unresolved("0x1234".into(), String::new()));
    profile.locations.push(Location { mapping: Some(0), address: 0x1000, frames: vec![0, 1] });
    profile.locations.push(Location { mapping: Some(0), address: 0x2000, frames: vec![2] });
    profile.locations.push(Location { mapping: None, address: 0x1234, frames: vec![3] });
    // Leaf first: 0x1234 (no module), inlined, outer, main.
    profile.stacks.push(&[3, 0, 1, 2]);
    profile.samples = vec![sample(START + 1_000_000, 0, 0, 1)];
    let json = parse(&profile);
    let libs = json["libs"].as_array().expect("libs");
    assert_eq!(libs.len(), 1);
    assert_eq!((libs[0]["name"].as_str(), libs[0]["path"].as_str()), (Some("app"), Some("/bin/app")));
    assert_eq!(libs[0]["codeId"], "ab".repeat(20));
    let thread = &json["threads"][0];
    assert_eq!(thread["name"], "worker");
    let string = |index: &Value| thread["stringArray"][index.as_u64().expect("index") as usize].as_str().expect("string").to_string();
    // Walk the sample's stack leaf first: (function, library index or -1).
    let mut frames = Vec::new();
    let mut node = column(thread, "samples", "stack")[0].as_u64();
    while let Some(n) = node {
        let frame = column(thread, "stackTable", "frame")[n as usize].as_u64().expect("frame") as usize;
        let func = column(thread, "frameTable", "func")[frame].as_u64().expect("func") as usize;
        let resource = column(thread, "funcTable", "resource")[func].as_i64().expect("resource");
        let lib = if resource < 0 { -1 } else { column(thread, "resourceTable", "lib")[resource as usize].as_i64().expect("lib") };
        frames.push((string(&column(thread, "funcTable", "name")[func]), lib));
        node = column(thread, "stackTable", "prefix")[n as usize].as_u64();
    }
    let expected: Vec<(String, i64)> = vec![("0x1234".into(), -1), ("inlined".into(), 0), ("outer".into(), 0), ("main".into(), 0)];
    assert_eq!(frames, expected);
    assert_eq!(json["meta"]["symbolicated"], true);
}

#[test]
fn references_no_trace_has_are_skipped_not_fatal() {
    let mut profile = Profile::default();
    profile.processes.push(process(10, "", START, 0));
    profile.threads.push(ThreadInfo { pid: 10, tid: 10, name: String::new() });
    profile.threads.push(ThreadInfo { pid: 99, tid: 100, name: "orphan".into() });
    // A stack whose frame id is past the frame table.
    profile.stacks = StackTable::new();
    profile.stacks.push(&[7]);
    profile.samples = vec![sample(START - 5, 0, 0, u64::MAX), sample(START + 1_000, 0, 42, 1), sample(START + 2_000, 9, 0, 1), sample(START + 3_000, 1, 0, 2)];
    profile.events = vec![
        event(START + 10, 0, EventKind::RegionEnd, ""),
        event(START + 20, 0, EventKind::RegionBegin, "open"),
        event(START + 30, 7, EventKind::RegionBegin, "nowhere"),
        event(START + 40, 1, EventKind::Log, "no category"),
    ];
    let json = parse(&profile);
    let threads = json["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 2);
    let main = threads.iter().find(|t| t["tid"] == "10").expect("the main thread");
    assert_eq!(column(main, "samples", "weight"), vec![i32::MAX, 1]);
    assert_eq!(column(main, "samples", "stack")[1], Value::Null);
    // The region left open ends with its thread: one interval marker.
    assert_eq!(main["markers"]["length"], 1);
    assert_eq!(main["markers"]["phase"][0], 1);
    let orphan = threads.iter().find(|t| t["tid"] == "100").expect("the thread of an unknown process");
    assert_eq!(orphan["processName"], "pid 99");
    assert_eq!(orphan["markers"]["length"], 1);
    let name = orphan["markers"]["name"][0].as_u64().expect("a name") as usize;
    assert_eq!(orphan["stringArray"][name], "log");
}

#[test]
fn a_wall_trace_has_blocked_markers_and_cpu_deltas_only_from_running_samples() {
    use format::{call_code, ThreadState};
    let blocked = |call: &str| SampleState { state: ThreadState::Blocked, call: call_code(call) };
    let mut profile = Profile::default();
    profile.processes.push(ProcessInfo { mode: "wall".into(), ..process(10, "/bin/app", START, START + 50_000_000) });
    profile.threads.push(ThreadInfo { pid: 10, tid: 10, name: "app".into() });
    profile.stacks.push_leaf(NO_NODE);
    let ms = 1_000_000;
    let with_state = |unix_ns: u64, weight: u64, state: SampleState| ProfileSample { state, ..sample(unix_ns, 0, 0, weight) };
    profile.samples = vec![
        with_state(START + ms, 1, SampleState::RUNNING),
        // Two blocked samples in read in a row: one marker from 1 ms (11 ms − 10 periods) to 21 ms.
        with_state(START + 11 * ms, 10, blocked("read")),
        with_state(START + 21 * ms, 10, blocked("read")),
        // Another call right after: a marker of its own.
        with_state(START + 31 * ms, 10, blocked("pthread_mutex_lock")),
        with_state(START + 32 * ms, 1, SampleState::RUNNING),
        with_state(START + 42 * ms, 10, blocked("read")),
        with_state(START + 45 * ms, 3, SampleState { state: ThreadState::Runnable, call: 0 }),
    ];
    let json = parse(&profile);
    let thread = &json["threads"][0];
    assert_eq!(column(thread, "samples", "weight"), vec![1, 10, 10, 10, 1, 10, 3]);
    assert_eq!(column(thread, "samples", "threadCPUDelta"), vec![1000, 0, 0, 0, 1000, 0, 0], "CPU time only from running samples");
    let markers = &thread["markers"];
    let name = |i: usize| thread["stringArray"][markers["name"][i].as_u64().expect("a name") as usize].as_str().expect("a string").to_string();
    let found: Vec<(String, f64, f64, u64)> = (0..markers["length"].as_u64().expect("length") as usize)
        .map(|i| (name(i), markers["startTime"][i].as_f64().unwrap(), markers["endTime"][i].as_f64().unwrap(), markers["phase"][i].as_u64().unwrap()))
        .collect();
    let expected: Vec<(String, f64, f64, u64)> =
        vec![("blocked: read".into(), 1.0, 21.0, 1), ("blocked: pthread_mutex_lock".into(), 21.0, 31.0, 1), ("blocked: read".into(), 32.0, 42.0, 1)];
    assert_eq!(found, expected);
    assert_eq!(markers["data"][0]["type"], "SigtraceBlocked");
    assert_eq!(markers["data"][0]["samples"], 2.0);
    let categories: Vec<&str> = json["meta"]["categories"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(categories.contains(&"Blocked"), "{categories:?}");

    // The same samples in a cpu trace: no markers, no Blocked category.
    profile.processes[0].mode = "cpu".into();
    let json = parse(&profile);
    assert_eq!(json["threads"][0]["markers"]["length"], 0);
    assert!(!json["meta"]["categories"].as_array().unwrap().iter().any(|c| c["name"] == "Blocked"));
}
