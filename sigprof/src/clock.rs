//! Clocks: monotonic timestamps for samples, CPU-time clocks of threads. Async-signal-safe.

/// The clock id of thread `tid`'s CPU-time clock (`MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`).
pub fn thread_cpu_clock(tid: u32) -> libc::clockid_t {
    ((!tid) << 3 | 6) as libc::clockid_t
}

/// CPU time consumed so far by thread `tid` of this process, ns (0 if it is gone).
pub fn thread_cpu_ns(tid: u32) -> u64 {
    clock_ns(thread_cpu_clock(tid))
}

/// Reads `clock` in ns (0 on error). Async-signal-safe.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes `now`; it is async-signal-safe.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The sample timestamp clock (`CLOCK_MONOTONIC`), ns. Async-signal-safe.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}
