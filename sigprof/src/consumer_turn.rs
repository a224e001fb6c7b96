//! The consumer side's turn (invariant 3): one thread at a time advances the generation or
//! reclaims a slot, checked in debug builds.

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

#[cfg(all(test, debug_assertions, not(sigtrace_loom)))]
mod tests {
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
