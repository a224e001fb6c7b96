//! Golden traces: real traces checked in under `golden/` (threads, a fork tree with an exec, an
//! exec, a crash, annotations, a file cut short), each decoded and compared with its checked-in
//! decoding (`golden/NAME.json`), so that any change of the format or of the reader is a
//! visible diff. `scripts/make-golden` makes new traces; `SIGTRACE_BLESS=1` rewrites the
//! expectations from the current reader (only on purpose, and the diff reviewed).

use serde_json::Value;
use sigtrace_tests::*;

#[test]
fn golden_traces_decode_to_their_checked_in_expectations() {
    let traces = golden_traces();
    assert!(traces.len() >= 10, "the golden traces are there: {traces:?}");
    let bless = std::env::var_os("SIGTRACE_BLESS").is_some();
    let mut differ = Vec::new();
    for path in &traces {
        let trace = read_trace(path);
        let mut decoded = trace_as_json(&trace);
        decoded["stopped_because"] = trace.stopped_because.as_ref().map_or(Value::Null, |why| Value::String(why.to_string()));
        let expected_path = path.with_extension("json");
        if bless {
            std::fs::write(&expected_path, serde_json::to_string_pretty(&decoded).unwrap() + "\n").unwrap();
            continue;
        }
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap_or_else(|_| panic!("{} missing", expected_path.display())))
            .expect("expectation is JSON");
        if decoded != expected {
            differ.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        differ.is_empty(),
        "decoded differently from their expectations (golden/*.json): {differ:?}; if the change is meant, rerun with SIGTRACE_BLESS=1 and review the diff"
    );
    // What the set covers.
    let all: Vec<format::Trace> = traces.iter().map(|p| read_trace(p)).collect();
    let ends: Vec<Option<format::EndReason>> = all.iter().map(|t| t.end.map(|e| e.reason)).collect();
    for reason in [format::EndReason::Exit, format::EndReason::Exec, format::EndReason::FatalSignal, format::EndReason::UnderscoreExit] {
        assert!(ends.contains(&Some(reason)), "a golden trace ends with {reason:?}");
    }
    assert!(ends.contains(&None), "a golden trace was cut short");
    assert!(all.iter().any(|t| t.generations.iter().any(|g| g.events.iter().any(|e| e.kind == format::EventKind::RegionBegin))), "annotations");
    assert!(all.iter().any(|t| t.generations.iter().any(|g| g.threads.len() >= 3)), "threads");
}
