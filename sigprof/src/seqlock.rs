//! The per-thread seqlock that tells the drain thread when a thread may still be writing into
//! the previous generation's ring.
//!
//! Only the owning thread (normal code or its signal handler) changes its seqlock. An odd value
//! means "inside the tracer, holding `held_generation`". The generation is read *after* the
//! seqlock becomes odd, and the drain thread stores the new generation *before* it reads the
//! seqlocks, each side with a `SeqCst` fence between its store and its load (Dekker): so either
//! the writer saw the new generation, or the drain thread sees it odd and waits for it to move.
//! See `generation::advance`. Fences rather than `SeqCst` accesses alone: the model checker
//! (loom, `tests/loom.rs`) implements the fences' guarantee, not the accesses'.

use crate::generation_number::current_generation;
use crate::sync::{fence, AtomicU64, Ordering};
use unwind::CriticalSection;

pub struct ThreadSeqlock {
    sequence: AtomicU64,
    held_generation: AtomicU64,
}

/// Proof that the current thread is inside its seqlock, carrying the generation it may write.
/// The per-generation rings are reached only through it, and published values
/// (`unwind::Published::current`) only through its [`SeqlockGuard::critical_section`].
pub struct SeqlockGuard<'a> {
    lock: &'a ThreadSeqlock,
    generation: u64,
    /// False when the lock was already held by this thread (re-entry): dropping releases nothing.
    owns_lock: bool,
    /// Handed out by reference, so that what is read through it cannot outlive the guard.
    critical_section: CriticalSection,
}

impl ThreadSeqlock {
    pub fn new() -> Self {
        ThreadSeqlock { sequence: AtomicU64::new(0), held_generation: AtomicU64::new(0) }
    }

    /// Enters the critical section on the current thread. If the thread is already inside it
    /// (a signal landed while it was emitting another event) the held generation is reused and
    /// the lock is not taken again. Async-signal-safe. Must only be called by the thread that
    /// owns this seqlock.
    pub fn enter(&self) -> SeqlockGuard<'_> {
        if self.sequence.load(Ordering::Relaxed) & 1 == 1 {
            let generation = self.held_generation.load(Ordering::Relaxed);
            // SAFETY: the thread is inside its critical section already (odd seqlock), and stays
            // in it while this guard lives (the outer guard drops after it).
            return SeqlockGuard { lock: self, generation, owns_lock: false, critical_section: unsafe { CriticalSection::new_unchecked() } };
        }
        self.sequence.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let generation = current_generation();
        self.held_generation.store(generation, Ordering::Relaxed);
        // SAFETY: the seqlock is odd from here until this guard drops; reclamation waits for it
        // to be even or to move (sigprof invariant 6).
        SeqlockGuard { lock: self, generation, owns_lock: true, critical_section: unsafe { CriticalSection::new_unchecked() } }
    }

    /// Enters the critical section unless this thread is already inside it (then `None`: the
    /// caller skips its event and counts the skip, as re-entrant emitters other than the
    /// sampling handler must). Async-signal-safe. Only the owning thread calls it.
    pub fn try_enter(&self) -> Option<SeqlockGuard<'_>> {
        if self.sequence.load(Ordering::Relaxed) & 1 == 1 {
            return None;
        }
        Some(self.enter())
    }

    /// Makes the lock even again in a forked child: a thread that was inside its critical section
    /// in the parent does not exist in the child.
    pub fn reset_after_fork(&self) {
        self.sequence.store(0, Ordering::SeqCst);
    }

    /// The sequence value, for the drain thread's wait. Any thread.
    pub fn sequence(&self) -> u64 {
        self.sequence.load(Ordering::SeqCst)
    }
}

impl Default for ThreadSeqlock {
    fn default() -> Self {
        Self::new()
    }
}

impl SeqlockGuard<'_> {
    /// The generation this critical section writes into; 0 means tracing is off.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This critical section, for reading published values (`unwind::Published::current`): a
    /// reference read through it cannot outlive the guard (invariant 6, checked by the
    /// compiler). Async-signal-safe; costs nothing.
    pub fn critical_section(&self) -> &CriticalSection {
        &self.critical_section
    }
}

impl Drop for SeqlockGuard<'_> {
    fn drop(&mut self) {
        if self.owns_lock {
            self.lock.sequence.fetch_add(1, Ordering::Release);
        }
    }
}
