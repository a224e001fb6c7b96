//! The fixed-capacity thread registry: one slot per sampled thread, with its seqlock, its two
//! per-generation rings and its timer.
//!
//! Slot life: FREE → CLAIMED (being set up, by the thread itself or the start-up scan) →
//! ACTIVE (sampled) → EXITED (timer disarmed; the drain thread still owns its rings) → FREE
//! (the drain thread found both rings empty after a generation advance). The rules are the
//! crate's invariants 3 (one producer, one consumer per ring) and 4 (the registry is never
//! freed; a slot is freed only when EXITED, its rings empty and its seqlock even).

use crate::blocking::BlockingState;
use crate::ring::{RingConsumer, RingProducer, SampleRing};
use crate::seqlock::{SeqlockGuard, ThreadSeqlock};
use crate::timer::{Moved, ThreadTimer};
pub use config::{Mode, UnwindChoice};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use unwind::{CachePool, CriticalSection, Published, StackBounds, UnwindSnapshot};

/// Where a slot is in its life (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotState {
    /// Unused; zero-filled memory is a free slot.
    Free = 0,
    /// Being set up, by the thread itself or the start-up scan.
    Claimed = 1,
    /// Sampled.
    Active = 2,
    /// Its thread exited and its timer is disarmed; the drain thread still owns its rings.
    Exited = 3,
}

/// A slot's [`SlotState`], shared between its thread, its handler and the drain thread: stored
/// with `Release`, loaded with `Acquire`. Decoded only here.
pub struct SlotStateCell(AtomicU8);

impl SlotStateCell {
    /// The state. Async-signal-safe.
    pub fn load(&self) -> SlotState {
        match self.0.load(Ordering::Acquire) {
            1 => SlotState::Claimed,
            2 => SlotState::Active,
            3 => SlotState::Exited,
            _ => SlotState::Free,
        }
    }

    /// Moves the slot to `state`. Async-signal-safe.
    pub fn store(&self, state: SlotState) {
        self.0.store(state as u8, Ordering::Release);
    }

    /// Moves a free slot to `Claimed`; false when it was not free.
    fn claim_if_free(&self) -> bool {
        self.0.compare_exchange(SlotState::Free as u8, SlotState::Claimed as u8, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
}

/// The value of [`CURRENT_SLOT`] for a thread whose slot was released.
const DETACHED: u32 = u32::MAX;

thread_local! {
    /// This thread's slot index + 1; 0 = not known yet (look it up by tid), `DETACHED` = none.
    /// A `const`-initialised, Drop-free thread-local: reading it never allocates or registers
    /// a destructor, so the handler may use it.
    static CURRENT_SLOT: Cell<u32> = const { Cell::new(0) };
}

/// What the sampler was configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerConfig {
    pub hz: u32,
    pub signal: i32,
    pub max_depth: usize,
    /// Words per ring (rounded up to a power of two when mapped).
    pub ring_words: usize,
    pub unwind: UnwindChoice,
    /// What the samples measure: in [`Mode::Wall`], sigtrace's own thread also samples the
    /// blocked threads, `wall_hz` times a second.
    pub mode: Mode,
    /// Wall-clock mode's ticks per second of sigtrace's own thread (unused in [`Mode::Cpu`]).
    pub wall_hz: u32,
}

/// One thread's sampling state.
pub struct ThreadSlot {
    pub state: SlotStateCell,
    pub tid: AtomicU32,
    pub seqlock: ThreadSeqlock,
    stack_lo: AtomicU64,
    stack_hi: AtomicU64,
    rings: [SampleRing; 2],
    /// Annotation events of the thread's own code (never written by the handler, so a sample
    /// taken in the middle of an annotation cannot interleave with it). Mapped on first use.
    event_rings: [SampleRing; 2],
    dropped: [AtomicU64; 2],
    /// Annotations skipped because the thread was already inside the tracer.
    pub skipped_events: AtomicU64,
    /// When the slot was claimed for its thread, and when the thread exited (monotonic ns).
    pub started_ns: AtomicU64,
    pub exited_ns: AtomicU64,
    pub timer: ThreadTimer,
    /// Set when the thread exits: its CPU time then, ns, and its name (up to 15 bytes + NUL).
    pub exit_cpu_ns: AtomicU64,
    exit_name: [AtomicU64; 2],
    /// The blocking call the thread is in (wall-clock mode; written by the thread itself).
    pub blocking: BlockingState,
}

impl ThreadSlot {
    /// The stack bounds recorded at registration. Async-signal-safe.
    pub fn stack_bounds(&self) -> StackBounds {
        StackBounds { lo: self.stack_lo.load(Ordering::Relaxed), hi: self.stack_hi.load(Ordering::Relaxed) }
    }

    /// The ring a writer holding `guard` writes into: its producer side (the guard shows the
    /// calling thread is inside its seqlock). Async-signal-safe.
    pub fn ring_for<'a>(&'a self, guard: &SeqlockGuard<'_>) -> RingProducer<'a> {
        // SAFETY: a seqlock guard is only made by the slot's own thread (`ThreadSeqlock::enter`
        // is called by its owner only), the ring's single producer (invariant 3).
        unsafe { self.rings[(guard.generation() % 2) as usize].producer() }
    }

    /// The consumer side of the ring a writer holding `guard` writes into, for the handler's
    /// spill (`spill`: the handler consumes its own ring only when no drain can).
    pub(crate) fn spill_ring<'a>(&'a self, guard: &SeqlockGuard<'_>) -> RingConsumer<'a> {
        // SAFETY: only `spill::maybe_spill` uses it, which runs only while no other consumer
        // of the ring can (invariant 13).
        unsafe { self.rings[(guard.generation() % 2) as usize].consumer() }
    }

    /// Counts a sample of `weight` periods (an event: 1) lost in the guard's generation: drops
    /// are counted in the same unit as sample weights, so recorded + dropped adds up to the
    /// CPU time. Async-signal-safe.
    pub fn count_drop(&self, guard: &SeqlockGuard<'_>, weight: u32) {
        self.dropped[(guard.generation() % 2) as usize].fetch_add(u64::from(weight), Ordering::Relaxed);
    }

    /// The event ring a writer holding `guard` writes into, mapped on first use (`mmap`,
    /// async-signal-safe). `None` if it cannot be mapped.
    pub fn event_ring_for<'a>(&'a self, guard: &SeqlockGuard<'_>, words: usize) -> Option<RingProducer<'a>> {
        let ring = &self.event_rings[(guard.generation() % 2) as usize];
        // SAFETY: as in `ring_for`.
        ring.ensure_allocated(words).then(|| unsafe { ring.producer() })
    }

    /// The consumer side of the event ring of generation `generation`, bypassing the seqlock.
    ///
    /// # Safety
    /// Only the drain thread, the rings' single consumer, may call it (invariant 3).
    pub unsafe fn drain_event_ring_of_generation(&self, generation: u64) -> RingConsumer<'_> {
        // SAFETY: the caller's contract.
        unsafe { self.event_rings[(generation % 2) as usize].consumer() }
    }

    /// The consumer side of the sample ring of generation `generation`, bypassing the seqlock.
    ///
    /// # Safety
    /// Only the drain thread, the rings' single consumer, may call it (invariant 3).
    pub unsafe fn drain_ring_of_generation(&self, generation: u64) -> RingConsumer<'_> {
        // SAFETY: the caller's contract.
        unsafe { self.rings[(generation % 2) as usize].consumer() }
    }

    /// Takes (and resets) the drop count of a closed generation. Drain thread only.
    pub fn take_dropped(&self, generation: u64) -> u64 {
        self.dropped[(generation % 2) as usize].swap(0, Ordering::Relaxed)
    }

    pub fn rings_empty(&self) -> bool {
        self.rings.iter().chain(&self.event_rings).all(SampleRing::is_empty)
    }

    /// The name recorded when the thread exited.
    pub fn exit_name(&self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.exit_name[0].load(Ordering::Relaxed).to_ne_bytes());
        bytes[8..].copy_from_slice(&self.exit_name[1].load(Ordering::Relaxed).to_ne_bytes());
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(16);
        String::from_utf8_lossy(&bytes[..len]).into_owned()
    }

    pub fn set_exit_name(&self, name: &[u8]) {
        let mut bytes = [0u8; 16];
        let len = name.len().min(15);
        bytes[..len].copy_from_slice(&name[..len]);
        self.exit_name[0].store(u64::from_ne_bytes(bytes[..8].try_into().unwrap_or_default()), Ordering::Relaxed);
        self.exit_name[1].store(u64::from_ne_bytes(bytes[8..].try_into().unwrap_or_default()), Ordering::Relaxed);
    }
}

/// The slot array, in zero-filled anonymous memory: pages are touched only as slots are used,
/// so a large capacity costs nothing at start-up. Never unmapped (crate invariant 4).
struct SlotArray {
    first: *const ThreadSlot,
    len: usize,
}

// SAFETY: the array holds only atomics and is shared exactly like `[ThreadSlot]` would be.
unsafe impl Send for SlotArray {}
// SAFETY: as above; every field of ThreadSlot is an atomic (or an array of them).
unsafe impl Sync for SlotArray {}

impl SlotArray {
    fn map(len: usize) -> Option<SlotArray> {
        let bytes = len.checked_mul(std::mem::size_of::<ThreadSlot>())?;
        // SAFETY: an anonymous private mapping, checked against MAP_FAILED.
        let memory = unsafe { libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        (memory != libc::MAP_FAILED).then(|| SlotArray { first: memory.cast(), len })
    }
}

impl std::ops::Deref for SlotArray {
    type Target = [ThreadSlot];
    fn deref(&self) -> &[ThreadSlot] {
        // SAFETY: `first` points at `len` slots of zero-filled, page-aligned memory that is never
        // unmapped; all-zero bytes are a valid FREE ThreadSlot (atomics, null pointers, zero
        // counters, state SlotState::Free = 0, disarmed timer).
        unsafe { std::slice::from_raw_parts(self.first, self.len) }
    }
}

/// All slots, the configuration and the shared handler state.
pub struct Registry {
    slots: SlotArray,
    /// One past the highest slot index ever claimed.
    high_water: AtomicUsize,
    /// Where a claim starts looking: every slot below it was taken when it was last moved
    /// (a freed slot moves it down). A hint only: a claim that finds nothing from it goes on
    /// from 0, so a start with thousands of exited slots below costs no scan of them.
    free_hint: AtomicUsize,
    pub config: SamplerConfig,
    /// Periods lost on threads without a slot: samples that arrived on one (registry full,
    /// unregistered thread), and the CPU time, in periods, of each thread the full registry
    /// left unsampled, added when it exits.
    pub dropped_no_slot: AtomicU64,
    /// Threads that found the registry full (not sampled).
    pub threads_without_slot: AtomicU64,
    /// Code ranges and the DWARF unwinder, republished by the drain thread when modules change.
    pub unwind: Published<UnwindSnapshot>,
    /// framehop caches for DWARF walks, published once by the drain thread.
    pub caches: Published<CachePool>,
    /// Non-zero while a `dlclose` may be unmapping code: the handler then reads no code bytes.
    pub code_unloading: AtomicU32,
    /// True when the process-wide `ITIMER_PROF` is our source (its signals carry `SI_KERNEL`).
    pub itimer_is_ours: AtomicBool,
    /// True once a perf event of ours may send signals (they carry `POLL_*` codes). A signal
    /// of a thread's event can still arrive after the thread closed it on its way out: it is
    /// ours all the same, never the program's.
    pub perf_is_ours: AtomicBool,
    /// Timers the storm guard re-programmed (signalled far faster than their period), and
    /// timers it stopped for their thread (a second storm, or re-programming failed).
    pub timers_reprogrammed: AtomicU64,
    pub timers_switched_off: AtomicU64,
    /// Threads `auto` moved to a perf event (they compute) and to a POSIX timer (they switch).
    pub timers_moved_to_perf: AtomicU64,
    pub timers_moved_to_posix: AtomicU64,
}

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());

impl Registry {
    /// Counts a move `auto` made (`timer.moves_to_*`), if any. Async-signal-safe.
    pub fn count_move(&self, moved: Option<Moved>) {
        match moved {
            Some(Moved::ToPerf) => self.timers_moved_to_perf.fetch_add(1, Ordering::Relaxed),
            Some(Moved::ToPosix) => self.timers_moved_to_posix.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
    }

    /// Creates the process's registry (start-up, before any timer is armed). Later calls
    /// return the existing one; `None` when memory for the slots could not be mapped.
    pub fn install(config: SamplerConfig, capacity: usize) -> Option<&'static Registry> {
        if let Some(existing) = Registry::get() {
            return Some(existing);
        }
        let registry = Box::new(Registry {
            slots: SlotArray::map(capacity.max(1))?,
            high_water: AtomicUsize::new(0),
            free_hint: AtomicUsize::new(0),
            config,
            dropped_no_slot: AtomicU64::new(0),
            threads_without_slot: AtomicU64::new(0),
            unwind: Published::new(),
            caches: Published::new(),
            code_unloading: AtomicU32::new(0),
            itimer_is_ours: AtomicBool::new(false),
            perf_is_ours: AtomicBool::new(false),
            timers_reprogrammed: AtomicU64::new(0),
            timers_moved_to_perf: AtomicU64::new(0),
            timers_moved_to_posix: AtomicU64::new(0),
            timers_switched_off: AtomicU64::new(0),
        });
        let pointer = Box::into_raw(registry);
        match REGISTRY.compare_exchange(std::ptr::null_mut(), pointer, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `pointer` was just leaked and is now owned by REGISTRY forever (crate invariant 4).
            Ok(_) => Some(unsafe { &*pointer }),
            Err(existing) => {
                // SAFETY: we lost the race; `pointer` was never shared, so we still own it. The
                // winner's pointer is never freed.
                unsafe {
                    drop(Box::from_raw(pointer));
                    Some(&*existing)
                }
            }
        }
    }

    /// The registry, if sampling was set up. Async-signal-safe.
    pub fn get() -> Option<&'static Registry> {
        // SAFETY: a non-null REGISTRY points at a leaked, never-freed Registry (crate invariant 4).
        unsafe { REGISTRY.load(Ordering::Acquire).as_ref() }
    }

    /// Index of a slot (for cache affinity). Async-signal-safe.
    pub fn slot_index(&self, slot: &ThreadSlot) -> usize {
        (slot as *const ThreadSlot as usize).wrapping_sub(self.slots.first as usize) / std::mem::size_of::<ThreadSlot>()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, index: usize) -> Option<&ThreadSlot> {
        self.slots.get(index)
    }

    /// One past the highest slot index ever claimed: every slot in use has a lower index.
    pub fn slots_in_use(&self) -> usize {
        self.high_water.load(Ordering::Acquire).min(self.slots.len())
    }

    /// Slots that are or were in use and not yet freed (ACTIVE or EXITED), with their indices.
    pub fn live_slots(&self) -> impl Iterator<Item = &ThreadSlot> {
        self.slots[..self.high_water.load(Ordering::Acquire).min(self.slots.len())]
            .iter()
            .filter(|slot| matches!(slot.state.load(), SlotState::Active | SlotState::Exited))
    }

    /// Claims a free slot for thread `tid` with `bounds` and maps its rings. Any thread, not the
    /// handler. `None` when the registry is full or memory could not be mapped.
    pub fn claim_slot(&self, tid: u32, bounds: StackBounds) -> Option<usize> {
        let ring_words = self.config.ring_words;
        let start = self.free_hint.load(Ordering::Relaxed).min(self.slots.len());
        for index in (start..self.slots.len()).chain(0..start) {
            let slot = &self.slots[index];
            if !slot.state.claim_if_free() {
                continue;
            }
            self.free_hint.store(index + 1, Ordering::Relaxed);
            if !(slot.rings[0].ensure_allocated(ring_words) && slot.rings[1].ensure_allocated(ring_words)) {
                self.free_slot(slot);
                return None;
            }
            slot.tid.store(tid, Ordering::Relaxed);
            slot.stack_lo.store(bounds.lo, Ordering::Relaxed);
            slot.stack_hi.store(bounds.hi, Ordering::Relaxed);
            slot.exit_cpu_ns.store(0, Ordering::Relaxed);
            slot.started_ns.store(crate::clock::monotonic_ns(), Ordering::Relaxed);
            slot.exited_ns.store(0, Ordering::Relaxed);
            slot.set_exit_name(b"");
            slot.blocking.reset();
            self.high_water.fetch_max(index + 1, Ordering::AcqRel);
            slot.state.store(SlotState::Active);
            return Some(index);
        }
        None
    }

    /// Makes `index` the calling thread's slot (it must have been claimed for this thread).
    pub fn attach_current_thread(&self, index: usize) {
        CURRENT_SLOT.with(|current| current.set(index as u32 + 1));
    }

    /// Forgets the calling thread's slot: later signals on this thread are ignored.
    pub fn detach_current_thread(&self) {
        CURRENT_SLOT.with(|current| current.set(DETACHED));
    }

    /// The calling thread's slot. Threads registered by the start-up scan are found by tid on
    /// their first sample and remembered. Async-signal-safe.
    pub fn current_slot(&self) -> Option<&ThreadSlot> {
        let cached = CURRENT_SLOT.with(Cell::get);
        match cached {
            DETACHED => None,
            0 => {
                // SAFETY: gettid is a plain syscall without side effects.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
                let limit = self.high_water.load(Ordering::Acquire).min(self.slots.len());
                let index = self.slots[..limit].iter().position(|slot| slot.state.load() == SlotState::Active && slot.tid.load(Ordering::Relaxed) == tid)?;
                CURRENT_SLOT.with(|current| current.set(index as u32 + 1));
                self.slots.get(index)
            }
            index_plus_one => self.slots.get(index_plus_one as usize - 1),
        }
    }

    /// Whether `slot` is EXITED with both rings empty and no handler inside: then it stays so
    /// (its thread detached from it before it was marked EXITED) and may be freed.
    pub fn exited_slot_is_drained(&self, slot: &ThreadSlot) -> bool {
        slot.state.load() == SlotState::Exited && slot.rings_empty() && slot.seqlock.sequence() & 1 == 0
    }

    /// Returns one drained EXITED slot (see [`Registry::exited_slot_is_drained`]) to FREE, between
    /// generation advances: its thread's record was taken first. The rings' consumer only (the
    /// drainer, under its lock). Returns whether it did.
    pub fn free_exited_slot(&self, slot: &ThreadSlot) -> bool {
        let _turn = crate::consumer_turn::ConsumerTurn::take();
        if !self.exited_slot_is_drained(slot) {
            return false;
        }
        self.free_slot(slot);
        true
    }

    /// Marks `slot` FREE and lets the next claim find it first.
    fn free_slot(&self, slot: &ThreadSlot) {
        slot.state.store(SlotState::Free);
        self.free_hint.fetch_min(self.slot_index(slot), Ordering::Relaxed);
    }

    /// Returns EXITED slots whose rings are drained to FREE. Drain thread only, right after a
    /// completed generation advance and a full drain of the closed generation.
    pub fn reclaim_exited_slots(&self) -> usize {
        let _turn = crate::consumer_turn::ConsumerTurn::take();
        let mut reclaimed = 0;
        for slot in self.live_slots() {
            if slot.state.load() == SlotState::Exited && slot.rings_empty() && slot.seqlock.sequence() & 1 == 0 {
                self.free_slot(slot);
                reclaimed += 1;
            }
        }
        reclaimed
    }
}

impl Registry {
    /// In a forked child, where only the calling thread exists: frees every slot, discarding the
    /// parent's unwritten samples (the parent writes them) and closing inherited perf
    /// descriptors. The caller then claims a slot for itself.
    pub fn reset_after_fork(&self) {
        for slot in self.slots[..self.high_water.load(Ordering::Acquire).min(self.slots.len())].iter() {
            slot.timer.forget_after_fork();
            // SAFETY: in the forked child only this thread exists: no producer, and the parent's
            // consumer is not in this process.
            slot.rings.iter().chain(&slot.event_rings).for_each(|ring| unsafe { ring.consumer() }.discard());
            slot.dropped.iter().for_each(|dropped| dropped.store(0, Ordering::Relaxed));
            slot.seqlock.reset_after_fork();
            slot.blocking.reset();
            slot.state.store(SlotState::Free);
        }
        self.free_hint.store(0, Ordering::Relaxed);
        self.dropped_no_slot.store(0, Ordering::Relaxed);
        self.threads_without_slot.store(0, Ordering::Relaxed);
        self.code_unloading.store(0, Ordering::Relaxed);
        // SAFETY: in the forked child only this thread exists, and nothing is retired here.
        let only_thread = unsafe { CriticalSection::new_unchecked() };
        if let Some(pool) = self.caches.current(&only_thread) {
            pool.release_all_after_fork();
        }
        CURRENT_SLOT.with(|current| current.set(0));
    }

    /// Stops every thread's timer (and the process-wide itimer). Not for the handler.
    pub fn disarm_all_timers(&self) {
        for slot in self.live_slots() {
            slot.timer.disarm();
        }
        // A process-wide itimer the program armed itself (sigtrace samples by other timers)
        // is the program's: it outlives an exec.
        if self.itimer_is_ours.load(Ordering::Relaxed) {
            let _ = crate::timer::set_process_itimer(0);
        }
    }
}
