//! Waits that the toggle signal (`SIGTRACE_TOGGLE_SIGNAL`) interrupted are resumed, so the
//! program sees no `EINTR` or short wait because of sigtrace. `SA_RESTART` restarts `read`,
//! `write`, `wait` and the like, but the kernel never restarts the sleeps, the waits with a
//! timeout (`poll`, `select`, `epoll_wait` and their `p` forms), `sem_wait` and `pause` after a
//! handler ran: their wrappers look whether the toggle handler ran on the calling thread during
//! the call ([`toggles_taken`]) and, if so, wait again for the time left. Not covered (it
//! returns `EINTR` for a toggle as for any handled signal): `sigsuspend`.
//!
//! The toggle signal is sent to the process (and `SIGTRACE_TIMER=itimer`'s signal is the
//! process's too): the kernel wakes a waiting thread for it, and another thread, running, may
//! take it first. `epoll_wait` then fails with `EINTR` though no handler ran on its thread (the
//! other waits are restarted by the kernel). Its handler counts it a few microseconds later,
//! maybe after the woken thread is back: so a `poll`-family wait that fails with `EINTR` that
//! no toggle on its thread explains looks, for up to 200 µs, for such a delivery in the process
//! ([`process_signals_taken`]), and is resumed if one came. Only when the process has such
//! signals (a toggle signal, the itimer): a program's own `EINTR` comes back at most that late.
//! Async-signal-safe: a const-initialised thread-local counter, atomics and the real functions.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

thread_local! {
    /// Deliveries of the toggle signal that ran sigtrace's handler on this thread.
    static TOGGLES: Cell<u32> = const { Cell::new(0) };
}

/// Deliveries of the toggle signal in the process.
static PROCESS_TOGGLES: AtomicU32 = AtomicU32::new(0);

/// Counts a delivery of the toggle signal on the calling thread (its handler). Async-signal-safe.
pub fn count_toggle() {
    TOGGLES.with(|toggles| toggles.set(toggles.get().wrapping_add(1)));
    PROCESS_TOGGLES.fetch_add(1, Ordering::Relaxed);
}

/// sigtrace's signals sent to the process (not to a thread) that were taken so far, on any
/// thread: toggles and itimer samples. Async-signal-safe.
pub fn process_signals_taken() -> u32 {
    PROCESS_TOGGLES.load(Ordering::Relaxed).wrapping_add(sigprof::process_directed_samples())
}

/// The toggle deliveries on the calling thread so far. Async-signal-safe.
pub fn toggles_taken() -> u32 {
    TOGGLES.with(Cell::get)
}

fn errno() -> i32 {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

type NanosleepFn = unsafe extern "C" fn(*const libc::timespec, *mut libc::timespec) -> libc::c_int;
type ClockNanosleepFn = unsafe extern "C" fn(libc::clockid_t, libc::c_int, *const libc::timespec, *mut libc::timespec) -> libc::c_int;
type UsleepFn = unsafe extern "C" fn(libc::useconds_t) -> libc::c_int;
type SleepFn = unsafe extern "C" fn(libc::c_uint) -> libc::c_uint;

/// `nanosleep`, resumed with the time left after a toggle.
///
/// # Safety
/// Same contract as libc's `nanosleep`.
pub unsafe fn nanosleep(real: NanosleepFn, request: *const libc::timespec, remaining: *mut libc::timespec) -> libc::c_int {
    if request.is_null() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real(request, remaining) };
    }
    // SAFETY: the caller's request is a valid timespec.
    let mut asked = unsafe { *request };
    loop {
        let before = toggles_taken();
        let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: our own timespecs.
        let result = unsafe { real(&asked, &mut left) };
        if result == 0 || errno() != libc::EINTR || toggles_taken() == before {
            if !remaining.is_null() && result != 0 {
                // SAFETY: the caller's remaining is writable.
                unsafe { *remaining = left };
            }
            return result;
        }
        asked = left;
    }
}

/// `clock_nanosleep`, resumed after a toggle (an absolute deadline as it was, a relative one
/// with the time left). Returns an error number, as libc's.
///
/// # Safety
/// Same contract as libc's `clock_nanosleep`.
pub unsafe fn clock_nanosleep(
    real: ClockNanosleepFn,
    clock: libc::clockid_t,
    flags: libc::c_int,
    request: *const libc::timespec,
    remaining: *mut libc::timespec,
) -> libc::c_int {
    if request.is_null() {
        // SAFETY: the caller's arguments, unchanged.
        return unsafe { real(clock, flags, request, remaining) };
    }
    // SAFETY: the caller's request is a valid timespec.
    let mut asked = unsafe { *request };
    loop {
        let before = toggles_taken();
        let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: our own timespecs.
        let result = unsafe { real(clock, flags, &asked, &mut left) };
        if result != libc::EINTR || toggles_taken() == before {
            if !remaining.is_null() && result == libc::EINTR && flags & libc::TIMER_ABSTIME == 0 {
                // SAFETY: the caller's remaining is writable.
                unsafe { *remaining = left };
            }
            return result;
        }
        if flags & libc::TIMER_ABSTIME == 0 {
            asked = left;
        }
    }
}

/// Sleeps until `deadline_ns` (CLOCK_MONOTONIC) with `nanosleep`, resumed after toggles.
/// Returns the ns left when something else interrupted it, 0 when it slept it all.
fn sleep_until(real: NanosleepFn, deadline_ns: u64) -> u64 {
    loop {
        let now = sigprof::monotonic_ns();
        if now >= deadline_ns {
            return 0;
        }
        let left = deadline_ns - now;
        let asked = libc::timespec { tv_sec: (left / 1_000_000_000) as libc::time_t, tv_nsec: (left % 1_000_000_000) as libc::c_long };
        let before = toggles_taken();
        // SAFETY: our own timespec; no remaining asked for.
        let result = unsafe { real(&asked, std::ptr::null_mut()) };
        if result != 0 && (errno() != libc::EINTR || toggles_taken() == before) {
            return deadline_ns.saturating_sub(sigprof::monotonic_ns()).max(1);
        }
    }
}

/// `usleep`, resumed until its end after a toggle.
///
/// # Safety
/// Same contract as libc's `usleep`.
pub unsafe fn usleep(real: UsleepFn, nanosleep: Option<NanosleepFn>, microseconds: libc::useconds_t) -> libc::c_int {
    let deadline = sigprof::monotonic_ns() + u64::from(microseconds) * 1000;
    let before = toggles_taken();
    // SAFETY: the caller's argument.
    let result = unsafe { real(microseconds) };
    match nanosleep {
        Some(nanosleep) if result != 0 && errno() == libc::EINTR && toggles_taken() != before => {
            if sleep_until(nanosleep, deadline) == 0 {
                0
            } else {
                // SAFETY: this thread's errno slot.
                unsafe { *libc::__errno_location() = libc::EINTR };
                -1
            }
        }
        _ => result,
    }
}

/// `sleep`, resumed until its end after a toggle.
///
/// # Safety
/// Same contract as libc's `sleep`.
pub unsafe fn sleep(real: SleepFn, nanosleep: Option<NanosleepFn>, seconds: libc::c_uint) -> libc::c_uint {
    let deadline = sigprof::monotonic_ns() + u64::from(seconds) * 1_000_000_000;
    let before = toggles_taken();
    // SAFETY: the caller's argument.
    let left = unsafe { real(seconds) };
    match nanosleep {
        Some(nanosleep) if left != 0 && toggles_taken() != before => sleep_until(nanosleep, deadline).div_ceil(1_000_000_000) as libc::c_uint,
        _ => left,
    }
}

/// Runs `call` again while it fails (`failed`) with `EINTR` after the toggle handler ran on
/// this thread during it: for waits without a timeout (`pause`, `sem_wait`), with an absolute
/// deadline (`sem_timedwait`), or whose timeout the kernel counts down itself (`select`).
pub fn again_after_toggles<R: Copy + PartialEq>(failed: R, mut call: impl FnMut() -> R) -> R {
    loop {
        let before = toggles_taken();
        let result = call();
        if result != failed || errno() != libc::EINTR || toggles_taken() == before {
            return result;
        }
    }
}

/// As [`again_after_toggles`] for a wait of `timeout_ms` milliseconds (negative: none, as
/// `poll`'s and `epoll_wait`'s): each call is given the milliseconds left. Resumed also after
/// a process-directed signal of sigtrace's that another thread took (see the module doc).
pub fn again_with_ms_left<R: Copy + PartialEq>(failed: R, timeout_ms: libc::c_int, mut call: impl FnMut(libc::c_int) -> R) -> R {
    let deadline = (timeout_ms > 0).then(|| sigprof::monotonic_ns() + timeout_ms as u64 * 1_000_000);
    let mut timeout = timeout_ms;
    loop {
        let (before, process_before) = (toggles_taken(), process_signals_taken());
        let result = call(timeout);
        if result != failed || errno() != libc::EINTR || (toggles_taken() == before && !another_thread_took_ours(process_before)) {
            return result;
        }
        if let Some(deadline) = deadline {
            timeout = deadline.saturating_sub(sigprof::monotonic_ns()).div_ceil(1_000_000).min(libc::c_int::MAX as u64) as libc::c_int;
        }
    }
}

/// Whether a process-directed signal of sigtrace's was taken since the count `before`, waiting
/// (yielding) up to 200 µs for its handler, on another thread, to count it. At once false in a
/// process without such signals. Keeps `errno`.
fn another_thread_took_ours(before: u32) -> bool {
    const LOOK_NS: u64 = 200_000;
    let possible = crate::sampling::pause::toggle_signal_installed() || crate::sampling::timers::current_source() == Some(sigprof::TimerSource::Itimer);
    if !possible {
        return false;
    }
    let saved_errno = errno();
    let deadline = sigprof::monotonic_ns() + LOOK_NS;
    let taken = loop {
        if process_signals_taken() != before {
            break true;
        }
        if sigprof::monotonic_ns() >= deadline {
            break false;
        }
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    };
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() = saved_errno };
    taken
}

/// As [`again_after_toggles`] for a wait of a relative `timeout` (null: none, as `ppoll`'s and
/// `pselect`'s): each call is given the time left.
///
/// # Safety
/// `timeout` is null or a valid timespec.
pub unsafe fn again_with_time_left<R: Copy + PartialEq>(failed: R, timeout: *const libc::timespec, mut call: impl FnMut(*const libc::timespec) -> R) -> R {
    if timeout.is_null() {
        return again_after_toggles(failed, || call(timeout));
    }
    // SAFETY: the caller's timeout is a valid timespec.
    let asked = unsafe { *timeout };
    let asked_ns = (asked.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(asked.tv_nsec.max(0) as u64);
    let deadline = sigprof::monotonic_ns().saturating_add(asked_ns);
    let mut left = asked;
    loop {
        let before = toggles_taken();
        let result = call(&left);
        if result != failed || errno() != libc::EINTR || toggles_taken() == before {
            return result;
        }
        let ns = deadline.saturating_sub(sigprof::monotonic_ns());
        left = libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
    }
}
