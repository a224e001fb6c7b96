//! The pprof exporter's bytes decoded back (gunzip, then prost): a well-formed profile (string
//! table starting with "", every id 1-based, unique and pointing at an entry that exists), the
//! values and labels of each sample, inline frames as lines with the caller last, honest mapping
//! flags, and no panic on an empty or odd profile.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use flate2::read::GzDecoder;
use format::{SampleState, StackTable};
use prost::Message;

use super::{encode, generations, header, profile_of, test_binary, Scratch};
use crate::export::pprof::{self, proto};
use crate::profile::{Location, Mapping, ProcessInfo, Profile, StackTotal, ThreadInfo};
use crate::symbolize::FrameName;

/// The message in the exporter's gzipped bytes.
pub(super) fn decode(bytes: &[u8]) -> proto::Profile {
    let mut encoded = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut encoded).expect("gzip");
    proto::Profile::decode(encoded.as_slice()).expect("a perftools.profiles.Profile")
}

/// The string at `index` of the message's table, checking the index.
pub(super) fn string(message: &proto::Profile, index: i64) -> &str {
    usize::try_from(index).ok().and_then(|i| message.string_table.get(i)).unwrap_or_else(|| panic!("string index {index} out of the table"))
}

/// Checks what pprof checks and more: the string table, ids 1..=n in order (so unique), every
/// reference resolved, two values per sample, the sample types.
fn check_well_formed(message: &proto::Profile) {
    assert_eq!(message.string_table.first().map(String::as_str), Some(""), "string_table[0] is \"\"");
    let unique: HashSet<&String> = message.string_table.iter().collect();
    assert_eq!(unique.len(), message.string_table.len(), "each string once");
    for (index, mapping) in message.mapping.iter().enumerate() {
        assert_eq!(mapping.id, index as u64 + 1);
        string(message, mapping.filename);
        string(message, mapping.build_id);
    }
    for (index, function) in message.function.iter().enumerate() {
        assert_eq!(function.id, index as u64 + 1);
        assert!(!string(message, function.name).is_empty(), "a function has a name");
        string(message, function.system_name);
        string(message, function.filename);
    }
    for (index, location) in message.location.iter().enumerate() {
        assert_eq!(location.id, index as u64 + 1);
        assert!(location.mapping_id <= message.mapping.len() as u64, "mapping {} exists", location.mapping_id);
        assert!(!location.line.is_empty(), "a location has a line");
        assert!(location.line.iter().all(|line| line.function_id >= 1 && line.function_id <= message.function.len() as u64));
    }
    let types: Vec<(&str, &str)> = message.sample_type.iter().map(|t| (string(message, t.r#type), string(message, t.unit))).collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert_eq!(string(message, message.default_sample_type), "cpu");
    let period_type = message.period_type.expect("period_type");
    assert_eq!((string(message, period_type.r#type), string(message, period_type.unit)), ("cpu", "nanoseconds"));
    for sample in &message.sample {
        assert_eq!(sample.value.len(), 2);
        assert!(sample.location_id.iter().all(|&id| id >= 1 && id <= message.location.len() as u64), "{sample:?}");
        for label in &sample.label {
            string(message, label.key);
            string(message, label.str);
        }
    }
    for &index in &message.comment {
        string(message, index);
    }
}

/// The labels of a sample as (key, string value or number).
pub(super) fn labels(message: &proto::Profile, sample: &proto::Sample) -> Vec<(String, String)> {
    sample
        .label
        .iter()
        .map(|label| {
            let value = if label.str != 0 { string(message, label.str).to_string() } else { label.num.to_string() };
            (string(message, label.key).to_string(), value)
        })
        .collect()
}

fn frame(function: &str, system_name: &str, module: &str, file: &str, line: u32) -> FrameName {
    FrameName { function: function.into(), system_name: system_name.into(), module: module.into(), file: file.into(), line }
}

fn process(pid: u32, start_unix_ns: u64, end_unix_ns: u64) -> ProcessInfo {
    ProcessInfo {
        pid,
        parent_pid: 1,
        executable: "/bin/app".into(),
        args: vec!["app".into(), "--fast".into()],
        hz: 1000,
        timer: "perf".into(),
        mode: "cpu".into(),
        period_ns: 1_000_000,
        start_unix_ns,
        end_unix_ns,
        path: PathBuf::from(format!("app.{pid}.sigtrace")),
    }
}

/// Two processes; `app` with DWARF (an inline frame, files, lines, mangled names), `libx.so`
/// known by `module+0x…` names only, and an address no module covers.
fn hand_made_profile() -> Profile {
    let frames = vec![
        frame("mix", "", "app", "/src/app.c", 12),               // 0: inlined, DWARF without linkage name
        frame("hot_loop", "hot_loop", "app", "/src/app.c", 20),  // 1
        frame("main", "main", "app", "/src/app.c", 30),          // 2
        frame("libx.so+0x40", "", "libx.so", "", 0),             // 3
        frame("0xdead", "", "", "", 0),                          // 4
        frame("ns::f()", "_ZN2ns1fEv", "app", "/src/app.c", 40), // 5
    ];
    let locations = vec![
        Location { mapping: Some(0), address: 0x1100, frames: vec![0, 1] }, // mix inlined in hot_loop
        Location { mapping: Some(0), address: 0x1200, frames: vec![2] },
        Location { mapping: Some(1), address: 0x40, frames: vec![3] },
        Location { mapping: None, address: 0xdead, frames: vec![4] },
        Location { mapping: Some(0), address: 0x1300, frames: vec![5] },
    ];
    let mappings = vec![
        Mapping { path: "/bin/app".into(), build_id: vec![0xab, 0x01], file_name: "app".into() },
        Mapping { path: "/lib/libx.so".into(), build_id: vec![], file_name: "libx.so".into() },
    ];
    let mut location_stacks = StackTable::new();
    let mut stacks = StackTable::new();
    // Stack 0: main → hot_loop(mix); stack 1: main → libx; stack 2: 0xdead; stack 3: main → ns::f.
    for path in [vec![1u64, 0], vec![1, 2], vec![3], vec![1, 4]] {
        let leaf = path.iter().fold(format::NO_NODE, |node, &location| location_stacks.child(node, location));
        location_stacks.push_leaf(leaf);
        let frames_leaf = path.iter().fold(format::NO_NODE, |node, &location| {
            locations[location as usize].frames.iter().rev().fold(node, |node, &frame| stacks.child(node, frame.into()))
        });
        stacks.push_leaf(frames_leaf);
    }
    let threads = vec![
        ThreadInfo { pid: 100, tid: 100, name: "app".into() },
        ThreadInfo { pid: 100, tid: 101, name: String::new() },
        ThreadInfo { pid: 200, tid: 200, name: "child".into() },
    ];
    let totals = vec![
        StackTotal { thread: 0, stack: 0, state: SampleState::RUNNING, samples: 5, weight: 6, time_ns: 6_000_000 },
        StackTotal { thread: 0, stack: 3, state: SampleState::RUNNING, samples: 1, weight: 1, time_ns: 1_000_000 },
        StackTotal { thread: 1, stack: 1, state: SampleState::RUNNING, samples: 2, weight: 2, time_ns: 2_000_000 },
        StackTotal { thread: 2, stack: 2, state: SampleState::RUNNING, samples: 1, weight: 1, time_ns: 1_000_000 },
    ];
    Profile {
        frames,
        locations,
        mappings,
        stacks,
        location_stacks,
        threads,
        processes: vec![process(100, 5_000, 9_000), process(200, 4_000, 8_000)],
        totals,
        ..Profile::default()
    }
}

#[test]
fn a_hand_made_profile_decodes_with_its_values_lines_labels_and_flags() {
    let message = decode(&pprof::render(&hand_made_profile()));
    check_well_formed(&message);
    assert_eq!((message.time_nanos, message.duration_nanos, message.period), (4_000, 5_000, 1_000_000));
    let comments: Vec<&str> = message.comment.iter().map(|&c| string(&message, c)).collect();
    assert_eq!(comments, ["pid 100: app --fast", "pid 200: app --fast"]);

    // Locations: ids are the profile's indices + 1; lines innermost first, the caller last.
    let function_name = |id: u64| string(&message, message.function[id as usize - 1].name);
    let lines: Vec<Vec<(&str, i64)>> =
        message.location.iter().map(|l| l.line.iter().map(|line| (function_name(line.function_id), line.line)).collect()).collect();
    assert_eq!(lines[0], [("mix", 12), ("hot_loop", 20)]);
    assert_eq!(message.location[2].mapping_id, 2);
    assert_eq!((message.location[3].mapping_id, message.location[3].address), (0, 0xdead));
    let f = message.function.iter().find(|f| string(&message, f.name) == "ns::f()").expect("ns::f()");
    assert_eq!((string(&message, f.system_name), string(&message, f.filename)), ("_ZN2ns1fEv", "/src/app.c"));
    let mix = message.function.iter().find(|f| string(&message, f.name) == "mix").expect("mix");
    assert_eq!(string(&message, mix.system_name), "mix", "no linkage name: the name stands for it");
    assert_eq!(message.function.iter().filter(|f| string(&message, f.name) == "hot_loop").count(), 1, "one function per name and file");

    // Mappings: the app has it all; libx.so only offsets.
    let app = &message.mapping[0];
    assert_eq!((string(&message, app.filename), string(&message, app.build_id)), ("/bin/app", "ab01"));
    assert!(app.has_functions && app.has_filenames && app.has_line_numbers && app.has_inline_frames);
    assert!(app.memory_limit > 0x1300);
    let libx = &message.mapping[1];
    assert!(!libx.has_functions && !libx.has_filenames && !libx.has_line_numbers && !libx.has_inline_frames);

    // Samples: one per total, leaf first, labelled.
    assert_eq!(message.sample.len(), 4);
    assert_eq!(message.sample[0].location_id, [1, 2]);
    assert_eq!(message.sample[0].value, [5, 6_000_000]);
    assert_eq!(message.sample[3].location_id, [4]);
    let label_sets: Vec<Vec<(String, String)>> = message.sample.iter().map(|s| labels(&message, s)).collect();
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(label_sets[0], pairs(&[("pid", "100"), ("tid", "100"), ("thread", "app")]));
    assert_eq!(label_sets[2], pairs(&[("pid", "100"), ("tid", "101"), ("thread", "[unnamed]")]));
    assert_eq!(label_sets[3], pairs(&[("pid", "200"), ("tid", "200"), ("thread", "child")]));
    let totals = message.sample.iter().fold((0, 0), |(s, c), sample| (s + sample.value[0], c + sample.value[1]));
    assert_eq!(totals, (9, 10_000_000));
}

#[test]
fn an_empty_profile_is_a_valid_empty_pprof() {
    let message = decode(&pprof::render(&Profile::default()));
    check_well_formed(&message);
    assert!(message.sample.is_empty() && message.location.is_empty() && message.mapping.is_empty() && message.function.is_empty());
    assert_eq!((message.time_nanos, message.duration_nanos, message.period), (0, 0, 0));
}

#[test]
fn an_odd_profile_gives_a_valid_pprof_without_panicking() {
    let mut profile = hand_made_profile();
    // Totals naming a thread and a stack that do not exist, a weight past i64, a location
    // naming a missing mapping and a missing frame.
    profile.totals.push(StackTotal { thread: 99, stack: 99, state: SampleState::RUNNING, samples: u64::MAX, weight: u64::MAX, time_ns: u64::MAX });
    profile.locations.push(Location { mapping: Some(42), address: u64::MAX, frames: vec![4, 1000] });
    profile.processes[0].end_unix_ns = 0;
    let message = decode(&pprof::render(&profile));
    check_well_formed(&message);
    let odd = message.sample.last().expect("the odd total");
    assert_eq!((odd.value.as_slice(), odd.location_id.is_empty(), odd.label.is_empty()), ([i64::MAX, i64::MAX].as_slice(), true, true));
    assert_eq!(message.location.last().map(|l| (l.mapping_id, l.line.len())), Some((0, 1)));
}

#[test]
fn a_symbolised_trace_gives_a_well_formed_pprof() {
    let binary = test_binary();
    let scratch = Scratch::new("pprof");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &binary.build_id)));
    let profile = profile_of(&[path]);
    let message = decode(&pprof::render(&profile));
    check_well_formed(&message);
    let totals = message.sample.iter().fold((0u64, 0u64), |(s, c), sample| (s + sample.value[0] as u64, c + sample.value[1] as u64));
    assert_eq!(totals, (profile.total_samples(), profile.total_time_ns()));
    let names: HashSet<&str> = message.function.iter().map(|f| string(&message, f.name)).collect();
    assert!(names.contains("sigtrace_test_leaf") && names.contains("sigtrace_test_caller"), "{names:?}");
    let exe = message.mapping.iter().find(|m| string(&message, m.filename) == binary.path).expect("the test binary's mapping");
    let hex: String = binary.build_id.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(string(&message, exe.build_id), hex);
    assert!(exe.has_functions);
}

#[test]
fn the_executable_is_mapping_one() {
    let mut profile = hand_made_profile();
    profile.processes[0].executable = "/lib/libx.so".into();
    profile.processes[1].executable = "/lib/libx.so".into();
    let message = decode(&pprof::render(&profile));
    check_well_formed(&message);
    let files: Vec<&str> = message.mapping.iter().map(|m| string(&message, m.filename)).collect();
    assert_eq!(files, ["/lib/libx.so", "/bin/app"]);
    let mapping_ids: Vec<u64> = message.location.iter().map(|l| l.mapping_id).collect();
    assert_eq!(mapping_ids, [2, 2, 1, 0, 2]);
    assert!(message.mapping[1].has_inline_frames && !message.mapping[0].has_functions, "the flags move with their mapping");
}
