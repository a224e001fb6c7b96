//! `sigtrace export --format otlp` read by the official Python package `opentelemetry-proto` (the
//! schema of the vendored .proto files, in the throwaway environment of
//! scripts/otlp-oracle-venv) through tests/readers/otlp_summary.py: the request parses, its
//! tables are well formed, its totals are `sigtrace info`'s to the record and the nanosecond,
//! its resource attributes name the process, and the 75/25 split of tests/workloads/split.c
//! reads 75 ± 1% from it (a run long enough that one point is three standard deviations).
//! Python frames are typed `cpython`, the others `native`. A time window cuts it as it cuts `info`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use sigtrace_tests::*;

/// The oracle's python, its environment made once per test binary.
fn oracle_python() -> PathBuf {
    static MADE: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    made.get_or_insert_with(|| {
        let output = Command::new(workspace_root().join("scripts/otlp-oracle-venv")).output().expect("scripts/otlp-oracle-venv runs");
        assert!(output.status.success(), "the OTLP oracle's environment: {}", String::from_utf8_lossy(&output.stderr));
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
    .clone()
}

/// `sigtrace export --format otlp [EXTRA…] TRACE` read by the oracle.
fn export_and_read(trace: &Path, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let out = trace.with_extension("otlp");
    let mut command = Command::new(sigtrace_cli());
    command.args(["export", "--format", "otlp", "-o"]).arg(&out).args(extra).arg(trace);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("sigtrace runs");
    assert!(output.status.success() && output.stderr.is_empty(), "sigtrace export: {}", String::from_utf8_lossy(&output.stderr));
    let read = Command::new(oracle_python()).arg(workspace_root().join("tests/readers/otlp_summary.py")).arg(&out).output().expect("python runs");
    assert!(read.status.success(), "opentelemetry-proto could not read the export: {}", String::from_utf8_lossy(&read.stderr));
    let summary: Value = serde_json::from_slice(&read.stdout).expect("the reader prints JSON");
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");
    summary
}

#[test]
fn the_official_schema_reads_the_totals_attributes_and_split_of_a_traced_run() {
    let _guard = beside_others();
    let dir = scratch_dir("export_otlp");
    let program = compile_c("split", &["-O2", "-fno-omit-frame-pointer", "-g"], &dir);
    let run = run_traced(&program, &["1500"], &[], &dir);
    assert_eq!(run.output.status.code(), Some(3), "{}", run.stderr);
    let trace = &run.traces[0];
    let info = info_json(trace);

    let summary = export_and_read(trace, &[], &[("OTEL_SERVICE_NAME", "")]);
    let resources = summary["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 1, "one process: {summary}");
    let resource = &resources[0];
    assert_eq!(resource["records"], info["samples"], "every sample record is one timestamp");
    assert_eq!(resource["values"], info["sampled_cpu_ns"], "the values add up to info's CPU time");
    assert_eq!(resource["sample_type"], serde_json::json!(["cpu", "nanoseconds"]));
    assert_eq!(resource["period_type"], serde_json::json!(["cpu", "nanoseconds"]));
    assert_eq!(resource["period"], info["period_ns"]);
    assert_eq!(resource["scope"], "sigtrace");
    let attributes = &resource["attributes"];
    assert_eq!(attributes["service.name"]["stringValue"], "split", "the executable names the service without OTEL_SERVICE_NAME");
    assert_eq!(attributes["process.executable.name"]["stringValue"], "split");
    assert_eq!(attributes["process.pid"]["intValue"], info["pid"].to_string());
    let host = String::from_utf8(Command::new("uname").arg("-n").output().expect("uname runs").stdout).unwrap();
    assert_eq!(attributes["host.name"]["stringValue"], host.trim());
    assert_eq!(resource["threads"], serde_json::json!([info["pid"]]), "thread.id on every sample");
    let build_id = summary["build_ids"][program.display().to_string()].as_str().expect("the executable's mapping carries its build id");
    assert_eq!(build_id.len(), 40, "a GNU build id in hex: {build_id}");

    // heavy() does 3 of every 4 units of work.
    let weight = |name: &str| summary["by_function"][name].as_f64().unwrap_or(0.0);
    let (heavy, light) = (weight("heavy"), weight("light"));
    let share = heavy / (heavy + light);
    let n = info["samples"].as_f64().unwrap();
    eprintln!("otlp: heavy's share {:.2}% over {n} samples", share * 100.0);
    assert!((share - 0.75).abs() <= share_tolerance(0.75, n).max(0.01), "heavy's share {share:.4} of heavy+light in the OTLP export");
    assert_eq!(
        summary["frame_types"].as_object().map(|types| types.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["native".to_string()]),
        "{}",
        summary["frame_types"]
    );

    // OTEL_SERVICE_NAME names the service; a window cuts the export as it cuts info.
    let named = export_and_read(trace, &["--from", "0.2", "--to", "0.7"], &[("OTEL_SERVICE_NAME", "checkout")]);
    assert_eq!(named["resources"][0]["attributes"]["service.name"]["stringValue"], "checkout");
    let windowed = cli(&["info", "--json", "--from", "0.2", "--to", "0.7", &trace.display().to_string()]);
    let windowed: Value = serde_json::from_slice(&windowed.stdout).expect("info --json");
    assert_eq!(named["resources"][0]["records"], windowed["samples"]);
    assert_eq!(named["resources"][0]["values"], windowed["sampled_cpu_ns"]);
}

/// The 75/25 split of split.c reads 75 ± 1 points from the OTLP export. One point must be three
/// binomial standard deviations: n = 0.75 · 0.25 / (0.01 / 3)² ≈ 16 900 samples of heavy and
/// light, so the workload runs for that many sampling periods of CPU (at 4000 Hz, ~4.2 s; 10%
/// more for the frames outside heavy and light), read from its CPU clock.
#[test]
fn the_75_25_split_reads_75_plus_or_minus_1_from_the_otlp_export() {
    let _alone = alone();
    let dir = scratch_dir("export_otlp_split");
    let program = compile_c("split", &["-O2", "-fno-omit-frame-pointer", "-g"], &dir);
    let (hz, sigma): (f64, f64) = (4000.0, 0.01 / 3.0);
    let needed = 0.75 * 0.25 / (sigma * sigma);
    let cpu_ms = (needed / hz * 1000.0 * 1.1).ceil() as u64;
    let run = run_traced(&program, &[&cpu_ms.to_string()], &[("SIGTRACE_HZ", "4000")], &dir);
    assert_eq!(run.output.status.code(), Some(3), "{}", run.stderr);
    let summary = export_and_read(&run.traces[0], &[], &[]);
    let weight = |name: &str| summary["by_function"][name].as_f64().unwrap_or(0.0);
    let (heavy, light) = (weight("heavy"), weight("light"));
    let resource = &summary["resources"][0];
    let records = resource["records"].as_f64().unwrap() * (heavy + light) / resource["values"].as_f64().unwrap().max(1.0);
    let share = heavy / (heavy + light);
    eprintln!("otlp: heavy's share {:.2}% over {records:.0} samples of heavy and light ({cpu_ms} ms of CPU at {hz} Hz)", share * 100.0);
    assert!(records >= 0.9 * needed, "only {records:.0} samples of heavy and light, {needed:.0} needed for ±1 point at 3σ");
    assert!((share - 0.75).abs() <= 0.01, "heavy's share {:.2}% in the OTLP export, not 75 ± 1", share * 100.0);
}

/// Python frames of Debian's CPython are typed `cpython` in the export, the interpreter's own
/// frames `native`.
#[test]
fn python_frames_are_typed_cpython() {
    let _guard = beside_others();
    let dir = scratch_dir("export_otlp_python");
    let workload = workspace_root().join("tests/workloads/python/frames.py");
    let run = run_traced(Path::new("/usr/bin/python3.11"), &[&workload.display().to_string(), "main", "0.5"], &[], &dir);
    assert!(run.output.status.success(), "{}", run.stderr);
    let summary = export_and_read(&run.traces[0], &[], &[]);
    let names = |kind: &str| -> Vec<String> {
        summary["frame_types"][kind].as_array().map(|names| names.iter().filter_map(|n| n.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let (python, native) = (names("cpython"), names("native"));
    assert!(python.iter().any(|name| name == "spin_leaf"), "cpython frames: {python:?}");
    assert!(!native.iter().any(|name| name == "spin_leaf"), "spin_leaf typed native");
    assert!(native.iter().any(|name| name == "_PyEval_EvalFrameDefault"), "native frames: {native:?}");
}
