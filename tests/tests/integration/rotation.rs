//! Rotation and retention: `SIGTRACE_ROTATE=1s SIGTRACE_KEEP=3` on a 10 s busy run leaves the
//! last three files of the series, each a complete trace on its own, which every command reads
//! as one trace of the last ~3 s, named by the base name, one file, or the files themselves.

use format::EndReason;
use sigtrace_tests::*;

#[test]
fn a_busy_run_rotated_every_second_keeping_three_reads_as_its_last_seconds() {
    let _alone = alone();
    let dir = scratch_dir("rotation");
    let program = compile_c("window_burn", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["10000"], &[("SIGTRACE_ROTATE", "1s"), ("SIGTRACE_KEEP", "3")], &dir);
    assert!(run.output.status.success(), "{:?}\n{}", run.output.status, run.sigtrace_lines().join("\n"));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    assert_eq!(run.traces.len(), 3, "{:?}", run.traces);
    let pid = read_trace(&run.traces[0]).header.expect("a header").pid;
    let base = dir.join(format!("trace.{pid}.sigtrace"));
    // In series order (r9 before r10).
    let mut traces = run.traces.clone();
    let base_name = base.file_name().unwrap().to_str().unwrap().to_string();
    traces.sort_by_key(|path| format::file_name::rotation_index(&base_name, ".sigtrace", path.file_name().unwrap().to_str().unwrap()));
    assert!(!base.exists(), "the first file was deleted");

    // Each file alone: a header, complete generations, an end record (rotated, then the exit).
    let mut samples = 0;
    for (index, path) in traces.iter().enumerate() {
        let trace = read_trace(path);
        assert!(trace.header.is_some() && trace.stopped_because.is_none(), "{}: {:?}", path.display(), trace.stopped_because);
        let expected = if index == 2 { EndReason::Exit } else { EndReason::Rotated };
        assert_eq!(trace.end.map(|end| end.reason), Some(expected), "{}", path.display());
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(&format!("trace.{pid}.r")), "{name}");
        samples += sample_count(&trace);
    }

    // The series by its base name: one trace of the last ~3 s (the last file holds what the
    // last, partial second took), whose samples stand for its CPU time.
    let info = info_json(&base);
    assert_eq!(info["samples"].as_u64(), Some(samples), "{info}");
    let duration = info["duration_ns"].as_f64().unwrap() / 1e9;
    assert!((1.8..=3.6).contains(&duration), "the series covers {duration:.2} s");
    let capture = info["capture_ratio"].as_f64().unwrap();
    let tolerance = SIGMAS / (samples as f64).sqrt() + 0.02;
    assert!((capture - 1.0).abs() <= tolerance, "capture {capture:.3} over the series (± {tolerance:.3}): the CPU it counts is not its own");

    // One file names the series; so do its files listed (as a glob gives them).
    let one = info_json(&traces[1]);
    assert_eq!(one["samples"], info["samples"]);
    let listed: Vec<String> = traces.iter().map(|path| path.display().to_string()).collect();
    let report = |files: &[String]| {
        let mut args = vec!["report".to_string()];
        args.extend_from_slice(files);
        let output = cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().to_string()
    };
    let by_base = report(&[base.display().to_string()]);
    assert!(by_base.starts_with(&format!("{samples} samples")) && by_base.ends_with("(1 threads)"), "{by_base}");
    assert_eq!(report(&listed), by_base);
}

/// An idle process writes a few dozen bytes a generation: `sleep` traced for 3 s at 10
/// generations a second; each generation in which nothing happened is re-encoded as the writer
/// wrote it and measured. At the default one generation a second, 50 bytes each is 0.18 MB an
/// hour.
#[test]
fn an_idle_generation_costs_a_few_dozen_bytes() {
    let _beside_others = beside_others();
    let dir = scratch_dir("idle");
    // The drain thread writes them: a single-threaded program without one writes none while
    // it waits (its safe point is its call's start).
    let env = [("SIGTRACE_GENERATION_MS", "100"), ("SIGTRACE_DRAIN_THREAD", "always")];
    let run = run_traced(std::path::Path::new("/bin/sleep"), &["3"], &env, &dir);
    assert!(run.output.status.success() && run.sigtrace_lines().is_empty(), "{}", run.stderr);
    let trace = run.trace();
    let idle: Vec<&format::Generation> = trace.generations.iter().filter(|g| g.samples.is_empty() && g.events.is_empty()).collect();
    assert!(idle.len() >= 20, "only {} idle generations of {}", idle.len(), trace.generations.len());
    let mut bytes = Vec::new();
    for generation in &idle {
        format::encode_generation(&mut bytes, generation);
    }
    let each = bytes.len() as f64 / idle.len() as f64;
    eprintln!("idle: {each:.1} bytes a generation");
    assert!(each <= 50.0, "an idle generation costs {each:.1} bytes");
    assert!(idle.iter().all(|g| g.threads.is_empty() && g.modules.is_empty()), "an idle generation lists its tables");
}
