//! The sampling signal handler. Everything reachable from [`on_sampling_signal`] is
//! async-signal-safe: no allocation, no locks, no I/O, no panicking path, `errno` preserved.

use crate::clock::{clock_ns, monotonic_ns};
use crate::registry::{Registry, ThreadSlot, UnwindChoice};
use crate::ring::RecordWriter;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use unwind::dwarf::walk_stack_dwarf;
use unwind::regs::{regs_from_ucontext, Regs};
use unwind::{walk_stack, StackBounds, StackMemory, WalkEnd, WalkMethod};

/// Stack a DWARF walk may use below the handler's frame (framehop was measured at ~20 KB).
const DWARF_STACK_NEED: u64 = 32 * 1024;

thread_local! {
    /// Depth of sampling-handler activations on this thread (for tests and debug checks).
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// True while the calling thread runs the sampling handler. Async-signal-safe.
pub fn in_signal_handler() -> bool {
    IN_HANDLER.with(Cell::get) > 0
}

/// Process CPU time at the last `itimer` sample, ns: the next one weighs the CPU time since.
static ITIMER_LAST_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// Starts the CPU-time account of the process-wide itimer (call right before arming it).
pub fn reset_itimer_account() {
    ITIMER_LAST_CPU_NS.store(clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID), Ordering::Relaxed);
}

/// `si_code` values that mark a signal as one of our timers'.
const SI_TIMER: i32 = -2;
const SI_KERNEL: i32 = 0x80;
const POLL_IN: i32 = 1;
const POLL_HUP: i32 = 6;
/// Byte offsets in `siginfo_t` (Linux, 64-bit): the timer overrun of a POSIX timer signal.
const SI_OVERRUN_OFFSET: usize = 20;

/// Installs the handler for `signal` with `SA_SIGINFO | SA_RESTART`. The handler is never
/// removed afterwards: a signal still pending from a timer must never meet `SIG_DFL`.
pub fn install(signal: i32) -> std::io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed is a valid start. The handler has the SA_SIGINFO
    // signature and sa_mask is a valid, initialised set.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sampling_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signal handler. Async-signal-safe.
extern "C" fn on_sampling_signal(_signal: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved_errno = unsafe { *errno };
    IN_HANDLER.with(|depth| depth.set(depth.get() + 1));
    if let Some(registry) = Registry::get() {
        // SAFETY: the kernel passes a valid siginfo_t and ucontext_t to an SA_SIGINFO handler.
        unsafe { record_sample(registry, info, ucontext) };
    }
    IN_HANDLER.with(|depth| depth.set(depth.get() - 1));
    // SAFETY: as above.
    unsafe { *errno = saved_errno };
}

/// The weight of a signal from one of our timers, or `None` for a signal someone else sent.
/// Async-signal-safe.
///
/// # Safety
/// `info` must be the handler's valid `siginfo_t`.
unsafe fn sample_weight(info: *const libc::siginfo_t, period_ns: u64) -> Option<u32> {
    // SAFETY: the caller guarantees `info` is valid.
    let code = unsafe { (*info).si_code };
    match code {
        SI_TIMER => {
            // SAFETY: for SI_TIMER the union holds the timer fields; the overrun lies within siginfo_t.
            let overrun = unsafe { (info as *const u8).add(SI_OVERRUN_OFFSET).cast::<i32>().read_unaligned() };
            Some(1u32.saturating_add(overrun.max(0) as u32))
        }
        POLL_IN..=POLL_HUP => Some(1),
        SI_KERNEL => {
            // The itimer fires at most once per scheduler tick and reports no overrun: weigh
            // the sample by the process CPU time since the previous one, in periods.
            let now = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
            let elapsed = now.saturating_sub(ITIMER_LAST_CPU_NS.swap(now, Ordering::Relaxed));
            let periods = (elapsed + period_ns / 2) / period_ns.max(1);
            Some(periods.clamp(1, u64::from(u32::MAX)) as u32)
        }
        _ => None,
    }
}

/// Writes one sample of the interrupted context into the current generation's ring of the
/// calling thread. Async-signal-safe.
///
/// # Safety
/// `info` and `ucontext` must be the handler's valid arguments.
unsafe fn record_sample(registry: &Registry, info: *const libc::siginfo_t, ucontext: *const libc::c_void) {
    let period_ns = 1_000_000_000 / u64::from(registry.config.hz.max(1));
    // SAFETY: forwarded from the caller.
    let Some(weight) = (unsafe { sample_weight(info, period_ns) }) else { return };
    let Some(slot) = registry.current_slot() else {
        registry.dropped_no_slot.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let guard = slot.seqlock.enter();
    if guard.generation() == 0 {
        return;
    }
    let time = monotonic_ns();
    let max_depth = registry.config.max_depth;
    let Some(mut record) = slot.ring_for(&guard).begin_record(max_depth) else {
        slot.count_drop(&guard);
        return;
    };
    // SAFETY: forwarded from the caller.
    let regs = unsafe { regs_from_ucontext(ucontext) };
    let walk = walk_into_record(registry, slot, &regs, &mut record);
    record.commit(time, weight, walk);
}

/// Walks the interrupted stack into `record` with the configured method, falling back to frame
/// pointers (and saying so in the returned walk code) when DWARF cannot run. Async-signal-safe.
fn walk_into_record(registry: &Registry, slot: &ThreadSlot, regs: &Regs, record: &mut RecordWriter<'_>) -> u8 {
    let max_depth = registry.config.max_depth;
    let bounds = slot.stack_bounds();
    let mut push = |frame| record.push_frame(frame);
    // The snapshot is used only inside this seqlock critical section (the caller holds the
    // guard), as `Published::current` requires.
    let snapshot = registry.unwind.current();
    let fallback = if registry.config.unwind == UnwindChoice::FramePointers {
        WalkMethod::FramePointers
    } else if let (Some(snapshot), Some(pool)) = (snapshot, registry.caches.current()) {
        if !stack_room_for_dwarf(bounds) {
            WalkMethod::FramePointersNoStackRoom
        } else if let Some(mut lease) = pool.claim(registry.slot_index(slot)) {
            let stack = StackMemory::for_dwarf_walk(bounds, regs.sp);
            let (_, end) = walk_stack_dwarf(regs, &stack, &snapshot.dwarf, lease.cache(), &snapshot.code, max_depth, &mut push);
            return WalkMethod::Dwarf.code(end);
        } else {
            WalkMethod::FramePointersNoCache
        }
    } else {
        WalkMethod::FramePointersNotReady
    };
    if registry.config.unwind == UnwindChoice::Dwarf {
        push(regs.pc);
        return WalkMethod::PcOnly.code(if max_depth == 1 { WalkEnd::DepthLimit } else { WalkEnd::BadFrame });
    }
    // Code bytes may be read (to name a frameless leaf's caller) unless a dlclose is under way.
    let code = snapshot.map(|s| &s.code).filter(|_| registry.code_unloading.load(Ordering::Acquire) == 0);
    let stack = StackMemory::for_walk(bounds, regs.sp);
    let (_, end) = walk_stack(regs, &stack, code, max_depth, &mut push);
    fallback.code(end)
}

/// True when at least [`DWARF_STACK_NEED`] bytes are left below the handler's own frame, on
/// the thread's stack or on the alternate signal stack it runs on. Async-signal-safe.
fn stack_room_for_dwarf(bounds: StackBounds) -> bool {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as u64;
    if bounds.contains(here) {
        return here - bounds.lo >= DWARF_STACK_NEED;
    }
    // SAFETY: sigaltstack with a null new stack only reports the current one into `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    let queried = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } == 0;
    let low = current.ss_sp as u64;
    queried && current.ss_flags & libc::SS_ONSTACK != 0 && here > low && here - low >= DWARF_STACK_NEED
}
