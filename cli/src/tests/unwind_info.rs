//! `info`'s unwinding statistics on a trace built in memory: walk codes and root functions
//! decide which samples reached the root; JSON keys and text lines.

use format::{walk, Generation, Module, Sample, Thread};

use super::{encode, header, test_binary, Scratch, BASE};
use crate::commands::info::{render_json, render_text, TraceSummary};
use crate::commands::info::{Tally, UnwindStats};
use crate::profile::load_trace;
use crate::symbolize::Symbolizer;

/// The value of the `key:` row of `info`'s text.
fn row<'a>(text: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).map(str::trim).unwrap_or_else(|| panic!("no {key} row in:\n{text}"))
}

fn code(method: u8, end: u8) -> u8 {
    method << 4 | end
}

/// Generation 1 has walk codes, generation 2 (an older writer) has none.
fn generations() -> Vec<Generation> {
    let binary = test_binary();
    let exe = Module { path: binary.path.clone(), base: BASE, start: BASE + binary.low, end: BASE + binary.high, build_id: binary.build_id.clone() };
    let leaf = BASE + binary.own("sigtrace_test_leaf", 1);
    // Return addresses just past a function's first instruction: looked up at the entry.
    let from_main = BASE + binary.at("main", 0) + 1;
    let from_caller = BASE + binary.own("sigtrace_test_caller", 0) + 1;
    let thread = Thread { tid: 7, name: "t".into(), cpu_ns: 1_000_000, dropped: 0, exited: false };
    let sample = |stack: u32, weight: u32| Sample { time: 2_000_100 + u64::from(stack), thread: 0, stack, weight, state: Default::default() };
    let first = Generation {
        sequence: 1,
        start_time: 2_000_000,
        end_time: 3_000_000,
        process_cpu_ns: 1_000_000,
        threads: vec![thread.clone()],
        modules: vec![exe.clone()],
        stacks: vec![
            vec![leaf, from_caller],            // DWARF to a null return address: root
            vec![leaf, from_caller, from_main], // fp, bad frame past `main`: root by name
            vec![leaf, from_caller],            // fp (no cache), depth limit, ends in the caller: early
            vec![0x10],                         // pc only, stack bound, no module: early
        ]
        .into(),
        samples: vec![sample(0, 5), sample(1, 2), sample(2, 1), sample(3, 1), sample(0, 1)],
        counters: vec![("unwind.end.root".into(), 2), ("unwind.end.bad_frame".into(), 1), ("unwind.method.dwarf".into(), 2)],
        stack_walks: vec![
            code(walk::METHOD_DWARF, walk::END_ROOT),
            code(walk::METHOD_FP, walk::END_BAD_FRAME),
            code(walk::METHOD_FP_NO_CACHE, walk::END_DEPTH_LIMIT),
            code(walk::METHOD_PC_ONLY, walk::END_STACK_BOUNDS),
        ],
        events: vec![],
        python_code: vec![],
    };
    let second = Generation {
        sequence: 2,
        start_time: 3_000_000,
        end_time: 4_000_000,
        process_cpu_ns: 2_000_000,
        threads: vec![thread],
        modules: vec![exe],
        stacks: vec![vec![leaf, from_main], vec![leaf]].into(),
        samples: vec![
            Sample { time: 3_000_100, thread: 0, stack: 0, weight: 1, state: Default::default() },
            Sample { time: 3_000_200, thread: 0, stack: 1, weight: 1, state: Default::default() },
        ],
        counters: vec![],
        stack_walks: vec![],
        events: vec![],
        python_code: vec![],
    };
    vec![first, second]
}

#[test]
fn samples_reach_the_root_by_walk_code_or_by_outermost_function() {
    let scratch = Scratch::new("unwind-stats");
    let path = scratch.write("a.sigtrace", &encode(&header(), &generations()));
    let loaded = load_trace(&path).unwrap();
    let stats = UnwindStats::of(&loaded, &mut Symbolizer::new());

    assert_eq!(stats.total, Tally { samples: 7, weight: 12 });
    // Stack 0 twice (weights 5, 1), stack 1 (2), and the old generation's stack ending in main (1).
    assert_eq!(stats.to_root, Tally { samples: 4, weight: 9 });
    let samples = |tallies: &std::collections::BTreeMap<&str, Tally>| -> Vec<(String, u64)> {
        tallies.iter().map(|(name, tally)| (name.to_string(), tally.samples)).collect()
    };
    assert_eq!(
        samples(&stats.methods),
        [("dwarf", 2), ("fp", 1), ("fp (no free DWARF cache)", 1), ("pc only", 1), ("unknown", 2)].map(|(n, c)| (n.to_string(), c))
    );
    assert_eq!(
        samples(&stats.ends),
        [("bad frame or CFI", 1), ("depth limit", 1), ("root", 2), ("stack bound", 1), ("unknown", 2)].map(|(n, c)| (n.to_string(), c))
    );
    assert_eq!(samples(&stats.early_ends), [("depth limit", 1), ("stack bound", 1), ("unknown", 1)].map(|(n, c)| (n.to_string(), c)));
    assert!((stats.to_root_ratio().unwrap() - 4.0 / 7.0).abs() < 1e-12);

    let summary = TraceSummary::of(&loaded);
    let json = render_json(&loaded, &summary, &stats);
    assert_eq!(json["unwound_to_root"], 4);
    assert_eq!(json["unwound_to_root_weight"], 9);
    assert!((json["unwound_to_root_ratio"].as_f64().unwrap() - 4.0 / 7.0).abs() < 1e-12);
    assert_eq!(json["unwind_methods"]["dwarf"], 2);
    assert_eq!(json["unwind_methods"]["fp (no free DWARF cache)"], 1);
    assert_eq!(json["unwind_methods"]["unknown"], 2);
    assert_eq!(json["unwind_ends"]["root"], 2);
    assert_eq!(json["unwind_ends"]["bad frame or CFI"], 1);
    assert_eq!(json["unwind_early_ends"]["depth limit"], 1);
    assert!(json["unwind_early_ends"].get("bad frame or CFI").is_none(), "that walk ended past main: {json}");
    assert_eq!(json["unwind_ends_total"], 3);
    assert_eq!(json["counters"]["unwind.method.dwarf"], 2);

    let text = render_text(&loaded, &summary, &stats);
    assert_eq!(row(&text, "unwound to root"), "4 of 7 samples (57.1%), weight 9 of 12", "{text}");
    assert_eq!(row(&text, "methods"), "dwarf 2, unknown 2, fp 1, fp (no free DWARF cache) 1, pc only 1", "{text}");
    assert_eq!(row(&text, "early ends"), format!("depth limit (SIGTRACE_DEPTH={}) 1, stack bound 1, unknown 1", header().max_depth), "{text}");
    assert_eq!(row(&text, "unwind.method.dwarf"), "2", "counters are still listed: {text}");
}

#[test]
fn a_trace_without_samples_has_no_ratio() {
    let scratch = Scratch::new("unwind-empty");
    let path = scratch.write("a.sigtrace", &encode(&header(), &[]));
    let loaded = load_trace(&path).unwrap();
    let stats = UnwindStats::of(&loaded, &mut Symbolizer::new());
    assert_eq!(stats, UnwindStats::default());
    let json = render_json(&loaded, &TraceSummary::of(&loaded), &stats);
    assert!(json["unwound_to_root_ratio"].is_null());
    assert_eq!(json["unwind_methods"], serde_json::json!({}));
    let text = render_text(&loaded, &TraceSummary::of(&loaded), &stats);
    assert_eq!(row(&text, "unwound to root"), "0 of 0 samples (n/a)", "{text}");
    assert_eq!(row(&text, "methods"), "none", "{text}");
    assert_eq!(row(&text, "early ends"), "none", "{text}");
}
