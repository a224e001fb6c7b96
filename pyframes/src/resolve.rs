//! The drain thread's half: each new code object, read once (fault-proof copies), becomes its
//! qualified name (3.9, 3.10: its name; they have no `co_qualname`), file, first line and line table; an instruction index becomes a line.
//!
//! A code object is known by its address and the check the handler recorded (a fold of its
//! frame's function object), so an address reused by another function is read afresh. The
//! object may be gone by the time the drain thread reads it (a few ms after the sample): its
//! type is checked (`PyCode_Type`), and what cannot be read is named `<unknown>`.

use crate::layout::{Layout, BYTES_DATA, OB_TYPE, UNICODE_LENGTH, UNICODE_STATE, VAR_SIZE};
use crate::line_tables::{linetable_310_line, lnotab_line, LineTableKind};
use crate::read::{copy, u32_at, u64_at};
use crate::record::RawFrame;
use std::collections::HashMap;
use std::sync::Arc;

/// Longest name or file name copied, in characters.
pub(crate) const MAX_STRING_CHARS: u64 = 4096;
/// Longest line table copied, in bytes.
pub(crate) const MAX_LINE_TABLE: u64 = 1 << 20;
/// Code objects remembered before the cache starts over.
const MAX_CACHED: usize = 1 << 16;

/// What a code object names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeInfo {
    pub name: String,
    pub file: String,
    pub first_line: u32,
    /// `co_linetable` (3.9: `co_lnotab`), of the kind `line_table_kind`.
    line_table: Vec<u8>,
    line_table_kind: LineTableKind,
}

impl CodeInfo {
    /// An object that could not be read.
    pub fn unknown() -> CodeInfo {
        CodeInfo { name: "<unknown>".into(), ..CodeInfo::default() }
    }

    /// The line of the instruction `instr` (code units from the first), 0 when unknown.
    pub fn line(&self, instr: u32) -> u32 {
        match self.line_table_kind {
            LineTableKind::Locations => line_of(&self.line_table, self.first_line, instr),
            LineTableKind::Lnotab => lnotab_line(&self.line_table, self.first_line, instr.saturating_mul(2)),
            LineTableKind::Linetable310 => linetable_310_line(&self.line_table, self.first_line, instr.saturating_mul(2)),
        }
    }
}

/// Code objects already read, by (address, check).
#[derive(Default)]
pub struct Resolver {
    cache: HashMap<(u64, u32), Arc<CodeInfo>>,
}

impl Resolver {
    /// What the code object of `frame` names, read on first sight.
    pub fn code(&mut self, frame: RawFrame) -> Arc<CodeInfo> {
        self.code_with(frame, &mut copy)
    }

    /// What the code object of `frame` names, read through `read` (a copy of the process's
    /// memory at an address, false when unreadable) on first sight.
    pub fn code_with(&mut self, frame: RawFrame, read: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Arc<CodeInfo> {
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache
            .entry((frame.code, frame.check))
            .or_insert_with(|| Arc::new(crate::runtime::layout().and_then(|layout| read_code_with(layout, frame.code, read)).unwrap_or_else(CodeInfo::unknown)))
            .clone()
    }
}

/// Reads the code object at `address`. Not for the handler (allocates).
pub fn read_code(layout: &Layout, address: u64) -> Option<CodeInfo> {
    read_code_with(layout, address, &mut copy)
}

/// Reads the code object at `address` through `read` (see [`Resolver::code_with`]): the reads
/// [`crate::snapshot::snapshot_code`] copies ahead of time. Not for the handler (allocates).
pub fn read_code_with(layout: &Layout, address: u64, read: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Option<CodeInfo> {
    let copy = read;
    let mut header = vec![0u8; layout.code_adaptive];
    if !copy(address, &mut header) {
        return None;
    }
    let code_type = crate::runtime::code_type();
    if code_type != 0 && u64_at(&header, OB_TYPE) != code_type {
        return None;
    }
    Some(CodeInfo {
        name: read_str(layout, u64_at(&header, layout.code_qualname), copy)?,
        file: read_str(layout, u64_at(&header, layout.code_filename), copy).unwrap_or_default(),
        first_line: u32_at(&header, layout.code_firstlineno),
        line_table: read_bytes(u64_at(&header, layout.code_linetable), copy).unwrap_or_default(),
        line_table_kind: match layout.version {
            (3, 9) => LineTableKind::Lnotab,
            (3, 10) => LineTableKind::Linetable310,
            _ => LineTableKind::Locations,
        },
    })
}

/// Where a compact `str` object's text is, from its header (`unicode_compact_size` bytes):
/// (offset from the object, bytes, bytes per character). `None` for any other string.
/// Async-signal-safe.
pub(crate) fn str_data(layout: &Layout, header: &[u8]) -> Option<(usize, usize, u32)> {
    let length = u64_at(header, UNICODE_LENGTH).min(MAX_STRING_CHARS) as usize;
    let state = u32_at(header, UNICODE_STATE);
    let (kind, compact, ascii) = ((state >> 2) & 7, (state >> 5) & 1 == 1, (state >> 6) & 1 == 1);
    if !compact || !(1..=4).contains(&kind) || kind == 3 {
        return None;
    }
    let start = if ascii { layout.unicode_ascii_size } else { layout.unicode_compact_size };
    Some((start, length * kind as usize, kind))
}

/// A compact `str` object's text.
fn read_str(layout: &Layout, address: u64, copy: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Option<String> {
    let mut header = vec![0u8; layout.unicode_compact_size];
    if !copy(address, &mut header) {
        return None;
    }
    let (start, bytes, kind) = str_data(layout, &header)?;
    let mut data = vec![0u8; bytes];
    if !copy(address + start as u64, &mut data) {
        return None;
    }
    Some(match kind {
        // Names and paths are ASCII nearly always: their bytes are the text.
        1 if data.is_ascii() => String::from_utf8(data).unwrap_or_default(),
        1 => data.iter().map(|&b| char::from(b)).collect(),
        2 => data.chunks_exact(2).map(|c| char::from_u32(u32::from(u16::from_le_bytes([c[0], c[1]]))).unwrap_or('\u{fffd}')).collect(),
        _ => data.chunks_exact(4).map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('\u{fffd}')).collect(),
    })
}

/// A `bytes` object's contents.
fn read_bytes(address: u64, copy: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Option<Vec<u8>> {
    let mut size = [0u8; 8];
    if !copy(address + VAR_SIZE as u64, &mut size) {
        return None;
    }
    let size = u64::from_le_bytes(size);
    if size > MAX_LINE_TABLE {
        return None;
    }
    let mut data = vec![0u8; size as usize];
    copy(address + BYTES_DATA as u64, &mut data).then_some(data)
}

/// The line of code unit `instr` in a 3.11+ locations table (`Objects/locations.md`), 0 when
/// it has none.
pub fn line_of(table: &[u8], first_line: u32, instr: u32) -> u32 {
    let mut at = 0;
    let mut line = i64::from(first_line);
    let mut unit = 0u32;
    let mut next = |at: &mut usize| {
        let byte = table.get(*at).copied();
        *at += 1;
        byte
    };
    let varint = |at: &mut usize, next: &mut dyn FnMut(&mut usize) -> Option<u8>| -> Option<u64> {
        let mut byte = next(at)?;
        let mut value = u64::from(byte & 63);
        let mut shift = 0;
        while byte & 64 != 0 && shift < 60 {
            byte = next(at)?;
            shift += 6;
            value |= u64::from(byte & 63) << shift;
        }
        Some(value)
    };
    while let Some(first) = next(&mut at) {
        let code = (first >> 3) & 15;
        let length = u32::from(first & 7) + 1;
        let delta = match code {
            15 => None,
            14 => {
                let raw = varint(&mut at, &mut next).unwrap_or(0);
                let delta = if raw & 1 == 1 { -((raw >> 1) as i64) } else { (raw >> 1) as i64 };
                for _ in 0..3 {
                    varint(&mut at, &mut next);
                }
                Some(delta)
            }
            13 => {
                let raw = varint(&mut at, &mut next).unwrap_or(0);
                Some(if raw & 1 == 1 { -((raw >> 1) as i64) } else { (raw >> 1) as i64 })
            }
            10..=12 => {
                at += 2;
                Some(i64::from(code) - 10)
            }
            _ => {
                at += 1;
                Some(0)
            }
        };
        if let Some(delta) = delta {
            line += delta;
        }
        if instr < unit + length {
            return if delta.is_some() { u32::try_from(line).unwrap_or(0) } else { 0 };
        }
        unit += length;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::line_of;

    /// `co_linetable` of a function and the line of each code unit (`co_positions`), both
    /// printed by Debian's python3.11 for:
    ///
    /// ```python
    /// def sample(n):
    ///     total = 0
    ///     for i in range(n):
    ///         if i % 3 == 0:
    ///             total += (i *
    ///                       2)
    ///         else:
    ///             total -= 1
    ///     return total
    /// ```
    #[test]
    fn lines_follow_cpythons_own_positions() {
        let table = [
            128, 0, 216, 12, 13, 128, 69, 221, 13, 18, 144, 49, 137, 88, 140, 88, 240, 0, 5, 5, 23, 240, 0, 5, 5, 23, 136, 1, 216, 11, 12, 136, 113, 137, 53,
            144, 65, 138, 58, 136, 58, 216, 12, 17, 144, 97, 216, 22, 23, 241, 3, 1, 23, 24, 241, 0, 1, 13, 25, 136, 69, 136, 69, 240, 6, 0, 13, 18, 144, 81,
            137, 74, 136, 69, 136, 69, 216, 11, 16, 128, 76,
        ];
        let lines = [1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 6, 5, 5, 5, 5, 5, 5, 8, 8, 8, 8, 8, 8, 9, 9];
        for (instr, &line) in lines.iter().enumerate() {
            assert_eq!(line_of(&table, 1, instr as u32), line, "code unit {instr}");
        }
        assert_eq!(line_of(&table, 1, lines.len() as u32 + 5), 0, "past the end");
        assert_eq!(line_of(&[], 7, 0), 0);
    }
}
