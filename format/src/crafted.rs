//! Hostile traces built byte by byte, for the regression tests and the fuzz seeds: inputs the
//! encoder would never write but a reader must survive.

use crate::encode::{encode_chunk, encode_header, encode_preamble};
use crate::types::{Header, CHUNK_OVERHEAD, FORMAT_VERSION, MAGIC, PREAMBLE_LEN, TAG_GENERATION};
use crate::varint::{crc32, put_svarint, put_uvarint};

/// A trace whose one generation is a chain of `nodes` stack-tree nodes, each the child of the
/// previous one with a stack ending at it (2 bytes a node), and, with `with_samples`, a sample
/// of every stack. Copied out, the stacks hold `nodes²/2` frames: 10 000 nodes (20 KB) are
/// 50 million frames, 400 MB.
pub fn deep_chain_trace(nodes: usize, with_samples: bool) -> Vec<u8> {
    stack_tree_trace(nodes, 1, with_samples)
}

/// Like [`deep_chain_trace`], with `stacks_per_node` (2 to 256) stacks ending at each node:
/// the most the format allows, 256 stacks for 4 bytes.
pub fn stack_tree_trace(nodes: usize, stacks_per_node: u64, with_samples: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(nodes * 6 + 32);
    let p = &mut payload;
    for value in [1, 0, 0, 0] {
        put_uvarint(p, value); // sequence, start time, end time delta, process CPU
    }
    put_uvarint(p, 1); // one thread: tid 1, no name, no CPU, no drops, not exited
    for value in [1, 0, 0, 0, 0] {
        put_uvarint(p, value);
    }
    put_uvarint(p, 0); // no modules
    put_uvarint(p, 0); // no empty stacks
    put_uvarint(p, nodes as u64);
    for _ in 0..nodes {
        // up 0 (a child of the previous node), one stack ends here (1) or a count follows (2)
        put_uvarint(p, stacks_per_node.min(2));
        put_svarint(p, 16); // the frame: its parent's plus 16
        if stacks_per_node >= 2 {
            put_uvarint(p, stacks_per_node);
        }
    }
    let samples = if with_samples { nodes * stacks_per_node as usize } else { 0 };
    put_uvarint(p, samples as u64);
    for stack in 0..samples {
        put_svarint(p, 1); // time delta
        put_uvarint(p, 0); // thread 0, weight 1
        put_uvarint(p, stack as u64);
    }
    put_uvarint(p, 0); // no counters
    put_uvarint(p, 0); // no walk codes
    put_uvarint(p, 0); // no events
    let mut out = Vec::with_capacity(payload.len() + 128);
    encode_preamble(&mut out);
    let header = Header { pid: 1, executable: "crafted".into(), clock: "CLOCK_MONOTONIC".into(), clock_hz: 1_000_000_000, hz: 1000, ..Header::default() };
    encode_header(&mut out, &header);
    encode_chunk(&mut out, TAG_GENERATION, &payload);
    out
}

/// Makes fuzzer bytes look like a trace file so that the decoder gets past the framing: the
/// preamble is added when missing, and each chunk's length is clamped to the bytes left and its
/// checksum recomputed. Without it almost every input would stop at a checksum mismatch.
pub fn with_valid_framing(data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(data.len() + PREAMBLE_LEN);
    if !data.starts_with(&MAGIC) {
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    }
    bytes.extend_from_slice(data);
    let mut offset = PREAMBLE_LEN;
    while offset + CHUNK_OVERHEAD <= bytes.len() {
        let rest = bytes.len() - offset - CHUNK_OVERHEAD;
        let len = (u32::from_le_bytes([bytes[offset + 1], bytes[offset + 2], bytes[offset + 3], bytes[offset + 4]]) as usize).min(rest);
        bytes[offset + 1..offset + 5].copy_from_slice(&(len as u32).to_le_bytes());
        let body_end = offset + 5 + len;
        let checksum = crc32(&bytes[offset..body_end]);
        bytes[body_end..body_end + 4].copy_from_slice(&checksum.to_le_bytes());
        offset = body_end + 4;
    }
    bytes
}
