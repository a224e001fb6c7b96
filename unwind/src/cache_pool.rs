//! A preallocated pool of framehop caches, claimed without locks by the signal handler.
//!
//! A cache is ~33 KB; giving each of thousands of threads one would cost hundreds of MB, but
//! only the threads inside the handler at the same moment need one. A sample that finds no
//! free cache falls back to frame pointers (and is counted). Each cache comes with a stack of
//! its own for the walk ([`crate::walk_stack`](mod@crate::walk_stack)): the handler may run on a small alternate
//! signal stack.

use crate::dwarf::DwarfCache;
use crate::walk_stack::{WalkStack, SWITCHES_STACKS};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

struct PooledCache {
    in_use: AtomicBool,
    cache: UnsafeCell<DwarfCache>,
    /// `None` when it could not be mapped: walks with this cache then need room on the
    /// handler's stack.
    stack: Option<WalkStack>,
}

pub struct CachePool {
    caches: Box<[PooledCache]>,
}

// SAFETY: a cache is only reached through a CacheLease, which holds the cache's `in_use` flag
// (claimed by compare-exchange), so at most one thread uses each cache at a time.
unsafe impl Sync for CachePool {}
// SAFETY: the caches are plain data owned by the pool.
unsafe impl Send for CachePool {}

impl CachePool {
    /// Allocates `count` caches (not in the handler: allocates ~33 KB each).
    pub fn new(count: usize) -> CachePool {
        let stack = || if SWITCHES_STACKS { WalkStack::map() } else { None };
        CachePool {
            caches: (0..count.max(1))
                .map(|_| PooledCache { in_use: AtomicBool::new(false), cache: UnsafeCell::new(DwarfCache::new_in()), stack: stack() })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.caches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// Claims a free cache, trying `preferred` first (a thread that keeps using the same cache
    /// keeps its rules warm). `None` when all are in use. Async-signal-safe.
    pub fn claim(&self, preferred: usize) -> Option<CacheLease<'_>> {
        let count = self.caches.len();
        (0..count).map(|offset| (preferred + offset) % count).find_map(|index| {
            let pooled = &self.caches[index];
            pooled.in_use.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| CacheLease { pooled })
        })
    }
}

impl CachePool {
    /// In a forked child: caches leased by parent threads that do not exist in the child are
    /// free again.
    pub fn release_all_after_fork(&self) {
        self.caches.iter().for_each(|pooled| pooled.in_use.store(false, Ordering::Release));
    }
}

/// Exclusive use of one pooled cache until dropped.
pub struct CacheLease<'a> {
    pooled: &'a PooledCache,
}

impl CacheLease<'_> {
    pub fn cache(&mut self) -> &mut DwarfCache {
        // SAFETY: this lease holds `in_use`, so no other reference to the cache exists.
        unsafe { &mut *self.pooled.cache.get() }
    }

    /// True when the lease has a stack of its own to walk on.
    pub fn has_stack(&self) -> bool {
        self.pooled.stack.is_some()
    }

    /// Runs `body` with the cache, on the lease's own stack when it has one (else right here).
    /// Async-signal-safe; `body` must not panic (a panic is caught and dropped).
    pub fn run_with_cache(&mut self, body: &mut dyn FnMut(&mut DwarfCache)) {
        // SAFETY: this lease holds `in_use`, so no other reference to the cache exists.
        let cache = unsafe { &mut *self.pooled.cache.get() };
        match &self.pooled.stack {
            // SAFETY: the stack belongs to this lease's cache, which only the lease holder uses.
            Some(stack) => unsafe { stack.run(&mut || body(cache)) },
            None => body(cache),
        }
    }
}

impl Drop for CacheLease<'_> {
    fn drop(&mut self) {
        self.pooled.in_use.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_exclusive_and_returned() {
        let pool = CachePool::new(2);
        let first = pool.claim(0).expect("free");
        let second = pool.claim(0).expect("the other one");
        assert!(pool.claim(1).is_none(), "both in use");
        drop(first);
        let mut third = pool.claim(1).expect("returned");
        let _ = third.cache();
        drop(second);
        drop(third);
        assert!(pool.claim(0).is_some());
    }
}
