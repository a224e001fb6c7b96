//! Checked reads of the interrupted thread's stack. Async-signal-safe.
//!
//! Invariant: a read either lies inside the thread's own stack bounds (recorded when the
//! thread was registered, never looked up in the handler) and is performed directly, or the
//! bounds are unknown and the read goes through `process_vm_readv` on our own pid, which
//! returns an error for unmapped memory instead of faulting.

/// Bytes below the stack pointer that x86_64 code may use without moving it.
const RED_ZONE: u64 = 128;

/// The `[lo, hi)` address range of a thread's stack. `lo == hi == 0` means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackBounds {
    pub lo: u64,
    pub hi: u64,
}

impl StackBounds {
    pub const UNKNOWN: StackBounds = StackBounds { lo: 0, hi: 0 };

    pub fn is_known(&self) -> bool {
        self.lo < self.hi
    }

    pub fn contains(&self, address: u64) -> bool {
        self.lo <= address && address < self.hi
    }
}

/// A view of one thread's stack for one walk.
#[derive(Debug, Clone, Copy)]
pub struct StackMemory {
    /// Reads are allowed in `[lo, hi)`; when `direct` is false they go through the kernel.
    lo: u64,
    hi: u64,
    direct: bool,
}

impl StackMemory {
    /// The view for a walk starting at `sp`. If `sp` lies outside the known bounds (an
    /// alternate signal stack, a coroutine stack) or the bounds are unknown, reads are checked
    /// by the kernel instead. Async-signal-safe.
    ///
    /// # Safety
    /// Known `bounds` must be a stack that stays mapped while the view is used (the interrupted
    /// thread's, which cannot unmap it while its handler runs): reads from `sp` up to
    /// `bounds.hi` are made directly, without the kernel's check.
    pub unsafe fn for_walk(bounds: StackBounds, sp: u64) -> StackMemory {
        if bounds.is_known() && bounds.contains(sp) {
            StackMemory { lo: sp, hi: bounds.hi, direct: true }
        } else {
            StackMemory { lo: sp, hi: u64::MAX, direct: false }
        }
    }

    /// The view for a DWARF walk: like [`StackMemory::for_walk`], but also the 128-byte red
    /// zone below `sp`, which epilogue rules may read (it is mapped: the kernel placed the
    /// signal frame below it on this very stack). Async-signal-safe.
    ///
    /// # Safety
    /// As for [`StackMemory::for_walk`].
    pub unsafe fn for_dwarf_walk(bounds: StackBounds, sp: u64) -> StackMemory {
        // SAFETY: the caller's contract is ours.
        let view = unsafe { StackMemory::for_walk(bounds, sp) };
        let lo = if view.direct { sp.saturating_sub(RED_ZONE).max(bounds.lo) } else { sp.saturating_sub(RED_ZONE) };
        StackMemory { lo, ..view }
    }

    /// True when `[address, address + 8)` may be read: 8-aligned, at or above the stack
    /// pointer the walk started from, below the top of the stack.
    #[inline]
    pub fn may_read(&self, address: u64) -> bool {
        address.is_multiple_of(8) && address >= self.lo && address.checked_add(8).is_some_and(|end| end <= self.hi)
    }

    /// Reads the 8-byte word at `address`, or `None` when it is outside the stack or unmapped.
    /// Async-signal-safe.
    #[inline]
    pub fn read_word(&self, address: u64) -> Option<u64> {
        if !self.may_read(address) {
            return None;
        }
        if self.direct {
            // SAFETY: `may_read` checked that the aligned word lies in [sp, stack_hi) of the
            // interrupted thread's own stack, which stays mapped while the thread is in its handler.
            Some(unsafe { std::ptr::read_volatile(address as *const u64) })
        } else {
            read_word_via_kernel(address)
        }
    }
}

/// Reads 8 bytes of our own memory through `process_vm_readv`, which fails with `EFAULT` (or a
/// short count) on unmapped memory instead of raising a signal. Async-signal-safe.
pub fn read_word_via_kernel(address: u64) -> Option<u64> {
    let mut value: u64 = 0;
    let local = libc::iovec { iov_base: (&mut value as *mut u64).cast(), iov_len: 8 };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: 8 };
    // SAFETY: `local` points at our own 8-byte stack variable; `remote` is only read by the
    // kernel, which checks it. getpid and process_vm_readv are plain syscalls.
    let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (copied == 8).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_aligned() {
        let words = [1u64, 2, 3, 4];
        let lo = words.as_ptr() as u64;
        let bounds = StackBounds { lo, hi: lo + 32 };
        // SAFETY: the bounds are the test's own live buffer.
        let memory = unsafe { StackMemory::for_walk(bounds, lo + 8) };
        assert_eq!(memory.read_word(lo + 8), Some(2));
        assert_eq!(memory.read_word(lo + 24), Some(4));
        assert_eq!(memory.read_word(lo), None, "below the stack pointer");
        assert_eq!(memory.read_word(lo + 32), None, "above the top");
        assert_eq!(memory.read_word(lo + 9), None, "unaligned");
    }

    #[test]
    fn unknown_bounds_read_through_the_kernel() {
        let word = 0xdead_beef_u64;
        let address = &word as *const u64 as u64;
        // SAFETY: unknown bounds: every read is checked by the kernel.
        let memory = unsafe { StackMemory::for_walk(StackBounds::UNKNOWN, address) };
        assert_eq!(memory.read_word(address), Some(0xdead_beef));
        assert_eq!(read_word_via_kernel(8), None, "page zero is never mapped");
    }
}
