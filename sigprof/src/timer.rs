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
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

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

    /// The source stored as `value` (`source as u8`), `None` for 0 (none chosen, or disarmed).
    pub fn from_u8(value: u8) -> Option<TimerSource> {
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
    /// The whole period (ns) a perf event takes after its first, other one; 0 once set.
    perf_period_after_first: AtomicU64,
    /// The thread's CPU time at which its first perf sample was due: where its weights count
    /// from (its start, or its arming) plus the drawn phase. That sample stands for its own
    /// period and for the CPU time it came after that, rounded by `first_sample_rounding`
    /// (a uniform fraction of 2^32) so that its expectation is exact.
    first_sample_due_cpu_ns: AtomicU64,
    first_sample_rounding: AtomicU32,
    /// The kernel's id of the perf event (`PERF_EVENT_IOC_ID`): the descriptor number is
    /// touched only while it still refers to this event.
    perf_event_id: AtomicU64,
    /// Monotonic time and the thread's CPU time (an estimate between reads) at its previous
    /// perf sample; 0 = no sample yet. Written only by the thread's own handler.
    last_sample_wall_ns: AtomicU64,
    last_sample_cpu_ns: AtomicU64,
    /// The storm guard's window: the thread's CPU time at its start, the samples seen in it, and
    /// the storms this timer had. Written by `arm`, then only by the thread's own handler.
    guard_window_cpu_ns: AtomicU64,
    guard_window_samples: AtomicU32,
    storms: AtomicU32,
}

/// What the storm guard did about a sample (see [`ThreadTimer::guard_rate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateGuard {
    /// The rate is within bounds.
    Normal,
    /// Samples came far faster than the period: the timer was given its period again.
    Reprogrammed,
    /// A second storm (or a timer that could not be re-programmed): the timer is stopped for
    /// this thread.
    SwitchedOff,
}

/// The storm guard looks every `GUARD_WINDOW_SAMPLES` samples at the thread's CPU time since
/// the previous look: a timer fires once per period of CPU, so samples coming more than
/// `GUARD_MAX_RATIO` times faster are a storm (a timer whose period was lost), never real load.
/// CPU time, not wall time: a thread sharing a core with 30 others storms just the same.
const GUARD_WINDOW_SAMPLES: u32 = 64;
const GUARD_MAX_RATIO: u64 = 4;

impl ThreadTimer {
    pub const fn new() -> Self {
        ThreadTimer {
            source: AtomicU8::new(0),
            perf_fd_plus_one: AtomicI32::new(0),
            posix_timer: AtomicUsize::new(0),
            perf_period_after_first: AtomicU64::new(0),
            first_sample_due_cpu_ns: AtomicU64::new(0),
            first_sample_rounding: AtomicU32::new(0),
            perf_event_id: AtomicU64::new(0),
            last_sample_wall_ns: AtomicU64::new(0),
            last_sample_cpu_ns: AtomicU64::new(0),
            guard_window_cpu_ns: AtomicU64::new(0),
            guard_window_samples: AtomicU32::new(0),
            storms: AtomicU32::new(0),
        }
    }

    pub fn source(&self) -> Option<TimerSource> {
        TimerSource::from_u8(self.source.load(Ordering::Acquire))
    }

    /// The perf event's file descriptor, or -1. Async-signal-safe.
    pub fn perf_fd(&self) -> i32 {
        self.perf_fd_plus_one.load(Ordering::Relaxed) - 1
    }

    /// Bookkeeping of a perf sample taken at `wall_ns` (monotonic): ends the event's first
    /// period, and returns the periods of CPU time the sample stands for.
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
    /// sample; two periods of CPU cannot fit in less.
    ///
    /// Weights are counted against the CPU time they already stand for, not against the
    /// previous reading: the rounding of one sample is made up by the next, so that weights add
    /// up to the CPU time however the gaps between overflows vary. The first sample also stands
    /// for the CPU time before its timer ran (see `first_sample_due_cpu_ns`).
    /// Async-signal-safe; calling thread only.
    fn periods_since_last_sample(&self, wall_ns: u64, period_ns: u64) -> u32 {
        let last_wall = self.last_sample_wall_ns.swap(wall_ns, Ordering::Relaxed);
        let counted_cpu = self.last_sample_cpu_ns.load(Ordering::Relaxed);
        if counted_cpu != 0 && wall_ns.saturating_sub(last_wall) < period_ns + period_ns / 2 {
            self.last_sample_cpu_ns.store(counted_cpu.saturating_add(period_ns), Ordering::Relaxed);
            return 1;
        }
        let cpu_ns = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).max(1);
        if counted_cpu == 0 {
            self.last_sample_cpu_ns.store(cpu_ns, Ordering::Relaxed);
            let late_ns = cpu_ns.saturating_sub(self.first_sample_due_cpu_ns.load(Ordering::Relaxed));
            return 1u32.saturating_add(periods_rounded_at_random(late_ns, period_ns, self.first_sample_rounding.load(Ordering::Relaxed)));
        }
        let periods = periods_in(cpu_ns.saturating_sub(counted_cpu), period_ns);
        self.last_sample_cpu_ns.store(counted_cpu.saturating_add(u64::from(periods) * period_ns), Ordering::Relaxed);
        periods
    }

    /// After the perf event's first period: gives it whole periods from now on.
    /// One `ioctl` per thread, on its first sample; the kernel restarts the count at the new
    /// period. The pending period is cleared only once it was handed to our own event: `arm`
    /// publishes the descriptor before it enables the event, so the first overflow always finds
    /// it. Async-signal-safe.
    fn end_first_period(&self) {
        let period = self.perf_period_after_first.load(Ordering::Relaxed);
        if period == 0 {
            return;
        }
        let Some(fd) = self.own_perf_fd() else { return };
        self.perf_period_after_first.store(0, Ordering::Relaxed);
        set_perf_period(fd, period);
    }

    /// True when `fd` is this timer's perf event descriptor and still refers to the event.
    /// Async-signal-safe.
    pub fn owns_descriptor(&self, fd: i32) -> bool {
        self.own_perf_fd() == Some(fd)
    }

    /// The perf event's descriptor if it still refers to our event (the program may have closed
    /// the number and reused it). Async-signal-safe.
    fn own_perf_fd(&self) -> Option<i32> {
        let fd = self.perf_fd();
        let id = self.perf_event_id.load(Ordering::Relaxed);
        (fd >= 0 && crate::descriptors::perf_event_id(fd, perf_identity()?) == Some(id)).then_some(fd)
    }

    /// The storm guard, called by the thread's handler for each of its samples: every
    /// `GUARD_WINDOW_SAMPLES` samples it reads the thread's CPU clock (one system call), and a
    /// thread signalled more than `GUARD_MAX_RATIO` times faster than its period has its
    /// timer re-programmed to the period; if it storms again, or cannot be re-programmed, its
    /// timer is stopped. Whatever ordering mistake lets a period go wrong, a thread never spends
    /// its time taking signals. Async-signal-safe; calling thread only.
    pub fn guard_rate(&self, period_ns: u64) -> RateGuard {
        let samples = self.guard_window_samples.load(Ordering::Relaxed).saturating_add(1);
        if samples < GUARD_WINDOW_SAMPLES {
            self.guard_window_samples.store(samples, Ordering::Relaxed);
            return RateGuard::Normal;
        }
        self.guard_window_samples.store(0, Ordering::Relaxed);
        let now = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        let start = self.guard_window_cpu_ns.swap(now, Ordering::Relaxed);
        let allowed = GUARD_MAX_RATIO.saturating_mul(now.saturating_sub(start)) / period_ns.max(1);
        if start == 0 || now == 0 || u64::from(samples) <= allowed {
            return RateGuard::Normal;
        }
        let storms = self.storms.load(Ordering::Relaxed).saturating_add(1);
        self.storms.store(storms, Ordering::Relaxed);
        if storms == 1 && self.reprogram(period_ns) {
            return RateGuard::Reprogrammed;
        }
        self.stop_signals();
        RateGuard::SwitchedOff
    }

    /// Gives the timer its whole period again. Async-signal-safe.
    fn reprogram(&self, period_ns: u64) -> bool {
        match self.source() {
            Some(TimerSource::Perf) => {
                self.perf_period_after_first.store(0, Ordering::Relaxed);
                self.own_perf_fd().is_some_and(|fd| set_perf_period(fd, period_ns))
            }
            Some(TimerSource::Posix) => set_posix_timer(self.posix_timer.load(Ordering::Relaxed) as libc::timer_t, period_ns, period_ns),
            _ => false,
        }
    }

    /// Stops the timer's signals without releasing it (the thread's exit or `disarm` does
    /// that). Async-signal-safe.
    fn stop_signals(&self) {
        match self.source() {
            Some(TimerSource::Perf) => {
                if let Some(fd) = self.own_perf_fd() {
                    // SAFETY: `fd` is our event: stop counting and stop signal delivery.
                    unsafe {
                        libc::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
                        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                    }
                }
            }
            Some(TimerSource::Posix) => {
                set_posix_timer(self.posix_timer.load(Ordering::Relaxed) as libc::timer_t, 0, 0);
            }
            _ => {}
        }
    }

    /// Arms a per-thread timer of `source` for thread `tid`, delivering `signal` every
    /// `1/hz` seconds of the thread's CPU time. Everything the handler needs (descriptor, event
    /// id, pending period, source) is published before the timer is enabled: its first
    /// signal may arrive before the enabling call returns. A perf event whose descriptor would
    /// crowd the program (see [`crate::descriptors`]) is refused with `EMFILE`.
    pub fn arm(&self, source: TimerSource, tid: u32, hz: u32, signal: i32, count_from: CountFrom) -> std::io::Result<()> {
        self.disarm();
        self.storms.store(0, Ordering::Relaxed);
        self.guard_window_samples.store(0, Ordering::Relaxed);
        let cpu_at_arming = crate::clock::thread_cpu_ns(tid).max(1);
        self.guard_window_cpu_ns.store(cpu_at_arming, Ordering::Relaxed);
        let period_ns = period_ns(hz);
        let draw = PhaseDraw::new(period_ns, tid);
        match source {
            TimerSource::Perf => {
                let first_ns = first_perf_period(draw.phase_ns, period_ns);
                let counted_from = if count_from == CountFrom::ThreadStart { 0 } else { cpu_at_arming };
                self.first_sample_due_cpu_ns.store(counted_from.saturating_add(draw.phase_ns), Ordering::Relaxed);
                self.first_sample_rounding.store(draw.rounding, Ordering::Relaxed);
                let fd = open_perf_task_clock(tid, first_ns, signal)?;
                let Some(id) = remember_perf_identity(fd) else {
                    close_own(fd);
                    return Err(std::io::Error::from_raw_os_error(libc::EBADF));
                };
                self.perf_period_after_first.store(if first_ns == period_ns { 0 } else { period_ns }, Ordering::Relaxed);
                self.perf_event_id.store(id, Ordering::Relaxed);
                self.perf_fd_plus_one.store(fd + 1, Ordering::Relaxed);
                self.source.store(source as u8, Ordering::Release);
                // SAFETY: enables the event we opened and configured above.
                if unsafe { libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) } != 0 {
                    let error = std::io::Error::last_os_error();
                    self.disarm();
                    return Err(error);
                }
            }
            TimerSource::Posix => {
                let timer = create_posix_cpu_timer(tid, signal)?;
                self.posix_timer.store(timer as usize, Ordering::Relaxed);
                self.source.store(source as u8, Ordering::Release);
                if !set_posix_timer(timer, draw.phase_ns, period_ns) {
                    let error = std::io::Error::last_os_error();
                    self.disarm();
                    return Err(error);
                }
            }
            TimerSource::Itimer => self.source.store(source as u8, Ordering::Release), // process-wide: see set_process_itimer
        }
        Ok(())
    }

    /// Stops and releases the timer. Idempotent. A perf descriptor is closed only while it
    /// still refers to our event; a number the program closed and reused is forgotten.
    pub fn disarm(&self) {
        self.perf_period_after_first.store(0, Ordering::Relaxed);
        self.last_sample_wall_ns.store(0, Ordering::Relaxed);
        self.last_sample_cpu_ns.store(0, Ordering::Relaxed);
        match TimerSource::from_u8(self.source.swap(0, Ordering::AcqRel)) {
            Some(TimerSource::Perf) => {
                let owned = self.own_perf_fd();
                self.perf_fd_plus_one.store(0, Ordering::Relaxed);
                if let Some(fd) = owned {
                    // SAFETY: `fd` was just checked to be our perf event; disabling then closing it is harmless.
                    unsafe { libc::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) };
                    close_own(fd);
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
            if let Some(fd) = self.own_perf_fd() {
                close_own(fd);
            }
            self.perf_fd_plus_one.store(0, Ordering::Relaxed);
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
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
const ATTR_EXCLUDE_HV: u64 = 1 << 6;
const F_SETSIG: libc::c_int = 10;
const F_SETOWN_EX: libc::c_int = 15;
const F_OWNER_TID: libc::c_int = 0;

pub use config::period_ns;

/// `elapsed_ns` of CPU time in whole sampling periods, rounded, at least 1 (a sample stands for
/// its own period). Async-signal-safe.
pub fn periods_in(elapsed_ns: u64, period_ns: u64) -> u32 {
    (elapsed_ns.saturating_add(period_ns / 2) / period_ns.max(1)).clamp(1, u64::from(u32::MAX)) as u32
}

/// Where a thread's sample weights start counting its CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFrom {
    /// The thread's start: a thread sigtrace started, whose CPU time before its timer was armed
    /// (its start-up, sigtrace's registration) is the program's too.
    ThreadStart,
    /// The arming: a thread that ran before sigtrace saw it (the main thread, threads found at
    /// start-up or after a failed exec), whose earlier CPU time is not this trace's.
    Arming,
}

/// The shortest first period a perf event is given. The event repeats its first period until
/// the thread's handler replaces it, and its timer interrupt costs microseconds on a virtual
/// machine: at perf's shortest period (10 µs) the interrupts took all of a new thread's CPU,
/// for milliseconds, before its handler could run.
const SHORTEST_FIRST_PERIOD_NS: u64 = 100_000;

/// A thread's random draws at arming: its phase, uniform in (0, period], so that a thread of f
/// periods of CPU gets f samples in expectation, short threads included, and no two threads
/// started together share a phase; and the rounding of its first perf sample's weight, a
/// uniform fraction of 2^32.
struct PhaseDraw {
    phase_ns: u64,
    rounding: u32,
}

impl PhaseDraw {
    fn new(period_ns: u64, tid: u32) -> Self {
        // splitmix64 of the monotonic clock and the thread id.
        let mut x = crate::clock::monotonic_ns() ^ (u64::from(tid) << 32);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        PhaseDraw { phase_ns: (x & 0xffff_ffff) % period_ns.max(1) + 1, rounding: (x >> 32) as u32 }
    }
}

/// The first period of a perf event whose phase is `phase_ns`: the phase, or one period later
/// when the phase is under [`SHORTEST_FIRST_PERIOD_NS`]. The first sample makes up for the
/// period skipped: it stands for the CPU time since the phase was due.
fn first_perf_period(phase_ns: u64, period_ns: u64) -> u64 {
    if phase_ns < SHORTEST_FIRST_PERIOD_NS && phase_ns < period_ns {
        phase_ns + period_ns
    } else {
        phase_ns
    }
}

/// `ns` in whole periods, rounded up with probability equal to the fraction left (`rounding`
/// is a uniform fraction of 2^32): the expectation is exactly `ns / period_ns`.
/// Async-signal-safe.
fn periods_rounded_at_random(ns: u64, period_ns: u64, rounding: u32) -> u32 {
    let period_ns = period_ns.max(1);
    let nudge = ((u128::from(period_ns) * u128::from(rounding)) >> 32) as u64;
    (ns.saturating_add(nudge) / period_ns).min(u64::from(u32::MAX)) as u32
}

/// Device and inode shared by every perf event descriptor (the kernel's anonymous inode), read
/// from our first event; 0 = not known yet.
static PERF_DEVICE: AtomicU64 = AtomicU64::new(0);
static PERF_INODE: AtomicU64 = AtomicU64::new(0);

/// The identity of perf event descriptors, once one was opened. Async-signal-safe.
fn perf_identity() -> Option<(u64, u64)> {
    let inode = PERF_INODE.load(Ordering::Acquire);
    (inode != 0).then(|| (PERF_DEVICE.load(Ordering::Relaxed), inode))
}

/// Records the identity of perf descriptors from `fd`, a perf event we just opened, and returns
/// the event's id. Not for the handler.
fn remember_perf_identity(fd: i32) -> Option<u64> {
    let (device, inode) = crate::descriptors::file_identity(fd)?;
    if perf_identity().is_none() {
        PERF_DEVICE.store(device, Ordering::Relaxed);
        PERF_INODE.store(inode, Ordering::Release);
    }
    crate::descriptors::perf_event_id(fd, (device, inode))
}

/// Gives the perf event `fd` (checked to be ours) `period_ns` from now on; false when the
/// kernel refused. Async-signal-safe.
fn set_perf_period(fd: i32, period_ns: u64) -> bool {
    // SAFETY: PERF_EVENT_IOC_PERIOD reads one u64 from the pointer, valid for the call; the
    // caller checked that `fd` is our event.
    unsafe { libc::ioctl(fd, PERF_EVENT_IOC_PERIOD, &period_ns as *const u64) == 0 }
}

/// Closes a descriptor checked (or known) to be ours. Async-signal-safe.
fn close_own(fd: i32) {
    crate::descriptors::close_own(fd);
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

/// Opens a task-clock event on thread `tid` that will send `signal` to that thread every
/// `period_ns` of its CPU time (user mode: `perf_event_paranoid` 2 forbids kernel sampling),
/// moved into the perf descriptor band (see [`crate::descriptors`]) and configured, but still
/// disabled: the caller publishes it to the handler, then enables it.
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
    let (lo, hi) = crate::descriptors::perf_band();
    if lo >= hi {
        return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
    }
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares; the kernel only reads it.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, tid as libc::pid_t, -1, -1, PERF_FLAG_FD_CLOEXEC) } as i32;
    if fd < 0 {
        return last_error();
    }
    let fd = crate::descriptors::move_above(fd, lo, hi).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EMFILE))?;
    let owner = FOwnerEx { kind: F_OWNER_TID, pid: tid as libc::pid_t };
    // SAFETY: fcntl on the descriptor we just opened; `owner` outlives the call. The fasync
    // record takes this (final) number, which the signals carry as `si_fd`.
    let configured = unsafe {
        libc::fcntl(fd, libc::F_SETFL, libc::O_ASYNC | libc::O_NONBLOCK) == 0
            && libc::fcntl(fd, F_SETSIG, signal) == 0
            && libc::fcntl(fd, F_SETOWN_EX, &owner as *const FOwnerEx) == 0
    };
    if !configured {
        let error = std::io::Error::last_os_error();
        close_own(fd);
        return Err(error);
    }
    Ok(fd)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_phase_moves_one_period_later() {
        let period = 250_000;
        assert_eq!(first_perf_period(1, period), 250_001);
        assert_eq!(first_perf_period(99_999, period), 349_999);
        assert_eq!(first_perf_period(100_000, period), 100_000);
        assert_eq!(first_perf_period(period, period), period);
        // At 10 kHz and above every phase but the whole period moves.
        assert_eq!(first_perf_period(100_000, 100_000), 100_000);
        assert_eq!(first_perf_period(50_000, 100_000), 150_000);
    }

    #[test]
    fn phases_are_uniform_and_first_periods_never_shorter_than_the_shortest() {
        for hz in [10, 100, 999, 4000, 10_000] {
            let period = period_ns(hz);
            let (mut sum, draws) = (0f64, 20_000u32);
            for tid in 0..draws {
                let draw = PhaseDraw::new(period, tid);
                assert!((1..=period).contains(&draw.phase_ns));
                assert!(first_perf_period(draw.phase_ns, period) >= SHORTEST_FIRST_PERIOD_NS.min(period));
                sum += draw.phase_ns as f64;
            }
            let mean = sum / f64::from(draws);
            let sigma = period as f64 / 12f64.sqrt() / f64::from(draws).sqrt();
            assert!((mean - period as f64 / 2.0).abs() < 4.5 * sigma, "{hz} Hz: mean phase {mean} of {period}");
        }
    }

    #[test]
    fn random_rounding_keeps_the_expectation() {
        let period = 250_000;
        assert_eq!(periods_rounded_at_random(0, period, u32::MAX), 0);
        assert_eq!(periods_rounded_at_random(period, period, 0), 1);
        assert_eq!(periods_rounded_at_random(period - 1, period, 0), 0);
        assert_eq!(periods_rounded_at_random(period - 1, period, u32::MAX), 1);
        // 0.3 periods: rounded up for 30% of the fractions.
        let ups: u32 = (0..1000u32).map(|i| periods_rounded_at_random(75_000, period, i.wrapping_mul(4_294_967))).sum();
        assert!((299..=301).contains(&ups), "{ups}");
    }
}
