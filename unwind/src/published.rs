//! An immutable value published to signal handlers without locks.
//!
//! The drain thread swaps a new value in with [`Published::publish`]; handlers read the current
//! one with [`Published::current`] inside their seqlock critical section. Invariant: a replaced
//! value is dropped only after a generation advance that began after the swap has completed
//! (every seqlock was seen even or moved), because only then can no handler still use it.

use std::sync::atomic::{AtomicPtr, Ordering};

pub struct Published<T> {
    current: AtomicPtr<T>,
}

impl<T> Published<T> {
    pub const fn new() -> Self {
        Published { current: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The current value, if one was published. Async-signal-safe.
    ///
    /// The reference must not outlive the caller's seqlock critical section (module invariant).
    pub fn current(&self) -> Option<&T> {
        let pointer = self.current.load(Ordering::Acquire);
        // SAFETY: a published pointer comes from Box::into_raw and is only dropped by its
        // publisher after a full generation advance, which waits for every handler to leave its
        // critical section; callers hold the reference only within that section.
        unsafe { pointer.as_ref() }
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
        assert!(published.current().is_none());
        assert!(published.publish(1u32).is_none());
        assert_eq!(published.current(), Some(&1));
        assert_eq!(published.publish(2).map(|b| *b), Some(1));
        assert_eq!(published.current(), Some(&2));
    }
}
