//! `sigtrace export --format pprof` opened by the real client, `go tool pprof`: real programs
//! recorded under the shim, exported, and read back with `-raw` (every sample with its values
//! and labels, every location with its lines, every mapping with its flags), `-top` and
//! `-traces`. The totals must be `sigtrace info`'s, to the sample and the nanosecond.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sigtrace_tests::*;

/// Exports `traces` (merged) as pprof into `out`.
fn export_pprof(traces: &[PathBuf], out: &Path) {
    let mut args = vec!["export".to_string(), "--format".into(), "pprof".into(), "-o".into(), out.display().to_string()];
    args.extend(traces.iter().map(|trace| trace.display().to_string()));
    let output = cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "sigtrace export failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "sigtrace export complained: {}", String::from_utf8_lossy(&output.stderr));
}

/// What `sigtrace info --json` says about one trace file.
struct InfoTotals {
    pid: u64,
    samples: u64,
    /// The sampled CPU time: the weight in periods × the period, ns.
    cpu_ns: u64,
}

fn info_totals(trace: &Path) -> InfoTotals {
    let info = info_json(trace);
    let field = |key: &str| info[key].as_u64().unwrap_or_else(|| panic!("{key} in {info}"));
    InfoTotals { pid: field("pid"), samples: field("samples"), cpu_ns: field("sampled_cpu_ns") }
}

/// One sample of `go tool pprof -raw`: its values (samples, cpu ns), location ids and labels.
#[derive(Debug)]
struct RawSample {
    samples: u64,
    cpu_ns: u64,
    locations: Vec<u64>,
    labels: BTreeMap<String, String>,
}

/// What `go tool pprof -raw` printed, parsed: the samples, the lines of each location (function
/// names, innermost first) and each mapping's line.
#[derive(Debug, Default)]
struct Raw {
    samples: Vec<RawSample>,
    locations: BTreeMap<u64, Vec<String>>,
    mappings: Vec<String>,
}

/// Parses `-raw` output: a `Samples:` section (`  COUNT  NS: ID ID …` then `  key:[value]`
/// lines), `Locations` (`  ID: 0xADDR M=N function file:line s=0`, inline callers on the
/// following indented lines) and `Mappings`.
fn parse_raw(text: &str) -> Raw {
    let mut raw = Raw::default();
    let mut section = "";
    let mut location = None;
    for line in text.lines() {
        match line.trim_end() {
            "Samples:" | "Locations" | "Mappings" => {
                section = line.trim_end();
                continue;
            }
            _ => {}
        }
        let trimmed = line.trim();
        match section {
            "Samples:" => {
                if let Some((values, ids)) = trimmed.split_once(':').filter(|(values, _)| values.split_whitespace().all(|v| v.parse::<u64>().is_ok())) {
                    let values: Vec<u64> = values.split_whitespace().map(|v| v.parse().expect("a number")).collect();
                    if values.len() == 2 {
                        let locations = ids.split_whitespace().map(|id| id.parse().expect("a location id")).collect();
                        raw.samples.push(RawSample { samples: values[0], cpu_ns: values[1], locations, labels: BTreeMap::new() });
                        continue;
                    }
                }
                // `thread:[alpha]`, or numbers several to a line: `pid:[7831] tid:[7833]`.
                let Some(sample) = raw.samples.last_mut() else { continue };
                let mut rest = trimmed;
                while let Some((key, after)) = rest.split_once(":[") {
                    let Some((value, tail)) = after.split_once(']') else { break };
                    sample.labels.insert(key.trim().to_string(), value.to_string());
                    rest = tail;
                }
            }
            "Locations" => {
                let starts_location = trimmed.split_once(": 0x").is_some_and(|(id, _)| id.parse::<u64>().is_ok());
                if starts_location {
                    let (id, rest) = trimmed.split_once(": ").expect("id: address");
                    let id: u64 = id.parse().expect("a location id");
                    // `0xADDR M=N function file:line s=0` (function may be absent).
                    let function = rest.split_whitespace().nth(2).map(str::to_string);
                    raw.locations.insert(id, function.into_iter().collect());
                    location = Some(id);
                } else if let (Some(id), Some(function)) = (location, trimmed.split_whitespace().next()) {
                    raw.locations.entry(id).or_default().push(function.to_string());
                }
            }
            "Mappings" if !trimmed.is_empty() => raw.mappings.push(trimmed.to_string()),
            _ => {}
        }
    }
    raw
}

/// The sample count and CPU ns of the `-raw` samples that `keep` accepts.
fn raw_totals(raw: &Raw, keep: impl Fn(&RawSample) -> bool) -> (u64, u64) {
    raw.samples.iter().filter(|s| keep(s)).fold((0, 0), |(count, ns), s| (count + s.samples, ns + s.cpu_ns))
}

/// `-top` rows as function → flat value (in the unit of the `-sample_index` asked for).
fn top_flat(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 6 || !fields[1].ends_with('%') {
                return None;
            }
            Some((fields[5..].join(" "), parse_quantity(fields[0])?))
        })
        .collect()
}

/// A pprof quantity (`1.50s`, `300ms`, `12`) as a number (seconds for times).
fn parse_quantity(text: &str) -> Option<f64> {
    for (suffix, scale) in [("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0)] {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * scale);
        }
    }
    text.parse().ok()
}

#[test]
fn two_named_threads_open_in_go_tool_pprof_with_their_labels_shares_and_totals() {
    let _alone = alone();
    let dir = scratch_dir("pprof-threads");
    let program = compile_c("named_threads", &["-O2", "-g"], &dir);
    // alpha 150 ms, beta 450 ms of CPU at 999 Hz: ~600 samples, beta's share 75% ± ~8 points.
    let run = run_traced(&program, &["150"], &[("SIGTRACE_HZ", "999")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let profile = dir.join("threads.pb.gz");
    export_pprof(&run.traces, &profile);

    let info = info_totals(&run.traces[0]);
    let raw = parse_raw(&go_tool_pprof(&["-raw"], &profile));
    assert_eq!(raw_totals(&raw, |_| true), (info.samples, info.cpu_ns), "pprof's totals are info's");
    let tid_of =
        |name: &str| run.cpu_by_id(&format!("{name} tid=")).into_keys().next().map(u64::from).unwrap_or_else(|| panic!("{name}'s tid: {}", run.stderr));
    let tids = [("alpha", tid_of("alpha")), ("beta", tid_of("beta"))];
    for sample in &raw.samples {
        assert_eq!(sample.labels.get("pid").map(String::as_str), Some(info.pid.to_string().as_str()), "{sample:?}");
        assert!(sample.labels.contains_key("tid") && sample.labels.contains_key("thread"), "{sample:?}");
    }
    for (name, tid) in tids {
        let (samples, _) = raw_totals(&raw, |s| s.labels.get("tid") == Some(&tid.to_string()));
        assert!(samples > 0, "thread {name} (tid {tid}) has samples");
        let named = raw_totals(&raw, |s| s.labels.get("thread").map(String::as_str) == Some(name));
        assert_eq!(named.0, samples, "the samples of tid {tid} are the samples labelled thread {name}");
    }

    let top_text = go_tool_pprof(&["-top", "-sample_index=cpu"], &profile);
    assert!(top_text.lines().next().is_some_and(|l| l == "File: named_threads"), "the program is the main binary: {top_text}");
    let top = top_flat(&top_text);
    let (alpha, beta) = (top.get("alpha_work").copied().unwrap_or(0.0), top.get("beta_work").copied().unwrap_or(0.0));
    let n = info.samples as f64;
    let share = beta / (alpha + beta);
    assert!((share - 0.75).abs() <= share_tolerance(0.75, n), "beta_work's share of the two workers {share:.3}: {top:?}");
    assert!((alpha + beta) * 1e9 >= 0.9 * info.cpu_ns as f64, "the workers hold the CPU time: {top:?}");

    // The labels work as filters in the client.
    let alpha_only = top_flat(&go_tool_pprof(&["-top", "-tagfocus=thread=alpha"], &profile));
    assert!(alpha_only.contains_key("alpha_work") && !alpha_only.contains_key("beta_work"), "{alpha_only:?}");
    let traces = go_tool_pprof(&["-traces"], &profile);
    let label_lines: BTreeSet<String> = traces.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for expected in ["thread: beta".to_string(), format!("tid: {}", tids[1].1), format!("pid: {}", info.pid)] {
        assert!(label_lines.contains(&expected), "{expected} in -traces: {traces}");
    }
}

#[test]
fn an_inlined_function_is_a_line_of_its_callers_location() {
    let _alone = alone();
    let dir = scratch_dir("pprof-inline");
    let program = compile_c("inlined", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["200"], &[("SIGTRACE_HZ", "999")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let profile = dir.join("inline.pb.gz");
    export_pprof(&run.traces, &profile);

    let info = info_totals(&run.traces[0]);
    let raw = parse_raw(&go_tool_pprof(&["-raw"], &profile));
    assert_eq!(raw_totals(&raw, |_| true), (info.samples, info.cpu_ns), "pprof's totals are info's");
    // mix_block is inlined into hot_loop: one location, mix_block first, its caller last.
    let inline_locations: BTreeSet<u64> =
        raw.locations.iter().filter(|(_, lines)| lines.windows(2).any(|w| w == ["mix_block", "hot_loop"])).map(|(&id, _)| id).collect();
    assert!(!inline_locations.is_empty(), "a location with lines mix_block, hot_loop: {:?}", raw.locations);
    let (through_inline, _) = raw_totals(&raw, |s| s.locations.first().is_some_and(|leaf| inline_locations.contains(leaf)));
    assert!(through_inline as f64 >= 0.9 * info.samples as f64, "mix_block's leaf samples {through_inline} of {}", info.samples);
    let program_name = program.display().to_string();
    let mapping = raw.mappings.iter().find(|m| m.contains(&program_name)).unwrap_or_else(|| panic!("the program's mapping: {:?}", raw.mappings));
    assert!(["[FN]", "[FL]", "[LN]", "[IN]"].iter().all(|flag| mapping.contains(flag)), "DWARF gives it all: {mapping}");

    let traces = go_tool_pprof(&["-traces"], &profile);
    assert!(traces.lines().any(|l| l.contains("mix_block") && l.contains("(inline)")), "{traces}");
}

#[test]
fn the_files_of_a_process_tree_keep_their_pids() {
    let _alone = alone();
    let dir = scratch_dir("pprof-fork");
    let program = compile_c("forks", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["60", "80"], &[("SIGTRACE_HZ", "999")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    assert!(run.traces.len() >= 4, "a parent and three children: {:?}", run.traces);
    let infos: Vec<InfoTotals> = run.traces.iter().map(|trace| info_totals(trace)).collect();
    let profile = dir.join("tree.pb.gz");
    export_pprof(&run.traces, &profile);

    let raw = parse_raw(&go_tool_pprof(&["-raw"], &profile));
    let pids: BTreeSet<u64> = infos.iter().map(|info| info.pid).collect();
    assert!(pids.len() >= 4, "distinct processes: {pids:?}");
    let labelled: BTreeSet<u64> = raw.samples.iter().filter_map(|s| s.labels.get("pid")?.parse().ok()).collect();
    assert_eq!(labelled, pids, "one pid label per process");
    for pid in pids {
        let (samples, cpu_ns) = infos.iter().filter(|info| info.pid == pid).fold((0, 0), |(s, c), info| (s + info.samples, c + info.cpu_ns));
        assert_eq!(raw_totals(&raw, |s| s.labels.get("pid") == Some(&pid.to_string())), (samples, cpu_ns), "pid {pid}");
    }
    let top = top_flat(&go_tool_pprof(&["-top"], &profile));
    assert!(top.contains_key("parent_work") && top.contains_key("child_work"), "{top:?}");
}
