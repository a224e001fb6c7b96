//! Wall-clock mode's sampler, run by the drain thread at `SIGTRACE_WALL_HZ`: every thread
//! inside an interposed blocking call (`sigprof::blocking`) gets a blocked sample standing for
//! the wall time since the previous tick, with the stack above its call site. A blocked thread
//! is never signalled: its stack is copied with `process_vm_readv` (which cannot fault) and
//! walked from the registers its wrapper saved, with the DWARF unwinder. Running threads are
//! sampled by their CPU timers as in `cpu` mode.
//!
//! A thread still in the same call as at the previous tick (the same episode) keeps the stack
//! walked then: the frames above a call site cannot change while the thread stays in the call.
//! A thread in a new call at the same call site (same call, pc, sp and frame pointer: a loop
//! around `sleep`) reuses it too. So many idle threads cost a few loads each per tick.

use crate::thread_state::{SampleState, ThreadState};
use sigprof::blocking::Blocked;
use sigprof::registry::SlotState;
use sigprof::Registry;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use unwind::dwarf::{walk_dwarf_with_reads, DwarfCache};
use unwind::memory::read_word_via_kernel;
use unwind::{Regs, UnwindSnapshot, WalkMethod};

/// Bytes of a blocked thread's stack copied for a walk (deeper frames are read one word at a
/// time through the kernel).
const STACK_COPY_BYTES: usize = 64 * 1024;
/// Bytes below the saved stack pointer a CFI rule may read (the x86_64 red zone).
const RED_ZONE: u64 = 128;

/// A blocked sample for the generation being built.
pub struct BlockedSample<'a> {
    pub tid: u32,
    pub time_ns: u64,
    /// Leaf first; the leaf is the call site in the caller of the interposed function.
    pub frames: &'a [u64],
    pub walk: u8,
    /// Sampling periods of wall time.
    pub weight: u32,
    pub state: SampleState,
}

/// What the sampler keeps of one thread between ticks.
#[derive(Default)]
struct WallThread {
    tid: u32,
    /// The episode the stack below was walked in, and its call site.
    episode: u64,
    site: (u32, Regs),
    frames: Vec<u64>,
    walk: u8,
    /// Wall time not yet given out as whole periods, ns.
    remainder_ns: u64,
}

/// Counts of what the sampler did, for the generation's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WallCounters {
    /// Stacks walked (a new call site).
    pub walks: u64,
    /// Samples that reused a stack walked before.
    pub reused: u64,
    /// Walks discarded because the call returned while its stack was read.
    pub torn: u64,
    /// Ticks whose blocked threads were not sampled: the unwind tables were not ready.
    pub not_ready: u64,
}

/// The drain thread's wall-clock sampler.
pub struct WallSampler {
    tick_ns: u64,
    period_ns: u64,
    max_depth: usize,
    next_tick_ns: u64,
    last_tick_ns: u64,
    threads: HashMap<usize, WallThread>,
    copy: Vec<u64>,
    cache: Box<DwarfCache>,
    pub counters: WallCounters,
}

impl WallSampler {
    /// A sampler ticking `wall_hz` times a second whose weights are periods of `1e9 / hz` ns,
    /// starting at `start_ns` (monotonic). `None` in `cpu` mode (`wall_hz` 0).
    pub fn new(wall_hz: u32, hz: u32, max_depth: usize, start_ns: u64) -> Option<WallSampler> {
        if wall_hz == 0 {
            return None;
        }
        let tick_ns = 1_000_000_000 / u64::from(wall_hz);
        Some(WallSampler {
            tick_ns,
            period_ns: 1_000_000_000 / u64::from(hz.max(1)),
            max_depth: max_depth.max(1),
            next_tick_ns: start_ns + tick_ns,
            last_tick_ns: start_ns,
            threads: HashMap::new(),
            copy: vec![0; STACK_COPY_BYTES / 8],
            cache: Box::new(DwarfCache::new_in()),
            counters: WallCounters::default(),
        })
    }

    /// The tick period.
    pub fn tick_ns(&self) -> u64 {
        self.tick_ns
    }

    /// Samples every blocked thread if a tick is due at `now_ns`, handing each sample to `emit`.
    /// Drain thread only.
    pub fn tick(&mut self, now_ns: u64, registry: &Registry, snapshot: Option<&UnwindSnapshot>, emit: &mut impl FnMut(BlockedSample<'_>)) {
        if now_ns < self.next_tick_ns {
            return;
        }
        let since = self.last_tick_ns;
        self.last_tick_ns = now_ns;
        self.next_tick_ns = (self.next_tick_ns + self.tick_ns).max(now_ns + self.tick_ns / 2);
        let mut seen = Vec::new();
        for slot in registry.live_slots() {
            if slot.state.load() != SlotState::Active {
                continue;
            }
            let index = registry.slot_index(slot);
            let tid = slot.tid.load(Ordering::Relaxed);
            seen.push(index);
            let thread = self.threads.entry(index).or_default();
            if thread.tid != tid {
                *thread = WallThread { tid, ..WallThread::default() };
            }
            let Some(blocked) = slot.blocking.read() else { continue };
            let Some(snapshot) = snapshot else {
                self.counters.not_ready += 1;
                continue;
            };
            let fresh = thread.frames.is_empty() || (thread.episode != blocked.episode && thread.site != (blocked.call, blocked.regs));
            if fresh {
                let Some((frames, walk)) = walk_blocked(&blocked, slot.stack_bounds(), snapshot, &mut self.cache, &mut self.copy, self.max_depth) else {
                    self.counters.torn += 1;
                    continue;
                };
                // The copy and the walk are consistent only if the thread is still in that call.
                if !slot.blocking.still_in(blocked.episode) {
                    self.counters.torn += 1;
                    continue;
                }
                thread.frames = frames;
                thread.walk = walk;
                thread.site = (blocked.call, blocked.regs);
                self.counters.walks += 1;
            } else {
                self.counters.reused += 1;
            }
            thread.episode = blocked.episode;
            let started = slot.started_ns.load(Ordering::Relaxed);
            let wall_ns = now_ns.saturating_sub(since.max(started)) + thread.remainder_ns;
            let weight = wall_ns / self.period_ns;
            thread.remainder_ns = wall_ns % self.period_ns;
            if weight == 0 {
                continue;
            }
            emit(BlockedSample {
                tid,
                time_ns: now_ns,
                frames: &thread.frames,
                walk: thread.walk,
                weight: u32::try_from(weight).unwrap_or(u32::MAX),
                state: SampleState { state: ThreadState::Blocked, call: blocked.call },
            });
        }
        if seen.len() < self.threads.len() {
            seen.sort_unstable();
            self.threads.retain(|index, _| seen.binary_search(index).is_ok());
        }
    }
}

/// Walks the stack of a thread blocked as `blocked` describes, from a copy of its top. The
/// first frame (inside sigtrace's wrapper) is left out: the stack starts at the call site in
/// the wrapper's caller, given as the call instruction's address (return address − 1) so that
/// it names the calling line. `None` when nothing could be read.
fn walk_blocked(
    blocked: &Blocked,
    bounds: unwind::StackBounds,
    snapshot: &UnwindSnapshot,
    cache: &mut DwarfCache,
    copy: &mut [u64],
    max_depth: usize,
) -> Option<(Vec<u64>, u8)> {
    let low = blocked.regs.sp.checked_sub(RED_ZONE)? & !7;
    let high = if bounds.is_known() && bounds.contains(blocked.regs.sp) { bounds.hi } else { u64::MAX };
    let wanted = (high.saturating_sub(low) as usize).min(copy.len() * 8);
    let copied = copy_own_memory(low, &mut copy[..wanted / 8]);
    if copied == 0 {
        return None;
    }
    let copy_end = low + copied as u64;
    let mut read = |address: u64| {
        if !address.is_multiple_of(8) || address < low || address >= high {
            None
        } else if address + 8 <= copy_end {
            Some(copy[((address - low) / 8) as usize])
        } else {
            read_word_via_kernel(address)
        }
    };
    let mut frames = Vec::with_capacity(32);
    let mut skipped_wrapper = false;
    let mut push = |frame: u64| {
        if !skipped_wrapper {
            skipped_wrapper = true;
        } else if frames.is_empty() {
            frames.push(frame.saturating_sub(1));
        } else {
            frames.push(frame);
        }
    };
    let (_, end) = walk_dwarf_with_reads(&blocked.regs, &mut read, &snapshot.dwarf, cache, &snapshot.code, max_depth + 1, &mut push);
    if frames.is_empty() {
        return None;
    }
    Some((frames, WalkMethod::Dwarf.code(end)))
}

/// Copies our own memory from `address` into `into` with `process_vm_readv`, which stops at an
/// unmapped page instead of faulting. Returns the bytes copied (a multiple of 8 or less).
fn copy_own_memory(address: u64, into: &mut [u64]) -> usize {
    let local = libc::iovec { iov_base: into.as_mut_ptr().cast(), iov_len: into.len() * 8 };
    let remote = libc::iovec { iov_base: address as *mut libc::c_void, iov_len: into.len() * 8 };
    // SAFETY: `local` is our own writable buffer of that length; `remote` is only read, and
    // checked, by the kernel.
    let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(copied).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stops_at_unmapped_memory() {
        let words = [7u64; 16];
        let mut into = [0u64; 16];
        assert_eq!(copy_own_memory(words.as_ptr() as u64, &mut into), 128);
        assert_eq!(into, words);
        assert_eq!(copy_own_memory(8, &mut into), 0, "page zero is never mapped");
    }
}
