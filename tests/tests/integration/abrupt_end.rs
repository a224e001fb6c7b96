//! Processes that end without any exit path sigtrace can run — a raw `exit_group` system call
//! (Go's `os.Exit`), `SIGKILL` — keep every sample drained before the end: each drain period's
//! samples reach the file as a piece of the open generation (docs/FORMAT.md, "Piece"), or in a
//! single-threaded program as the handler's spills ("Spill"), so at most one drain period
//! (≤ 25 ms while samples arrive) or 20 ms of samples is lost, and `info` says the image ended without an exit path.

use sigtrace_tests::*;

const HZ: u64 = 999;

/// The share of the samples the thread's CPU time stands for that the trace holds.
fn kept_share(run: &Run) -> f64 {
    let trace = run.trace();
    let expected = expected_samples(run.reported_cpu_ns(), HZ);
    total_weight(&trace) as f64 / expected
}

fn assert_ended_without_exit_path(run: &Run) {
    let info = info_json(&run.traces[0]);
    let end = info["end"].as_str().expect("end");
    assert!(end.starts_with("without exit path"), "info says the image ended: {end}");
    assert!(run.trace().stopped_because.is_none(), "every chunk is complete");
}

/// 2 s of CPU, then the raw exit_group system call: ≥ 0.95 of ~2000 samples are kept although
/// the default generation (1 s) never closed after the last one. The program goes on until its
/// file holds samples of the open generation (a piece or a spill), so that the end does not
/// fall right after a generation closed (as a machine busy elsewhere can make it).
#[test]
fn a_raw_exit_group_keeps_the_samples_drained_before_it() {
    let _alone = alone();
    let dir = scratch_dir("abrupt-exit-group");
    let program = compile_c("abrupt_end", &["-O2", "-g"], &dir);
    let plain = run_plain(&program, &["exit_group", "50"], &dir);
    let run = run_traced(&program, &["exit_group_after_piece", "2000"], &[], &dir);
    assert_eq!(run.output.status.code(), Some(7));
    assert_eq!(plain.status.code(), Some(7));
    assert_eq!(run.stdout, String::from_utf8_lossy(&plain.stdout));
    assert!(run.sigtrace_lines().is_empty(), "{:?}", run.sigtrace_lines());
    let kept = kept_share(&run);
    assert!(kept >= 0.95, "{kept:.3} of the samples kept");
    // From the drain thread's pieces, or in this single-threaded program the handler's spills.
    assert!(run.trace().pieces_recovered > 0 || spill_chunks(&run.traces[0]) > 0, "the last samples came from pieces or spills");
    assert_ended_without_exit_path(&run);
}

/// 2 s of CPU, then SIGKILL: ≥ 0.95 of the samples are kept.
#[test]
fn a_process_killed_by_sigkill_after_2_s_of_cpu_keeps_its_samples() {
    use std::os::unix::process::ExitStatusExt;
    let _alone = alone();
    let dir = scratch_dir("abrupt-sigkill");
    let program = compile_c("abrupt_end", &["-O2", "-g"], &dir);
    let run = run_traced(&program, &["sigkill", "2000"], &[], &dir);
    assert_eq!(run.output.status.signal(), Some(libc::SIGKILL));
    assert_eq!(run.stdout, "spun\n");
    let kept = kept_share(&run);
    assert!(kept >= 0.95, "{kept:.3} of the samples kept");
    assert_ended_without_exit_path(&run);
}

/// A named thread that lives less than a drain period, then SIGKILL before any generation
/// closed: the piece that holds its samples names it with the name it left at its exit (`/proc`
/// no longer knows the thread when the drain writes the piece).
#[test]
fn a_thread_shorter_than_a_drain_period_is_named_in_the_pieces_before_a_sigkill() {
    use std::os::unix::process::ExitStatusExt;
    let dir = scratch_dir("abrupt-brief-named");
    let program = compile_c("brief_named_kill", &["-O2", "-g", "-pthread"], &dir);
    // 5 ms of CPU at 4000 Hz: ~20 samples; pieces every 100 ms, the thread gone before the first
    // one that holds its samples.
    let run = run_traced(&program, &["5", "500"], &[("SIGTRACE_HZ", "4000"), ("SIGTRACE_DRAIN_MS", "100")], &dir);
    assert_eq!(run.output.status.signal(), Some(libc::SIGKILL));
    let tid: u32 =
        run.stderr.split("brief tid=").nth(1).and_then(|rest| rest.split_whitespace().next()).and_then(|tid| tid.parse().ok()).expect("the thread's id");
    let trace = run.trace();
    assert!(trace.pieces_recovered > 0, "the samples came from pieces");
    let weight: u64 =
        trace.generations.iter().flat_map(|g| g.samples.iter().filter(move |s| g.threads[s.thread as usize].tid == tid)).map(|s| u64::from(s.weight)).sum();
    assert!(weight > 0, "the thread was sampled");
    let names: Vec<&str> = trace.generations.iter().flat_map(|g| &g.threads).filter(|t| t.tid == tid).map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"brief"), "the thread is named: {names:?}");
}

/// Runs `program ARGS` under `sigtrace record` in `dir`; returns its exit status and the one
/// trace's `info` end line.
fn recorded(program: &std::path::Path, args: &[&str], dir: &std::path::Path) -> (std::process::ExitStatus, String, std::path::PathBuf) {
    let pattern = dir.join("rec.%p.sigtrace");
    let output = std::process::Command::new(sigtrace_cli()).args(["record", "-o", pattern.to_str().unwrap(), "--"]).arg(program).args(args).output().unwrap();
    let traces: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rec.")))
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}: {}", String::from_utf8_lossy(&output.stderr));
    let end = info_json(&traces[0])["end"].as_str().expect("end").to_string();
    (output.status, end, traces[0].clone())
}

/// Under `sigtrace record`, the parent sees the wait status the dying process could not
/// record: a raw exit_group's code and SIGKILL are written as the trace's end, after the
/// pieces or spills, which are all kept; the command's status is passed on.
#[test]
fn sigtrace_record_writes_the_end_a_process_without_exit_path_could_not() {
    let _beside_others = beside_others();
    let dir = scratch_dir("abrupt-record");
    let program = compile_c("abrupt_end", &["-O2", "-g"], &dir);
    let (status, end, trace) = recorded(&program, &["exit_group", "300"], &dir);
    assert_eq!(status.code(), Some(7));
    assert!(end.starts_with("exit status 7 without libc's exit"), "{end}");
    let read = read_trace(&trace);
    assert!(read.pieces_recovered > 0 || spill_chunks(&trace) > 0, "the last samples came from pieces or spills");
    assert!(!read.ended_without_exit_path && read.stopped_because.is_none());
    std::fs::remove_file(&trace).unwrap();
    let (status, end, _) = recorded(&program, &["sigkill", "300"], &dir);
    assert_eq!(status.code(), Some(128 + libc::SIGKILL));
    assert!(end.starts_with("fatal signal 9 (SIGKILL), no exit path ran"), "{end}");
}
