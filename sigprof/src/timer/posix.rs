//! The `posix` source: a POSIX timer on the thread's CPU clock with `SIGEV_THREAD_ID`.
//!
//! The kernel checks it on the scheduler tick, so it fires at most at the tick rate; each signal
//! carries the timer's overrun count, and a sample weighs 1 + overrun so CPU time stays right.
//! Its signals carry [`POSIX_TIMER_TAG`] in `si_value`.

use super::{last_error, PhaseDraw, ThreadTimer, TimerSource};
use crate::clock::thread_cpu_clock;
use std::sync::atomic::Ordering;

/// The value our POSIX timers carry in `si_value`, telling their signals from the program's.
pub const POSIX_TIMER_TAG: usize = 0x5349_4754; // "SIGT"

impl ThreadTimer {
    /// Arms the POSIX timer (see [`ThreadTimer::arm`]): published before it is set.
    pub(super) fn arm_posix(&self, tid: u32, signal: i32, period_ns: u64, draw: &PhaseDraw) -> std::io::Result<()> {
        let timer = create_posix_cpu_timer(tid, signal)?;
        self.posix_timer.store(timer as usize, Ordering::Relaxed);
        self.source.store(TimerSource::Posix as u8, Ordering::Release);
        if !set_posix_timer(timer, draw.phase_ns, period_ns) {
            let error = std::io::Error::last_os_error();
            self.disarm();
            return Err(error);
        }
        Ok(())
    }

    /// Gives the POSIX timer its whole period again (the storm guard). Async-signal-safe.
    pub(super) fn reprogram_posix(&self, period_ns: u64) -> bool {
        set_posix_timer(self.posix_timer.load(Ordering::Relaxed) as libc::timer_t, period_ns, period_ns)
    }

    /// Stops the POSIX timer's signals without deleting it. Async-signal-safe.
    pub(super) fn stop_posix_signals(&self) {
        set_posix_timer(self.posix_timer.load(Ordering::Relaxed) as libc::timer_t, 0, 0);
    }

    /// Deletes the POSIX timer (the source was already cleared).
    pub(super) fn release_posix(&self) {
        let timer = self.posix_timer.swap(0, Ordering::Relaxed);
        // SAFETY: `timer` is the id timer_create gave us; deleting it stops its signals.
        unsafe { libc::timer_delete(timer as libc::timer_t) };
    }
}

/// A POSIX timer on thread `tid`'s CPU clock, created disarmed (see [`set_posix_timer`]).
fn create_posix_cpu_timer(tid: u32, signal: i32) -> std::io::Result<libc::timer_t> {
    // SAFETY: sigevent is plain data; all-zero is a valid starting value.
    let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_THREAD_ID;
    event.sigev_signo = signal;
    event.sigev_notify_thread_id = tid as libc::c_int;
    event.sigev_value = libc::sigval { sival_ptr: POSIX_TIMER_TAG as *mut libc::c_void };
    let mut timer: libc::timer_t = std::ptr::null_mut();
    // SAFETY: `event` and `timer` are valid for the call.
    if unsafe { libc::timer_create(thread_cpu_clock(tid), &mut event, &mut timer) } != 0 {
        return last_error();
    }
    Ok(timer)
}

/// Sets a POSIX timer to fire after `first_ns`, then every `period_ns` (0, 0: stops it).
/// Async-signal-safe (`timer_settime` is).
fn set_posix_timer(timer: libc::timer_t, first_ns: u64, period_ns: u64) -> bool {
    let timespec = |ns: u64| libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
    let spec = libc::itimerspec { it_interval: timespec(period_ns), it_value: timespec(first_ns) };
    // SAFETY: `timer` is a timer we created; `spec` is valid for the call.
    unsafe { libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) == 0 }
}
