//! Wall-clock mode: the calling thread published, for the length of a blocking call, as inside
//! that call, with the registers at the call site (`sigprof::blocking`), for sigtrace's own
//! thread to sample it from there. Used by the interposed blocking calls and signal waits.
//! Async-signal-safe.

use sigprof::{Registry, ThreadSlot};
use unwind::Regs;

/// The calling thread's slot when wall-clock mode is on and tracing runs, not paused.
/// Async-signal-safe.
#[inline(always)]
pub(crate) fn wall_slot() -> Option<&'static ThreadSlot> {
    let registry = Registry::get()?;
    if registry.config.mode != sigprof::Mode::Wall || sigprof::current_generation() == 0 || crate::sampling::pause::is_paused() {
        return None;
    }
    registry.current_slot()
}

/// The registers at this point of the calling (interposed) function: an unwinder starting from
/// them finds the function's caller through its CFI. Inlined into the wrapper, so the frame is
/// the wrapper's, which stays in place for the whole call.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn call_site() -> Regs {
    let (pc, sp, fp): (u64, u64, u64);
    // SAFETY: reads rip, rsp and rbp into registers; no memory, stack or flags are touched.
    unsafe {
        std::arch::asm!("lea {pc}, [rip]", "mov {sp}, rsp", "mov {fp}, rbp", pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    Regs { pc, sp, fp, lr: 0 }
}

/// As above, for aarch64.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn call_site() -> Regs {
    let (pc, sp, fp, lr): (u64, u64, u64, u64);
    // SAFETY: reads pc, sp, x29 and x30 into registers; no memory, stack or flags are touched.
    unsafe {
        std::arch::asm!("adr {pc}, .", "mov {sp}, sp", "mov {fp}, x29", "mov {lr}, x30", pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, lr = out(reg) lr, options(nomem, nostack, preserves_flags))
    };
    Regs { pc, sp, fp, lr }
}

/// Runs `real` (the blocking call) with the calling thread published as inside `call`; also
/// for the signal waits that `interpose::signals` interposes for their own reasons. Inlined
/// into the interposed function, whose frame `call_site` describes. Async-signal-safe when
/// `real` is.
#[inline(always)]
pub(crate) fn marked<R>(call: u32, real: impl FnOnce() -> R) -> R {
    match wall_slot() {
        Some(slot) => marked_in(slot, call, real),
        None => real(),
    }
}

/// [`marked`] for the thread of `slot` (the caller's own, from [`wall_slot`]).
#[inline(always)]
pub(crate) fn marked_in<R>(slot: &ThreadSlot, call: u32, real: impl FnOnce() -> R) -> R {
    // The coarse clock (a few ms of resolution, a third of the fine one's cost here): the time
    // only tells the sampler when a call began, to split its time from the next one's and to
    // tell a call left by longjmp, with margins of tens of ms.
    let entered = slot.blocking.enter(call, call_site(), sigprof::clock_ns(libc::CLOCK_MONOTONIC_COARSE));
    let result = real();
    if entered {
        slot.blocking.leave();
    }
    result
}
