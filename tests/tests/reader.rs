//! The reader on real traces: every truncation keeps the complete generations and never panics.

use sigtrace_tests::*;
use writer::format::{CHUNK_OVERHEAD, PREAMBLE_LEN};

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
    let dir = scratch_dir("truncate");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["150"], &[("SIGTRACE_GENERATION_MS", "40")], &dir);
    let bytes = std::fs::read(&run.traces[0]).unwrap();
    let full = writer::read_trace(&bytes);
    assert!(full.generations.len() >= 3, "several generations: {}", full.generations.len());
    assert_eq!(full.ignored_bytes, 0);
    let ends = chunk_ends(&bytes);
    assert_eq!(*ends.last().unwrap(), bytes.len());
    assert_eq!(ends.len(), full.generations.len() + 2, "a header chunk, one chunk per generation, an end chunk");
    assert_eq!(full.end.map(|e| e.reason), Some(writer::EndReason::Exit));
    for cut in 0..bytes.len() {
        let trace = writer::read_trace(&bytes[..cut]);
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
    let dir = scratch_dir("damage");
    let program = compile_c("split", &["-O2", "-g", "-fno-omit-frame-pointer"], &dir);
    let run = run_traced(&program, &["100"], &[("SIGTRACE_GENERATION_MS", "40")], &dir);
    let bytes = std::fs::read(&run.traces[0]).unwrap();
    let full = writer::read_trace(&bytes);
    for index in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[index] ^= 0x5a;
        let trace = writer::read_trace(&damaged);
        assert!(trace.generations.len() <= full.generations.len());
        assert!(trace.ignored_bytes > 0 || trace.generations.len() == full.generations.len());
    }
}
