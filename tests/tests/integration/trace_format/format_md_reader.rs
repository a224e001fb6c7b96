//! docs/FORMAT.md is enough to read a trace: `scripts/read_trace.py`, written from it alone, reads
//! real traces (threads, annotations, several generations, a weight, a crash-truncated tail,
//! Python frames) to exactly what the Rust reader decodes.

use serde_json::Value;
use sigtrace_tests::*;
use std::path::Path;
use std::process::Command;

fn python_view(path: &Path) -> Value {
    let output = Command::new("python3").arg(workspace_root().join("scripts/read_trace.py")).arg(path).output().expect("python3 runs");
    assert!(output.status.success(), "read_trace.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut view: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    view.as_object_mut().unwrap().remove("stopped_because");
    view
}

fn assert_same_reading(path: &Path) {
    let (rust, python) = (trace_as_json(&read_trace(path)), python_view(path));
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
    let _beside_others = beside_others();
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

    // Ended by the raw exit_group system call: the open generation is only in pieces (at a 20 ms
    // drain period), which both readers merge. The program spins on until its file holds a
    // piece after a closed generation, so that the end does not fall right after a generation
    // closed, with no piece yet (as a machine busy elsewhere can make it).
    let dir = scratch_dir("format-spec-pieces");
    let program = compile_c("abrupt_end", &["-O2", "-g"], &dir);
    let env = [("SIGTRACE_GENERATION_MS", "200"), ("SIGTRACE_DRAIN_MS", "20"), ("SIGTRACE_DRAIN_THREAD", "always")];
    let run = run_traced(&program, &["exit_group_after_piece", "300"], &env, &dir);
    assert_eq!(run.output.status.code(), Some(7));
    let trace = run.trace();
    assert_eq!(trace.pieces_recovered, 1, "the open generation, from its pieces");
    assert!(trace.generations.iter().all(|g| !g.modules.is_empty()), "every generation and piece has its modules");
    assert_same_reading(&run.traces[0]);

    // JIT symbol chunks: a program that writes its own perf map, a line at a time.
    let dir = scratch_dir("format-spec-jit");
    let script = "import os, time\n\
        path = f'/tmp/perf-{os.getpid()}.map'\n\
        with open(path, 'w', buffering=1) as m:\n\
        \x20   for i in range(3):\n\
        \x20       m.write(f'7f00000{i}1000 40 jitted_{i}\\n')\n\
        \x20       start = time.process_time()\n\
        \x20       while time.process_time() - start < 0.1: pass\n\
        os.remove(path)\n";
    // The drain thread reads the map at its rounds; this single-threaded script reaches no safe
    // point while its map exists.
    let run = run_traced(Path::new("/usr/bin/python3"), &["-c", script], &[("SIGTRACE_DRAIN_MS", "10"), ("SIGTRACE_DRAIN_THREAD", "always")], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let names: Vec<String> = run.trace().jit_symbols.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["jitted_0", "jitted_1", "jitted_2"]);
    assert_same_reading(&run.traces[0]);
    // The same run's Python frames (`Y` chunks), by name: the script's `<module>`.
    let view = python_view(&run.traces[0]);
    let samples = view["generations"].as_array().unwrap().iter().flat_map(|g| g["samples"].as_array().unwrap().iter());
    let named = samples.filter(|s| s["python"].as_array().is_some_and(|frames| frames.iter().any(|f| f["name"] == "<module>"))).count();
    assert!(named > 0, "read_trace.py names the Python frames");
}

#[test]
fn the_format_md_reader_reads_every_golden_trace_as_the_rust_reader_does() {
    let _beside_others = beside_others();
    let traces = golden_traces();
    assert!(!traces.is_empty());
    for path in traces {
        assert_same_reading(&path);
    }
}
