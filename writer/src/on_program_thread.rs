//! The drain work done on one of the program's own threads, when no drain thread runs (a
//! single-threaded program under `SIGTRACE_DRAIN_THREAD=with-program-threads`): a drain round at
//! a safe point, and the last generation's flush when a signal is about to kill the process.
//!
//! Both only *try* the fork gate and the drainer's lock: the thread may have been interrupted
//! while it held them itself (a fatal signal in the middle of a drain round), and waiting would
//! then never end. Neither ever runs in the sampling signal handler.

use crate::drain::{describe_write_error, finish_drainer, Drainer, DRAINER, FATAL_PATIENCE, FORK_GATE};
use crate::drain_rounds::FLUSH_DONE;
use format::EndReason;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, TryLockError};

/// Runs `work` on the drainer if its cell and the fork gate are free now; `None` when there is
/// no drainer or either is held.
fn try_with_drainer<T>(work: impl FnOnce(&mut Option<Drainer>) -> T) -> Option<T> {
    // SAFETY: a non-null DRAINER points at a leaked cell that is never freed.
    let cell: &Mutex<Option<Drainer>> = unsafe { DRAINER.load(Ordering::Acquire).as_ref() }?;
    // The handler does not spill while this thread drains (sigprof invariant 13).
    let _busy = sigprof::spill::ConsumerBusy::begin();
    // SAFETY: tries our static mutex; unlocked below only when taken here.
    if unsafe { libc::pthread_mutex_trylock(FORK_GATE.0.get()) } != 0 {
        return None;
    }
    let result = match cell.try_lock() {
        Ok(mut guard) => Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut guard)))),
        Err(TryLockError::Poisoned(poisoned)) => Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut poisoned.into_inner())))),
        Err(TryLockError::WouldBlock) => None,
    };
    // SAFETY: taken above by this thread.
    unsafe { libc::pthread_mutex_unlock(FORK_GATE.0.get()) };
    match result? {
        Ok(value) => Some(value),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// One drain round on the calling thread: the rings emptied into the open generation, which is
/// closed and written when its period is over. Returns an error message when the trace can no
/// longer be written. Not for a signal handler.
pub fn drain_round() -> Result<(), String> {
    try_with_drainer(|slot| match slot.as_mut() {
        Some(drainer) => drainer.tick(true).map(|_| ()).map_err(|error| describe_write_error(drainer.path(), &error)),
        None => Ok(()),
    })
    .unwrap_or(Ok(()))
}

/// Builds the unwind tables of the modules loaded now and the calling thread's DWARF caches:
/// the part of a drain round the handler needs from the first sample on, at the start of a
/// trace without a drain thread. Not for a signal handler.
pub fn prepare_unwinding() {
    try_with_drainer(|slot| {
        if let Some(drainer) = slot.as_mut() {
            drainer.prepare_unwinding();
        }
    });
}

/// Writes the open generation and the end record `fatal signal` from the dying thread itself,
/// when no drain thread runs. Returns whether it was written (false when the drainer was busy:
/// the signal interrupted a drain round of this very thread).
///
/// Runs in the fatal signal's handler, so it is not async-signal-safe: it allocates. It is
/// used only in a process with a single thread, where glibc's allocator takes no lock, and its
/// own locks are only tried; a program that corrupted its heap may then fault again inside it,
/// and the process still dies of a signal the kernel delivers with its default action.
pub fn flush_for_fatal_signal(signal: i32) -> bool {
    let written = std::panic::catch_unwind(|| try_with_drainer(|slot| finish_drainer(slot, EndReason::FatalSignal, signal as u32, FATAL_PATIENCE).is_ok()));
    let done = matches!(written, Ok(Some(true)));
    if done {
        FLUSH_DONE.store(1, Ordering::Release);
    }
    done
}

/// The line the drain gives for the write fault `errno` of the trace file, met by the sampling
/// handler's spill instead (sigprof `spill_fault`): the same words, naming the same file.
pub fn describe_spill_fault(errno: i32) -> String {
    let path = try_with_drainer(|slot| slot.as_ref().map(|drainer| drainer.path().to_string())).flatten().unwrap_or_default();
    describe_write_error(&path, &std::io::Error::from_raw_os_error(errno))
}
