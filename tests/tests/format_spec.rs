//! FORMAT.md is enough to read a trace: `scripts/read_trace.py`, written from it alone, reads
//! real traces (threads, annotations, several generations, a weight, a crash-truncated tail)
//! to exactly what the Rust reader decodes.

use serde_json::{json, Value};
use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;

/// The Rust reader's view of a trace, in the shape `scripts/read_trace.py` prints.
fn rust_view(path: &Path) -> Value {
    let trace = read_trace(path);
    let header = trace.header.as_ref().map(|h| {
        json!({"pid": h.pid, "parent_pid": h.parent_pid, "executable": h.executable, "args": h.args, "clock": h.clock, "clock_hz": h.clock_hz,
               "start_clock_ns": h.start_clock_ns, "start_unix_ns": h.start_unix_ns, "hz": h.hz, "timer": h.timer, "mode": h.mode,
               "max_depth": h.max_depth, "generation_ms": h.generation_ms})
    });
    let generations: Vec<Value> = trace
        .generations
        .iter()
        .map(|g| {
            let tid = |index: u32| g.threads[index as usize].tid;
            json!({
                "sequence": g.sequence, "start_time": g.start_time, "end_time": g.end_time, "process_cpu_ns": g.process_cpu_ns,
                "threads": g.threads.iter().map(|t| json!({"tid": t.tid, "name": t.name, "cpu_ns": t.cpu_ns, "dropped": t.dropped, "exited": t.exited})).collect::<Vec<_>>(),
                "modules": g.modules.iter().map(|m| json!({"path": m.path, "base": m.base, "start": m.start, "end": m.end,
                    "build_id": m.build_id.iter().map(|b| format!("{b:02x}")).collect::<String>()})).collect::<Vec<_>>(),
                "counters": g.counters.iter().map(|(name, value)| (name.clone(), json!(value))).collect::<serde_json::Map<_, _>>(),
                "samples": g.samples.iter().map(|s| json!({"time": s.time, "tid": tid(s.thread), "weight": s.weight,
                    "frames": g.stacks.get(s.stack as usize).expect("the stack of a sample").collect::<Vec<u64>>()})).collect::<Vec<_>>(),
                "walks": g.stack_walks,
                "events": g.events.iter().map(|e| json!({"time": e.time, "tid": tid(e.thread), "kind": e.kind.code(), "category": e.category,
                    "text": e.text})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let end = trace.end.map(|e| json!({"reason": e.reason.code(), "signal": e.signal, "time": e.time}));
    json!({"header": header, "generations": generations, "end": end, "ignored_bytes": trace.ignored_bytes})
}

fn python_view(path: &Path) -> Value {
    let output = Command::new("python3").arg(workspace_root().join("scripts/read_trace.py")).arg(path).output().expect("python3 runs");
    assert!(output.status.success(), "read_trace.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut view: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    view.as_object_mut().unwrap().remove("stopped_because");
    view
}

fn assert_same_reading(path: &Path) {
    let (rust, python) = (rust_view(path), python_view(path));
    if rust != python {
        let (r, p) = (rust.to_string(), python.to_string());
        let at = r.bytes().zip(p.bytes()).position(|(a, b)| a != b).unwrap_or(r.len().min(p.len()));
        panic!(
            "{}: the readers differ at byte {at}:\nrust:   {}\npython: {}",
            path.display(),
            &r[at.saturating_sub(80)..(at + 80).min(r.len())],
            &p[at.saturating_sub(80)..(at + 80).min(p.len())]
        );
    }
}

#[test]
fn a_reader_written_from_format_md_reads_what_the_rust_reader_reads() {
    let dir = scratch_dir("format-spec");
    let include = format!("-I{}", workspace_root().join("shim/include").display());
    let annotate = compile_c("annotate", &["-O2", "-g", "-fno-omit-frame-pointer", &include, "-ldl"], &dir);
    let run = run_traced(&annotate, &[], &[("SIGTRACE_GENERATION_MS", "20"), ("SIGTRACE_HZ", "4000")], &dir);
    assert!(run.output.status.success());
    let traces = run.traces.clone();
    assert_eq!(traces.len(), 1);
    let trace = run.trace();
    assert!(trace.generations.len() >= 3, "several generations");
    assert!(trace.generations.iter().any(|g| !g.events.is_empty()), "events");
    assert_same_reading(&traces[0]);

    // Cut short in the middle of a chunk, as by SIGKILL during a write.
    let bytes = std::fs::read(&traces[0]).unwrap();
    let cut = dir.join("cut.trace");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert!(read_trace(&cut).ignored_bytes > 0);
    assert_same_reading(&cut);

    let dir = scratch_dir("format-spec-weights");
    let kernel = compile_c("page_faults", &["-O2", "-g"], &dir);
    let run = run_traced(&kernel, &["200"], &[("SIGTRACE_HZ", "4000")], &dir);
    assert!(run.trace().generations.iter().flat_map(|g| &g.samples).any(|s| s.weight > 1), "samples with a weight");
    assert_same_reading(&run.traces[0]);
}
