//! Round trips of whole traces through the encoder and the reader, and what the reader keeps of
//! a trace cut or damaged at every byte.

use crate::*;

fn sample_trace() -> (Header, Vec<Generation>, Vec<u8>) {
    let header = Header {
        pid: 42,
        parent_pid: 1,
        executable: "/usr/bin/app".into(),
        args: vec!["app".into(), "--fast".into()],
        clock: "CLOCK_MONOTONIC".into(),
        clock_hz: 1_000_000_000,
        start_clock_ns: 5_000,
        start_unix_ns: 1_700_000_000_000_000_000,
        hz: 999,
        timer: "perf".into(),
        mode: "cpu".into(),
        max_depth: 256,
        generation_ms: 1000,
    };
    let generations: Vec<Generation> = (1..=3)
        .map(|sequence| Generation {
            sequence,
            start_time: sequence * 1000,
            end_time: sequence * 1000 + 999,
            process_cpu_ns: sequence * 7,
            threads: vec![Thread { tid: 42, name: "main".into(), cpu_ns: 9, dropped: 1, exited: false }],
            modules: vec![Module { path: "/usr/bin/app".into(), base: 0x5555_0000, start: 0x5555_0000, end: 0x5556_0000, build_id: vec![1, 2, 3] }],
            // In the tree's order (empty first, then root-first address order), so they
            // decode under the same ids.
            stacks: vec![vec![], vec![0x10], vec![0x5555_1234, 0x5555_1000, 0x7fff_0000_0000], vec![0x5555_1300, 0x5555_1000, 0x7fff_0000_0000]].into(),
            samples: vec![
                Sample { time: sequence * 1000 + 1, thread: 0, stack: 2, weight: 1, state: Default::default() },
                Sample { time: sequence * 1000 + 5, thread: 0, stack: 1, weight: 3, state: Default::default() },
            ],
            counters: vec![("unwind.end.root".into(), 2)],
            stack_walks: vec![
                walk::METHOD_PC_ONLY << 4 | walk::END_BAD_FRAME,
                walk::METHOD_FP << 4 | walk::END_BAD_FRAME,
                walk::METHOD_DWARF << 4 | walk::END_ROOT,
                walk::METHOD_DWARF << 4 | walk::END_ROOT,
            ],
            events: vec![
                Event { time: sequence * 1000 + 2, thread: 0, kind: EventKind::Log, category: "db".into(), text: "query took 3 ms".into() },
                Event { time: sequence * 1000 + 3, thread: 0, kind: EventKind::RegionBegin, category: String::new(), text: "parse".into() },
            ],
            python_code: vec![],
        })
        .collect();
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    for generation in &generations {
        encode_generation(&mut bytes, generation);
    }
    encode_end(&mut bytes, &End { reason: EndReason::FatalSignal, signal: 11, time: 9_999, seen_by_parent: None });
    (header, generations, bytes)
}

/// Resolves each sample to (time, tid, frames, walk code, weight): what a reader sees.
fn resolved(generation: &Generation) -> Vec<(u64, u32, Vec<u64>, u8, u32)> {
    let walk = |stack: u32| generation.stack_walks.get(stack as usize).copied().unwrap_or(0);
    generation
        .samples
        .iter()
        .map(|s| (s.time, generation.threads[s.thread as usize].tid, generation.stacks.get(s.stack as usize).unwrap().collect(), walk(s.stack), s.weight))
        .collect()
}

#[test]
fn stacks_in_any_order_and_frames_walked_twice_keep_every_sample() {
    let threads = vec![Thread { tid: 7, ..Default::default() }, Thread { tid: 8, ..Default::default() }];
    let main = 0x7000_0000u64;
    // Unsorted; stacks 1 and 3 have the same frames walked differently; 4 is a prefix of 0;
    // 5 is empty; 2 shares nothing with the others.
    let stacks =
        vec![vec![0x6000_0040, 0x6000_0100, main], vec![0x6000_0010, main], vec![0x10, 0x20], vec![0x6000_0010, main], vec![0x6000_0100, main], vec![]];
    let stacks = StackTable::from(stacks);
    let stack_walks = vec![0x10, 0x10, 0x00, 0x23, 0x10, 0x52];
    let samples: Vec<Sample> = (0..6u32)
        .flat_map(|stack| {
            [1, 1, 70_000].map(|weight| Sample { time: u64::from(stack) * 10 + u64::from(weight), thread: stack % 2, stack, weight, state: Default::default() })
        })
        .collect();
    let generation = Generation { threads, stacks, stack_walks, samples, ..Default::default() };
    let mut bytes = Vec::new();
    encode_generation(&mut bytes, &generation);
    let decoded = decode_generation(&bytes[5..bytes.len() - 4]).unwrap();
    assert_eq!(decoded.stacks.len(), 6);
    assert_eq!(resolved(&decoded), resolved(&generation));
}

#[test]
fn samples_of_three_bytes_decode() {
    // Many threads at a high rate: equal timestamps, one thread and one stack each take a byte.
    let samples = vec![Sample { time: 0, thread: 0, stack: 0, weight: 1, state: Default::default() }; 1000];
    let generation = Generation { threads: vec![Thread::default()], stacks: vec![vec![0x1000]].into(), samples, ..Default::default() };
    let mut bytes = Vec::new();
    encode_generation(&mut bytes, &generation);
    assert_eq!(decode_generation(&bytes[5..bytes.len() - 4]).unwrap(), generation);
}

#[test]
fn round_trips() {
    let (header, generations, bytes) = sample_trace();
    let trace = read_trace(&bytes);
    assert_eq!(trace.header.as_ref(), Some(&header));
    assert_eq!(trace.generations, generations);
    assert_eq!(trace.ignored_bytes, 0);
    assert!(trace.stopped_because.is_none());
    assert_eq!(trace.end, Some(End { reason: EndReason::FatalSignal, signal: 11, time: 9_999, seen_by_parent: None }));
    assert_eq!(trace.end.unwrap().describe(), "fatal signal 11 (SIGSEGV)");
}

#[test]
fn a_cut_trace_says_it_ends_in_a_partial_generation() {
    let (_, _, bytes) = sample_trace();
    let trace = read_trace(&bytes[..bytes.len() - 30]);
    assert!(trace.end.is_none());
    let Some(ReadStop::Truncated { ignored }) = trace.stopped_because else { panic!("{:?}", trace.stopped_because) };
    assert_eq!(ignored, trace.ignored_bytes);
    assert_eq!(trace.stopped_because.unwrap().to_string(), format!("trace ends in a partial generation: {ignored} bytes ignored"));
}

#[test]
fn the_streaming_reader_reads_from_a_slow_source_as_from_memory() {
    /// Hands out at most 3 bytes per read, as a pipe might.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let n = buffer.len().min(3).min(self.0.len());
            buffer[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let (header, generations, bytes) = sample_trace();
    for cut in [bytes.len(), bytes.len() - 30, 12] {
        let mut reader = TraceReader::new(Trickle(&bytes[..cut]));
        let mut read_generations = Vec::new();
        let mut read_header = None;
        while let Some(chunk) = reader.next_chunk() {
            match chunk {
                Chunk::Header(h) => read_header = Some(h),
                Chunk::Generation(g) => read_generations.push(g),
                Chunk::End(_) | Chunk::Piece(_) | Chunk::JitSymbols(_) | Chunk::Sources(_) | Chunk::Spill(_) => {}
            }
        }
        let in_memory = read_trace(&bytes[..cut]);
        assert_eq!(read_header, in_memory.header, "cut at {cut}");
        assert_eq!(read_generations, in_memory.generations, "cut at {cut}");
        assert_eq!(reader.ignored_bytes(), in_memory.ignored_bytes, "cut at {cut}");
        assert_eq!(reader.stopped_because(), in_memory.stopped_because.as_ref(), "cut at {cut}");
        if cut == bytes.len() {
            assert_eq!(read_header.as_ref(), Some(&header));
            assert_eq!(read_generations, generations);
        }
    }
}

#[test]
fn every_truncation_keeps_the_complete_generations() {
    let (_, generations, bytes) = sample_trace();
    let mut ends = vec![PREAMBLE_LEN];
    let mut offset = PREAMBLE_LEN;
    while offset < bytes.len() {
        let len = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().unwrap()) as usize;
        offset += CHUNK_OVERHEAD + len;
        ends.push(offset);
    }
    for cut in 0..=bytes.len() {
        let trace = read_trace(&bytes[..cut]);
        let complete_chunks = ends.iter().filter(|&&end| end <= cut).count().saturating_sub(1);
        let complete_generations = complete_chunks.saturating_sub(1).min(generations.len());
        assert_eq!(trace.generations.len(), complete_generations, "cut at {cut}");
        assert_eq!(&trace.generations[..], &generations[..complete_generations]);
        let kept = ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(0);
        if cut >= PREAMBLE_LEN {
            assert_eq!(trace.ignored_bytes, (cut - kept) as u64, "cut at {cut}");
        }
    }
}

#[test]
fn flipped_bytes_never_panic_and_keep_earlier_generations() {
    let (_, _, bytes) = sample_trace();
    for index in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[index] ^= flip;
            let trace = read_trace(&damaged);
            assert!(trace.generations.len() <= 3);
        }
    }
}

/// Generation 1 closed; generation 2 only in pieces, the second without modules; a piece of
/// generation 1 superseded by it.
fn trace_with_pieces() -> (Vec<Generation>, Vec<u8>) {
    let (header, generations, _) = sample_trace();
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    let mut superseded = generations[0].clone();
    superseded.samples.truncate(1);
    encode_piece(&mut bytes, &superseded);
    encode_generation(&mut bytes, &generations[0]);
    let mut first = generations[1].clone();
    first.samples.truncate(1);
    let mut second = generations[1].clone();
    second.samples.remove(0);
    second.modules.clear();
    second.counters = vec![("unwind.end.root".into(), 5), ("unwind.end.bad_frame".into(), 1)];
    encode_piece(&mut bytes, &first);
    encode_piece(&mut bytes, &second);
    (generations, bytes)
}

#[test]
fn pieces_left_at_the_end_merge_into_their_generation() {
    let (generations, bytes) = trace_with_pieces();
    let trace = read_trace(&bytes);
    assert_eq!(trace.pieces_recovered, 1);
    assert!(trace.ended_without_exit_path);
    assert!(trace.end.is_none() && trace.stopped_because.is_none());
    assert_eq!(trace.generations.len(), 2, "the closed generation, then the merged pieces");
    assert_eq!(trace.generations[0], generations[0]);
    let merged = &trace.generations[1];
    assert_eq!(merged.sequence, 2);
    assert_eq!(resolved(merged), resolved(&generations[1]), "every sample of both pieces, with its stack and walk");
    assert_eq!(merged.modules, generations[1].modules);
    assert_eq!(merged.counters, vec![("unwind.end.root".to_string(), 7), ("unwind.end.bad_frame".to_string(), 1)]);
    assert_eq!(merged.events.len(), 4);
}

#[test]
fn a_generation_supersedes_its_pieces_and_an_end_record_ends_cleanly() {
    let (header, generations, full) = sample_trace();
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    for generation in &generations {
        encode_piece(&mut bytes, generation);
        encode_generation(&mut bytes, generation);
    }
    bytes.extend_from_slice(&full[full.len() - 16..]); // the same end record
    let trace = read_trace(&bytes);
    assert_eq!(trace.generations, generations);
    assert_eq!(trace.pieces_recovered, 0);
    assert!(!trace.ended_without_exit_path);
}

#[test]
fn a_piece_without_modules_after_none_keeps_none_and_never_panics() {
    let (header, generations, _) = sample_trace();
    let mut bytes = Vec::new();
    encode_preamble(&mut bytes);
    encode_header(&mut bytes, &header);
    let mut piece = generations[0].clone();
    piece.modules.clear();
    for sequence in 1..50 {
        piece.sequence = sequence;
        encode_piece(&mut bytes, &piece);
    }
    let trace = read_trace(&bytes);
    assert_eq!(trace.pieces_recovered, 49, "a piece of another generation ends the held ones");
    assert!(trace.generations.iter().all(|g| g.modules.is_empty() && g.samples.len() == 2));
}

#[test]
fn an_end_seen_by_the_parent_round_trips_and_old_ends_read_as_before() {
    let end = End { reason: EndReason::UnderscoreExit, signal: 0, time: 77, seen_by_parent: Some(5) };
    let mut bytes = Vec::new();
    encode_end(&mut bytes, &end);
    let payload = &bytes[5..bytes.len() - 4];
    assert_eq!(crate::decode_end(payload), Ok(end));
    assert!(end.describe().starts_with("exit status 5 without libc's exit"));
    // The first three fields are those of every end record: a reader of them reads the same.
    let old = End { seen_by_parent: None, ..end };
    assert_eq!(crate::decode_end(&payload[..3]), Ok(old));
    assert_eq!(old.describe(), "exit via _exit");
}
