//! The advance protocol (drain thread side): the next generation published, then the wait
//! until no thread can still write into the closed one.

use crate::consumer_turn::ConsumerTurn;
use crate::generation_number::GENERATION;
use crate::registry::Registry;
use crate::seqlock::ThreadSeqlock;
use crate::sync::{fence, Ordering};
use std::time::{Duration, Instant};

/// How an advance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The generation that was closed; its rings (`old % 2`) may now be drained completely.
    pub closed: u64,
    /// Threads still inside their critical section when the wait gave up.
    pub writers_still_inside: usize,
}

impl Advance {
    /// True when every thread was seen outside its critical section after the advance began:
    /// what was retired before it may be released (invariant 6 of the crate). False when the
    /// wait ran out of patience: releases are deferred to a later advance, never done now.
    pub fn completed(&self) -> bool {
        self.writers_still_inside == 0
    }
}

/// Moves to the next generation (or to 0, off, when `stop`), then waits until no thread can
/// still be writing into the closed one: every registered thread's seqlock is seen even, or
/// seen to move. Drain thread only (or the exiting thread once the drain thread is stopped).
///
/// The wait is bounded by `patience`; a thread that stays inside longer (stopped by a
/// debugger, say) is counted, its late record lands in a ring that is drained later, and the
/// advance is not [`Advance::completed`]: nothing retired may be released on its account.
pub fn advance(registry: &Registry, stop: bool, patience: Duration) -> Advance {
    advance_past(registry.live_slots().map(|slot| &slot.seqlock), stop, patience)
}

/// [`advance`] over the seqlocks of `threads` (the registry's live slots).
pub fn advance_past<'a>(threads: impl Iterator<Item = &'a ThreadSeqlock>, stop: bool, patience: Duration) -> Advance {
    let _turn = ConsumerTurn::take();
    let closed = GENERATION.load(Ordering::SeqCst);
    GENERATION.store(if stop || closed == 0 { 0 } else { closed + 1 }, Ordering::SeqCst);
    Advance { closed, writers_still_inside: wait_for_seqlocks(threads, patience) }
}

/// Waits until every thread that was inside its seqlock critical section when this was called
/// has left it (its sequence is even or has moved). Returns how many were still inside when
/// `patience` ran out. Not for the handler.
pub fn wait_for_critical_sections(registry: &Registry, patience: Duration) -> usize {
    wait_for_seqlocks(registry.live_slots().map(|slot| &slot.seqlock), patience)
}

/// [`wait_for_critical_sections`] over the seqlocks of `threads`.
pub fn wait_for_seqlocks<'a>(threads: impl Iterator<Item = &'a ThreadSeqlock>, patience: Duration) -> usize {
    // The caller's store (the new generation, a dlclose's unload flag) is ordered before the
    // seqlock reads: the writers' side of the Dekker pair is in `ThreadSeqlock::enter`.
    fence(Ordering::SeqCst);
    let deadline = Instant::now() + patience;
    let mut writers_still_inside = 0;
    for seqlock in threads {
        let seen = seqlock.sequence();
        if seen & 1 == 0 {
            continue;
        }
        while seqlock.sequence() == seen {
            if Instant::now() >= deadline {
                writers_still_inside += 1;
                break;
            }
            crate::sync::yield_now();
        }
    }
    writers_still_inside
}
