//! Per-thread CPU-time sampling sources.
//!
//! * `perf`: a software `perf_event_open` task-clock event per thread, counting only that
//!   thread's CPU time, with signal delivery on each overflow (`O_ASYNC`, `F_SETSIG`,
//!   `F_SETOWN_EX` to the thread). Fires at the full rate; needs `perf_event_paranoid` ≤ 2.
//! * `posix`: a POSIX timer on the thread's CPU clock with `SIGEV_THREAD_ID`. The kernel checks
//!   it on the scheduler tick, so it fires at most at the tick rate; each signal carries the
//!   timer's overrun count, and a sample weighs 1 + overrun so CPU time stays right.
//! * `itimer`: one process-wide `setitimer(ITIMER_PROF)`; tick-limited, no overrun count.
//!
//! Arming and disarming run outside the handler (start-up, thread start and exit, drain thread).
//!
//! The first period of every per-thread timer is drawn uniformly from (0, period], the later
//! ones are whole: a thread that runs for T of CPU then gets T / period samples *in
//! expectation*, where a whole first period would lose half a period per thread on average
//! (4% of the samples of 32 threads of 0.12 s at 100 Hz).

use crate::clock::thread_cpu_clock;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TimerSource {
    Perf = 1,
    Posix = 2,
    Itimer = 3,
}

impl TimerSource {
    pub fn name(self) -> &'static str {
        match self {
            TimerSource::Perf => "perf",
            TimerSource::Posix => "posix",
            TimerSource::Itimer => "itimer",
        }
    }

    fn from_u8(value: u8) -> Option<TimerSource> {
        match value {
            1 => Some(TimerSource::Perf),
            2 => Some(TimerSource::Posix),
            3 => Some(TimerSource::Itimer),
            _ => None,
        }
    }
}

/// What a thread's slot holds of its timer. All-zero is a valid, disarmed timer (slots live
/// in zero-filled memory).
pub struct ThreadTimer {
    /// A `TimerSource` as u8; 0 = disarmed.
    source: AtomicU8,
    /// The perf event's descriptor + 1; 0 = none.
    perf_fd_plus_one: AtomicI32,
    posix_timer: AtomicUsize,
    /// The whole period (ns) a perf event takes after its first, shorter one; 0 once set.
    perf_period_after_first: AtomicU64,
    /// Monotonic time and the thread's CPU time (an estimate between reads) at its previous
    /// perf sample; 0 = no sample yet. Written only by the thread's own handler.
    last_sample_wall_ns: AtomicU64,
    last_sample_cpu_ns: AtomicU64,
}

impl ThreadTimer {
    pub const fn new() -> Self {
        ThreadTimer {
            source: AtomicU8::new(0),
            perf_fd_plus_one: AtomicI32::new(0),
            posix_timer: AtomicUsize::new(0),
            perf_period_after_first: AtomicU64::new(0),
            last_sample_wall_ns: AtomicU64::new(0),
            last_sample_cpu_ns: AtomicU64::new(0),
        }
    }

    pub fn source(&self) -> Option<TimerSource> {
        TimerSource::from_u8(self.source.load(Ordering::Acquire))
    }

    /// The perf event's file descriptor, or -1. Async-signal-safe.
    pub fn perf_fd(&self) -> i32 {
        self.perf_fd_plus_one.load(Ordering::Relaxed) - 1
    }

    /// Bookkeeping of a perf sample taken at `wall_ns` (monotonic): ends the event's shortened
    /// first period, and returns the periods of CPU time the sample stands for.
    /// Async-signal-safe; calling thread only.
    pub fn perf_sample_periods(&self, wall_ns: u64, period_ns: u64) -> u32 {
        self.end_first_period();
        self.periods_since_last_sample(wall_ns, period_ns)
    }

    /// The periods of CPU time a perf sample taken at `wall_ns` stands for. The event counts
    /// kernel time but, with `exclude_kernel` (required at `perf_event_paranoid` 2), drops the
    /// overflows that come while the thread is in the kernel: after a long system call or page
    /// fault storm the next sample stands for every period since the previous one, and so is
    /// charged to the user stack that made the call. The thread's CPU clock (a system call,
    /// ~0.4 µs) is read only when more than 1.5 periods of wall time passed since the previous
    /// sample; two periods of CPU cannot fit in less. Async-signal-safe; calling thread only.
    fn periods_since_last_sample(&self, wall_ns: u64, period_ns: u64) -> u32 {
        let last_wall = self.last_sample_wall_ns.swap(wall_ns, Ordering::Relaxed);
        let last_cpu = self.last_sample_cpu_ns.load(Ordering::Relaxed);
        if last_cpu != 0 && wall_ns.saturating_sub(last_wall) < period_ns + period_ns / 2 {
            self.last_sample_cpu_ns.store(last_cpu.saturating_add(period_ns), Ordering::Relaxed);
            return 1;
        }
        let cpu_ns = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).max(1);
        self.last_sample_cpu_ns.store(cpu_ns, Ordering::Relaxed);
        if last_cpu == 0 {
            return 1;
        }
        periods_in(cpu_ns.saturating_sub(last_cpu), period_ns)
    }

    /// After the perf event's first (shortened) period: gives it whole periods from now on.
    /// One `ioctl` per thread, on its first sample; the kernel restarts the count at the new
    /// period. Async-signal-safe.
    fn end_first_period(&self) {
        if self.perf_period_after_first.load(Ordering::Relaxed) == 0 {
            return;
        }
        let period = self.perf_period_after_first.swap(0, Ordering::Relaxed);
        let fd = self.perf_fd();
        if period != 0 && fd >= 0 {
            // SAFETY: PERF_EVENT_IOC_PERIOD reads one u64 from the pointer, valid for the call.
            unsafe { libc::ioctl(fd, PERF_EVENT_IOC_PERIOD, &period as *const u64) };
        }
    }

    /// Arms a per-thread timer of `source` for thread `tid`, delivering `signal` every
    /// `1/hz` seconds of the thread's CPU time.
    pub fn arm(&self, source: TimerSource, tid: u32, hz: u32, signal: i32) -> std::io::Result<()> {
        self.disarm();
        let period_ns = period_ns(hz);
        let first_ns = random_first_period(period_ns, tid);
        match source {
            TimerSource::Perf => {
                self.perf_period_after_first.store(if first_ns == period_ns { 0 } else { period_ns }, Ordering::Relaxed);
                let fd = open_perf_task_clock(tid, first_ns, signal)?;
                self.perf_fd_plus_one.store(fd + 1, Ordering::Relaxed);
            }
            TimerSource::Posix => {
                let timer = create_posix_cpu_timer(tid, first_ns, period_ns, signal)?;
                self.posix_timer.store(timer as usize, Ordering::Relaxed);
            }
            TimerSource::Itimer => {} // process-wide: see arm_process_itimer
        }
        self.source.store(source as u8, Ordering::Release);
        Ok(())
    }

    /// Stops and releases the timer. Idempotent.
    pub fn disarm(&self) {
        self.perf_period_after_first.store(0, Ordering::Relaxed);
        self.last_sample_wall_ns.store(0, Ordering::Relaxed);
        self.last_sample_cpu_ns.store(0, Ordering::Relaxed);
        match TimerSource::from_u8(self.source.swap(0, Ordering::AcqRel)) {
            Some(TimerSource::Perf) => {
                let fd = self.perf_fd_plus_one.swap(0, Ordering::Relaxed) - 1;
                if fd >= 0 {
                    // SAFETY: `fd` is the perf event we opened; disabling then closing it is harmless.
                    unsafe {
                        libc::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
                        libc::close(fd);
                    }
                }
            }
            Some(TimerSource::Posix) => {
                let timer = self.posix_timer.swap(0, Ordering::Relaxed);
                // SAFETY: `timer` is the id timer_create gave us; deleting it stops its signals.
                unsafe { libc::timer_delete(timer as libc::timer_t) };
            }
            Some(TimerSource::Itimer) | None => {}
        }
    }
}

impl ThreadTimer {
    /// In a forked child: forgets a timer inherited from the parent. The child's copy of a perf
    /// descriptor is closed (the parent's stays open); POSIX timers and itimers are not
    /// inherited by `fork`, so there is nothing to delete.
    pub fn forget_after_fork(&self) {
        if TimerSource::from_u8(self.source.swap(0, Ordering::AcqRel)) == Some(TimerSource::Perf) {
            let fd = self.perf_fd_plus_one.swap(0, Ordering::Relaxed) - 1;
            if fd >= 0 {
                // SAFETY: closes the child's copy of an inherited descriptor we opened.
                unsafe { libc::close(fd) };
            }
        }
    }
}

impl Default for ThreadTimer {
    fn default() -> Self {
        Self::new()
    }
}

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
/// `_IOW('$', 4, __u64)`.
const PERF_EVENT_IOC_PERIOD: libc::c_ulong = 0x4008_2404;
/// perf's hrtimer-based events never fire sooner than this after (re)arming.
const PERF_MIN_PERIOD_NS: u64 = 10_000;
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
const ATTR_EXCLUDE_HV: u64 = 1 << 6;
const F_SETSIG: libc::c_int = 10;
const F_SETOWN_EX: libc::c_int = 15;
const F_OWNER_TID: libc::c_int = 0;

/// The sampling period of `hz`, in ns of CPU time. Async-signal-safe.
pub fn period_ns(hz: u32) -> u64 {
    1_000_000_000 / u64::from(hz.max(1))
}

/// `elapsed_ns` of CPU time in whole sampling periods, rounded, at least 1 (a sample stands for
/// its own period). Async-signal-safe.
pub fn periods_in(elapsed_ns: u64, period_ns: u64) -> u32 {
    (elapsed_ns.saturating_add(period_ns / 2) / period_ns.max(1)).clamp(1, u64::from(u32::MAX)) as u32
}

/// A first period drawn uniformly from (0, `period_ns`] (at least perf's minimum), from the
/// clock and the thread id: no two threads started together share a phase.
fn random_first_period(period_ns: u64, tid: u32) -> u64 {
    // splitmix64 of the monotonic clock and the thread id.
    let mut x = crate::clock::monotonic_ns() ^ (u64::from(tid) << 32);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % period_ns.max(1) + 1).clamp(PERF_MIN_PERIOD_NS.min(period_ns), period_ns)
}
/// The value our POSIX timers carry in `si_value`, telling their signals from the program's.
pub const POSIX_TIMER_TAG: usize = 0x5349_4754; // "SIGT"

/// `struct perf_event_attr`, version 5 layout (112 bytes); bit fields folded into `flags`.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

#[repr(C)]
struct FOwnerEx {
    kind: libc::c_int,
    pid: libc::pid_t,
}

fn last_error<T>() -> std::io::Result<T> {
    Err(std::io::Error::last_os_error())
}

/// Opens a task-clock event on thread `tid` that sends `signal` to that thread every
/// `period_ns` of its CPU time (user mode: `perf_event_paranoid` 2 forbids kernel sampling).
fn open_perf_task_clock(tid: u32, period_ns: u64, signal: i32) -> std::io::Result<i32> {
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_TASK_CLOCK,
        sample_period: period_ns,
        flags: ATTR_DISABLED | ATTR_EXCLUDE_KERNEL | ATTR_EXCLUDE_HV,
        wakeup_events: 1,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares; the kernel only reads it.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, tid as libc::pid_t, -1, -1, PERF_FLAG_FD_CLOEXEC) } as i32;
    if fd < 0 {
        return last_error();
    }
    let owner = FOwnerEx { kind: F_OWNER_TID, pid: tid as libc::pid_t };
    // SAFETY: fcntl/ioctl on the descriptor we just opened; `owner` outlives the call.
    let configured = unsafe {
        libc::fcntl(fd, libc::F_SETFL, libc::O_ASYNC | libc::O_NONBLOCK) == 0
            && libc::fcntl(fd, F_SETSIG, signal) == 0
            && libc::fcntl(fd, F_SETOWN_EX, &owner as *const FOwnerEx) == 0
            && libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) == 0
    };
    if !configured {
        let error = std::io::Error::last_os_error();
        // SAFETY: closing the descriptor we opened above.
        unsafe { libc::close(fd) };
        return Err(error);
    }
    Ok(fd)
}

/// A POSIX timer on thread `tid`'s CPU clock: first signal after `first_ns`, then every `period_ns`.
fn create_posix_cpu_timer(tid: u32, first_ns: u64, period_ns: u64, signal: i32) -> std::io::Result<libc::timer_t> {
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
    let timespec = |ns: u64| libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
    let spec = libc::itimerspec { it_interval: timespec(period_ns), it_value: timespec(first_ns) };
    // SAFETY: `timer` was just created; `spec` is valid.
    if unsafe { libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) } != 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: deleting the timer we created.
        unsafe { libc::timer_delete(timer) };
        return Err(error);
    }
    Ok(timer)
}

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
