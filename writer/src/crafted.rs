//! Hostile traces built byte by byte, for the regression tests and the fuzz seeds: inputs the
//! encoder would never write but a reader must survive.

use crate::format::{encode_header, encode_preamble, Header, TAG_GENERATION};
use crate::varint::{crc32, put_svarint, put_uvarint};

/// Frames `payload` as a chunk of kind `tag` with a valid checksum.
pub fn chunk(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    let start = out.len();
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let checksum = crc32(&out[start..]);
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// A trace whose one generation is a chain of `nodes` stack-tree nodes, each the child of the
/// previous one with a stack ending at it (2 bytes a node), and, with `with_samples`, a sample
/// of every stack. Copied out, the stacks hold `nodes²/2` frames: 10 000 nodes (20 KB) are
/// 50 million frames, 400 MB.
pub fn deep_chain_trace(nodes: usize, with_samples: bool) -> Vec<u8> {
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
        put_uvarint(p, 1); // up 0 (a child of the previous node), one stack ends here
        put_svarint(p, 16); // the frame: its parent's plus 16
    }
    let samples = if with_samples { nodes } else { 0 };
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
    chunk(&mut out, TAG_GENERATION, &payload);
    out
}
