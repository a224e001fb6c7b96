//! The spill table's sets of two-word entries: lock-free linear probing in a fixed static array
//! whose first page is probed first, so that a process that enters a few dozen frames (a short
//! program) writes one page of each set and leaves the rest of it unmapped (an anonymous page's
//! first write costs a fault, ~3.5 µs on a virtual machine; a hash spread over 16 pages touched
//! them all).
//!
//! An entry goes to the rest only when its probes of the first page met no free slot, and the
//! sets are emptied only all at once ([`Slots::take`]): so an entry in the rest always finds its
//! first-page probes full, and is looked for there.
//!
//! One writer at a time, the taker only while no writer can write (the spill table's
//! invariant). A slot is claimed with a `BUSY` address and published with a Release store of
//! its plain address: a taker that met a slot in the middle of its writing would skip it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set in a slot's address while the handler writes the slot.
pub(super) const BUSY: u64 = 1 << 63;
/// Slots probed from an entry's hash in each part before it looks further.
const PROBES: usize = 32;
/// Slots in the first page.
const FIRST: usize = 4096 / std::mem::size_of::<Slot>();

/// One entry: an address (0: free) and a detail word.
struct Slot {
    code: AtomicU64,
    detail: AtomicU64,
}

impl Slot {
    const fn free() -> Slot {
        Slot { code: AtomicU64::new(0), detail: AtomicU64::new(0) }
    }
}

/// The first part's slots, one page.
#[repr(C, align(4096))]
struct FirstPage([Slot; FIRST]);

/// A set of `FIRST + REST` slots.
pub(super) struct Slots<const REST: usize> {
    first: FirstPage,
    rest: [Slot; REST],
    /// Some entry went to the rest since the last take (else the take leaves it untouched).
    rest_used: AtomicBool,
}

/// What [`Slots::claim`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    Present,
    Claimed,
    Full,
}

impl<const REST: usize> Slots<REST> {
    pub(super) const fn new() -> Self {
        Slots { first: FirstPage([const { Slot::free() }; FIRST]), rest: [const { Slot::free() }; REST], rest_used: AtomicBool::new(false) }
    }

    /// Claims a slot for `(code, detail)`, `code` non-zero and without [`BUSY`]: in the first
    /// page, else in the rest. Async-signal-safe.
    pub(super) fn claim(&self, code: u64, detail: u64) -> Claim {
        let mixed = (code ^ detail.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match claim_in(&self.first.0, (mixed >> 40) as usize, code, detail) {
            Claim::Full if REST > 0 => {
                if !self.rest_used.load(Ordering::Relaxed) {
                    self.rest_used.store(true, Ordering::Relaxed);
                }
                claim_in(&self.rest, (mixed >> 20) as usize, code, detail)
            }
            found => found,
        }
    }

    /// Hands every published entry to `each` and frees its slot (only slots in use are
    /// written). Not for the handler; only while no writer can write.
    pub(super) fn take(&self, mut each: impl FnMut(u64, u64)) {
        let rest: &[Slot] = if self.rest_used.swap(false, Ordering::Relaxed) { &self.rest } else { &[] };
        for slot in self.first.0.iter().chain(rest) {
            let code = slot.code.load(Ordering::Acquire);
            if code == 0 {
                continue;
            }
            if code & BUSY == 0 {
                each(code, slot.detail.load(Ordering::Relaxed));
            }
            slot.code.store(0, Ordering::Release);
        }
    }

    /// All slots, first page first.
    #[cfg(test)]
    pub(super) const fn capacity() -> usize {
        FIRST + REST
    }
}

/// Claims a slot for `(code, detail)` in `part` (a linear probe from `start`).
/// Async-signal-safe.
fn claim_in(part: &[Slot], start: usize, code: u64, detail: u64) -> Claim {
    for probe in 0..PROBES.min(part.len()) {
        let Some(slot) = part.get((start + probe) % part.len()) else { break };
        let held = slot.code.load(Ordering::Acquire);
        if held == code && slot.detail.load(Ordering::Relaxed) == detail {
            return Claim::Present;
        }
        if held == 0 && slot.code.compare_exchange(0, code | BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            slot.detail.store(detail, Ordering::Relaxed);
            slot.code.store(code, Ordering::Release);
            return Claim::Claimed;
        }
    }
    Claim::Full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_findable_past_the_first_page_and_are_taken_once() {
        static SET: Slots<768> = Slots::new();
        let entries: Vec<(u64, u64)> = (1..=600u64).map(|i| (0x7f00_0000_0000 + i * 64, (i << 32) | (i % 7))).collect();
        let claimed = entries.iter().filter(|&&(code, detail)| SET.claim(code, detail) == Claim::Claimed).count();
        assert!(claimed > FIRST, "{claimed} claimed: the rest takes what the first page cannot");
        assert!(SET.rest_used.load(Ordering::Relaxed));
        for &(code, detail) in &entries {
            assert_ne!(SET.claim(code, detail), Claim::Claimed, "an entry is found again wherever it went");
        }
        let mut taken = Vec::new();
        SET.take(|code, detail| taken.push((code, detail)));
        assert_eq!(taken.len(), claimed);
        assert!(!SET.rest_used.load(Ordering::Relaxed));
        let mut none = 0;
        SET.take(|_, _| none += 1);
        assert_eq!(none, 0, "taking empties the set");
        // A few entries stay on the first page.
        for &(code, detail) in &entries[..8] {
            assert_eq!(SET.claim(code, detail), Claim::Claimed);
        }
        assert!(!SET.rest_used.load(Ordering::Relaxed));
        SET.take(|_, _| {});
    }
}
