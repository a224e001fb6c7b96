//! The reader on real traces: every truncation keeps the complete generations and never panics.

use format::{CHUNK_OVERHEAD, PREAMBLE_LEN};
use sigtrace_tests::*;

/// A generation period of 20 ms, closed by a drain thread that runs every 5 ms: a generation
/// closes at the first drain round after 20 ms, i.e. every ~25 ms plus scheduling delays. (The
/// workload is single-threaded: without `always` its samples would come as spills.)
const SHORT_GENERATIONS: [(&str, &str); 3] = [("SIGTRACE_GENERATION_MS", "20"), ("SIGTRACE_DRAIN_MS", "5"), ("SIGTRACE_DRAIN_THREAD", "always")];

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

/// Each chunk of a trace file: its tag and the offset at which it ends.
fn chunk_ends(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut ends = Vec::new();
    let mut offset = PREAMBLE_LEN;
    while offset + 5 <= bytes.len() {
        let tag = bytes[offset];
        let len = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
        offset += len + CHUNK_OVERHEAD;
        ends.push((tag, offset));
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
    assert_eq!(ends.last().unwrap().1, bytes.len());
    let count = |tag: &[u8], ends: &[(u8, usize)]| ends.iter().filter(|(t, _)| tag.contains(t)).count();
    assert_eq!(count(b"G", &ends), full.generations.len(), "one chunk per generation");
    assert_eq!(count(b"HGEPS", &ends), ends.len(), "a header, generations, pieces of them, sources, an end");
    assert_eq!(full.end.map(|e| e.reason), Some(format::EndReason::Exit));
    assert_eq!(full.pieces_recovered, 0, "the closing generations superseded every piece");
    for cut in 0..bytes.len() {
        let trace = format::read_trace(&bytes[..cut]);
        let complete: Vec<(u8, usize)> = ends.iter().copied().filter(|&(_, end)| end <= cut).collect();
        let kept_generations = count(b"G", &complete);
        // Pieces written after the last complete generation are merged into the one cut off.
        let pieces_after = complete.iter().rev().take_while(|(tag, _)| *tag != b'G').filter(|(tag, _)| *tag == b'P').count();
        let recovered = usize::from(pieces_after > 0);
        assert_eq!(trace.generations.len(), kept_generations + recovered, "cut at {cut}");
        assert_eq!(trace.pieces_recovered as usize, recovered, "cut at {cut}");
        assert_eq!(trace.generations[..kept_generations], full.generations[..kept_generations], "cut at {cut}");
        if let Some(superseding) = full.generations.get(kept_generations) {
            let weight = |generations: &[format::Generation]| generations.iter().flat_map(|g| &g.samples).map(|s| u64::from(s.weight)).sum::<u64>();
            let times =
                |generations: &[format::Generation]| generations.iter().flat_map(|g| &g.samples).map(|s| s.time).collect::<std::collections::BTreeSet<u64>>();
            let pieces = &trace.generations[kept_generations..];
            assert!(weight(pieces) <= weight(std::slice::from_ref(superseding)), "cut at {cut}: pieces hold part of the next generation");
            assert!(times(pieces).is_subset(&times(std::slice::from_ref(superseding))), "cut at {cut}: the pieces' samples are the generation's");
        }
        let kept_end = complete.last().map_or(PREAMBLE_LEN, |&(_, end)| end);
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
        // Pieces of the generation whose chunk is damaged stand in for it.
        let closed = trace.generations.len() - trace.pieces_recovered as usize;
        assert!(closed <= full.generations.len());
        assert!(trace.ignored_bytes > 0 || closed == full.generations.len());
    }
}
