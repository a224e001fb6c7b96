//! Which code a module's `.eh_frame` covers. The walk uses it to tell code with CFI from code
//! without (Go's own functions, hand-written assembly): a PC in code without CFI is unwound by
//! its frame pointer, not by "the return address is at the stack pointer", which is right only
//! at a function's first instruction.
//!
//! A module with an `.eh_frame_hdr` search table (every module Linux toolchains link) is asked
//! in the handler, by a binary search of that table ([`SearchTable::covers`]): nothing is
//! computed at start-up. For the others, the drain thread reads the address ranges of all FDEs
//! once ([`covered_ranges`]).

use crate::code_ranges::AddressRange;
use crate::modules::SectionBytes;

/// Gaps between FDEs up to this size (function alignment padding) are merged into one range.
const MERGE_GAP: u64 = 64;

/// The `.eh_frame` entry (CIE or FDE) at `offset`: where its body starts and the body, which
/// begins with the CIE id or pointer. `None` at the terminator, for 64-bit DWARF (not produced
/// for `.eh_frame` on Linux) and for an entry past the end. Async-signal-safe.
fn entry_at(eh_frame: &[u8], offset: usize) -> Option<(usize, &[u8])> {
    let length = u32::from_le_bytes(eh_frame.get(offset..offset.checked_add(4)?)?.try_into().ok()?);
    if length == 0 || length == u32::MAX {
        return None;
    }
    let body_start = offset + 4;
    Some((body_start, eh_frame.get(body_start..body_start.checked_add(length as usize)?)?))
}

/// The merged, sorted address ranges covered by the FDEs of `eh_frame`, a copy of the section
/// that lies at `eh_frame_avma` in the process. `None` when an entry uses a pointer encoding
/// this reader does not know: the caller then treats the whole module as covered (framehop
/// decides, as it would without this table). Never panics on any bytes.
pub fn covered_ranges(eh_frame: &[u8], eh_frame_avma: u64) -> Option<Vec<AddressRange>> {
    // (offset, FDE encoding) of each CIE, in increasing offset order (the section is read
    // front to back): found by binary search, and most FDEs name the CIE found last.
    let mut cie_encodings: Vec<(usize, u8)> = Vec::new();
    let mut ranges = Vec::new();
    let mut offset = 0usize;
    while let Some(word) = eh_frame.get(offset..offset + 4) {
        match u32::from_le_bytes(word.try_into().ok()?) {
            0 => break,
            u32::MAX => return None, // 64-bit DWARF: not produced for .eh_frame on Linux
            _ => {}
        }
        let (body_start, body) = entry_at(eh_frame, offset)?;
        let id = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
        if id == 0 {
            cie_encodings.push((offset, cie_fde_encoding(body.get(4..)?)?));
        } else {
            let encoding = cie_encoding_at(&cie_encodings, body_start.checked_sub(id as usize)?)?;
            let field_avma = eh_frame_avma.wrapping_add(body_start as u64 + 4);
            let (start, size) = read_encoded(body.get(4..)?, encoding, field_avma)?;
            let (range, _) = read_encoded(body.get(4 + size..)?, encoding & 0x0f, 0)?;
            if range > 0 {
                ranges.push(AddressRange { start, end: start.wrapping_add(range) });
            }
        }
        offset = body_start + body.len();
    }
    Some(merge(ranges))
}

/// The FDE encoding `.eh_frame_hdr` tables use on every Linux toolchain: signed 4-byte
/// values relative to the start of the header.
const TABLE_DATAREL_SDATA4: u8 = 0x3b;

/// One module's `.eh_frame_hdr` search table with its `.eh_frame`, answering in the handler
/// whether an FDE covers an address.
#[derive(Debug, Clone)]
pub struct SearchTable {
    hdr: SectionBytes,
    hdr_avma: u64,
    /// Where the (start, FDE) pairs begin in `hdr`, and how many there are.
    entries_at: usize,
    count: usize,
    eh_frame: SectionBytes,
    eh_frame_avma: u64,
}

impl SearchTable {
    /// The table of a module whose `.eh_frame_hdr` (at `hdr_avma`) uses the usual encoding;
    /// `None` for another encoding or a malformed header. Drain thread.
    pub fn new(hdr: SectionBytes, hdr_avma: u64, eh_frame: SectionBytes, eh_frame_avma: u64) -> Option<SearchTable> {
        let (&version, &pointer_encoding, &count_encoding, &table_encoding) = (hdr.first()?, hdr.get(1)?, hdr.get(2)?, hdr.get(3)?);
        if version != 1 || table_encoding != TABLE_DATAREL_SDATA4 {
            return None;
        }
        let pointer_size = encoded_size(hdr.get(4..)?, pointer_encoding)?;
        let (count, count_size) = read_encoded(hdr.get(4 + pointer_size..)?, count_encoding, 0)?;
        let entries_at = 4 + pointer_size + count_size;
        let count = usize::try_from(count).ok()?.min(hdr.len().saturating_sub(entries_at) / 8);
        Some(SearchTable { hdr, hdr_avma, entries_at, count, eh_frame, eh_frame_avma })
    }

    /// Entry `index`: the start address of its FDE and the FDE's address. Async-signal-safe.
    fn entry(&self, index: usize) -> Option<(u64, u64)> {
        let at = self.entries_at.checked_add(index.checked_mul(8)?)?;
        let field = |at: usize| -> Option<u64> { Some(i64::from(i32::from_le_bytes(self.hdr.get(at..at + 4)?.try_into().ok()?)) as u64) };
        Some((self.hdr_avma.wrapping_add(field(at)?), self.hdr_avma.wrapping_add(field(at + 4)?)))
    }

    /// True when an FDE of this module covers `address`; false when none does or the table
    /// cannot be read there. Async-signal-safe: reads only the module's sections, never panics.
    pub fn covers(&self, address: u64) -> bool {
        self.covers_checked(address).unwrap_or(false)
    }

    fn covers_checked(&self, address: u64) -> Option<bool> {
        // The last entry starting at or below `address`.
        let (mut low, mut high) = (0usize, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.entry(middle)?.0 <= address {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let (start, fde_avma) = self.entry(low.checked_sub(1)?)?;
        let eh_frame = &*self.eh_frame;
        let (body_start, body) = entry_at(eh_frame, usize::try_from(fde_avma.checked_sub(self.eh_frame_avma)?).ok()?)?;
        let id = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
        let (_, cie) = entry_at(eh_frame, body_start.checked_sub(id as usize).filter(|_| id != 0)?)?;
        let encoding = cie_fde_encoding(cie.get(4..)?)?;
        // The table gives the start; only the size of the FDE's start field is needed here.
        let begin_size = encoded_size(body.get(4..)?, encoding)?;
        let (range, _) = read_encoded(body.get(4 + begin_size..)?, encoding & 0x0f, 0)?;
        Some(address.wrapping_sub(start) < range)
    }
}

/// How the handler tells whether a module's CFI covers an address.
#[derive(Debug, Clone)]
pub enum ModuleCfi {
    /// Asked of the module's search table.
    Table(SearchTable),
    /// The merged ranges of its FDEs, read once (a module without a usable table).
    Ranges(Box<[AddressRange]>),
    /// Its CFI could not be read: framehop decides, as if it covered everything.
    Everything,
}

impl ModuleCfi {
    /// How to answer for a module with these sections (drain thread; a module without a
    /// usable search table has its FDEs read now).
    pub fn for_sections(eh_frame: &SectionBytes, eh_frame_avma: u64, hdr: Option<(&SectionBytes, u64)>) -> ModuleCfi {
        if let Some(table) = hdr.and_then(|(hdr, hdr_avma)| SearchTable::new(hdr.clone(), hdr_avma, eh_frame.clone(), eh_frame_avma)) {
            return ModuleCfi::Table(table);
        }
        match covered_ranges(eh_frame, eh_frame_avma) {
            Some(ranges) => ModuleCfi::Ranges(ranges.into()),
            None => ModuleCfi::Everything,
        }
    }

    /// True when CFI covers `address`, an address inside this module. Async-signal-safe.
    pub fn covers(&self, address: u64) -> bool {
        match self {
            ModuleCfi::Table(table) => table.covers(address),
            ModuleCfi::Ranges(ranges) => covers(ranges, address),
            ModuleCfi::Everything => true,
        }
    }
}

/// The FDE encoding of the CIE at `offset`, from the CIEs read so far (sorted by offset).
fn cie_encoding_at(cies: &[(usize, u8)], offset: usize) -> Option<u8> {
    match cies.last() {
        Some(&(last, encoding)) if last == offset => Some(encoding),
        _ => cies.binary_search_by_key(&offset, |&(at, _)| at).ok().map(|index| cies[index].1),
    }
}

/// Sorts and merges ranges that overlap or lie at most [`MERGE_GAP`] apart. Ranges already in
/// order (a linker that wrote its FDEs in address order) are not sorted again.
pub fn merge(mut ranges: Vec<AddressRange>) -> Vec<AddressRange> {
    if !ranges.is_sorted_by_key(|range| range.start) {
        ranges.sort_unstable_by_key(|range| range.start);
    }
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

    /// libc's module with its (copied) unwind sections, and where its `.eh_frame` lies.
    fn libc_sections() -> (crate::modules::LoadedModule, crate::modules::UnwindSections, u64) {
        let modules = loaded_modules_with_unwind_sections(&HashSet::new(), &HashSet::new());
        let mut libc = modules.into_iter().find(|m| m.path.contains("libc.so")).expect("libc");
        let sections = libc.unwind_sections.take().expect("libc has .eh_frame");
        let avma = sections.eh_frame_svma.start.wrapping_add(libc.base);
        (libc, sections, avma)
    }

    #[test]
    fn libc_functions_are_covered_and_its_padding_merged() {
        let (libc, sections, avma) = libc_sections();
        let ranges = covered_ranges(&sections.eh_frame, avma).expect("gcc's encodings are known");
        assert!(!ranges.is_empty());
        assert!(ranges.windows(2).all(|pair| pair[0].end < pair[1].start), "sorted and merged");
        let getpid = libc::getpid as *const () as usize as u64;
        assert!(covers(&ranges, getpid), "getpid has an FDE");
        assert!(ranges.iter().all(|r| libc.executable_ranges.iter().any(|x| x.start <= r.start && r.end <= x.end + 4096)));
    }

    #[test]
    fn the_search_table_answers_in_place_as_the_ranges_do() {
        let (libc, sections, avma) = libc_sections();
        let (hdr_svma, hdr) = sections.eh_frame_hdr.as_ref().expect("a search table");
        let table = SearchTable::new(hdr.clone(), hdr_svma.start.wrapping_add(libc.base), sections.eh_frame.clone(), avma).expect("usual encoding");
        let ranges = covered_ranges(&sections.eh_frame, avma).expect("known encodings");
        assert!(table.covers(libc::getpid as *const () as usize as u64), "getpid has an FDE");
        let text = libc.executable_ranges[0];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let address = text.start + state % (text.end - text.start);
            let (by_table, by_ranges) = (table.covers(address), covers(&ranges, address));
            // The ranges also hold the padding (≤ MERGE_GAP) between functions.
            let near =
                (0..=MERGE_GAP).step_by(4).any(|d| table.covers(address.wrapping_sub(d))) && (0..=MERGE_GAP).step_by(4).any(|d| table.covers(address + d));
            assert!(by_table == by_ranges || (by_ranges && near), "{address:#x}: table {by_table}, ranges {by_ranges}");
        }
        for range in ranges.iter().take(200) {
            assert!(table.covers(range.start) && table.covers(range.end - 1), "{range:?}");
            assert!(!table.covers(range.end), "{range:?} ends there");
        }
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
            let mut table = vec![1, 0x1b, 0x03, 0x3b, 4, 0, 0, 0, 2, 0, 0, 0];
            table.extend_from_slice(&bytes);
            let leaked: &'static [u8] = Box::leak(bytes.clone().into_boxed_slice());
            let leaked_table: &'static [u8] = Box::leak(table.into_boxed_slice());
            if let Some(search) = SearchTable::new(SectionBytes::InPlace(leaked_table), 0x1000, SectionBytes::InPlace(leaked), 0x1000) {
                for address in [0, 0x1000, 0x1004, 0x1010, u64::MAX] {
                    let _ = search.covers(address);
                }
            }
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
