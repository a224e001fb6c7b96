//! The drain thread's loop: a round every drain period (adapted to the load), early wake-ups
//! (a fatal signal's flush, the end of tracing) and the hand-back of the drain work to a program
//! that went back to one thread. The rounds' work is the drainer's (`drain`).

use crate::drain::{describe_write_error, finish_drainer, with_drainer, DRAINER, FATAL_PATIENCE};
use format::EndReason;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

/// Thread id of the drain thread (0 before it starts), to leave its CPU time out.
pub(crate) static DRAIN_TID: AtomicU32 = AtomicU32::new(0);
/// True while the drain thread runs its loop.
pub(crate) static DRAIN_RUNNING: AtomicBool = AtomicBool::new(false);

/// A futex word that wakes the drain thread early (a fatal signal asks for a flush, tracing
/// ends): 1 = wake-up pending. A futex needs no descriptor, so none of the program's numbers
/// can be confused with it.
static WAKE: AtomicU32 = AtomicU32::new(0);
/// A fatal signal number whose flush was requested (0 = none), and whether it was done.
static FLUSH_REQUEST: AtomicU32 = AtomicU32::new(0);
pub(crate) static FLUSH_DONE: AtomicU32 = AtomicU32::new(0);

/// Waits up to `period` or until [`wake`] is called.
fn wait_for_wake(period: Duration) {
    let timeout = libc::timespec { tv_sec: period.as_secs() as libc::time_t, tv_nsec: period.subsec_nanos() as libc::c_long };
    // SAFETY: FUTEX_WAIT on our own static word with a valid timeout: sleeps only while the
    // word is 0, returns at once if a wake-up is pending.
    unsafe { libc::syscall(libc::SYS_futex, WAKE.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, 0u32, &timeout as *const libc::timespec) };
    WAKE.store(0, Ordering::Relaxed);
}

/// Wakes the drain thread now. Async-signal-safe (an atomic store and a futex call).
pub fn wake() {
    WAKE.store(1, Ordering::Release);
    // SAFETY: FUTEX_WAKE on our own static word; no memory is passed.
    unsafe { libc::syscall(libc::SYS_futex, WAKE.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1u32) };
}

/// Asks the drain thread to write the open generation because `signal` is about to kill the
/// process, and waits for it at most `patience`. Returns whether the flush was done.
/// Async-signal-safe (atomics, a futex wake, `nanosleep`) while the drain thread runs; without
/// one, see [`crate::on_program_thread::flush_for_fatal_signal`].
pub fn flush_for_fatal_signal(signal: i32, patience: Duration) -> bool {
    if !DRAIN_RUNNING.load(Ordering::Acquire) {
        // No drain thread (a single-threaded program under SIGTRACE_DRAIN_THREAD=with-program-
        // threads, or start-up): the dying thread writes the generation itself.
        return crate::on_program_thread::flush_for_fatal_signal(signal);
    }
    if DRAINER.load(Ordering::Acquire).is_null() || FLUSH_REQUEST.compare_exchange(0, signal as u32, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return FLUSH_DONE.load(Ordering::Acquire) != 0;
    }
    wake();
    let step = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
    for _ in 0..patience.as_millis().max(1) {
        if FLUSH_DONE.load(Ordering::Acquire) != 0 {
            return true;
        }
        // SAFETY: nanosleep on a valid timespec; interruption only shortens the wait.
        unsafe { libc::nanosleep(&step, std::ptr::null_mut()) };
    }
    FLUSH_DONE.load(Ordering::Acquire) != 0
}

/// What happened when the drain thread stopped.
pub type OnFailure = fn(&str);

/// The shortest and longest drain periods. The period adapts to the load: each wake-up costs
/// CPU whatever it finds, so lightly used rings are drained less often.
const MIN_DRAIN_PERIOD: Duration = Duration::from_millis(2);
const MAX_DRAIN_PERIOD: Duration = Duration::from_millis(100);

/// The longest drain period while samples arrive: an end without exit path loses at most one
/// period of samples (the pieces, `pieces`), at most 2.5% of a 1 s program.
const MAX_DRAIN_PERIOD_WHILE_SAMPLING: Duration = Duration::from_millis(25);

/// The next drain period: halved when a ring was over a quarter full, doubled when every ring
/// stayed under an eighth, up to [`MAX_DRAIN_PERIOD_WHILE_SAMPLING`] while a ring held samples
/// and [`MAX_DRAIN_PERIOD`] when all were empty.
fn next_drain_period(period: Duration, fullest: f64) -> Duration {
    if fullest > 0.25 {
        (period / 2).max(MIN_DRAIN_PERIOD)
    } else if fullest < 0.125 {
        (period * 2).min(if fullest > 0.0 { MAX_DRAIN_PERIOD_WHILE_SAMPLING } else { MAX_DRAIN_PERIOD })
    } else {
        period
    }
}

/// How often the drain thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainPeriod {
    /// Starting at this period, adapted to the load between 2 and 100 ms.
    Adaptive(Duration),
    /// Always this period (`SIGTRACE_DRAIN_MS`).
    Fixed(Duration),
}

/// The drain thread's body: drain every period (adapted to the load) until shutdown. Each round runs under
/// `catch_unwind`; a panic or a write error switches tracing off (via `on_failure`) instead of
/// taking the host down.
pub fn run(schedule: DrainPeriod, on_failure: OnFailure) {
    let (period, adaptive) = match schedule {
        DrainPeriod::Adaptive(period) => (period, true),
        DrainPeriod::Fixed(period) => (period, false),
    };
    // SAFETY: gettid is a plain syscall.
    DRAIN_TID.store(unsafe { libc::syscall(libc::SYS_gettid) } as u32, Ordering::Relaxed);
    DRAIN_RUNNING.store(true, Ordering::Release);
    run_rounds(period, adaptive, on_failure);
    DRAIN_RUNNING.store(false, Ordering::Release);
}

/// How long after its start the drain thread's first round comes (at most: one drain period).
/// None: samples before the unwind tables are walked by frame pointers and lose a frameless
/// leaf's caller, and on a loaded machine a deferred round came late enough to lose 2% of a
/// workload's callers (3 ms, with two CPU hogs; 2.7% at 10 ms without).
const FIRST_ROUND_DELAY: Duration = Duration::ZERO;

/// Asked after each of the drain thread's rounds whether the thread should end and hand the
/// drain work back to the program's thread (a `fn() -> bool` stored as its address; 0: never).
static HAND_BACK: AtomicUsize = AtomicUsize::new(0);

/// Sets the question [`run`] asks after each round: `true` ends the loop (the asker has made
/// the program's thread the rings' consumer again). Before the drain thread starts.
pub fn set_hand_back(ask: fn() -> bool) {
    HAND_BACK.store(ask as usize, Ordering::Release);
}

/// Whether the drain thread should end now (see [`set_hand_back`]).
fn hand_back() -> bool {
    let ask = HAND_BACK.load(Ordering::Acquire);
    // SAFETY: set_hand_back stored a `fn() -> bool`.
    ask != 0 && unsafe { std::mem::transmute::<usize, fn() -> bool>(ask) }()
}

/// The drain thread's loop; returns when tracing ended or failed, or the drain work went back
/// to the program's thread.
fn run_rounds(mut period: Duration, adaptive: bool, on_failure: OnFailure) {
    // The first round comes FIRST_ROUND_DELAY after the start (or one period, if shorter).
    // Samples before it are walked by frame pointers (counted as `fp (unwind tables not
    // ready)`).
    let now = std::time::Instant::now();
    let mut last_drain: Option<std::time::Instant> = Some(now.checked_sub(period.saturating_sub(FIRST_ROUND_DELAY)).unwrap_or(now));
    loop {
        let drain_due = last_drain.is_none_or(|at| at.elapsed() >= period);
        let round = std::panic::catch_unwind(|| {
            with_drainer(|slot| {
                let signal = FLUSH_REQUEST.load(Ordering::Acquire);
                if signal != 0 {
                    let result = finish_drainer(slot, EndReason::FatalSignal, signal, FATAL_PATIENCE).map(|_| None);
                    FLUSH_DONE.store(1, Ordering::Release);
                    return result;
                }
                match slot.as_mut() {
                    None => Ok(None),
                    Some(drainer) => drainer
                        .tick(drain_due)
                        .map(|fullest| Some((fullest, drainer.longest_sleep())))
                        .map_err(|error| describe_write_error(drainer.path(), &error)),
                }
            })
            .unwrap_or(Ok(None))
        });
        match round {
            Ok(Ok(Some((fullest, longest_sleep)))) => {
                if drain_due {
                    if adaptive {
                        period = next_drain_period(period, fullest);
                    }
                    last_drain = Some(std::time::Instant::now());
                    if hand_back() {
                        return;
                    }
                }
                let until_drain = last_drain.map_or(Duration::ZERO, |at| period.saturating_sub(at.elapsed()));
                wait_for_wake(longest_sleep.map_or(until_drain, |longest| until_drain.min(longest)))
            }
            Ok(Ok(None)) => return,
            Ok(Err(message)) => return on_failure(&message),
            Err(_) => return on_failure("internal error in the drain thread"),
        }
    }
}

/// The drain thread's id, or 0 when none runs.
pub fn drain_tid() -> u32 {
    if DRAIN_RUNNING.load(Ordering::Acquire) {
        DRAIN_TID.load(Ordering::Relaxed)
    } else {
        0
    }
}

/// Waits at most `patience` for the drain thread to leave its loop (after [`finish`]).
/// Returns whether it did.
pub fn wait_for_drain_thread_exit(patience: Duration) -> bool {
    let deadline = std::time::Instant::now() + patience;
    while DRAIN_RUNNING.load(Ordering::Acquire) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Clears the wake-up and flush requests for a new drainer (start-up, or a forked child).
pub(crate) fn clear_requests() {
    FLUSH_REQUEST.store(0, Ordering::Relaxed);
    FLUSH_DONE.store(0, Ordering::Relaxed);
    WAKE.store(0, Ordering::Relaxed);
}

/// Forgets the parent's drain thread in a forked child (it does not exist there).
pub(crate) fn forget_drain_thread_after_fork() {
    DRAIN_TID.store(0, Ordering::Relaxed);
    DRAIN_RUNNING.store(false, Ordering::Release);
}
