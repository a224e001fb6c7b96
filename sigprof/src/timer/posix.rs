//! The `posix` source: a POSIX timer on the thread's CPU clock with `SIGEV_THREAD_ID`.
//!
//! The kernel checks it on the scheduler tick, so it fires at most at the tick rate; each signal
//! carries the timer's overrun count, and a sample weighs 1 + overrun so CPU time stays right.
//! Its signals carry [`POSIX_TIMER_TAG`] in `si_value`. The timer is driven by raw system calls
//! (no libc bookkeeping), so that the handler may create and delete one when a thread moves
//! between sources (see `adapt`).

use super::{PhaseDraw, ThreadTimer, TimerSource};
use crate::clock::thread_cpu_clock;
use std::sync::atomic::Ordering;

/// The value our POSIX timers carry in `si_value`, telling their signals from the program's.
pub const POSIX_TIMER_TAG: usize = 0x5349_4754; // "SIGT"

impl ThreadTimer {
    /// Arms the POSIX timer (see [`ThreadTimer::arm`]): published before it is set.
    /// Async-signal-safe.
    /// Returns the thread's CPU time when it was set, where its phase counts from.
    pub(super) fn arm_posix(&self, tid: u32, signal: i32, period_ns: u64, draw: &PhaseDraw) -> std::io::Result<u64> {
        let timer = create_posix_cpu_timer(tid, signal)?;
        self.posix_timer_plus_one.store(timer as usize + 1, Ordering::Relaxed);
        self.source.store(TimerSource::Posix as u8, Ordering::SeqCst);
        let (cpu_at_setting, start_up_sample) = self.start_counting(tid, period_ns);
        self.posix_first_due_cpu_ns.store(cpu_at_setting.saturating_add(draw.phase_ns), Ordering::Relaxed);
        self.posix_moments_sampled.store(0, Ordering::Relaxed);
        if !set_posix_timer(timer, draw.phase_ns, period_ns) {
            let error = std::io::Error::last_os_error();
            self.disarm_source();
            return Err(error);
        }
        self.raise_start_up_sample(tid, start_up_sample);
        Ok(cpu_at_setting)
    }

    /// Counts the sampling moments a POSIX timer's sample stands for (1 + its overrun).
    /// Async-signal-safe; the thread's handler only.
    pub fn count_posix_moments(&self, moments: u32) {
        self.posix_moments_sampled.fetch_add(u64::from(moments), Ordering::Relaxed);
    }

    /// The kernel's id of the POSIX timer, if one is held. Async-signal-safe.
    pub(super) fn posix_timer(&self) -> Option<i32> {
        (self.posix_timer_plus_one.load(Ordering::Relaxed) as i32).checked_sub(1).filter(|&id| id >= 0)
    }

    /// Gives the POSIX timer its whole period again (the storm guard). Async-signal-safe.
    pub(super) fn reprogram_posix(&self, period_ns: u64) -> bool {
        self.posix_timer().is_some_and(|timer| set_posix_timer(timer, period_ns, period_ns))
    }

    /// Stops the POSIX timer's signals without deleting it. Async-signal-safe.
    pub(super) fn stop_posix_signals(&self) {
        if let Some(timer) = self.posix_timer() {
            set_posix_timer(timer, 0, 0);
        }
    }

    /// Deletes the POSIX timer (the source was already cleared). Idempotent, also when two
    /// threads release at once: the id is taken by one swap. Deleting a timer also takes its
    /// signal off the pending queue. Async-signal-safe.
    pub(super) fn release_posix(&self) {
        if let Some(timer) = (self.posix_timer_plus_one.swap(0, Ordering::AcqRel) as i32).checked_sub(1).filter(|&id| id >= 0) {
            // SAFETY: `timer` is the id timer_create gave us, taken out of the slot by the swap
            // above, so no one else deletes it.
            unsafe { libc::syscall(libc::SYS_timer_delete, timer as libc::c_long) };
        }
    }
}

/// A POSIX timer on thread `tid`'s CPU clock, created disarmed (see [`set_posix_timer`]): the
/// kernel's timer id. Async-signal-safe.
fn create_posix_cpu_timer(tid: u32, signal: i32) -> std::io::Result<i32> {
    // SAFETY: sigevent is plain data; all-zero is a valid starting value.
    let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_THREAD_ID;
    event.sigev_signo = signal;
    event.sigev_notify_thread_id = tid as libc::c_int;
    event.sigev_value = libc::sigval { sival_ptr: POSIX_TIMER_TAG as *mut libc::c_void };
    let mut timer: libc::c_int = -1;
    // SAFETY: `event` (whose layout is the kernel's for these fields) and `timer` are valid
    // for the call.
    if unsafe { libc::syscall(libc::SYS_timer_create, thread_cpu_clock(tid), &event as *const libc::sigevent, &mut timer as *mut libc::c_int) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(timer)
}

/// Sets a POSIX timer to fire after `first_ns`, then every `period_ns` (0, 0: stops it).
/// Async-signal-safe.
fn set_posix_timer(timer: i32, first_ns: u64, period_ns: u64) -> bool {
    let timespec = |ns: u64| libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
    let spec = libc::itimerspec { it_interval: timespec(period_ns), it_value: timespec(first_ns) };
    // SAFETY: `timer` is a timer we created; `spec` is valid for the call.
    unsafe { libc::syscall(libc::SYS_timer_settime, timer as libc::c_long, 0, &spec as *const libc::itimerspec, std::ptr::null_mut::<libc::itimerspec>()) == 0 }
}
