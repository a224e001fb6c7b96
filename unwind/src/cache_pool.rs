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
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

struct PooledCache {
    in_use: AtomicBool,
    cache: UnsafeCell<DwarfCache>,
    /// `None` when it could not be mapped: walks with this cache then need room on the
    /// handler's stack.
    stack: Option<WalkStack>,
}

/// The pool grows, never shrinks: a short single-threaded process pays for two caches, not
/// for one per possible concurrent walk.
///
/// Invariant: `slots[..filled]` hold caches that live as long as the pool (each is written
/// once, before `filled` is raised past it with Release ordering); the slots after are null.
/// Growers take `growing` (never the handler, which only reads), a flag rather than a mutex: a
/// forked child inherits it set when another thread of the parent was growing the pool at the
/// fork, and clears it (`release_all_after_fork`), since that thread does not exist there.
/// (With a mutex, such a child hung at its first growth.) A grower interrupted by the fork may
/// have written slots past `filled`: the child's growth writes them again.
pub struct CachePool {
    slots: Box<[AtomicPtr<PooledCache>]>,
    filled: AtomicUsize,
    growing: AtomicBool,
}

// SAFETY: a cache is only reached through a CacheLease, which holds the cache's `in_use` flag
// (claimed by compare-exchange), so at most one thread uses each cache at a time; slots are
// written once before they are published through `filled`.
unsafe impl Sync for CachePool {}
// SAFETY: the caches are plain data owned by the pool.
unsafe impl Send for CachePool {}

impl CachePool {
    /// A pool of `count` caches that can grow to `capacity` (not in the handler: allocates
    /// ~33 KB a cache).
    pub fn new(count: usize, capacity: usize) -> CachePool {
        let capacity = capacity.max(count).max(1);
        let pool = CachePool {
            slots: (0..capacity).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            filled: AtomicUsize::new(0),
            growing: AtomicBool::new(false),
        };
        pool.grow_to(count.max(1));
        pool
    }

    /// Adds caches until the pool holds `count` (at most its capacity). Not in the handler
    /// (allocates and locks).
    pub fn grow_to(&self, count: usize) {
        if self.len() >= count.min(self.slots.len()) {
            return; // every pthread_create asks: most find the pool big enough
        }
        while self.growing.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::thread::yield_now();
        }
        // Cleared on the way out, also by a panic (an allocation that failed).
        struct Grown<'a>(&'a AtomicBool);
        impl Drop for Grown<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _grown = Grown(&self.growing);
        let filled = self.filled.load(Ordering::Relaxed);
        let target = count.min(self.slots.len());
        for slot in &self.slots[filled.min(target)..target] {
            let stack = if SWITCHES_STACKS { WalkStack::map() } else { None };
            let pooled = Box::new(PooledCache { in_use: AtomicBool::new(false), cache: UnsafeCell::new(DwarfCache::new_in()), stack });
            slot.store(Box::into_raw(pooled), Ordering::Relaxed);
        }
        if target > filled {
            self.filled.store(target, Ordering::Release);
        }
    }

    /// The caches published so far. Async-signal-safe.
    fn caches(&self) -> impl Iterator<Item = &PooledCache> {
        let filled = self.filled.load(Ordering::Acquire);
        // SAFETY: slots below `filled` point to caches that live as long as the pool
        // (invariant above); the Acquire load orders their writes before these reads.
        self.slots[..filled.min(self.slots.len())].iter().map(|slot| unsafe { &*slot.load(Ordering::Relaxed) })
    }

    pub fn len(&self) -> usize {
        self.filled.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Claims a free cache, trying `preferred` first (a thread that keeps using the same cache
    /// keeps its rules warm). `None` when all are in use. Async-signal-safe.
    pub fn claim(&self, preferred: usize) -> Option<CacheLease<'_>> {
        let count = self.len().min(self.slots.len());
        if count == 0 {
            return None;
        }
        (0..count).map(|offset| (preferred + offset) % count).find_map(|index| {
            // SAFETY: index < filled: the slot holds a cache that lives as long as the pool.
            let pooled = unsafe { &*self.slots[index].load(Ordering::Acquire) };
            pooled.in_use.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| CacheLease { pooled })
        })
    }

    /// In a forked child: caches leased by parent threads that do not exist in the child are
    /// free again, and so is the pool's growth. Only flags that are set are written: the child
    /// copies each page it writes.
    pub fn release_all_after_fork(&self) {
        self.caches().filter(|pooled| pooled.in_use.load(Ordering::Relaxed)).for_each(|pooled| pooled.in_use.store(false, Ordering::Release));
        if self.growing.load(Ordering::Relaxed) {
            self.growing.store(false, Ordering::Release);
        }
    }
}

impl Drop for CachePool {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            let pooled = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
            if !pooled.is_null() {
                // SAFETY: each non-null slot holds a Box leaked by `grow_to`, freed once here;
                // the pool is dropped only when no handler can hold it (Published's rule).
                drop(unsafe { Box::from_raw(pooled) });
            }
        }
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
        let pool = CachePool::new(2, 2);
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

    #[test]
    fn a_grown_pool_hands_out_its_new_caches() {
        let pool = CachePool::new(1, 3);
        let first = pool.claim(0).expect("free");
        assert!(pool.claim(0).is_none(), "one cache");
        pool.grow_to(5);
        assert_eq!(pool.len(), 3, "capped at the capacity");
        let second = pool.claim(0).expect("a new one");
        let third = pool.claim(2).expect("the last one");
        assert!(pool.claim(1).is_none());
        drop((first, second, third));
        pool.grow_to(2);
        assert_eq!(pool.len(), 3, "never shrinks");
    }

    /// A child forked while another thread of the parent was growing the pool inherits the
    /// growth under way; that thread is not in the child, which must still grow it.
    #[test]
    fn a_forked_child_grows_the_pool_a_vanished_thread_was_growing() {
        let pool = CachePool::new(1, 3);
        pool.growing.store(true, Ordering::Release); // the parent's grower, at the fork
        pool.release_all_after_fork();
        pool.grow_to(2);
        assert_eq!(pool.len(), 2);
        pool.grow_to(3);
        assert_eq!(pool.len(), 3, "and again: the growth let go of the flag");
    }
}
