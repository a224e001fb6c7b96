//! The handler's half: find the interrupted thread's own `PyThreadState` and walk its frame
//! chain into the sample record. Async-signal-safe throughout: no allocation, no lock, no
//! panicking path; every read either copies (a fault-recovering read, or `process_vm_readv`:
//! faults become errors) or lies in memory proven mapped:
//!
//! * the thread's own stack, inside the bounds the registry knows;
//! * the thread's current data-stack chunk: CPython allocates each chunk (≥ 16 KiB) before it
//!   stores it in `tstate->datastack_chunk`, and stores the previous chunk there before it
//!   frees one (`_PyThreadState_PopFrame`; `tstate_delete_common` stores NULL first), so the
//!   chunk the thread state names at any instant is mapped — and only this thread changes it.
//!
//! The thread state itself and everything else (generator frames, older chunks, 3.9 and 3.10's
//! heap frames) is copied: by a fault-recovering read ([`crate::probe`]) where one is allowed,
//! else by `process_vm_readv`.
//! The walk is bounded: at most `max_frames` frames and [`MAX_COPIES`] system calls.

use crate::layout::{Layout, DATA_STACK_CHUNK_HEADER, DATA_STACK_CHUNK_SIZE, MAX_FRAME_SIZE, MAX_TSTATE_SIZE};
use crate::probe::Session;
use crate::read::{copy, copy_mapped, u64_at};
use crate::record::{check_of, RawFrame, MARKER};
use std::sync::atomic::{AtomicU64, Ordering};

/// Thread-state cache: by tid modulo its size, the address of the thread's `PyThreadState`, or
/// a "none here" entry when a scan of the lists found none: the sum of their heads with its low
/// byte replaced by (walks since the first scan that found none) << 1 | 1. Entries are only
/// hints: every use checks the thread state's `thread_id` again.
const CACHE_SIZE: usize = 1024;
/// The longest a "none here" entry of `TSTATES` answers, in walks, before the thread's state is
/// looked for again (a power of two, at most 64: the count takes the entry's low byte). The
/// first looks come sooner, after 1, 2, 4, … walks (see [`looks_again_after`]).
const NONE_HERE_WALKS: u64 = 64;
const _: () = assert!(NONE_HERE_WALKS.is_power_of_two() && (2 * NONE_HERE_WALKS - 1) << 1 < 0x100, "the count fits the low byte");
static TSTATES: [AtomicU64; CACHE_SIZE] = [const { AtomicU64::new(0) }; CACHE_SIZE];

/// By tid modulo `CACHE_SIZE`, the thread's `pthread_t` packed with its tid
/// ([`remember_pthread`]), as the handler last saw them: how the drain thread finds the
/// `PyThreadState` of a thread it did not interrupt.
static PTHREADS: [AtomicU64; CACHE_SIZE] = [const { AtomicU64::new(0) }; CACHE_SIZE];
/// Bits of a packed entry's tid (`pid_max` is at most 2²²), and the alignment of a glibc
/// `pthread_t` (the address of its 64-byte aligned thread descriptor).
const TID_BITS: u32 = 22;
const PTHREAD_ALIGN_BITS: u32 = 6;

/// Remembers `pthread` as the `pthread_t` of thread `tid` (one store when it changed; nothing
/// when the two cannot be packed in a word). Async-signal-safe.
fn remember_pthread(tid: u32, pthread: u64) {
    let aligned = pthread.trailing_zeros() >= PTHREAD_ALIGN_BITS && pthread >> (64 - TID_BITS + PTHREAD_ALIGN_BITS) == 0;
    if !aligned || tid >> TID_BITS != 0 || tid == 0 {
        return;
    }
    let packed = (pthread >> PTHREAD_ALIGN_BITS) << TID_BITS | u64::from(tid);
    let slot = &PTHREADS[tid as usize % CACHE_SIZE];
    if slot.load(Ordering::Relaxed) != packed {
        slot.store(packed, Ordering::Relaxed);
    }
}

/// The `pthread_t` the handler last saw for thread `tid`. Async-signal-safe.
fn remembered_pthread(tid: u32) -> Option<u64> {
    let packed = PTHREADS.get(tid as usize % CACHE_SIZE)?.load(Ordering::Relaxed);
    (packed != 0 && packed & ((1 << TID_BITS) - 1) == u64::from(tid)).then_some((packed >> TID_BITS) << PTHREAD_ALIGN_BITS)
}

/// Most copies (system calls) one walk of the handler makes.
pub const MAX_COPIES: u32 = 24;
/// Most thread states a scan of the lists visits, most interpreters it looks at.
const MAX_THREADS_SCANNED: usize = 256;
const MAX_INTERPRETERS: usize = 8;

/// The most record words a walk of `max_frames` frames pushes.
pub const fn record_words(max_frames: usize) -> usize {
    1 + 2 * max_frames
}

pub(crate) struct Reader {
    copies: u32,
    budget: u32,
    stack: (u64, u64),
    chunk: u64,
    /// Fault-recovering reads allowed ([`crate::probe`]); else system calls.
    probe: Option<Session>,
}

impl Reader {
    /// Copies `out.len()` bytes at `address`: directly when proven mapped, by a
    /// fault-recovering read when a probe session is open, else by a system call while the
    /// budget lasts. Async-signal-safe.
    pub(crate) fn read(&mut self, address: u64, out: &mut [u8]) -> bool {
        let len = out.len() as u64;
        let end = address.saturating_add(len);
        let in_chunk = self.chunk != 0 && address >= self.chunk + DATA_STACK_CHUNK_HEADER && end <= self.chunk + DATA_STACK_CHUNK_SIZE;
        let in_stack = self.stack.0 != 0 && address >= self.stack.0 && end <= self.stack.1;
        if in_chunk || in_stack {
            // SAFETY: the current data-stack chunk and the thread's stack are mapped (module doc).
            unsafe { copy_mapped(address, out) };
            return true;
        }
        self.copy(address, out)
    }

    /// Copies `out.len()` bytes at `address` by a fault-recovering read, or a system call while
    /// the budget lasts. Async-signal-safe.
    pub(crate) fn copy(&mut self, address: u64, out: &mut [u8]) -> bool {
        if let Some(session) = &self.probe {
            return session.copy(address, out);
        }
        if self.copies >= self.budget {
            return false;
        }
        self.copies += 1;
        copy(address, out)
    }

    /// Copies like [`Reader::copy`] but outside the budget (the scan of the thread lists has its
    /// own bound). Async-signal-safe.
    fn copy_uncounted(&mut self, address: u64, out: &mut [u8]) -> bool {
        match &self.probe {
            Some(session) => session.copy(address, out),
            None => copy(address, out),
        }
    }

    /// True when reads are fault-recovering loads rather than system calls. Async-signal-safe.
    pub(crate) fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// The walk's probe session, while one is open. Async-signal-safe.
    pub(crate) fn session(&self) -> Option<&Session> {
        self.probe.as_ref()
    }

    /// A `u64` at `address`, as [`Reader::read`] gets it. Async-signal-safe.
    fn read_u64(&mut self, address: u64) -> Option<u64> {
        let mut word = [0u8; 8];
        self.read(address, &mut word).then(|| u64::from_le_bytes(word))
    }
}

/// Pushes the Python frames of the calling thread (the interrupted one) into a record: nothing
/// when the process runs no known CPython or the thread has no Python state, else
/// [`MARKER`] and two words per frame, innermost first, at most `max_frames` frames.
/// `tid` is the thread's id, `stack` its stack bounds (`(0, 0)` when unknown), `may_probe`
/// true when the interrupted context blocks neither SIGSEGV nor SIGBUS ([`crate::probe`]).
/// `push` gets each word with the walk's probe session while one is open, through which it may
/// copy more of the frames' objects (the spill table's snapshots) at no system call.
/// Returns the number of frames pushed. Async-signal-safe.
pub fn walk_python(tid: u32, stack: (u64, u64), may_probe: bool, max_frames: usize, push: &mut impl FnMut(u64, Option<&Session>)) -> usize {
    if crate::runtime::interpreter().is_none() {
        return 0;
    }
    let probe = if may_probe { Session::begin() } else { None };
    let mut reader = Reader { copies: 0, budget: MAX_COPIES, stack, chunk: 0, probe };
    // SAFETY: pthread_self only reads the thread pointer.
    let self_id = unsafe { libc::pthread_self() } as u64;
    remember_pthread(tid, self_id);
    walk_thread(&mut reader, tid, self_id, false, max_frames, push)
}

/// Pushes the Python frames of another thread, `tid`, blocked in a call it will not leave
/// while the caller checks (wall mode's sampler, on the drain thread), as [`walk_python`]
/// does. Every read is a `process_vm_readv` copy (nothing of another thread is proven mapped),
/// within a budget of a copy per frame and a few more. The thread's `PyThreadState` is known by
/// its `pthread_t`, which the handler remembers for each thread it samples: a thread never
/// sampled while running gets no Python frames. Not for the handler (it may take many system
/// calls); allocates nothing.
pub fn walk_python_of(tid: u32, max_frames: usize, push: &mut impl FnMut(u64)) -> usize {
    if crate::runtime::interpreter().is_none() {
        return 0;
    }
    let Some(pthread) = remembered_pthread(tid) else { return 0 };
    let budget = 2 * max_frames as u32 + 16;
    let mut reader = Reader { copies: 0, budget, stack: (0, 0), chunk: 0, probe: None };
    walk_thread(&mut reader, tid, pthread, true, max_frames, &mut |word, _| push(word))
}

/// The walk of the thread whose `pthread_t` is `pthread` (the caller, or with `remote` another
/// thread: its data-stack chunk is then copied like everything else). Async-signal-safe.
fn walk_thread(reader: &mut Reader, tid: u32, pthread: u64, remote: bool, max_frames: usize, push: &mut impl FnMut(u64, Option<&Session>)) -> usize {
    let Some((runtime, layout)) = crate::runtime::interpreter() else { return 0 };
    let mut tstate = [0u8; MAX_TSTATE_SIZE];
    let Some(tstate) = tstate.get_mut(..layout.tstate_size) else { return 0 };
    let Some(tstate_address) = find_tstate(reader, runtime, layout, tid, pthread, tstate) else { return 0 };
    if layout.frame_objects {
        let first = layout.tstate_current_frame.map_or(0, |at| u64_at(tstate, at));
        return crate::walk_objects::walk_frame_objects(reader, layout, first, max_frames, push);
    }
    if !remote {
        reader.chunk = u64_at(tstate, layout.tstate_datastack_chunk);
    }
    let mut frame_address = match layout.tstate_current_frame {
        Some(offset) => u64_at(tstate, offset),
        None => {
            let cframe = u64_at(tstate, layout.tstate_cframe);
            if cframe == 0 {
                return 0;
            }
            let current_address = cframe + layout.cframe_current_frame as u64;
            if current_address >= tstate_address && current_address + 8 <= tstate_address + layout.tstate_size as u64 {
                u64_at(tstate, (current_address - tstate_address) as usize)
            } else {
                match reader.read_u64(current_address) {
                    Some(frame) => frame,
                    None => return 0,
                }
            }
        }
    };
    let mut pushed = 0;
    let mut pending: Option<RawFrame> = None;
    let mut emit = |frame: RawFrame, pushed: &mut usize, session: Option<&Session>| {
        if *pushed == 0 {
            push(MARKER, session);
        }
        let [first, second] = frame.words();
        push(first, session);
        push(second, session);
        *pushed += 1;
    };
    let mut frame = [0u8; MAX_FRAME_SIZE];
    let Some(frame) = frame.get_mut(..layout.frame_size) else { return 0 };
    let mut visited = 0;
    while frame_address != 0 && frame_address % 8 == 0 && visited < 2 * max_frames {
        visited += 1;
        if !reader.read(frame_address, frame) {
            break;
        }
        let owner = frame.get(layout.frame_owner).copied().unwrap_or(0);
        if layout.owner_cstack == Some(owner) {
            // The entry frame of a C call into the interpreter: the frame above it started it.
            if let Some(mut above) = pending.take() {
                above.entry = true;
                emit(above, &mut pushed, reader.session());
            }
        } else {
            if let Some(above) = pending.take() {
                emit(above, &mut pushed, reader.session());
            }
            if pushed >= max_frames {
                break;
            }
            let code = u64_at(frame, layout.frame_code);
            let first_instr = code.wrapping_add(layout.code_adaptive as u64);
            let instr = u64_at(frame, layout.frame_prev_instr).wrapping_sub(first_instr) as i64;
            let instr = if (0..(1 << 33)).contains(&instr) { (instr / 2) as u32 } else { 0 };
            let entry = layout.frame_is_entry.and_then(|at| frame.get(at)).is_some_and(|&byte| byte != 0);
            pending = Some(RawFrame { code, check: check_of(u64_at(frame, layout.frame_func)), instr, entry });
        }
        frame_address = u64_at(frame, layout.frame_previous);
    }
    if let Some(last) = pending.take() {
        if pushed < max_frames {
            emit(last, &mut pushed, reader.session());
        }
    }
    pushed
}

/// The address of the calling thread's `PyThreadState` (its copy left in `tstate`), from the
/// cache or a scan of every interpreter's thread list, matched by `thread_id` (the
/// `pthread_t`, `self_id`). Async-signal-safe.
fn find_tstate(reader: &mut Reader, runtime: u64, layout: &Layout, tid: u32, self_id: u64, tstate: &mut [u8]) -> Option<u64> {
    let slot = &TSTATES[tid as usize % CACHE_SIZE];
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 && cached & 1 == 0 && reader.copy(cached, tstate) && u64_at(tstate, layout.tstate_thread_id) == self_id {
        return Some(cached);
    }
    // Each interpreter's list head; their sum keys the "none here" entry (a new thread state
    // goes at the head of its list).
    let mut heads = [0u64; MAX_INTERPRETERS];
    let mut interp = reader.read_u64(runtime + layout.runtime_interpreters_head as u64)?;
    let mut count = 0;
    while let Some(head) = heads.get_mut(count).filter(|_| interp != 0) {
        *head = reader.read_u64(interp + layout.interp_threads_head as u64)?;
        interp = reader.read_u64(interp + layout.interp_next as u64).unwrap_or(0);
        count += 1;
    }
    let heads = heads.get(..count).unwrap_or(&[]);
    // The low byte of a "none here" entry counts the walks since the scan that made it: a
    // thread state is linked into its list before its thread binds it (its thread id is set
    // then), so a thread sampled during its start-up (its start-up sample always is) is looked
    // for again soon, a thread with no Python state at ever longer intervals.
    let key = heads.iter().fold(0u64, |sum, &head| sum.wrapping_add(head)) & !0xff | 1;
    let mut walks = 0;
    if cached & !0xff == key & !0xff && cached & 1 == 1 {
        walks = looks_again_after((cached & 0xff) >> 1);
        if !walks.is_power_of_two() {
            slot.store(key | (walks << 1), Ordering::Relaxed);
            return None;
        }
    }
    let mut budget = MAX_THREADS_SCANNED;
    for &head in heads {
        let mut address = head;
        while budget > 0 && address != 0 && address % 8 == 0 && reader.copy_uncounted(address, tstate) {
            budget -= 1;
            if u64_at(tstate, layout.tstate_thread_id) == self_id {
                slot.store(address, Ordering::Relaxed);
                return Some(address);
            }
            address = u64_at(tstate, layout.tstate_next);
        }
    }
    slot.store(key | (walks << 1), Ordering::Relaxed);
    None
}

/// The walk count of a "none here" entry after one more walk that found it, `walks` before:
/// the thread's state is looked for again when the count is a power of two (after 1, 2, 4, …,
/// [`NONE_HERE_WALKS`] walks), then every `NONE_HERE_WALKS` walks (the count wraps from
/// 2 × `NONE_HERE_WALKS` back to `NONE_HERE_WALKS`). Async-signal-safe.
fn looks_again_after(walks: u64) -> u64 {
    if walks + 1 >= 2 * NONE_HERE_WALKS {
        NONE_HERE_WALKS
    } else {
        walks + 1
    }
}

/// Forgets every cached thread state (a forked child: its only thread has a new tid).
/// Async-signal-safe.
pub fn forget_thread_states() {
    // Only entries in use are written: a forked child copies each page it writes.
    for slot in TSTATES.iter().chain(&PTHREADS) {
        if slot.load(Ordering::Relaxed) != 0 {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_here_is_looked_at_again_soon_then_every_64_walks() {
        let mut walks = 0;
        let mut looks = Vec::new();
        for walk in 1..=320 {
            walks = looks_again_after(walks);
            if walks.is_power_of_two() {
                looks.push(walk);
            }
        }
        assert_eq!(looks, [1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 320]);
    }
}
