//! The global trace generation and the advance protocol (drain thread side).
//!
//! `gen == 0` means tracing is off. The drain thread is the only writer of the generation.

use crate::registry::Registry;
use crate::seqlock::ThreadSeqlock;
use crate::sync::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[cfg(not(sigtrace_loom))]
static GENERATION: AtomicU64 = AtomicU64::new(0);
#[cfg(sigtrace_loom)]
loom::lazy_static! {
    static ref GENERATION: AtomicU64 = AtomicU64::new(0);
}

/// The generation writers must use now. Async-signal-safe.
pub fn current_generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Starts generation 1. Start-up only.
pub fn start_tracing() {
    GENERATION.store(1, Ordering::SeqCst);
}

/// The consumer side's turn (invariant 3: the rings have one consumer; the generation one
/// writer). In debug builds, taking a turn while another is held is a bug caught on the spot;
/// in release builds a turn is nothing. Drain side only (never the handler: it may panic).
pub struct ConsumerTurn {
    _private: (),
}

/// Debug builds: set while a consumer turn is held.
#[cfg(debug_assertions)]
static CONSUMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl ConsumerTurn {
    /// Takes the turn; in debug builds, panics if another is held (two consumers at once).
    pub fn take() -> ConsumerTurn {
        #[cfg(debug_assertions)]
        {
            let held = CONSUMING.swap(true, std::sync::atomic::Ordering::Acquire);
            debug_assert!(!held, "two threads on the consumer side at once (sigprof invariant 3)");
        }
        ConsumerTurn { _private: () }
    }

    /// Forgets a turn the parent held at `fork` (its holder does not exist in the child).
    /// In the child only, before its drain thread starts.
    pub fn forget_after_fork() {
        #[cfg(debug_assertions)]
        CONSUMING.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for ConsumerTurn {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        CONSUMING.store(false, std::sync::atomic::Ordering::Release);
    }
}

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

/// Ends tracing at once without waiting (a forked child, a fatal error): later samples are
/// ignored. Any thread; async-signal-safe.
pub fn switch_off_tracing() {
    GENERATION.store(0, Ordering::SeqCst);
}

#[cfg(all(test, debug_assertions, not(sigtrace_loom)))]
mod consumer_turn_tests {
    use super::ConsumerTurn;

    /// No other test of this binary takes a turn (advances and reclaims run in the
    /// integration tests), so the turn is this test's alone.
    #[test]
    fn a_second_consumer_at_once_is_caught_in_debug_builds() {
        let first = ConsumerTurn::take();
        assert!(std::panic::catch_unwind(ConsumerTurn::take).is_err(), "a second turn while the first is held");
        drop(first);
        drop(ConsumerTurn::take());
        let held = ConsumerTurn::take();
        std::mem::forget(held);
        ConsumerTurn::forget_after_fork();
        drop(ConsumerTurn::take());
    }
}
