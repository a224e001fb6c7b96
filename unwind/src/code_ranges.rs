//! The address ranges of loaded code, checked by the handler before it trusts a return address
//! or reads code bytes. Built by the drain thread, published inside an `UnwindSnapshot`.

use crate::cfi_coverage::ModuleCfi;

/// One mapped range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub start: u64,
    pub end: u64,
}

/// Sorted, non-overlapping executable and readable ranges of all loaded modules, and how to
/// tell the code their CFI covers.
#[derive(Debug, Default)]
pub struct CodeRanges {
    executable: Box<[AddressRange]>,
    readable: Box<[AddressRange]>,
    /// Each module with CFI: its extent and how to ask it (`cfi_coverage`), sorted by start;
    /// code outside them has no CFI.
    cfi: Box<[(AddressRange, ModuleCfi)]>,
}

/// The lowest address a return address outside every module may have (below: null-page
/// values and small integers, never code).
const LOWEST_CODE_ADDRESS: u64 = 0x10000;
/// The end of the user half of the address space (47-bit on x86_64 and 48-bit aarch64 both
/// put user code below it unless 5-level paging is asked for).
const USER_ADDRESS_END: u64 = 1 << 47;

impl CodeRanges {
    /// The ranges a walk may read code bytes from (to name a frameless leaf's caller) and may
    /// accept return addresses in.
    ///
    /// # Safety
    /// Every range must stay mapped and readable while the `CodeRanges` can be used: walks read
    /// inside them directly (a `dlclose` unmaps code only after no handler can be reading it,
    /// `sigprof` invariant 6).
    pub unsafe fn new(mut executable: Vec<AddressRange>, mut readable: Vec<AddressRange>) -> CodeRanges {
        executable.sort_by_key(|range| range.start);
        readable.sort_by_key(|range| range.start);
        CodeRanges { executable: executable.into(), readable: readable.into(), cfi: Box::new([]) }
    }

    /// The same ranges, with the modules that carry CFI (extents that do not overlap).
    pub fn with_cfi(self, mut modules: Vec<(AddressRange, ModuleCfi)>) -> CodeRanges {
        modules.sort_unstable_by_key(|(extent, _)| extent.start);
        CodeRanges { cfi: modules.into(), ..self }
    }

    /// True when `address` lies in code that CFI covers. Async-signal-safe.
    pub fn has_cfi(&self, address: u64) -> bool {
        let index = self.cfi.partition_point(|(extent, _)| extent.start <= address);
        index.checked_sub(1).and_then(|index| self.cfi.get(index)).is_some_and(|(extent, cfi)| address < extent.end && cfi.covers(address))
    }

    /// True when `address` may be code generated at run time: outside every module and in the
    /// user half of the address space (a JIT's code cache; the walk of a frame there follows
    /// frame pointers, checked to move up the stack). Async-signal-safe.
    pub fn may_be_generated_code(&self, address: u64) -> bool {
        (LOWEST_CODE_ADDRESS..USER_ADDRESS_END).contains(&address) && !self.is_readable(address, 1)
    }

    /// True when `[address, address + len)` lies inside one executable range. Async-signal-safe.
    pub fn is_executable(&self, address: u64, len: u64) -> bool {
        contains(&self.executable, address, len)
    }

    /// True when `[address, address + len)` lies inside one readable range. Async-signal-safe.
    pub fn is_readable(&self, address: u64, len: u64) -> bool {
        contains(&self.readable, address, len) || contains(&self.executable, address, len)
    }
}

/// Executable-range lookups for one walk: consecutive frames are mostly in one module, so the
/// range of the previous hit is tried before the binary search. Async-signal-safe.
pub struct ExecutableLookup<'a> {
    ranges: &'a CodeRanges,
    last: AddressRange,
}

impl<'a> ExecutableLookup<'a> {
    pub fn new(ranges: &'a CodeRanges) -> Self {
        ExecutableLookup { ranges, last: AddressRange { start: 1, end: 0 } }
    }

    /// Same as [`CodeRanges::is_executable`]. Async-signal-safe.
    #[inline]
    pub fn contains(&mut self, address: u64, len: u64) -> bool {
        let Some(end) = address.checked_add(len) else { return false };
        if address >= self.last.start && end <= self.last.end {
            return true;
        }
        match range_holding(&self.ranges.executable, address, end) {
            Some(range) => {
                self.last = range;
                true
            }
            None => false,
        }
    }
}

/// The range of `ranges` holding `[address, end)`, by binary search. Async-signal-safe.
#[inline]
fn range_holding(ranges: &[AddressRange], address: u64, end: u64) -> Option<AddressRange> {
    let index = ranges.partition_point(|range| range.start <= address);
    index.checked_sub(1).and_then(|index| ranges.get(index)).copied().filter(|range| end <= range.end)
}

/// Binary search for a range holding `[address, address + len)`. Async-signal-safe.
fn contains(ranges: &[AddressRange], address: u64, len: u64) -> bool {
    let Some(end) = address.checked_add(len) else { return false };
    range_holding(ranges, address, end).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_respect_range_ends() {
        // SAFETY: the test only looks the ranges up; nothing reads inside them.
        let ranges = unsafe {
            CodeRanges::new(
                vec![AddressRange { start: 0x3000, end: 0x4000 }, AddressRange { start: 0x1000, end: 0x2000 }],
                vec![AddressRange { start: 0x8000, end: 0x9000 }],
            )
        };
        assert!(ranges.is_executable(0x1000, 5));
        assert!(ranges.is_executable(0x1ffb, 5));
        assert!(!ranges.is_executable(0x1ffc, 5));
        assert!(!ranges.is_executable(0x2000, 1));
        assert!(ranges.is_executable(0x3fff, 1));
        assert!(!ranges.is_executable(0xfff, 1));
        assert!(ranges.is_readable(0x8ff8, 8));
        assert!(ranges.is_readable(0x1000, 8));
        assert!(!ranges.is_readable(0x9000, 8));
        assert!(!ranges.is_executable(u64::MAX, 5));
    }

    #[test]
    fn the_remembered_range_answers_like_the_search() {
        let executable = vec![AddressRange { start: 0x3000, end: 0x4000 }, AddressRange { start: 0x1000, end: 0x2000 }];
        // SAFETY: as above.
        let ranges = unsafe { CodeRanges::new(executable, vec![]) };
        let mut lookup = ExecutableLookup::new(&ranges);
        for address in [0x1000u64, 0x1ffb, 0x1ffc, 0x2000, 0x3fff, 0xfff, 0x1800, u64::MAX, 0x3000, 0x0] {
            assert_eq!(lookup.contains(address, 5), ranges.is_executable(address, 5), "{address:#x}");
        }
    }
}
