//! Makes fuzzer bytes look like a trace file so that the decoder gets past the framing: the
//! preamble is added when missing, and each chunk's length is clamped to the bytes left and its
//! checksum recomputed. Without it almost every input would stop at a checksum mismatch.

use writer::format::{CHUNK_OVERHEAD, FORMAT_VERSION, MAGIC, PREAMBLE_LEN};

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
        let checksum = writer::varint::crc32(&bytes[offset..body_end]);
        bytes[body_end..body_end + 4].copy_from_slice(&checksum.to_le_bytes());
        offset = body_end + 4;
    }
    bytes
}
