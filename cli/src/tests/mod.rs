//! End-to-end tests of the reading side: traces built in memory with the writer's encoder,
//! symbolised against this test binary's own symbols and DWARF, read back by report, export and
//! info. `inline_c`: inline frames of a C program compiled here; `unwind_info`: `info`'s
//! unwinding statistics; `pprof`: the pprof exporter's bytes decoded back; `wall`: wall traces.

mod inline_c;
mod pprof;
mod unwind_info;
mod wall;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use format::{encode_generation, encode_header, encode_preamble, Generation, Header, Module, Sample, Thread};
use object::{Object, ObjectSymbol};

use crate::commands::info::TraceSummary;
use crate::commands::info::UnwindStats;
use crate::commands::report::{function_rows, render, thread_weights};
use crate::profile::{load_profile, load_trace, load_traces, LoadError, Profile, ProfileOptions};
use crate::symbolize::debuginfo::DebugInfo;
use crate::symbolize::file_guard::map_file;
use crate::symbolize::Symbolizer;

#[no_mangle]
#[inline(never)]
pub extern "C" fn sigtrace_test_leaf(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(31).rotate_left(7) ^ 0x5555
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn sigtrace_test_caller(x: u64) -> u64 {
    sigtrace_test_leaf(std::hint::black_box(x)).wrapping_add(sigtrace_test_leaf(x + 1))
}

#[inline(never)]
fn rust_named_frame(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_right(13) ^ sigtrace_test_caller(x)
}

/// This test binary: its build id and its function symbols (raw name → (svma, size)).
struct TestBinary {
    path: String,
    build_id: Vec<u8>,
    symbols: HashMap<String, (u64, u64)>,
    low: u64,
    high: u64,
}

fn test_binary() -> TestBinary {
    // Keep the functions (and use them) so the linker has no reason to drop them.
    assert_ne!(rust_named_frame(3), 0);
    let path = std::env::current_exe().unwrap();
    let data = std::fs::read(&path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let mut symbols = HashMap::new();
    let (mut low, mut high) = (u64::MAX, 0);
    for symbol in file.symbols() {
        if symbol.kind() == object::SymbolKind::Text && symbol.address() != 0 {
            let name = symbol.name().unwrap_or_default().to_string();
            symbols.insert(name, (symbol.address(), symbol.size()));
            low = low.min(symbol.address());
            high = high.max(symbol.address() + symbol.size().max(1));
        }
    }
    let build_id = file.build_id().ok().flatten().unwrap_or_default().to_vec();
    TestBinary { path: path.to_string_lossy().into_owned(), build_id, symbols, low, high }
}

impl TestBinary {
    /// The svma `offset` bytes into the named function, checking it stays inside.
    fn at(&self, name: &str, offset: u64) -> u64 {
        let (address, size) = self.symbols[name];
        assert!(offset < size, "{name} is only {size} bytes");
        address + offset
    }

    /// The first svma at least `offset` bytes into the named function that is the function's
    /// own code, not code inlined into it (this binary has DWARF, and `black_box` and friends
    /// are inlined everywhere). Without DWARF, simply `at(name, offset)`.
    fn own(&self, name: &str, offset: u64) -> u64 {
        let path = Path::new(&self.path);
        let Some(debug) = map_file(path).ok().and_then(|file| DebugInfo::open(path, file).ok()) else { return self.at(name, offset) };
        let (address, size) = self.symbols[name];
        let wanted = crate::symbolize::demangle(name);
        (address + offset..address + size)
            .find(|&svma| {
                let frames = debug.frames(svma);
                frames.is_empty() || (frames.len() == 1 && frames[0].function.as_deref().map(crate::symbolize::demangle) == Some(wanted.clone()))
            })
            .unwrap_or_else(|| panic!("{name} has no address of its own past offset {offset}"))
    }

    fn rust_symbol(&self) -> String {
        self.symbols
            .keys()
            .find(|raw| crate::symbolize::demangle(raw) == "sigtrace_cli::tests::rust_named_frame")
            .cloned()
            .expect("rust_named_frame in the symbol table")
    }
}

const BASE: u64 = 0x10_0000_0000;
const VDSO: u64 = 0x7fff_f000_0000;

fn header() -> Header {
    Header {
        pid: 100,
        parent_pid: 1,
        executable: "/bin/app".into(),
        args: vec!["app".into(), "two words".into()],
        clock: "CLOCK_MONOTONIC".into(),
        clock_hz: 1_000_000,
        start_clock_ns: 2_000_000_000,
        start_unix_ns: 1_700_000_000_000_000_000,
        hz: 1000,
        timer: "posix".into(),
        mode: "cpu".into(),
        max_depth: 128,
        generation_ms: 1000,
    }
}

/// Two generations: the test binary loaded at `BASE` (a different module order each time),
/// a vDSO, and stacks with resolved, unresolved, module-less and recursive frames.
fn generations(binary: &TestBinary, build_id: &[u8]) -> Vec<Generation> {
    let exe = Module { path: binary.path.clone(), base: BASE, start: BASE + binary.low, end: BASE + binary.high, build_id: build_id.to_vec() };
    let vdso = Module { path: "[vdso]".into(), base: VDSO, start: VDSO, end: VDSO + 0x2000, build_id: vec![] };
    let leaf = BASE + binary.own("sigtrace_test_leaf", 1);
    let caller_self = BASE + binary.own("sigtrace_test_caller", 2);
    // A return address one past the caller's start: looked up at the start itself.
    let caller_return = BASE + binary.own("sigtrace_test_caller", 0) + 1;
    let rust = BASE + binary.own(&binary.rust_symbol(), 1);
    let threads = vec![
        Thread { tid: 100, name: "main".into(), cpu_ns: 40_000_000, dropped: 1, exited: false },
        Thread { tid: 101, name: "worker".into(), cpu_ns: 20_000_000, dropped: 0, exited: false },
    ];
    let first = Generation {
        sequence: 1,
        start_time: 2_000_000,
        end_time: 3_000_000,
        process_cpu_ns: 5_000_000,
        threads: threads.clone(),
        modules: vec![exe.clone(), vdso.clone()],
        stacks: vec![vec![leaf, caller_return], vec![caller_self], vec![rust, caller_return, 0x10], vec![VDSO + 0x10]].into(),
        samples: vec![
            Sample { time: 2_000_100, thread: 0, stack: 0, weight: 1, state: Default::default() },
            Sample { time: 2_000_200, thread: 1, stack: 0, weight: 3, state: Default::default() },
            Sample { time: 2_000_300, thread: 0, stack: 1, weight: 2, state: Default::default() },
            Sample { time: 2_000_400, thread: 0, stack: 2, weight: 1, state: Default::default() },
            Sample { time: 2_000_500, thread: 1, stack: 3, weight: 1, state: Default::default() },
        ],
        counters: vec![("unwind.end.root".into(), 4), ("dropped.no_slot".into(), 2), ("drain.cpu_ns_total".into(), 3_000_000)],
        stack_walks: vec![],
        events: vec![],
        python_code: vec![],
    };
    let second = Generation {
        sequence: 2,
        start_time: 3_000_000,
        end_time: 4_500_000,
        process_cpu_ns: 10_000_000,
        threads: vec![threads[1].clone(), Thread { cpu_ns: 60_000_000, ..threads[0].clone() }],
        modules: vec![vdso, exe],
        // Recursion: the caller appears twice on one stack but counts once in its total.
        stacks: vec![vec![caller_self, caller_return, caller_return], vec![leaf, caller_return]].into(),
        samples: vec![
            Sample { time: 3_000_100, thread: 1, stack: 0, weight: 4, state: Default::default() },
            Sample { time: 3_000_200, thread: 0, stack: 1, weight: 2, state: Default::default() },
        ],
        counters: vec![("unwind.end.root".into(), 1), ("unwind.end.bad_frame".into(), 1), ("drain.cpu_ns_total".into(), 5_000_000)],
        stack_walks: vec![],
        events: vec![],
        python_code: vec![],
    };
    vec![first, second]
}

fn encode(header: &Header, generations: &[Generation]) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, header);
    for generation in generations {
        encode_generation(&mut bytes, generation);
    }
    bytes
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sigtrace-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn profile_of(paths: &[PathBuf]) -> Profile {
    let (traces, all_loaded) = load_traces(paths);
    assert!(all_loaded);
    Profile::build(&traces, &mut Symbolizer::new())
}

#[test]
fn folded_output_is_symbolised_root_first_and_summed() {
    // The outermost "return address" 0x10 is in no module: not code, so the stack ends below it.
    let binary = test_binary();
    let scratch = Scratch::new("folded");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &binary.build_id)));
    let folded = crate::export::folded::render(&profile_of(&[path]));
    let expected = "\
[vdso]+0x10 1
sigtrace_test_caller 2
sigtrace_test_caller;sigtrace_cli::tests::rust_named_frame 1
sigtrace_test_caller;sigtrace_test_caller;sigtrace_test_caller 4
sigtrace_test_caller;sigtrace_test_leaf 6
";
    assert_eq!(folded, expected);
}

#[test]
fn a_file_given_twice_is_read_once_and_samples_are_kept_only_when_asked() {
    let binary = test_binary();
    let scratch = Scratch::new("twice");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &binary.build_id)));
    let link = scratch.0.join("link.sigtrace");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let (profile, all_loaded) = load_profile(&[path.clone(), link, path.clone()], &mut Symbolizer::new(), &ProfileOptions::default());
    assert!(all_loaded);
    assert_eq!((profile.processes.len(), profile.total_weight(), profile.total_samples()), (1, 14, 7));
    assert!(profile.samples.is_empty(), "samples are only kept when asked");
    let options = ProfileOptions { keep_samples: true, ..ProfileOptions::default() };
    let (with_samples, _) = load_profile(&[path], &mut Symbolizer::new(), &options);
    assert_eq!(with_samples.samples.len(), 7);
    assert_eq!(with_samples.samples.iter().map(|s| s.weight).sum::<u64>(), 14);
    // Every sample's stack has the same frames in both trees.
    for sample in &with_samples.samples {
        let frames: Vec<u64> = with_samples.stacks.get(sample.stack as usize).unwrap().collect();
        let expanded: Vec<u64> = with_samples
            .location_stacks
            .get(sample.stack as usize)
            .unwrap()
            .flat_map(|location| with_samples.locations[location as usize].frames.iter().map(|&f| u64::from(f)))
            .collect();
        assert_eq!(frames, expanded);
    }
}

#[test]
fn report_counts_self_and_total_once_per_sample() {
    let binary = test_binary();
    let scratch = Scratch::new("report");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &binary.build_id)));
    let profile = profile_of(&[path.clone(), path]);
    // The same file twice: everything doubles.
    assert_eq!(profile.total_weight(), 2 * 14);
    assert_eq!(profile.total_samples(), 2 * 7);
    let rows: Vec<(String, u64, u64)> = function_rows(&profile, false)
        .into_iter()
        .map(|row| (profile.frames[row.frame as usize].function.clone(), row.self_weight, row.total_weight))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("sigtrace_test_caller".to_string(), 12, 26),
            ("sigtrace_test_leaf".to_string(), 12, 12),
            ("[vdso]+0x10".to_string(), 2, 2),
            ("sigtrace_cli::tests::rust_named_frame".to_string(), 2, 2),
        ]
    );
    let exe_name = Path::new(&binary.path).file_name().unwrap().to_string_lossy().into_owned();
    let text = render(&profile, 2, true, false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "14 samples, weight 28 (2 threads)");
    assert!(lines[3].contains("sigtrace_test_caller") && lines[3].contains(&exe_name), "{text}");
    assert!(lines[3].contains("42.86%") && lines[3].contains("92.86%"), "{text}");
    assert!(lines[4].contains("sigtrace_test_leaf"), "{text}");
    assert!(!text.contains("rust_named_frame"), "--top 2 shows two functions:\n{text}");
    let threads: Vec<(u32, u64)> = thread_weights(&profile).into_iter().map(|(i, w)| (profile.threads[i].tid, w)).collect();
    assert_eq!(threads, vec![(100, 16), (101, 12)]);
    assert!(text.contains("main") && text.contains("57.14%"), "{text}");
}

#[test]
fn a_changed_module_stays_unresolved() {
    let binary = test_binary();
    if binary.build_id.is_empty() {
        return; // linked without a build id: nothing to compare
    }
    let scratch = Scratch::new("changed");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &[0xde, 0xad])));
    let profile = profile_of(&[path]);
    let exe_name = Path::new(&binary.path).file_name().unwrap().to_string_lossy().into_owned();
    let caller_svma = binary.own("sigtrace_test_caller", 0);
    let expected = format!("{exe_name}+0x{caller_svma:x}");
    assert!(profile.frames.iter().any(|f| f.function == expected), "{:?}", profile.frames);
    assert!(!profile.frames.iter().any(|f| f.function.starts_with("sigtrace_test")));
}

#[test]
fn a_module_out_of_time_keeps_module_offset_names() {
    let binary = test_binary();
    let modules = [Module { path: binary.path.clone(), base: BASE, start: BASE + binary.low, end: BASE + binary.high, build_id: binary.build_id.clone() }];
    let map = crate::symbolize::ModuleMap::new(&modules);
    let leaf = binary.own("sigtrace_test_leaf", 0);
    let exe_name = Path::new(&binary.path).file_name().unwrap().to_string_lossy().into_owned();
    // Within the limit the address is named; with none left after opening it, it is not.
    let named = Symbolizer::new().symbolize(&map, BASE + leaf, false);
    assert_eq!(named.last().unwrap().function, "sigtrace_test_leaf");
    let mut out_of_time = Symbolizer::new().with_time_limit(std::time::Duration::ZERO);
    for _ in 0..2 {
        let frames = out_of_time.symbolize(&map, BASE + leaf, false);
        assert_eq!(&frames[..], [crate::symbolize::FrameName::unresolved(format!("{exe_name}+0x{leaf:x}"), exe_name.clone())]);
    }
    assert_eq!(out_of_time.warnings(), [format!("{} (time limit)", binary.path)], "reported once");
}

#[test]
fn info_summary_adds_drops_and_compares_with_cpu_time() {
    let binary = test_binary();
    let scratch = Scratch::new("info");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations(&binary, &binary.build_id)));
    let loaded = load_trace(&path).unwrap();
    let summary = TraceSummary::of(&loaded);
    assert_eq!(summary.generations, 2);
    assert_eq!(summary.samples, 7);
    assert_eq!(summary.weight, 14);
    // 1 + 1 dropped by the main thread in two generations, plus 2 without a slot.
    assert_eq!(summary.dropped, 4);
    assert_eq!(summary.cpu_ns, 10_000_000);
    // Ends at 4.5 s on a 1 MHz clock; started at 2 s.
    assert_eq!(summary.duration_ns, 2_500_000_000);
    // 10 ms of CPU at 1000 Hz: 10 samples expected, weight 14.
    assert!((summary.capture_ratio.unwrap() - 1.4).abs() < 1e-9);
    assert_eq!(summary.unwind_ends_total(), 6);
    assert_eq!(summary.counters.get("unwind.end.root"), Some(&5));
    // A running total: the last generation's value, not the sum.
    assert_eq!(summary.counters.get("drain.cpu_ns_total"), Some(&5_000_000));
    let main_thread = summary.threads.iter().find(|t| t.tid == 100).unwrap();
    assert_eq!((main_thread.samples, main_thread.weight, main_thread.cpu_ns, main_thread.dropped), (4, 8, 60_000_000, 2));
    assert_eq!(summary.threads.len(), 2);
    assert_eq!(summary.one_line(), "7 samples (weight 14) over 2.50 s, 2 threads, 4 dropped, 140.0% of CPU time × Hz");

    let json = crate::commands::info::render_json(&loaded, &summary, &UnwindStats::of(&loaded, &mut Symbolizer::new()));
    assert_eq!(json["pid"], 100);
    assert_eq!(json["args"][1], "two words");
    assert_eq!(json["weight"], 14);
    assert_eq!(json["dropped"], 4);
    assert_eq!(json["counters"]["unwind.end.bad_frame"], 1);
    assert_eq!(json["per_thread"][0]["tid"], 100);
    assert_eq!(json["per_thread"][1]["weight"], 6);
    assert!(json["capture_ratio"].as_f64().unwrap() > 1.39);

    let text = crate::commands::info::render_text(&loaded, &summary, &UnwindStats::of(&loaded, &mut Symbolizer::new()));
    assert!(text.contains("command line:") && text.contains("app 'two words'"), "{text}");
    assert!(text.contains("140.0%"), "{text}");
}

/// The CPU time a trace stands for counts from its start: the process's before it (earlier
/// images of an exec'd process, a rotated series' deleted files) is said by the first
/// generation that carries the process's CPU time, which a piece (its walk counters only, a
/// process CPU time of 0), read before its generation, does not.
#[test]
fn info_summary_counts_cpu_time_from_the_trace_start() {
    let binary = test_binary();
    let scratch = Scratch::new("info-before");
    let mut generations = generations(&binary, &binary.build_id);
    generations[0].counters.push((format::counters::SERIES_CPU_NS_BEFORE.into(), 4_000_000));
    let piece = Generation { counters: vec![("unwind.end.root".into(), 1)], samples: Vec::new(), process_cpu_ns: 0, ..generations[0].clone() };
    generations.insert(0, piece);
    let path = scratch.write("exec.sigtrace", &encode(&header(), &generations));
    let loaded = load_trace(&path).unwrap();
    let summary = TraceSummary::of(&loaded);
    // 10 ms of the process's CPU time at the end, 4 ms of it before the trace.
    assert_eq!(summary.cpu_ns, 6_000_000);
    assert!((summary.capture_ratio.unwrap() - 14.0 / 6.0).abs() < 1e-9);
    assert!(!summary.counters.contains_key(format::counters::SERIES_CPU_NS_BEFORE), "not a count to show");
    let (_, series_summary, _) = crate::commands::info::summarize_file(&path, &mut Symbolizer::new(), None).unwrap();
    assert_eq!(series_summary.cpu_ns, 6_000_000, "info reads it as record does");
}

#[test]
fn damaged_and_foreign_files_are_errors_not_panics() {
    let binary = test_binary();
    let scratch = Scratch::new("damaged");
    let bytes = encode(&header(), &generations(&binary, &binary.build_id));
    let not_a_trace = scratch.write("not-a-trace", b"#!/bin/sh\necho hello\n");
    let error = load_trace(&not_a_trace).err().unwrap();
    assert!(matches!(error, LoadError::NoHeader { why: Some(format::ReadStop::NotATrace), .. }), "{error:?}");
    assert_eq!(error.to_string(), format!("{}: not a sigtrace file (no SIGTRACE magic)", not_a_trace.display()));
    let missing = load_trace(&scratch.0.join("missing")).err().unwrap();
    assert!(matches!(&missing, LoadError::Unreadable { error, .. } if error.kind() == std::io::ErrorKind::NotFound), "{missing:?}");

    // Every cut of a valid file loads (or is refused) without panicking; cuts inside the
    // second generation keep the first.
    for cut in (0..bytes.len()).step_by(7) {
        let path = scratch.write("cut.sigtrace", &bytes[..cut]);
        if let Ok(loaded) = load_trace(&path) {
            let profile = Profile::build(std::slice::from_ref(&loaded), &mut Symbolizer::new());
            let _ = crate::export::folded::render(&profile);
            let _ = render(&profile, 20, true, false);
            let summary = TraceSummary::of(&loaded);
            assert!(summary.generations <= 1 || cut == bytes.len());
        }
    }
    let (traces, all_loaded) = load_traces(&[not_a_trace, scratch.write("ok.sigtrace", &bytes)]);
    assert!(!all_loaded);
    assert_eq!(traces.len(), 1);
}
