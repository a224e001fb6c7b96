//! jitdump files (`jit-PID.dump`, Linux `tools/perf/Documentation/jitdump-specification.txt`),
//! read incrementally as the runtime appends to them: a 40-byte header, then records of
//! `id (u32) total_size (u32) timestamp (u64)` and a body. `CODE_LOAD` and `CODE_MOVE` give
//! names of generated code; `CODE_DEBUG_INFO`, `CODE_UNWINDING_INFO` and unknown records are
//! skipped whole; `CODE_CLOSE` ends the file.
//!
//! The file belongs to another program: only a record's first [`RECORD_PREFIX_BYTES`] are ever
//! read (a code load's code bytes never are), names longer than [`PERF_MAP_LINE_BYTES`] are
//! skipped, names kept for `CODE_MOVE` are capped at [`MOVE_NAME_BYTES`], and any byte sequence
//! gives symbols, a wait for more bytes, or one [`JitdumpError`] — never a panic.

use crate::jit_symbols::PERF_MAP_LINE_BYTES;
use std::collections::HashMap;

/// The header's magic as the writing machine stores it ("JiTD" as a u32).
pub const JITDUMP_MAGIC: u32 = 0x4A69_5444;
/// The header's size in version 1.
pub const JITDUMP_HEADER_BYTES: usize = 40;
/// The largest header accepted (the header's `total_size` may grow in later versions).
const HEADER_MAX_BYTES: u32 = 4096;
/// A record's prefix (id, size, timestamp).
const RECORD_HEADER_BYTES: usize = 16;
/// The fixed part of a `CODE_LOAD` body: pid, tid, vma, code_addr, code_size, code_index.
const CODE_LOAD_FIXED: usize = RECORD_HEADER_BYTES + 4 + 4 + 8 * 4;
/// The most bytes read of one record: a code load's fixed part and its longest name.
pub const RECORD_PREFIX_BYTES: usize = CODE_LOAD_FIXED + PERF_MAP_LINE_BYTES + 1;
/// The most name bytes kept (by code index) to name the code of a later `CODE_MOVE`.
pub const MOVE_NAME_BYTES: usize = 8 << 20;
/// Header flag: timestamps come from the CPU's counter, not `CLOCK_MONOTONIC`.
const FLAG_ARCH_TIMESTAMP: u64 = 1;

const CODE_LOAD: u32 = 0;
const CODE_MOVE: u32 = 1;
const CODE_CLOSE: u32 = 3;

/// Where a jitdump file's bytes come from (a file read with `pread`, or a slice).
pub trait ReadAt {
    /// The bytes available now.
    fn available(&self) -> u64;
    /// Fills `buffer` from `offset`; false when the bytes could not be read.
    fn read_exact_at(&mut self, offset: u64, buffer: &mut [u8]) -> bool;
}

impl ReadAt for &[u8] {
    fn available(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_exact_at(&mut self, offset: u64, buffer: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else { return false };
        match start.checked_add(buffer.len()).and_then(|end| self.get(start..end)) {
            Some(bytes) => {
                buffer.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// Why a jitdump file is not read (further).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitdumpError {
    /// The first four bytes are not the magic.
    NotJitdump,
    /// The magic in the other byte order: written by another machine.
    ForeignByteOrder,
    /// A version this reader does not know.
    Version(u32),
    /// The header's size is below 40 bytes or above 4096.
    HeaderSize(u32),
    /// A record at this offset claims a size below its own prefix.
    RecordSize(u64),
    /// The bytes could not be read.
    Unreadable,
}

impl std::fmt::Display for JitdumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitdumpError::NotJitdump => write!(f, "not a jitdump file (bad magic)"),
            JitdumpError::ForeignByteOrder => write!(f, "jitdump of another byte order"),
            JitdumpError::Version(version) => write!(f, "jitdump version {version} is not known (1 is)"),
            JitdumpError::HeaderSize(size) => write!(f, "jitdump header of {size} bytes"),
            JitdumpError::RecordSize(offset) => write!(f, "damaged jitdump record at byte {offset}"),
            JitdumpError::Unreadable => write!(f, "jitdump file unreadable"),
        }
    }
}

/// Named generated code from a `CODE_LOAD` or `CODE_MOVE` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitdumpCode {
    /// The record's timestamp (nanoseconds of `CLOCK_MONOTONIC`), `None` when the file says its
    /// clock is the CPU's counter.
    pub monotonic_ns: Option<u64>,
    /// The code's first address.
    pub start: u64,
    /// Its length in bytes (never 0; `start + size` does not overflow).
    pub size: u64,
    /// The runtime's name for it.
    pub name: String,
}

/// The reading position in one jitdump file, kept between rounds.
#[derive(Debug, Default)]
pub struct JitdumpCursor {
    /// The next record's offset; 0 before the header was read.
    offset: u64,
    /// The header's flags say timestamps are the CPU's counter.
    arch_timestamps: bool,
    /// `CODE_CLOSE` was read: nothing more comes.
    closed: bool,
    /// Names by code index, for `CODE_MOVE` (at most [`MOVE_NAME_BYTES`] of names).
    names: HashMap<u64, String>,
    name_bytes: usize,
    /// Record prefix bytes read so far.
    bytes_read: u64,
}

impl JitdumpCursor {
    /// True once `CODE_CLOSE` was read.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Bytes of record prefixes and headers read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads the complete records `source` holds past the last call, reading at most about
    /// `budget` bytes, and appends the named code to `out`. An incomplete last record waits for
    /// the next call. `Err` when the file is not (or no longer) a jitdump this reader can follow;
    /// the caller stops reading it.
    pub fn read(&mut self, source: &mut impl ReadAt, budget: u64, out: &mut Vec<JitdumpCode>) -> Result<(), JitdumpError> {
        if self.offset == 0 && !self.read_header(source)? {
            return Ok(());
        }
        let mut spent = 0u64;
        let mut prefix = vec![0u8; RECORD_PREFIX_BYTES];
        while !self.closed && spent < budget {
            let available = source.available();
            let mut head = [0u8; RECORD_HEADER_BYTES];
            if available < self.offset.saturating_add(RECORD_HEADER_BYTES as u64) {
                break;
            }
            if !source.read_exact_at(self.offset, &mut head) {
                return Err(JitdumpError::Unreadable);
            }
            let id = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]);
            let size = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
            if (size as usize) < RECORD_HEADER_BYTES {
                return Err(JitdumpError::RecordSize(self.offset));
            }
            if available < self.offset + u64::from(size) {
                break; // the runtime is still writing it
            }
            let wanted = match id {
                CODE_LOAD | CODE_MOVE => (size as usize).min(RECORD_PREFIX_BYTES),
                _ => RECORD_HEADER_BYTES,
            };
            let record = &mut prefix[..wanted];
            if !source.read_exact_at(self.offset, record) {
                return Err(JitdumpError::Unreadable);
            }
            spent += wanted as u64;
            self.bytes_read += wanted as u64;
            match id {
                CODE_LOAD => out.extend(self.code_load(record)),
                CODE_MOVE => out.extend(self.code_move(record)),
                CODE_CLOSE => self.closed = true,
                _ => {}
            }
            self.offset += u64::from(size);
        }
        Ok(())
    }

    /// Checks the header once the file holds it; false while it is shorter.
    fn read_header(&mut self, source: &mut impl ReadAt) -> Result<bool, JitdumpError> {
        if source.available() < JITDUMP_HEADER_BYTES as u64 {
            return Ok(false);
        }
        let mut header = [0u8; JITDUMP_HEADER_BYTES];
        if !source.read_exact_at(0, &mut header) {
            return Err(JitdumpError::Unreadable);
        }
        let u32_at = |at: usize| u32::from_ne_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        match u32_at(0) {
            JITDUMP_MAGIC => {}
            magic if magic == JITDUMP_MAGIC.swap_bytes() => return Err(JitdumpError::ForeignByteOrder),
            _ => return Err(JitdumpError::NotJitdump),
        }
        if u32_at(4) != 1 {
            return Err(JitdumpError::Version(u32_at(4)));
        }
        let size = u32_at(8);
        if !(JITDUMP_HEADER_BYTES as u32..=HEADER_MAX_BYTES).contains(&size) {
            return Err(JitdumpError::HeaderSize(size));
        }
        let flags = u64::from_ne_bytes(header[32..40].try_into().unwrap_or_default());
        self.arch_timestamps = flags & FLAG_ARCH_TIMESTAMP != 0;
        self.offset = u64::from(size);
        self.bytes_read += JITDUMP_HEADER_BYTES as u64;
        Ok(true)
    }

    fn timestamp(&self, record: &[u8]) -> Option<u64> {
        let ns = u64_at(record, 8)?;
        (!self.arch_timestamps).then_some(ns)
    }

    /// `CODE_LOAD`: pid, tid, vma, code_addr, code_size, code_index, name (NUL-ended), code.
    fn code_load(&mut self, record: &[u8]) -> Option<JitdumpCode> {
        let start = u64_at(record, 32)?;
        let size = u64_at(record, 40)?;
        let index = u64_at(record, 48)?;
        let name_bytes = record.get(CODE_LOAD_FIXED..)?;
        let end = name_bytes.iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
        if size == 0 || name.is_empty() || start.checked_add(size).is_none() {
            return None;
        }
        if self.name_bytes + name.len() <= MOVE_NAME_BYTES {
            self.name_bytes += name.len();
            if let Some(old) = self.names.insert(index, name.clone()) {
                self.name_bytes -= old.len();
            }
        }
        Some(JitdumpCode { monotonic_ns: self.timestamp(record), start, size, name })
    }

    /// `CODE_MOVE`: pid, tid, vma, old_code_addr, new_code_addr, code_size, code_index. Named
    /// by the code index's load; `None` when that name was not kept.
    fn code_move(&mut self, record: &[u8]) -> Option<JitdumpCode> {
        let start = u64_at(record, 40)?;
        let size = u64_at(record, 48)?;
        let index = u64_at(record, 56)?;
        let name = self.names.get(&index)?.clone();
        if size == 0 || start.checked_add(size).is_none() {
            return None;
        }
        Some(JitdumpCode { monotonic_ns: self.timestamp(record), start, size, name })
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Reads `bytes` as a file that grows `step` bytes at a time, one record per call, then whole
/// (for tests and fuzz targets: any growth must give the same records as one whole reading).
pub fn read_in_steps(bytes: &[u8], step: usize) -> (Vec<JitdumpCode>, Option<JitdumpError>) {
    let mut cursor = JitdumpCursor::default();
    let mut out = Vec::new();
    let mut end = 0;
    while end < bytes.len() {
        end = end.saturating_add(step.max(1)).min(bytes.len());
        if let Err(error) = cursor.read(&mut &bytes[..end], 1, &mut out) {
            return (out, Some(error));
        }
    }
    let error = cursor.read(&mut &bytes[..], u64::MAX, &mut out).err();
    (out, error)
}

/// The bytes of a jitdump file for tests and fuzz seeds: a header and these records.
pub mod build {
    /// A version-1 header with `flags`.
    pub fn header(flags: u64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(super::JITDUMP_MAGIC.to_ne_bytes());
        out.extend(1u32.to_ne_bytes());
        out.extend(40u32.to_ne_bytes());
        out.extend(62u32.to_ne_bytes()); // EM_X86_64
        out.extend(0u32.to_ne_bytes());
        out.extend(1u32.to_ne_bytes()); // pid
        out.extend(0u64.to_ne_bytes()); // timestamp
        out.extend(flags.to_ne_bytes());
        out
    }

    fn record(out: &mut Vec<u8>, id: u32, timestamp: u64, body: &[u8]) {
        out.extend(id.to_ne_bytes());
        out.extend((16 + body.len() as u32).to_ne_bytes());
        out.extend(timestamp.to_ne_bytes());
        out.extend(body);
    }

    /// Appends a `CODE_LOAD` of `code` at `start`.
    pub fn code_load(out: &mut Vec<u8>, timestamp: u64, start: u64, index: u64, name: &str, code: &[u8]) {
        let mut body = Vec::new();
        body.extend(1u32.to_ne_bytes());
        body.extend(1u32.to_ne_bytes());
        for value in [start, start, code.len() as u64, index] {
            body.extend(value.to_ne_bytes());
        }
        body.extend(name.as_bytes());
        body.push(0);
        body.extend(code);
        record(out, 0, timestamp, &body);
    }

    /// Appends a `CODE_MOVE` of code `index` from `old` to `new`.
    pub fn code_move(out: &mut Vec<u8>, timestamp: u64, old: u64, new: u64, size: u64, index: u64) {
        let mut body = Vec::new();
        body.extend(1u32.to_ne_bytes());
        body.extend(1u32.to_ne_bytes());
        for value in [new, old, new, size, index] {
            body.extend(value.to_ne_bytes());
        }
        record(out, 1, timestamp, &body);
    }

    /// Appends a record `id` with an opaque body (debug or unwinding info, close).
    pub fn other(out: &mut Vec<u8>, id: u32, body: &[u8]) {
        record(out, id, 0, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file() -> Vec<u8> {
        let mut file = build::header(0);
        build::other(&mut file, 4, &[7; 100]); // unwinding info
        build::code_load(&mut file, 50, 0x7000, 1, "py::fib:/tmp/fib.py", &[0x90; 11]);
        build::other(&mut file, 2, &[1; 30]); // debug info
        build::code_move(&mut file, 60, 0x7000, 0x9000, 11, 1);
        build::other(&mut file, 3, &[]);
        build::code_load(&mut file, 70, 0xa000, 2, "after close", &[0x90; 4]);
        file
    }

    #[test]
    fn loads_and_moves_are_read_and_the_rest_skipped() {
        let file = sample_file();
        let mut cursor = JitdumpCursor::default();
        let mut out = Vec::new();
        cursor.read(&mut file.as_slice(), u64::MAX, &mut out).unwrap();
        let got: Vec<_> = out.iter().map(|c| (c.monotonic_ns, c.start, c.size, c.name.as_str())).collect();
        assert_eq!(got, [(Some(50), 0x7000, 11, "py::fib:/tmp/fib.py"), (Some(60), 0x9000, 11, "py::fib:/tmp/fib.py")]);
        assert!(cursor.closed(), "nothing after CODE_CLOSE is read");
    }

    #[test]
    fn a_growing_file_is_read_record_by_record() {
        let file = sample_file();
        let whole = read_in_steps(&file, file.len());
        assert_eq!(whole.0.len(), 2);
        for step in 1..file.len() {
            assert_eq!(read_in_steps(&file, step), whole, "each record once, whatever the growth");
        }
    }

    #[test]
    fn bad_headers_and_records_are_refused() {
        let mut foreign = build::header(0);
        foreign[..4].copy_from_slice(&JITDUMP_MAGIC.swap_bytes().to_ne_bytes());
        let mut version = build::header(0);
        version[4] = 2;
        let mut small = build::header(0);
        small[8] = 8;
        let mut record = build::header(0);
        record.extend([0u8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let cases = [
            (vec![b'x'; 40], JitdumpError::NotJitdump),
            (foreign, JitdumpError::ForeignByteOrder),
            (version, JitdumpError::Version(2)),
            (small, JitdumpError::HeaderSize(8)),
            (record, JitdumpError::RecordSize(40)),
        ];
        for (bytes, error) in cases {
            assert_eq!(JitdumpCursor::default().read(&mut bytes.as_slice(), u64::MAX, &mut Vec::new()), Err(error));
        }
    }

    #[test]
    fn arch_timestamps_are_not_taken_for_monotonic_time() {
        let mut file = build::header(FLAG_ARCH_TIMESTAMP);
        build::code_load(&mut file, 50, 0x7000, 1, "f", &[0x90]);
        let mut out = Vec::new();
        JitdumpCursor::default().read(&mut file.as_slice(), u64::MAX, &mut out).unwrap();
        assert_eq!(out[0].monotonic_ns, None);
    }

    #[test]
    fn any_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let base = sample_file();
        for _ in 0..3000 {
            let mut bytes = base.clone();
            for _ in 0..(state % 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bytes.len();
                bytes[at] = (state >> 32) as u8;
            }
            let cut = (state >> 40) as usize % (bytes.len() + 1);
            let mut out = Vec::new();
            let _ = JitdumpCursor::default().read(&mut &bytes[..cut], u64::MAX, &mut out);
            assert!(out.len() <= 3);
        }
    }
}
