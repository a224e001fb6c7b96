//! The encoder: the preamble, and the header, generation and end chunks, each framed with its
//! length and checksum (docs/FORMAT.md, "Chunks").

use crate::stack_tree::encode_stack_tree;
use crate::thread_state::SampleState;
use crate::types::{End, Generation, Header, FORMAT_VERSION, MAGIC, TAG_END, TAG_GENERATION, TAG_HEADER, TAG_PIECE};
use crate::varint::{crc32, put_bytes, put_str, put_svarint, put_uvarint};

/// Writes the preamble that opens every trace file.
pub fn encode_preamble(out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
}

/// Frames `payload` as one chunk of kind `tag` with its checksum.
pub fn encode_chunk(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let checksum = crc32(&out[start..]);
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// Appends the header chunk.
pub fn encode_header(out: &mut Vec<u8>, header: &Header) {
    let mut payload = Vec::with_capacity(256);
    put_uvarint(&mut payload, header.pid.into());
    put_uvarint(&mut payload, header.parent_pid.into());
    put_str(&mut payload, &header.executable);
    put_uvarint(&mut payload, header.args.len() as u64);
    for arg in &header.args {
        put_str(&mut payload, arg);
    }
    put_str(&mut payload, &header.clock);
    put_uvarint(&mut payload, header.clock_hz);
    put_uvarint(&mut payload, header.start_clock_ns);
    put_uvarint(&mut payload, header.start_unix_ns);
    put_uvarint(&mut payload, header.hz.into());
    put_str(&mut payload, &header.timer);
    put_str(&mut payload, &header.mode);
    put_uvarint(&mut payload, header.max_depth.into());
    put_uvarint(&mut payload, header.generation_ms.into());
    encode_chunk(out, TAG_HEADER, &payload);
}

/// Encodes a generation. Samples should be sorted by time (their timestamps are stored as
/// deltas; an unsorted list still round-trips, only less compactly). Stacks are stored in the
/// prefix tree's order (see `encode_stack_tree`), which a reader sees as the stack table:
/// samples and walk codes are renumbered with them, so a generation whose stacks are not in
/// that order decodes to the same samples under other stack ids.
///
/// ```text
/// sample := time_delta (zigzag, header clock ticks) (thread << 1 | weight != 1) stack [weight]
/// ```
pub fn encode_generation(out: &mut Vec<u8>, generation: &Generation) {
    encode_generation_as(out, TAG_GENERATION, generation);
}

/// Appends a piece chunk: the samples, stacks and events one drain period took from the rings
/// of the open generation `piece.sequence`, encoded as a generation. Its `modules` may be empty:
/// the modules are then those of the chunk before it (docs/FORMAT.md, "Piece").
pub fn encode_piece(out: &mut Vec<u8>, piece: &Generation) {
    encode_generation_as(out, TAG_PIECE, piece);
}

fn encode_generation_as(out: &mut Vec<u8>, tag: u8, generation: &Generation) {
    let mut payload = Vec::with_capacity(64 + generation.samples.len() * 4);
    let p = &mut payload;
    put_uvarint(p, generation.sequence);
    put_uvarint(p, generation.start_time);
    put_svarint(p, generation.end_time as i64 - generation.start_time as i64);
    put_uvarint(p, generation.process_cpu_ns);

    put_uvarint(p, generation.threads.len() as u64);
    for thread in &generation.threads {
        put_uvarint(p, thread.tid.into());
        put_str(p, &thread.name);
        put_uvarint(p, thread.cpu_ns);
        put_uvarint(p, thread.dropped);
        put_uvarint(p, thread.exited.into());
    }

    put_uvarint(p, generation.modules.len() as u64);
    for module in &generation.modules {
        put_str(p, &module.path);
        put_uvarint(p, module.base);
        put_uvarint(p, module.start);
        put_uvarint(p, module.end.saturating_sub(module.start));
        put_bytes(p, &module.build_id);
    }

    // The writer's own stacks (at most `max_depth` frames each): copying them out is cheap.
    let stacks: Vec<Vec<u64>> = generation.stacks.iter().map(Iterator::collect).collect();
    let (stack_ids, stack_walks) = encode_stack_tree(p, &stacks, &generation.stack_walks);

    put_uvarint(p, generation.samples.len() as u64);
    let mut previous_time = generation.start_time;
    for sample in &generation.samples {
        put_svarint(p, sample.time.wrapping_sub(previous_time) as i64);
        previous_time = sample.time;
        put_uvarint(p, u64::from(sample.thread) << 1 | u64::from(sample.weight != 1));
        // A sample of a stack that is not in the table stays invalid (the reader rejects it).
        put_uvarint(p, stack_ids.get(sample.stack as usize).map_or(u64::MAX, |&id| id.into()));
        if sample.weight != 1 {
            put_uvarint(p, sample.weight.into());
        }
    }

    put_uvarint(p, generation.counters.len() as u64);
    for (name, value) in &generation.counters {
        put_str(p, name);
        put_uvarint(p, *value);
    }

    put_bytes(p, &stack_walks);

    put_uvarint(p, generation.events.len() as u64);
    let mut previous_time = generation.start_time;
    for event in &generation.events {
        put_svarint(p, event.time.wrapping_sub(previous_time) as i64);
        previous_time = event.time;
        put_uvarint(p, event.thread.into());
        put_uvarint(p, event.kind.code().into());
        put_str(p, &event.category);
        put_str(p, &event.text);
    }

    // Sample states only when some sample is not a running one: a `cpu` trace has none.
    if generation.samples.iter().any(|sample| sample.state != SampleState::RUNNING) {
        put_uvarint(p, generation.samples.len() as u64);
        for sample in &generation.samples {
            put_uvarint(p, sample.state.code());
        }
    }
    encode_chunk(out, tag, &payload);
}

/// Appends an end record chunk.
pub fn encode_end(out: &mut Vec<u8>, end: &End) {
    let mut payload = Vec::with_capacity(16);
    put_uvarint(&mut payload, end.reason.code());
    put_uvarint(&mut payload, end.signal.into());
    put_uvarint(&mut payload, end.time);
    if let Some(code) = end.seen_by_parent {
        put_uvarint(&mut payload, 1); // written by the parent
        put_uvarint(&mut payload, code.into());
    }
    encode_chunk(out, TAG_END, &payload);
}
