//! The reader on real traces: every truncation keeps the complete generations and never panics.

use format::{CHUNK_OVERHEAD, PREAMBLE_LEN};
use sigtrace_tests::*;

/// A generation period of 20 ms, closed by a drain thread that runs every 5 ms: a generation
/// closes at the first drain round after 20 ms, i.e. every ~25 ms plus scheduling delays.
const SHORT_GENERATIONS: [(&str, &str); 2] = [("SIGTRACE_GENERATION_MS", "20"), ("SIGTRACE_DRAIN_MS", "5")];

/// CPU time of the split workload for a trace of several generations. Its one thread burns this
/// much CPU, so the run lasts at least as long in wall time: 10 generation periods, so at least 3
/// generations are written unless the drain thread is kept from running for ~80 ms at a time.
const SEVERAL_GENERATIONS_CPU_MS: &str = "200";

/// Traces the split workload for `SEVERAL_GENERATIONS_CPU_MS` with short generations; returns the
/// trace file's bytes.
fn trace_of_several_generations(name: &str) -> Vec<u8> {
    let dir = scratch_dir(name);
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &[SEVERAL_GENERATIONS_CPU_MS], &SHORT_GENERATIONS, &dir);
    assert_eq!(run.output.status.code(), Some(3), "{}", run.stderr);
    assert_eq!(run.traces.len(), 1, "{}", run.stderr);
    std::fs::read(&run.traces[0]).unwrap()
}

/// Offsets at which each chunk of a trace file ends.
fn chunk_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut offset = PREAMBLE_LEN;
    while offset + 5 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
        offset += len + CHUNK_OVERHEAD;
        ends.push(offset);
    }
    ends
}

#[test]
fn a_trace_cut_at_every_byte_keeps_its_complete_generations() {
    let _beside_others = beside_others();
    let bytes = trace_of_several_generations("truncate");
    let full = format::read_trace(&bytes);
    // Three generations: a cut can then fall after the first, in the middle one, and in the last.
    assert!(full.generations.len() >= 3, "several generations: {}", full.generations.len());
    assert_eq!(full.ignored_bytes, 0);
    let ends = chunk_ends(&bytes);
    assert_eq!(*ends.last().unwrap(), bytes.len());
    assert_eq!(ends.len(), full.generations.len() + 2, "a header chunk, one chunk per generation, an end chunk");
    assert_eq!(full.end.map(|e| e.reason), Some(format::EndReason::Exit));
    for cut in 0..bytes.len() {
        let trace = format::read_trace(&bytes[..cut]);
        let complete_chunks = ends.iter().filter(|&&end| end <= cut).count();
        let kept_generations = complete_chunks.saturating_sub(1).min(full.generations.len());
        assert_eq!(trace.generations.len(), kept_generations, "cut at {cut}");
        assert_eq!(trace.generations[..], full.generations[..kept_generations], "cut at {cut}");
        let kept_end = ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(PREAMBLE_LEN);
        let expected_ignored = if cut < PREAMBLE_LEN { cut } else { cut - kept_end };
        assert_eq!(trace.ignored_bytes as usize, expected_ignored, "cut at {cut}");
    }
}

#[test]
fn damaged_bytes_in_a_real_trace_never_panic() {
    let _beside_others = beside_others();
    let bytes = trace_of_several_generations("damage");
    let full = format::read_trace(&bytes);
    assert!(full.generations.len() >= 3, "several generations: {}", full.generations.len());
    for index in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[index] ^= 0x5a;
        let trace = format::read_trace(&damaged);
        assert!(trace.generations.len() <= full.generations.len());
        assert!(trace.ignored_bytes > 0 || trace.generations.len() == full.generations.len());
    }
}
