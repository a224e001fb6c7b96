//! An immutable value published to signal handlers without locks.
//!
//! The drain thread swaps a new value in with [`Published::publish`]; handlers read the current
//! one with [`Published::current`] inside their seqlock critical section. Invariant: a replaced
//! value is dropped only after a generation advance that began after the swap has completed
//! (every seqlock was seen even or moved), because only then can no handler still use it.
//!
//! The compiler checks the reader's half (sigprof invariant 6): [`Published::current`] takes a
//! [`CriticalSection`] and returns a reference that cannot outlive it, as crossbeam-epoch ties
//! a `Shared<'g, T>` to its `&'g Guard`. sigprof's seqlock guard hands one out for as long as
//! the thread is inside its critical section.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Proof that no published value can be released while it lives: held inside a seqlock
/// critical section (sigprof's `SeqlockGuard::critical_section`), or by the publisher itself
/// while it frees nothing. Zero-sized; [`Published::current`] ties its result to a borrow of it.
/// Not `Send`: a critical section belongs to its thread.
pub struct CriticalSection {
    _not_send: PhantomData<*const ()>,
}

impl CriticalSection {
    /// A critical section asserted by the caller. Async-signal-safe; costs nothing.
    ///
    /// # Safety
    /// While the returned value lives, no value replaced in a [`Published`] that the caller
    /// reads through it may be released: the caller is inside its thread's seqlock critical
    /// section (which the reclamation waits for), or is the values' only publisher and frees no
    /// retired value meanwhile, or is the only thread of the process (a forked child).
    pub const unsafe fn new_unchecked() -> Self {
        CriticalSection { _not_send: PhantomData }
    }
}

pub struct Published<T> {
    current: AtomicPtr<T>,
}

impl<T> Published<T> {
    pub const fn new() -> Self {
        Published { current: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The current value, if one was published, for as long as the caller's critical section
    /// lasts (the compiler checks it). Async-signal-safe.
    ///
    /// A reference kept past its section does not compile:
    /// ```compile_fail,E0597
    /// let published = unwind::Published::new();
    /// let _ = published.publish(1u32);
    /// let kept = {
    ///     // SAFETY: the only thread; nothing is released.
    ///     let section = unsafe { unwind::CriticalSection::new_unchecked() };
    ///     published.current(&section)
    /// };
    /// assert_eq!(kept, Some(&1));
    /// ```
    pub fn current<'section>(&self, _critical: &'section CriticalSection) -> Option<&'section T> {
        let pointer = self.current.load(Ordering::Acquire);
        // SAFETY: a published pointer comes from Box::into_raw and is only dropped by its
        // publisher after a full generation advance, which waits for every handler to leave its
        // critical section; the reference lives no longer than `_critical`, whose holder is
        // inside such a section (or frees nothing meanwhile: `CriticalSection::new_unchecked`).
        unsafe { pointer.as_ref() }
    }

    /// True once a value was published. Any thread (no reference is handed out).
    pub fn is_published(&self) -> bool {
        !self.current.load(Ordering::Acquire).is_null()
    }

    /// Publishes `value` and returns the replaced one, which the caller keeps alive until the
    /// next completed generation advance. Not for the handler (allocates).
    pub fn publish(&self, value: T) -> Option<Box<T>> {
        let old = self.current.swap(Box::into_raw(Box::new(value)), Ordering::AcqRel);
        // SAFETY: a non-null old pointer came from Box::into_raw in an earlier publish and was
        // swapped out just now, so this is its only owner.
        (!old.is_null()).then(|| unsafe { Box::from_raw(old) })
    }
}

impl<T> Default for Published<T> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: readers only get shared references to T, so sharing a Published<T> between threads is
// sound when T is Sync; the value moves between threads on publish, so T: Send.
unsafe impl<T: Send + Sync> Sync for Published<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_returns_the_replaced_value() {
        let published = Published::new();
        let read = |published: &Published<u32>| {
            // SAFETY: this test is the only thread and publisher; it frees nothing while the
            // section lives.
            let section = unsafe { CriticalSection::new_unchecked() };
            published.current(&section).copied()
        };
        assert!(read(&published).is_none());
        assert!(!published.is_published());
        assert!(published.publish(1u32).is_none());
        assert_eq!(read(&published), Some(1));
        assert!(published.is_published());
        assert_eq!(published.publish(2).map(|b| *b), Some(1));
        assert_eq!(read(&published), Some(2));
    }
}
