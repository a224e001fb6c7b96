//! The address ranges of loaded code, published to the signal handler without locks.
//!
//! The drain thread builds an immutable [`CodeRanges`] from the module list and swaps it in
//! with [`PublishedCodeRanges::publish`]. The handler reads the current one inside its
//! seqlock critical section. Invariant: a replaced set is freed only after a generation
//! advance that began after the swap has completed (every seqlock was seen even or moved),
//! because only then can no handler still hold a reference to it.

use std::sync::atomic::{AtomicPtr, Ordering};

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

/// The currently published [`CodeRanges`], shared by the drain thread (writer) and the
/// signal handlers (readers).
pub struct PublishedCodeRanges {
    current: AtomicPtr<CodeRanges>,
}

impl PublishedCodeRanges {
    pub const fn new() -> Self {
        PublishedCodeRanges { current: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The current ranges, if any were published. Async-signal-safe.
    ///
    /// The reference must not outlive the caller's seqlock critical section (see the module
    /// invariant).
    pub fn current(&self) -> Option<&CodeRanges> {
        let pointer = self.current.load(Ordering::Acquire);
        // SAFETY: a published pointer comes from Box::into_raw and is only freed by the drain
        // thread after a full generation advance, which waits for every handler to leave its
        // critical section; callers hold the reference only within that section.
        unsafe { pointer.as_ref() }
    }

    /// Publishes `ranges` and returns the replaced set. Drain thread only. The caller frees the
    /// returned set only after the next completed generation advance.
    pub fn publish(&self, ranges: CodeRanges) -> Option<Box<CodeRanges>> {
        let old = self.current.swap(Box::into_raw(Box::new(ranges)), Ordering::AcqRel);
        // SAFETY: a non-null old pointer came from Box::into_raw in an earlier publish and was
        // swapped out just now, so this is its only owner.
        (!old.is_null()).then(|| unsafe { Box::from_raw(old) })
    }
}

impl Default for PublishedCodeRanges {
    fn default() -> Self {
        Self::new()
    }
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

    #[test]
    fn publish_returns_the_replaced_set() {
        let published = PublishedCodeRanges::new();
        assert!(published.current().is_none());
        assert!(published.publish(CodeRanges::default()).is_none());
        assert!(published.current().is_some());
        assert!(published.publish(CodeRanges::default()).is_some());
    }
}
