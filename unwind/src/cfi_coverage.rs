//! Which code a module's `.eh_frame` covers: the address ranges of its FDEs, read on the drain
//! thread when the module's sections are copied. The walk uses them to tell code with CFI from
//! code without (Go's own functions, hand-written assembly): a PC in code without CFI is
//! unwound by its frame pointer, not by "the return address is at the stack pointer", which is
//! right only at a function's first instruction.

use crate::code_ranges::AddressRange;
use std::collections::HashMap;

/// Gaps between FDEs up to this size (function alignment padding) are merged into one range.
const MERGE_GAP: u64 = 64;

/// The merged, sorted address ranges covered by the FDEs of `eh_frame`, a copy of the section
/// that lies at `eh_frame_avma` in the process. `None` when an entry uses a pointer encoding
/// this reader does not know: the caller then treats the whole module as covered (framehop
/// decides, as it would without this table). Never panics on any bytes.
pub fn covered_ranges(eh_frame: &[u8], eh_frame_avma: u64) -> Option<Vec<AddressRange>> {
    let mut cie_encodings: HashMap<usize, u8> = HashMap::new();
    let mut ranges = Vec::new();
    let mut offset = 0usize;
    while let Some(word) = eh_frame.get(offset..offset + 4) {
        let length = u32::from_le_bytes(word.try_into().ok()?);
        if length == 0 {
            break;
        }
        if length == u32::MAX {
            return None; // 64-bit DWARF: not produced for .eh_frame on Linux
        }
        let body_start = offset + 4;
        let end = body_start.checked_add(length as usize)?;
        let body = eh_frame.get(body_start..end)?;
        let id = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
        if id == 0 {
            cie_encodings.insert(offset, cie_fde_encoding(body.get(4..)?)?);
        } else {
            let cie_offset = body_start.checked_sub(id as usize)?;
            let encoding = *cie_encodings.get(&cie_offset)?;
            let field_avma = eh_frame_avma.wrapping_add(body_start as u64 + 4);
            let (start, size) = read_encoded(body.get(4..)?, encoding, field_avma)?;
            let (range, _) = read_encoded(body.get(4 + size..)?, encoding & 0x0f, 0)?;
            if range > 0 {
                ranges.push(AddressRange { start, end: start.wrapping_add(range) });
            }
        }
        offset = end;
    }
    Some(merge(ranges))
}

/// Sorts and merges ranges that overlap or lie at most [`MERGE_GAP`] apart.
pub fn merge(mut ranges: Vec<AddressRange>) -> Vec<AddressRange> {
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<AddressRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(MERGE_GAP) => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged.shrink_to_fit();
    merged
}

/// The FDE pointer encoding of a CIE whose body (after the CIE id) is `cie`: from its `R`
/// augmentation, else absolute 8-byte pointers.
fn cie_fde_encoding(cie: &[u8]) -> Option<u8> {
    let version = *cie.first()?;
    let augmentation_end = 1 + cie.get(1..)?.iter().position(|&b| b == 0)?;
    let augmentation = cie.get(1..augmentation_end)?;
    let mut at = augmentation_end + 1;
    if version >= 4 {
        at += 2; // address size, segment selector size
    }
    at = skip_leb128(cie, at)?; // code alignment
    at = skip_leb128(cie, at)?; // data alignment
    at = if version == 1 { at + 1 } else { skip_leb128(cie, at)? }; // return address register
    if augmentation.first() != Some(&b'z') {
        return Some(0);
    }
    at = skip_leb128(cie, at)?; // augmentation data length
    for &letter in &augmentation[1..] {
        match letter {
            b'R' => return cie.get(at).copied(),
            b'L' => at += 1,
            b'P' => {
                let encoding = *cie.get(at)?;
                at += 1 + encoded_size(cie.get(at + 1..)?, encoding)?;
            }
            b'S' | b'B' | b'G' => {}
            _ => return None,
        }
    }
    Some(0)
}

/// Skips one LEB128 number starting at `at`; the index after it.
fn skip_leb128(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let byte = *bytes.get(at)?;
        at += 1;
        if byte & 0x80 == 0 {
            return Some(at);
        }
    }
}

/// The size of a fixed-size encoded pointer (LEB128 forms are measured in `bytes`).
fn encoded_size(bytes: &[u8], encoding: u8) -> Option<usize> {
    match encoding & 0x0f {
        0x00 | 0x04 | 0x0c => Some(8),
        0x02 | 0x0a => Some(2),
        0x03 | 0x0b => Some(4),
        0x01 | 0x09 => skip_leb128(bytes, 0),
        _ => None,
    }
}

/// Reads a pointer encoded with `encoding` at the start of `bytes`, which lie at `field_avma`:
/// the value and its size. Only absolute and PC-relative applications are known.
fn read_encoded(bytes: &[u8], encoding: u8, field_avma: u64) -> Option<(u64, usize)> {
    if encoding == 0xff {
        return None;
    }
    let fixed = |n: usize| -> Option<u64> {
        let mut word = [0u8; 8];
        word[..n].copy_from_slice(bytes.get(..n)?);
        Some(u64::from_le_bytes(word))
    };
    let (value, size) = match encoding & 0x0f {
        0x00 | 0x04 | 0x0c => (fixed(8)?, 8),
        0x02 => (fixed(2)?, 2),
        0x0a => (fixed(2)? as u16 as i16 as i64 as u64, 2),
        0x03 => (fixed(4)?, 4),
        0x0b => (fixed(4)? as u32 as i32 as i64 as u64, 4),
        _ => return None,
    };
    match encoding & 0x70 {
        0x00 => Some((value, size)),
        0x10 => Some((field_avma.wrapping_add(value), size)),
        _ => None,
    }
}

/// True when `address` lies in one of the sorted, non-overlapping `ranges`. Async-signal-safe.
pub fn covers(ranges: &[AddressRange], address: u64) -> bool {
    let index = ranges.partition_point(|range| range.start <= address);
    index.checked_sub(1).and_then(|index| ranges.get(index)).is_some_and(|range| address < range.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::loaded_modules_with_unwind_sections;
    use std::collections::HashSet;

    #[test]
    fn libc_functions_are_covered_and_its_padding_merged() {
        let modules = loaded_modules_with_unwind_sections(&HashSet::new());
        let libc = modules.iter().find(|m| m.path.contains("libc.so")).expect("libc");
        let sections = libc.unwind_sections.as_ref().expect("libc has .eh_frame");
        let avma = sections.eh_frame_svma.start.wrapping_add(libc.base);
        let ranges = covered_ranges(&sections.eh_frame, avma).expect("gcc's encodings are known");
        assert!(!ranges.is_empty());
        assert!(ranges.windows(2).all(|pair| pair[0].end < pair[1].start), "sorted and merged");
        let getpid = libc::getpid as *const () as usize as u64;
        assert!(covers(&ranges, getpid), "getpid has an FDE");
        assert!(ranges.iter().all(|r| libc.executable_ranges.iter().any(|x| x.start <= r.start && r.end <= x.end + 4096)));
    }

    #[test]
    fn any_bytes_give_an_answer_without_panicking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            let len = round % 97;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 7) as u8 // small values: plausible lengths and ids
                })
                .collect();
            let _ = covered_ranges(&bytes, 0x1000);
        }
    }

    #[test]
    fn merging_joins_neighbours_and_keeps_gaps() {
        let r = |start, end| AddressRange { start, end };
        let merged = merge(vec![r(0x2000, 0x2100), r(0x1000, 0x1100), r(0x1110, 0x1200), r(0x1200, 0x1300)]);
        assert_eq!(merged, vec![r(0x1000, 0x1300), r(0x2000, 0x2100)]);
        assert!(covers(&merged, 0x1105));
        assert!(!covers(&merged, 0x1300));
        assert!(!covers(&merged, 0xfff));
    }
}
