//! The sampling signal handler. Everything reachable from `on_sampling_signal` is
//! async-signal-safe: no allocation, no locks, no I/O, no panicking path, `errno` preserved.

use crate::clock::monotonic_ns;
use crate::program_signals::{forward, Forwarded};
use crate::registry::{Registry, ThreadSlot, UnwindChoice};
use crate::ring::RecordWriter;
use crate::timer::{itimer_sample_periods, period_ns, RateGuard, ThreadTimer, TimerSource, OWN_SAMPLE_TAG, POSIX_TIMER_TAG};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use unwind::{regs_from_ucontext, walk_stack, walk_stack_dwarf, CriticalSection, Regs, StackBounds, StackMemory, WalkEnd, WalkMethod};

/// Stack a DWARF walk may use below the handler's frame (framehop was measured at ~20 KB).
const DWARF_STACK_NEED: u64 = 32 * 1024;
/// Stack a frame-pointer walk may use below the handler's frame (a few hundred bytes measured;
/// kept well clear of the guard page of a small alternate or coroutine stack).
const FP_STACK_NEED: u64 = 4 * 1024;

thread_local! {
    /// Depth of sampling-handler activations on this thread (for tests and debug checks).
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// True while the calling thread runs the sampling handler. Async-signal-safe.
pub fn in_signal_handler() -> bool {
    IN_HANDLER.with(Cell::get) > 0
}

/// Samples of the process-wide itimer taken so far (on any thread).
static PROCESS_DIRECTED_SAMPLES: AtomicU32 = AtomicU32::new(0);

/// Samples of signals sent to the process, not to a thread (the itimer's), taken so far on any
/// thread: the kernel may have woken another thread for each, whose `epoll_wait` then fails with
/// `EINTR` (see the shim's `toggle_waits`). Async-signal-safe.
pub fn process_directed_samples() -> u32 {
    PROCESS_DIRECTED_SAMPLES.load(Ordering::Relaxed)
}

/// `si_code` values that mark a signal as one of our timers'.
const SI_TIMER: i32 = -2;
const SI_QUEUE: i32 = -1;
const SI_KERNEL: i32 = 0x80;
const POLL_IN: i32 = 1;
const POLL_HUP: i32 = 6;
/// Byte offsets in `siginfo_t` (Linux, 64-bit): the overrun and value of a POSIX timer signal,
/// the descriptor of a `SIGIO`-style (perf event) signal.
const SI_OVERRUN_OFFSET: usize = 20;
const SI_VALUE_OFFSET: usize = 24;
const SI_FD_OFFSET: usize = 24;

/// Installs the handler for `signal` with `SA_SIGINFO | SA_RESTART`, keeping what was installed
/// before as the program's action (signals that are not samples go there). The handler is
/// never removed afterwards: a signal still pending from a timer must never meet `SIG_DFL`.
/// `sigaction` is the real libc function (the shim interposes the exported one).
pub fn install_sampling_handler(signal: i32, sigaction: crate::program_signals::SigactionFn) -> std::io::Result<()> {
    crate::program_signals::install_handler(signal, on_sampling_signal, 0, sigaction)
}

/// What the handler does with a signal that is not a sample: the program's default action for
/// it (set by the shim: write the trace, then die as the program would have).
static DEFAULT_ACTION: AtomicUsize = AtomicUsize::new(0);

/// Sets the function that carries out the default action of a signal the program left at
/// `SIG_DFL`. Start-up only.
pub fn set_default_action(action: unsafe fn(i32, *mut libc::siginfo_t, *mut libc::c_void)) {
    DEFAULT_ACTION.store(action as usize, Ordering::Release);
}

/// The signal handler. Async-signal-safe. Samples come from our timers; any other signal of
/// this number goes to the program's own disposition.
extern "C" fn on_sampling_signal(signal: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved_errno = unsafe { *errno };
    IN_HANDLER.with(|depth| depth.set(depth.get() + 1));
    // SAFETY: the kernel passes a valid siginfo_t and ucontext_t to an SA_SIGINFO handler.
    let ours = Registry::get().is_some_and(|registry| unsafe { record_sample(registry, info, ucontext) });
    IN_HANDLER.with(|depth| depth.set(depth.get() - 1));
    // SAFETY: as above: the kernel's arguments for this signal.
    if !ours && unsafe { forward(signal, info, ucontext) } == Forwarded::Default {
        let action = DEFAULT_ACTION.load(Ordering::Acquire);
        if action != 0 {
            // SAFETY: set_default_action stored a function of this type.
            let action: unsafe fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = unsafe { std::mem::transmute(action) };
            // SAFETY: the kernel's arguments for this signal.
            unsafe { action(signal, info, ucontext) };
        }
    }
    // SAFETY: as above.
    unsafe { *errno = saved_errno };
}

/// Reads an `i32` at `offset` bytes into `siginfo_t`. Async-signal-safe.
///
/// # Safety
/// `info` must be valid and `offset + 4` within `siginfo_t`.
unsafe fn siginfo_i32(info: *const libc::siginfo_t, offset: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    unsafe { (info as *const u8).add(offset).cast::<i32>().read_unaligned() }
}

/// Which of our timers sent a signal.
#[derive(Clone, Copy)]
enum TimerSignal {
    /// A POSIX thread CPU timer, with its overrun count.
    Posix { overrun: i32 },
    /// A perf event (also after its thread closed it: the signal is ours all the same).
    Perf,
    /// The process-wide `ITIMER_PROF`.
    Itimer,
    /// A sample the thread raised on itself (see `timer::own_sample`).
    Own,
}

/// Which of our timers sent the signal `info` describes, or `None` for a signal someone else
/// sent (`kill`, the program's own timers or descriptors). `slot`, when known, also recognises
/// its own perf descriptor. No system call. Async-signal-safe.
///
/// # Safety
/// `info` must be the handler's valid `siginfo_t`.
unsafe fn timer_signal(registry: &Registry, slot: Option<&ThreadSlot>, info: *const libc::siginfo_t) -> Option<TimerSignal> {
    // SAFETY: the caller guarantees `info` is valid; the offsets read below lie within
    // siginfo_t, in the union member that `si_code` selects (timer fields for SI_TIMER,
    // si_band/si_fd for POLL_*).
    let (code, value, overrun, fd) =
        unsafe { ((*info).si_code, siginfo_i32(info, SI_VALUE_OFFSET), siginfo_i32(info, SI_OVERRUN_OFFSET), siginfo_i32(info, SI_FD_OFFSET)) };
    match code {
        SI_TIMER if value as usize == POSIX_TIMER_TAG => Some(TimerSignal::Posix { overrun }),
        SI_QUEUE if value as usize == OWN_SAMPLE_TAG => Some(TimerSignal::Own),
        POLL_IN..=POLL_HUP if registry.perf_is_ours.load(Ordering::Relaxed) || slot.is_some_and(|slot| slot.timer.perf_fd() == fd) => Some(TimerSignal::Perf),
        SI_KERNEL if registry.itimer_is_ours.load(Ordering::Relaxed) => Some(TimerSignal::Itimer),
        _ => None,
    }
}

/// The weight of a sample from `source` taken at `time` (monotonic ns), after the storm guard
/// of the thread's timer, and under `auto` the thread's move to the source that costs it least
/// (see `timer::adapt`). 0 for a stale signal of a source the thread no longer uses (a perf
/// signal still queued when the thread moved to a POSIX timer): the sample is dropped, its
/// CPU time being counted by the new source. Async-signal-safe.
fn sample_weight(registry: &Registry, slot: Option<&ThreadSlot>, source: TimerSignal, time: u64, period_ns: u64) -> u32 {
    match source {
        TimerSignal::Posix { overrun } => {
            let weight = 1u32.saturating_add(overrun.max(0) as u32);
            if let Some(slot) = slot {
                if slot.timer.source() != Some(TimerSource::Posix) {
                    return 0;
                }
                slot.timer.count_posix_moments(weight);
                guard_rate(registry, &slot.timer, period_ns);
                adapt_source(registry, slot, weight, period_ns);
            }
            weight
        }
        TimerSignal::Perf => slot.map_or(1, |slot| {
            if slot.timer.source() != Some(TimerSource::Perf) {
                return 0;
            }
            guard_rate(registry, &slot.timer, period_ns);
            let weight = slot.timer.perf_sample_periods(time, period_ns);
            adapt_source(registry, slot, weight, period_ns);
            weight
        }),
        TimerSignal::Own => slot.map_or(0, |slot| slot.timer.own_sample_weight()),
        // The itimer fires at most once per scheduler tick and reports no overrun: the sample
        // weighs the process CPU time since the previous one.
        TimerSignal::Itimer => {
            PROCESS_DIRECTED_SAMPLES.fetch_add(1, Ordering::Relaxed);
            itimer_sample_periods(period_ns)
        }
    }
}

/// Lets `auto` move the slot's thread to the source that costs it least, after a sample of
/// `weight` periods, and counts the move. Async-signal-safe.
fn adapt_source(registry: &Registry, slot: &ThreadSlot, weight: u32, period_ns: u64) {
    let tid = slot.tid.load(Ordering::Relaxed);
    registry.count_move(slot.timer.adapt(weight, period_ns, tid, registry.config.signal));
}

/// Runs the storm guard of `timer` for a sample and counts what it did.
/// Async-signal-safe.
fn guard_rate(registry: &Registry, timer: &ThreadTimer, period_ns: u64) {
    match timer.guard_rate(period_ns) {
        RateGuard::Normal => {}
        RateGuard::Reprogrammed => {
            registry.timers_reprogrammed.fetch_add(1, Ordering::Relaxed);
        }
        RateGuard::SwitchedOff => {
            registry.timers_switched_off.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes one sample of the interrupted context into the current generation's ring of the
/// calling thread. Returns false when the signal was not one of our timers'. Async-signal-safe.
///
/// # Safety
/// `info` and `ucontext` must be the handler's valid arguments.
unsafe fn record_sample(registry: &Registry, info: *const libc::siginfo_t, ucontext: *const libc::c_void) -> bool {
    if crate::generation_number::current_generation() == 0 {
        // Tracing is off (stopped, or the program entered a sandbox): only tell our signals
        // from the program's, with no system call (the slot lookup may make one) and no timer
        // bookkeeping.
        // SAFETY: forwarded from the caller.
        return unsafe { timer_signal(registry, None, info) }.is_some();
    }
    let slot = registry.current_slot();
    // SAFETY: forwarded from the caller.
    let Some(source) = (unsafe { timer_signal(registry, slot, info) }) else { return false };
    let time = monotonic_ns();
    let weight = sample_weight(registry, slot, source, time, period_ns(registry.config.hz));
    if weight == 0 {
        return true;
    }
    let Some(slot) = slot else {
        registry.dropped_no_slot.fetch_add(1, Ordering::Relaxed);
        return true;
    };
    let guard = slot.seqlock.enter();
    if guard.generation() == 0 {
        return true;
    }
    let max_depth = registry.config.max_depth;
    // Room for Python frames only when the process runs a CPython whose frames are read, and
    // only as many as keep a record within a quarter of the ring (`ring_words`' guarantee).
    let python_frames = if pyframes::runtime::interpreter().is_some() {
        let room = (registry.config.ring_words / 4).saturating_sub(max_depth + crate::ring::RECORD_HEADER_WORDS + 1) / 2;
        room.min(pyframes::MAX_PYTHON_FRAMES)
    } else {
        0
    };
    let python_words = if python_frames > 0 { pyframes::record_words(python_frames) } else { 0 };
    let Some(mut record) = slot.ring_for(&guard).begin_record(max_depth + python_words) else {
        slot.count_drop(&guard, weight);
        return true;
    };
    // SAFETY: forwarded from the caller.
    let regs = unsafe { regs_from_ucontext(ucontext) };
    let walk = walk_into_record(registry, slot, guard.critical_section(), &regs, &mut record);
    let bounds = slot.stack_bounds();
    // The Python walk's buffers take under 1 KiB of the handler's stack.
    if python_words > 0 && stack_room(bounds).is_none_or(|room| room >= FP_STACK_NEED) {
        let tid = slot.tid.load(Ordering::Relaxed);
        // SAFETY: the handler's ucontext (caller).
        let may_probe = unsafe { pyframes::probe::unblocked(ucontext) };
        // While the handler may spill, the frames also go to the spill's table (its code
        // objects copied while they run, by the walk's fault-recovering reads where allowed).
        let mut spilled = crate::spill_code_table::RecordFrames::new();
        pyframes::walk_python(tid, (bounds.lo, bounds.hi), may_probe, python_frames, &mut |word, session| {
            record.push_frame(word);
            spilled.push(word, session);
        });
    }
    record.commit(time, weight, walk);
    #[cfg(not(sigtrace_loom))]
    if crate::spill::is_armed() {
        let tid = slot.tid.load(Ordering::Relaxed);
        // SAFETY: this is the ring's producer, in its handler inside its seqlock critical
        // section (`maybe_spill` checks that no drain work runs).
        unsafe { crate::spill::maybe_spill(slot.spill_ring(&guard), guard.generation(), tid, time) };
    }
    true
}

/// Walks the interrupted stack into `record` with the configured method, falling back to frame
/// pointers (and saying so in the returned walk code) when DWARF cannot run. `critical` is the
/// caller's seqlock critical section, which the unwind snapshot cannot outlive.
/// Async-signal-safe.
fn walk_into_record(registry: &Registry, slot: &ThreadSlot, critical: &CriticalSection, regs: &Regs, record: &mut RecordWriter<'_>) -> u8 {
    let max_depth = registry.config.max_depth;
    let bounds = slot.stack_bounds();
    let room = stack_room(bounds);
    let mut push = |frame| record.push_frame(frame);
    if room.is_some_and(|room| room < FP_STACK_NEED) {
        push(regs.pc);
        return WalkMethod::PcOnlyNoStackRoom.code(if max_depth == 1 { WalkEnd::DepthLimit } else { WalkEnd::StackBounds });
    }
    // The snapshot is used only inside this seqlock critical section (the compiler checks it).
    let snapshot = registry.unwind.current(critical);
    let fallback = if registry.config.unwind == UnwindChoice::FramePointers {
        WalkMethod::FramePointers
    } else if let (Some(snapshot), Some(pool)) = (snapshot, registry.caches.current(critical)) {
        match pool.claim(registry.slot_index(slot)) {
            // The walk runs on the lease's own stack when it has one; else it needs room here.
            Some(mut lease) if lease.has_stack() || room.is_some_and(|room| room >= DWARF_STACK_NEED) => {
                // SAFETY: the bounds are this (interrupted) thread's stack, mapped while its
                // handler runs.
                let stack = unsafe { StackMemory::for_dwarf_walk(bounds, regs.sp) };
                let mut end = WalkEnd::BadFrame;
                lease.run_with_cache(&mut |cache| {
                    end = walk_stack_dwarf(regs, &stack, &snapshot.dwarf, cache, &snapshot.code, max_depth, &mut push).1;
                });
                return WalkMethod::Dwarf.code(end);
            }
            Some(_) => WalkMethod::FramePointersNoStackRoom,
            None => WalkMethod::FramePointersNoCache,
        }
    } else {
        WalkMethod::FramePointersNotReady
    };
    if registry.config.unwind == UnwindChoice::Dwarf {
        push(regs.pc);
        return WalkMethod::PcOnly.code(if max_depth == 1 { WalkEnd::DepthLimit } else { WalkEnd::BadFrame });
    }
    // Code bytes may be read (to name a frameless leaf's caller) unless a dlclose is under way.
    // SeqCst pairs with `dlclose`'s increment and seqlock reads (Dekker: either it sees this
    // thread inside, or this thread sees the unload).
    let code = snapshot.map(|s| &s.code).filter(|_| registry.code_unloading.load(Ordering::SeqCst) == 0);
    // SAFETY: the bounds are this (interrupted) thread's stack, mapped while its handler runs.
    let stack = unsafe { StackMemory::for_walk(bounds, regs.sp) };
    let (_, end) = walk_stack(regs, &stack, code, max_depth, &mut push);
    fallback.code(end)
}

/// The bytes left below the handler's own frame on the stack it runs on: the thread's stack
/// (known bounds) or its alternate signal stack. `None` when the handler runs on a stack it
/// cannot measure (a coroutine's or green thread's, bounds unknown). Async-signal-safe.
fn stack_room(bounds: StackBounds) -> Option<u64> {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as u64;
    if bounds.contains(here) {
        return Some(here - bounds.lo);
    }
    // SAFETY: sigaltstack with a null new stack only reports the current one into `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    let queried = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } == 0;
    let low = current.ss_sp as u64;
    let on_alternate = queried && current.ss_flags & libc::SS_ONSTACK != 0 && here > low && here - low <= current.ss_size as u64;
    on_alternate.then(|| here - low)
}
