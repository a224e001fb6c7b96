//! The address ranges of loaded code, checked by the handler before it trusts a return address
//! or reads code bytes. Built by the drain thread, published inside an `UnwindSnapshot`.

/// One mapped range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub start: u64,
    pub end: u64,
}

/// Sorted, non-overlapping executable and readable ranges of all loaded modules.
#[derive(Debug, Default)]
pub struct CodeRanges {
    executable: Box<[AddressRange]>,
    readable: Box<[AddressRange]>,
}

impl CodeRanges {
    pub fn new(mut executable: Vec<AddressRange>, mut readable: Vec<AddressRange>) -> CodeRanges {
        executable.sort_by_key(|range| range.start);
        readable.sort_by_key(|range| range.start);
        CodeRanges { executable: executable.into(), readable: readable.into() }
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

/// Binary search for a range holding `[address, address + len)`. Async-signal-safe.
fn contains(ranges: &[AddressRange], address: u64, len: u64) -> bool {
    let Some(end) = address.checked_add(len) else { return false };
    let index = ranges.partition_point(|range| range.start <= address);
    index > 0 && ranges.get(index - 1).is_some_and(|range| end <= range.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_respect_range_ends() {
        let ranges = CodeRanges::new(
            vec![AddressRange { start: 0x3000, end: 0x4000 }, AddressRange { start: 0x1000, end: 0x2000 }],
            vec![AddressRange { start: 0x8000, end: 0x9000 }],
        );
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
}
