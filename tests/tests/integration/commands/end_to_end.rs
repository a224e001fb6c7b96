//! The `sigtrace` command on real traces: record, info, report, export.

use sigtrace_tests::*;
use std::process::Command;

#[test]
fn record_runs_the_command_and_passes_its_status_on() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let pattern = dir.join("r.%p.sigtrace");
    let output = Command::new(sigtrace_cli())
        .args(["record", "-o", pattern.to_str().unwrap(), "-F", "2000", "--timer", "posix", "--"])
        .arg(&program)
        .arg("100") // ms of CPU time
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "split done 1\n");
    assert!(stderr.lines().any(|l| l.starts_with("sigtrace: wrote ") && l.contains("/r.")), "{stderr}");
    assert!(stderr.lines().any(|l| l.contains("samples") && l.contains("% of CPU time")), "{stderr}");
    let traces: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("r.")).collect();
    assert_eq!(traces.len(), 1);
    let header = read_trace(&traces[0].path()).header.unwrap();
    assert_eq!((header.hz, header.timer.as_str()), (2000, "posix"));
}

#[test]
fn record_reports_death_by_signal_and_missing_commands_like_a_shell() {
    let _beside_others = beside_others();
    let dir = scratch_dir("record-status");
    let pattern = dir.join("s.%p.sigtrace");
    let killed = Command::new(sigtrace_cli()).args(["record", "-o", pattern.to_str().unwrap(), "--", "sh", "-c", "kill -TERM $$"]).output().unwrap();
    assert_eq!(killed.status.code(), Some(128 + 15));
    let missing = Command::new(sigtrace_cli()).args(["record", "-o", pattern.to_str().unwrap(), "--", "/nonexistent/program"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("sigtrace: cannot run"));
}

#[test]
fn info_report_and_export_read_real_traces() {
    let _beside_others = beside_others();
    let dir = scratch_dir("info");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    // 200 ms of CPU at 999 Hz: ~200 samples, ~50 through light (its absence would be a
    // 1-in-e^50 event), and spin's self time known within a few points.
    let first = run_traced(&program, &["200"], &[], &dir);
    let second = run_traced(&program, &["200"], &[], &dir);
    assert_eq!(second.traces.len(), 2, "two runs, two traces");
    let paths: Vec<String> = second.traces.iter().map(|p| p.display().to_string()).collect();
    drop(first);

    let info = cli(&["info", "--json", &paths[0], &paths[1]]);
    assert!(info.status.success());
    let files: serde_json::Value = serde_json::from_slice(&info.stdout).expect("valid JSON");
    let files = files.as_array().expect("several files give an array");
    assert_eq!(files.len(), 2);
    for (file, path) in files.iter().zip(&second.traces) {
        for key in ["pid", "samples", "weight", "dropped", "generations", "threads", "truncated_bytes", "hz", "timer", "cpu_ns", "duration_ns"] {
            assert!(file.get(key).is_some(), "{key} missing in {file}");
        }
        let trace = read_trace(path);
        assert_eq!(file["samples"].as_u64(), Some(sample_count(&trace)));
        assert_eq!(file["weight"].as_u64(), Some(total_weight(&trace)));
        assert_eq!(file["pid"].as_u64(), Some(u64::from(trace.header.as_ref().unwrap().pid)));
        assert_eq!(file["threads"].as_u64(), Some(1));
        assert_eq!(file["truncated_bytes"].as_u64(), Some(0));
    }

    let report = cli(&["report", "--top", "10", &paths[0]]);
    let report = String::from_utf8_lossy(&report.stdout);
    let spin = report.lines().find(|l| l.contains(" spin ")).unwrap_or_else(|| panic!("spin in the report:\n{report}"));
    let self_percent: f64 = spin.split_whitespace().nth(1).unwrap().trim_end_matches('%').parse().unwrap();
    assert!(self_percent > 95.0, "spin holds the self time: {spin}");
    assert!(report.contains(" heavy ") && report.contains(" light ") && report.contains(" main "), "{report}");

    let folded = folded_stacks(&second.traces[0]);
    let main_heavy_spin = folded.iter().any(|(frames, _)| frames.windows(3).any(|w| w == ["main", "heavy", "spin"]));
    assert!(main_heavy_spin, "root-first stacks: {folded:?}");
    let out = dir.join("out.folded");
    assert!(cli(&["export", "--format", "folded", "-o", out.to_str().unwrap(), &paths[0]]).status.success());
    assert!(std::fs::read_to_string(&out).unwrap().lines().all(|l| l.rsplit_once(' ').is_some_and(|(_, n)| n.parse::<u64>().is_ok())));
}

#[test]
fn info_on_a_file_that_is_not_a_trace_fails_cleanly() {
    let _beside_others = beside_others();
    let dir = scratch_dir("not-a-trace");
    let bogus = dir.join("bogus.sigtrace");
    std::fs::write(&bogus, b"hello, world").unwrap();
    let output = cli(&["info", bogus.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("sigtrace:"));
}
