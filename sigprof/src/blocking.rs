//! Wall-clock mode: what a thread publishes when it enters a blocking call, for sigtrace's own
//! thread to sample it without ever signalling it.
//!
//! The owning thread is the only writer; the drain thread reads. A sequence number guards the
//! fields as a seqlock with one writer (crate invariant 2's fences): odd while they are being
//! written, even when they are stable. `call` is non-zero while the thread is inside the call
//! they describe. A reader that sees the same even number before and after reading the fields
//! (and the stack above the call site, which cannot change while the thread stays inside the
//! call) has a consistent sample; any other second value means the call returned meanwhile,
//! and the sample is discarded.
//!
//! Every call is described as it begins, even one made inside another (by a signal handler
//! that interrupted a blocking call): its return then leaves the thread described as in no call,
//! and the wall-clock sampler finds the outer call by other means. So a call left without its
//! return being seen (a `longjmp` out of a handler) is described only until the thread's next
//! interposed call. A signal handler's call made while the fields are being written describes
//! nothing.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use unwind::Regs;

/// The blocking call a thread is in, published for the wall-clock sampler.
#[derive(Default)]
pub struct BlockingState {
    sequence: AtomicU64,
    call: AtomicU32,
    since_ns: AtomicU64,
    pc: AtomicU64,
    sp: AtomicU64,
    fp: AtomicU64,
}

/// A consistent read of a thread inside a blocking call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// The episode's sequence number: pass it to [`BlockingState::still_in`].
    pub episode: u64,
    /// The call's code (`format::CALLS`).
    pub call: u32,
    /// When the thread entered the call (`CLOCK_MONOTONIC_COARSE`, ns: behind the fine clock by
    /// up to a scheduler tick).
    pub since_ns: u64,
    /// The registers at the call site (in the interposing function).
    pub regs: Regs,
}

impl BlockingState {
    /// Publishes that the calling thread enters `call` (non-zero) with `regs`. Returns false,
    /// publishing nothing, when it interrupted its own thread's writing of these fields (a
    /// signal handler's call): only then must [`BlockingState::leave`] not follow.
    /// Owning thread only (or its signal handlers). Async-signal-safe: plain stores.
    #[inline]
    pub fn enter(&self, call: u32, regs: Regs, now_ns: u64) -> bool {
        let Some(sequence) = self.begin_write() else { return false };
        self.call.store(call, Ordering::Relaxed);
        self.since_ns.store(now_ns, Ordering::Relaxed);
        self.pc.store(regs.pc, Ordering::Relaxed);
        self.sp.store(regs.sp, Ordering::Relaxed);
        self.fp.store(regs.fp, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
        true
    }

    /// Publishes that the call [`BlockingState::enter`] described returned. Owning thread only.
    /// Async-signal-safe.
    #[inline]
    pub fn leave(&self) {
        let Some(sequence) = self.begin_write() else { return };
        self.call.store(0, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }

    /// Makes the sequence odd for a write; `None` when it is odd already (a write of this very
    /// thread was interrupted by the signal handler that calls this).
    #[inline]
    fn begin_write(&self) -> Option<u64> {
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence % 2 == 1 {
            return None;
        }
        self.sequence.store(sequence + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        Some(sequence)
    }

    /// The call the thread is blocked in, or `None` when it is in none (or is entering one).
    /// Any thread (the wall-clock sampler).
    pub fn read(&self) -> Option<Blocked> {
        let episode = self.sequence.load(Ordering::Acquire);
        if episode % 2 == 1 {
            return None;
        }
        let blocked = Blocked {
            episode,
            call: self.call.load(Ordering::Relaxed),
            since_ns: self.since_ns.load(Ordering::Relaxed),
            regs: Regs { pc: self.pc.load(Ordering::Relaxed), sp: self.sp.load(Ordering::Relaxed), fp: self.fp.load(Ordering::Relaxed), lr: 0 },
        };
        (self.still_in(episode) && blocked.call != 0).then_some(blocked)
    }

    /// True when the thread is still inside the call of `episode`: everything read since
    /// [`BlockingState::read`] returned it (its fields, the stack above the call site) is
    /// consistent. Any thread.
    pub fn still_in(&self, episode: u64) -> bool {
        fence(Ordering::Acquire);
        self.sequence.load(Ordering::Relaxed) == episode
    }

    /// Forgets any call (a slot claimed for a new thread, or a forked child's only thread).
    /// Not while the owning thread may be inside an interposed call.
    pub fn reset(&self) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.call.store(0, Ordering::Relaxed);
        self.sequence.store((sequence + 1) & !1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(pc: u64) -> Regs {
        Regs { pc, sp: 0x7000, fp: 0x7100, lr: 0 }
    }

    #[test]
    fn an_episode_is_read_while_it_lasts_and_not_after() {
        let state = BlockingState::default();
        assert_eq!(state.read(), None, "outside any call");
        assert!(state.enter(3, regs(0x1234), 99));
        let blocked = state.read().expect("inside the call");
        assert_eq!((blocked.call, blocked.since_ns, blocked.regs), (3, 99, regs(0x1234)));
        assert!(state.still_in(blocked.episode));
        state.leave();
        assert!(!state.still_in(blocked.episode), "the call returned");
        assert_eq!(state.read(), None);
        assert!(state.enter(4, regs(0x5678), 100));
        let next = state.read().expect("the next call");
        assert_ne!(next.episode, blocked.episode, "a new episode is told apart from the last");
    }

    #[test]
    fn a_call_inside_another_describes_itself_and_then_no_call() {
        let state = BlockingState::default();
        assert!(state.enter(3, regs(1), 1));
        assert!(state.enter(5, regs(2), 2), "a handler's call inside the blocking one");
        assert_eq!(state.read().map(|blocked| blocked.call), Some(5));
        state.leave();
        assert_eq!(state.read(), None, "the outer call is found by other means");
        state.leave();
        assert_eq!(state.read(), None);
    }

    #[test]
    fn a_call_left_without_its_return_is_replaced_by_the_next() {
        let state = BlockingState::default();
        assert!(state.enter(3, regs(1), 1));
        // longjmp: no leave.
        assert!(state.enter(4, regs(2), 2));
        assert_eq!(state.read().map(|blocked| blocked.call), Some(4));
    }

    #[test]
    fn reset_leaves_no_call_behind() {
        let state = BlockingState::default();
        assert!(state.enter(3, regs(1), 1));
        state.reset();
        assert_eq!(state.read(), None);
        assert!(state.enter(3, regs(1), 1), "a new call can be described");
    }
}
