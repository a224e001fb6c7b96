//! The spill: in a single-threaded program with no drain thread, the sampling handler itself
//! writes its ring's records to the trace file once the ring is half full or its oldest record
//! is 20 ms old (invariant 13).
//!
//! Without a thread of sigtrace's own, the only code of sigtrace's that runs while such a
//! program computes is the handler: the program's safe points may never come (a pure CPU loop).
//! So the handler moves the ring's committed records, raw, into the trace file as one spill
//! chunk (`format::ring_record`, docs/FORMAT.md "Spill") with one `writev`, and hands their room
//! back. A spill is all system calls and copies of our own memory: `fstat` (our descriptor
//! must still be the trace file, invariant 8; its size is where the chunk starts),
//! `getrlimit` (never a write past `RLIMIT_FSIZE`), `writev` (a short or interrupted one goes
//! on with the rest), and on a failed write `ftruncate` back to the chunk's start, after which
//! spilling stops for good (records then stay in the ring until a drain, as without a spill)
//! and the reason is left for the drain work to say (`spill_fault`). A trace file deleted
//! meanwhile stops spilling at once, as does a full file.
//!
//! The handler spills only while the shim armed it ([`arm`]: one program thread, no drain
//! thread) and while no drain work of sigtrace's runs on the thread ([`ConsumerBusy`]): the
//! ring then has no other consumer (invariant 3).

use crate::ring::RingConsumer;
use crate::spill_fault::SpillFault;
use format::ring_record::{spill_preamble, TAG_SPILL};
use format::Crc32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Set while the handler may spill (single-threaded program, no drain thread).
static ARMED: AtomicBool = AtomicBool::new(false);
/// Drain work under way on the program's thread (nested uses count).
static CONSUMER_BUSY: AtomicU32 = AtomicU32::new(0);
/// Bytes and chunks spilled so far (counters of the trace, for tests and `sigtrace info`).
static SPILLED_CHUNKS: AtomicU32 = AtomicU32::new(0);

#[cfg(not(target_endian = "little"))]
compile_error!("spill chunks copy ring words as little-endian bytes");

/// Lets the handler spill (`true`: the program has one thread and sigtrace no drain thread),
/// or stops it (`false`: before the drain thread starts, after `fork` in the child).
pub fn arm(on: bool) {
    ARMED.store(on, Ordering::SeqCst);
}

/// Whether the handler may spill now.
pub fn is_armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

/// Whether the handler may spill now (armed, and no drain work runs). Async-signal-safe.
pub(crate) fn may_spill() -> bool {
    ARMED.load(Ordering::SeqCst) && CONSUMER_BUSY.load(Ordering::SeqCst) == 0
}

/// Spill chunks written so far by this process image.
pub fn chunks_written() -> u32 {
    SPILLED_CHUNKS.load(Ordering::Relaxed)
}

/// Held by every use of the drainer (the rings' consumer) outside the drain thread: a handler
/// that interrupts such work does not spill.
pub struct ConsumerBusy(());

impl ConsumerBusy {
    /// Marks drain work as under way on the calling thread until the value is dropped.
    pub fn begin() -> ConsumerBusy {
        CONSUMER_BUSY.fetch_add(1, Ordering::SeqCst);
        ConsumerBusy(())
    }
}

impl Drop for ConsumerBusy {
    fn drop(&mut self) {
        CONSUMER_BUSY.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How old the oldest record of a ring may get before the ring is spilled, ns: what a
/// `SIGKILL` can cost at most, as the drain thread's period (≤ 25 ms while samples arrive).
const SPILL_AGE_NS: u64 = 20_000_000;

/// Spills `ring` (the current generation `sequence`'s ring of thread `tid`) when it is armed,
/// no drain work runs, and the ring is half full or its oldest record is [`SPILL_AGE_NS`] older
/// than `now_ns`. Async-signal-safe.
///
/// # Safety
/// Only the ring's producer, from its handler inside its seqlock critical section (nothing
/// else writes the ring meanwhile; the consumer is idle when armed and not busy).
#[cfg(not(sigtrace_loom))]
pub(crate) unsafe fn maybe_spill(ring: RingConsumer<'_>, sequence: u64, tid: u32, now_ns: u64) {
    if !ARMED.load(Ordering::SeqCst) || CONSUMER_BUSY.load(Ordering::SeqCst) != 0 {
        return;
    }
    let (used, capacity) = ring.fill();
    let old = ring.oldest_time_ns().is_some_and(|oldest| now_ns.saturating_sub(oldest) >= SPILL_AGE_NS);
    if capacity == 0 || (used < capacity / 2 && !old) {
        return;
    }
    // SAFETY: the caller is the ring's producer, in its handler; no drain runs (checked above).
    let (first, second, head) = unsafe { ring.committed_bytes() };
    let payload_len = 16 + first.len() + second.len();
    let Ok(len) = u32::try_from(payload_len) else { return };
    let fd = crate::descriptors::trace_fd();
    let Some((start, deleted)) = file_size_if_ours(fd) else { return };
    if deleted {
        // Written there, the samples would be lost: they wait for the drain's new file.
        stop(SpillFault::Deleted);
        return;
    }
    let chunk_len = (9 + payload_len) as u64;
    if start.saturating_add(chunk_len) > file_size_limit() {
        stop(SpillFault::Write(libc::EFBIG));
        return;
    }
    let mut framing = [0u8; 5 + 16];
    framing[0] = TAG_SPILL;
    framing[1..5].copy_from_slice(&len.to_le_bytes());
    framing[5..].copy_from_slice(&spill_preamble(sequence, tid));
    let mut crc = Crc32::new();
    crc.update(&framing);
    crc.update(first);
    crc.update(second);
    let crc = crc.finish().to_le_bytes();
    let parts: [&[u8]; 4] = [&framing, first, second, &crc];
    let (written, errno) = crate::spill_fault::write_parts(fd, &parts);
    if written as u64 == chunk_len {
        if pyframes::runtime::interpreter().is_some() {
            crate::spill_code_table::enter_python_frames(first, second);
        }
        ring.release_to(head);
        SPILLED_CHUNKS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // A failed write (a full disk): the file ends after its last complete chunk again, and the
    // records stay in the ring for the drain.
    if written > 0 {
        // SAFETY: truncates our own, just checked, descriptor back to where the chunk began,
        // and puts its offset there again for the drain's next write.
        unsafe {
            libc::ftruncate(fd, start as libc::off_t);
            libc::lseek(fd, start as libc::off_t, libc::SEEK_SET);
        }
    }
    stop(SpillFault::Write(errno));
}

/// Stops spilling for good and records why, for the next drain work to say. Async-signal-safe.
fn stop(fault: SpillFault) {
    ARMED.store(false, Ordering::SeqCst);
    crate::spill_fault::record(fault);
}

/// The size of the file open as `fd`, and whether it has no name left (deleted), if it is
/// still our trace file, else `None`. Async-signal-safe.
fn file_size_if_ours(fd: i32) -> Option<(u64, bool)> {
    if fd < 0 {
        return None;
    }
    // SAFETY: stat is plain data; fstat writes it (any number is harmless to ask about).
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `stat` is valid for the call.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || (stat.st_dev, stat.st_ino) != crate::descriptors::trace_identity() {
        return None;
    }
    Some((stat.st_size as u64, stat.st_nlink == 0))
}

/// The soft `RLIMIT_FSIZE` in bytes (`u64::MAX` when unlimited). Async-signal-safe. The
/// program cannot change it between this read and the write: its one thread is the one this
/// handler interrupted.
fn file_size_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        limit.rlim_cur
    }
}
