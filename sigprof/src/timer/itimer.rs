//! The `itimer` source: one process-wide `setitimer(ITIMER_PROF)`, tick-limited, with no
//! overrun count (the handler weighs its samples by the process's CPU time since the previous
//! one). Armed at start-up, not per thread.

use super::last_error;

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
