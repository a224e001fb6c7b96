//! Wall traces built in memory: the frame naming each waiting sample's state, the state filter,
//! `report --by-call`, `info`'s wall time by state and capture ratio, and pprof's wall values and
//! labels; and the same samples in a `cpu` trace, which none of it touches.

use format::{call_code, Generation, SampleState, ThreadState};

use super::pprof::{decode, labels, string};
use super::{encode, generations, header, test_binary, Scratch};
use crate::commands::info::UnwindStats;
use crate::commands::info::{render_json, render_text, TraceSummary};
use crate::commands::report::{call_rows, render, render_by_call};
use crate::export::pprof;
use crate::profile::{load_trace, Profile, ProfileOptions};
use crate::symbolize::Symbolizer;

fn blocked(call: &str) -> SampleState {
    SampleState { state: ThreadState::Blocked, call: call_code(call) }
}

const RUNNABLE: SampleState = SampleState { state: ThreadState::Runnable, call: 0 };

/// The test generations with states. tid 100: running 1 + 2 periods, runnable 1 (under
/// `rust_named_frame`), blocked in `pthread_mutex_lock` 4 (under the recursive
/// `sigtrace_test_caller`). tid 101: blocked in `read` 3 + 2 (under `sigtrace_test_leaf`),
/// running 1 (the vDSO).
fn wall_generations(generations: &mut [Generation]) {
    let states = [
        vec![SampleState::RUNNING, blocked("read"), SampleState::RUNNING, RUNNABLE, SampleState::RUNNING],
        vec![blocked("pthread_mutex_lock"), blocked("read")],
    ];
    for (generation, states) in generations.iter_mut().zip(states) {
        assert_eq!(generation.samples.len(), states.len());
        for (sample, state) in generation.samples.iter_mut().zip(states) {
            sample.state = state;
        }
    }
}

struct Traces {
    _scratch: Scratch,
    wall: std::path::PathBuf,
    cpu: std::path::PathBuf,
}

/// The wall trace and the same samples in a cpu trace, in a scratch folder named after `test`.
fn traces(test: &str) -> Traces {
    let binary = test_binary();
    let scratch = Scratch::new(&format!("wall-{test}"));
    let mut generations = generations(&binary, &binary.build_id);
    wall_generations(&mut generations);
    let cpu = scratch.write("cpu.sigtrace", &encode(&header(), &generations));
    let wall = scratch.write("wall.sigtrace", &encode(&format::Header { mode: "wall".into(), ..header() }, &generations));
    Traces { _scratch: scratch, wall, cpu }
}

fn profile(path: &std::path::Path, options: &ProfileOptions) -> Profile {
    let loaded = load_trace(path).unwrap();
    Profile::build_with(&[loaded], &mut Symbolizer::new(), options)
}

#[test]
fn waiting_samples_of_a_wall_trace_end_in_a_frame_naming_their_state() {
    let traces = traces("waiting");
    let wall = profile(&traces.wall, &ProfileOptions::default());
    let folded = crate::export::folded::render(&wall);
    let expected = "\
[vdso]+0x10 1
sigtrace_test_caller 2
sigtrace_test_caller;sigtrace_cli::tests::rust_named_frame;[runnable] 1
sigtrace_test_caller;sigtrace_test_caller;sigtrace_test_caller;[blocked: pthread_mutex_lock] 4
sigtrace_test_caller;sigtrace_test_leaf 1
sigtrace_test_caller;sigtrace_test_leaf;[blocked: read] 5
";
    assert_eq!(folded, expected);
    // Time: weight × 1 ms, CPU time for running samples and wall time for the others.
    assert_eq!(wall.total_time_ns(), 14_000_000);
    let time_of = |state: ThreadState| wall.by_state[state as usize].time_ns;
    assert_eq!((time_of(ThreadState::Running), time_of(ThreadState::Runnable), time_of(ThreadState::Blocked)), (4_000_000, 1_000_000, 9_000_000));
    assert_eq!(wall.time_kind(), crate::profile::TimeKind::Wall);

    // The same samples in a cpu trace: no state frames, its folded stacks as before.
    let cpu = profile(&traces.cpu, &ProfileOptions::default());
    let folded = crate::export::folded::render(&cpu);
    let unchanged = "\
[vdso]+0x10 1
sigtrace_test_caller 2
sigtrace_test_caller;sigtrace_cli::tests::rust_named_frame 1
sigtrace_test_caller;sigtrace_test_caller;sigtrace_test_caller 4
sigtrace_test_caller;sigtrace_test_leaf 6
";
    assert_eq!(folded, unchanged);
    assert_eq!(cpu.time_kind(), crate::profile::TimeKind::Cpu);
    assert!(!render(&cpu, 20, false, false).contains("wall time"));
}

#[test]
fn the_state_filter_keeps_one_state_and_the_report_says_of_what() {
    let traces = traces("filter");
    let options = ProfileOptions { state: Some(ThreadState::Blocked), keep_samples: true, ..ProfileOptions::default() };
    let blocked_only = profile(&traces.wall, &options);
    assert_eq!((blocked_only.total_samples(), blocked_only.total_weight()), (3, 9));
    assert!(blocked_only.samples.iter().all(|s| s.state.state == ThreadState::Blocked && s.cpu_ns() == 0 && s.time_ns == s.weight * 1_000_000));
    let text = render(&blocked_only, 3, false, false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "3 samples, weight 9 (2 threads)");
    assert_eq!(lines[1], "wall time 0.014 s: running 0.004 s (28.6%), runnable 0.001 s (7.1%), blocked 0.009 s (64.3%)");
    assert_eq!(lines[2], "only blocked samples: 0.009 s of wall time (64.3%)");
    assert!(lines[3].starts_with("unit: wall time; weights in sampling periods (1 period = 1.000 ms at 1000 Hz)"), "{text}");
    // Shares are of the blocked wall time: read 5 of 9 periods, the mutex 4 of 9. A state
    // frame is in no module: nothing follows its name.
    assert_eq!(lines[6], format!("{:>10} {:>6.2}% {:>10} {:>6.2}%  [blocked: read]", 5, 500.0 / 9.0, 5, 500.0 / 9.0), "{text}");
    assert!(lines[7].contains("[blocked: pthread_mutex_lock]") && lines[7].contains("44.44%"), "{text}");

    let running = profile(&traces.wall, &ProfileOptions { state: Some(ThreadState::Running), ..ProfileOptions::default() });
    assert_eq!(running.total_weight(), 4);
    let folded = crate::export::folded::render(&running);
    assert!(!folded.contains("[blocked") && !folded.contains("[runnable"), "running samples get no state frame: {folded}");
}

#[test]
fn by_call_sums_the_blocked_time_of_each_call_with_its_main_caller() {
    let traces = traces("by-call");
    let wall = profile(&traces.wall, &ProfileOptions::default());
    let rows: Vec<(String, u64, u64, String)> = call_rows(&wall).into_iter().map(|row| (row.call, row.time_ns, row.samples, row.caller)).collect();
    assert_eq!(
        rows,
        vec![
            ("read".to_string(), 5_000_000, 2, "sigtrace_test_leaf".to_string()),
            ("pthread_mutex_lock".to_string(), 4_000_000, 1, "sigtrace_test_caller".to_string()),
        ]
    );
    let text = render_by_call(&wall, 20, true);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[4], format!("{:<28} {:>12} {:>7} {:>9}  called most from", "blocking call", "wall time", "share", "samples"));
    assert_eq!(lines[5], format!("{:<28} {:>12} {:>6.2}% {:>9}  sigtrace_test_leaf", "read", "0.005 s", 100.0 * 5.0 / 14.0, 2));
    assert_eq!(lines[6], format!("{:<28} {:>12} {:>6.2}% {:>9}  sigtrace_test_caller", "pthread_mutex_lock", "0.004 s", 100.0 * 4.0 / 14.0, 1));
    assert!(text.contains("worker"), "--threads: {text}");
    let cpu = profile(&traces.cpu, &ProfileOptions::default());
    assert!(render_by_call(&cpu, 20, false).contains("no blocked samples (a cpu trace: record with --mode wall)"));
}

#[test]
fn info_splits_each_threads_wall_time_by_state_and_captures_cpu_from_running_samples() {
    let traces = traces("info");
    let loaded = load_trace(&traces.wall).unwrap();
    let summary = TraceSummary::of(&loaded);
    assert!(summary.wall);
    assert_eq!(summary.state_ns(), [4_000_000, 1_000_000, 9_000_000]);
    // 10 ms of CPU at 1000 Hz: 10 periods expected, 4 running.
    assert!((summary.capture_ratio.unwrap() - 0.4).abs() < 1e-9);
    assert!(
        summary.one_line().ends_with("; wall time 0.014 s: running 0.004 s (28.6%), runnable 0.001 s (7.1%), blocked 0.009 s (64.3%)"),
        "{}",
        summary.one_line()
    );
    let unwinding = UnwindStats::of(&loaded, &mut Symbolizer::new());
    let json = render_json(&loaded, &summary, &unwinding);
    assert_eq!(
        (json["wall_ns"].as_u64(), json["running_ns"].as_u64(), json["runnable_ns"].as_u64(), json["blocked_ns"].as_u64()),
        (Some(14_000_000), Some(4_000_000), Some(1_000_000), Some(9_000_000))
    );
    assert_eq!(json["sampled_cpu_ns"], 4_000_000);
    let main = &json["per_thread"][0];
    assert_eq!(main["tid"], 100);
    assert_eq!(
        (main["wall_ns"].as_u64(), main["running_ns"].as_u64(), main["runnable_ns"].as_u64(), main["blocked_ns"].as_u64()),
        (Some(8_000_000), Some(3_000_000), Some(1_000_000), Some(4_000_000))
    );
    let text = render_text(&loaded, &summary, &unwinding);
    assert!(text.contains("wall time:") && text.contains("(running weight / CPU time × Hz)") && text.contains("wall time by state:"), "{text}");

    // The cpu trace: none of it, every weight is CPU.
    let loaded = load_trace(&traces.cpu).unwrap();
    let summary = TraceSummary::of(&loaded);
    assert!(!summary.wall && (summary.capture_ratio.unwrap() - 1.4).abs() < 1e-9);
    let json = render_json(&loaded, &summary, &UnwindStats::of(&loaded, &mut Symbolizer::new()));
    assert!(json.get("wall_ns").is_none() && json["per_thread"][0].get("wall_ns").is_none());
    assert_eq!(json["sampled_cpu_ns"], 14_000_000);
}

#[test]
fn pprof_of_a_wall_trace_counts_wall_time_labelled_by_state_and_call() {
    let traces = traces("pprof");
    let wall = profile(&traces.wall, &ProfileOptions::default());
    let message = decode(&pprof::render(&wall));
    let types: Vec<(&str, &str)> = message.sample_type.iter().map(|t| (string(&message, t.r#type), string(&message, t.unit))).collect();
    assert_eq!(types, [("samples", "count"), ("wall", "nanoseconds")]);
    assert_eq!(string(&message, message.default_sample_type), "wall");
    let period_type = message.period_type.expect("period_type");
    assert_eq!((string(&message, period_type.r#type), string(&message, period_type.unit)), ("wall", "nanoseconds"));
    let mut by_label: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
    for sample in &message.sample {
        let labels = labels(&message, sample);
        let get = |key: &str| labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let state = get("state").expect("a state label");
        assert_eq!(get("call").is_some(), state == "blocked", "a call label on blocked samples only: {labels:?}");
        *by_label.entry((state, get("call").unwrap_or_default())).or_default() += sample.value[1];
    }
    let expected: std::collections::BTreeMap<(String, String), i64> = [
        (("blocked".to_string(), "pthread_mutex_lock".to_string()), 4_000_000),
        (("blocked".to_string(), "read".to_string()), 5_000_000),
        (("runnable".to_string(), String::new()), 1_000_000),
        (("running".to_string(), String::new()), 4_000_000),
    ]
    .into();
    assert_eq!(by_label, expected);

    let cpu = decode(&pprof::render(&profile(&traces.cpu, &ProfileOptions::default())));
    assert_eq!(string(&cpu, cpu.default_sample_type), "cpu");
    assert!(cpu.sample.iter().all(|sample| labels(&cpu, sample).iter().all(|(key, _)| key != "state" && key != "call")));
}
