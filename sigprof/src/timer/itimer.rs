//! The `itimer` source: one process-wide `setitimer(ITIMER_PROF)`, tick-limited, with no
//! overrun count: a sample weighs the process's CPU time since the previous one. Armed at
//! start-up, not per thread.
//!
//! Its account (`LAST_SAMPLE_CPU_NS`) holds the process CPU time its samples stood for so far.
//! The kernel checks the timer on scheduler ticks only, and on a loaded machine it can go tens
//! of ms of CPU time without firing; the CPU time after its last signal would have no sample.
//! So the thread that ends the process samples that tail itself on its exit path
//! ([`itimer_periods_at_process_end`], carried by an own sample).

use super::{last_error, periods_in, periods_rounded_at_random, PhaseDraw};
use crate::clock::clock_ns;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process CPU time at the last `itimer` sample, ns: the next one weighs the CPU time since.
static LAST_SAMPLE_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// Arms (hz > 0) or disarms (hz == 0) the process-wide `ITIMER_PROF` timer.
pub fn set_process_itimer(hz: u32) -> std::io::Result<()> {
    let period_us = if hz == 0 { 0 } else { (1_000_000 / u64::from(hz)).max(1) };
    let interval = libc::timeval { tv_sec: (period_us / 1_000_000) as libc::time_t, tv_usec: (period_us % 1_000_000) as libc::suseconds_t };
    let spec = libc::itimerval { it_interval: interval, it_value: interval };
    // SAFETY: `spec` is valid; setitimer has no other effect than on this process's timer.
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &spec, std::ptr::null_mut()) } != 0 {
        return last_error();
    }
    Ok(())
}

/// Starts the CPU-time account of the process-wide itimer (call right before arming it).
pub fn reset_itimer_account() {
    LAST_SAMPLE_CPU_NS.store(clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID), Ordering::Relaxed);
}

/// The periods an `itimer` sample stands for: the process CPU time since the previous one,
/// rounded, at least 1 (the timer reports no overrun). Async-signal-safe.
pub fn itimer_sample_periods(period_ns: u64) -> u32 {
    let now = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    periods_in(now.saturating_sub(LAST_SAMPLE_CPU_NS.swap(now, Ordering::Relaxed)), period_ns)
}

/// At the process's end, on the thread `tid` that ends it: stops the itimer and returns the
/// periods of the process CPU time its samples did not stand for yet, rounded at random so
/// that the expectation is exact; 0 when the timer was not armed (sampling paused, or another
/// source). A signal of the timer still pending after this weighs the little CPU time since.
/// Not for the handler.
pub fn itimer_periods_at_process_end(tid: u32, period_ns: u64) -> u32 {
    let stop = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: libc::timeval { tv_sec: 0, tv_usec: 0 } };
    let mut old = stop;
    // SAFETY: both values are valid for the call; it only stops this process's ITIMER_PROF.
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &stop, &mut old) } != 0 || (old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 0) {
        return 0;
    }
    let now = clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    let last = LAST_SAMPLE_CPU_NS.swap(now, Ordering::Relaxed);
    if last == 0 {
        return 0;
    }
    periods_rounded_at_random(now.saturating_sub(last), period_ns, PhaseDraw::new(period_ns, tid).rounding)
}
