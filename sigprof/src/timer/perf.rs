//! The `perf` source: a software task-clock `perf_event_open` event per thread, sending the
//! sampling signal to its thread on each overflow, and the weight of its samples.
//!
//! The event counts only its thread's CPU time and fires at the full rate (no scheduler tick in
//! the way); it needs `perf_event_paranoid` ≤ 2. Signal delivery is the descriptor's `O_ASYNC`
//! with `F_SETSIG` and `F_SETOWN_EX` to the thread; the signals carry the descriptor as `si_fd`,
//! which the handler checks against the event's id before it trusts the number.

use super::{last_error, moments_due, periods_in, PhaseDraw, ThreadTimer, TimerSource};
use crate::descriptors::NotMoved;
use std::sync::atomic::{AtomicU64, Ordering};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
pub(super) const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
pub(super) const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
/// `_IOW('$', 4, __u64)`.
const PERF_EVENT_IOC_PERIOD: libc::c_ulong = 0x4008_2404;
/// `_IO('$', 2)`: adds to the event's overflow limit and enables it; at the limit the kernel
/// disables the event itself (and stops its timer).
const PERF_EVENT_IOC_REFRESH: libc::c_ulong = 0x2402;
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
const ATTR_EXCLUDE_HV: u64 = 1 << 6;
const F_SETSIG: libc::c_int = 10;
const F_SETOWN_EX: libc::c_int = 15;
const F_OWNER_TID: libc::c_int = 0;

impl ThreadTimer {
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
    /// for the sampling moments passed since it was due (see `first_sample_due_cpu_ns`).
    /// Async-signal-safe; calling thread only.
    fn periods_since_last_sample(&self, wall_ns: u64, period_ns: u64) -> u32 {
        let moments_taken_at_start_up = self.start_up_moments_taken.swap(false, Ordering::Relaxed);
        let last_wall = self.last_sample_wall_ns.swap(wall_ns, Ordering::Relaxed);
        let counted_cpu = self.last_sample_cpu_ns.load(Ordering::Relaxed);
        if counted_cpu != 0 && !moments_taken_at_start_up && wall_ns.saturating_sub(last_wall) < period_ns + period_ns / 2 {
            self.last_sample_cpu_ns.store(counted_cpu.saturating_add(period_ns), Ordering::Relaxed);
            return 1;
        }
        let cpu_ns = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).max(1);
        if counted_cpu == 0 {
            // The sampling moments since the first one was due, counted on its grid: a thread
            // that ends before its next moment has no more weight coming (the exit counts the
            // moments it passed from here, see `own_sample`), and the CPU time from the last
            // moment to this sample is stood for by the next samples, counted from that moment.
            // A sample that came before its moment stands for that moment.
            let due_ns = self.first_sample_due_cpu_ns.load(Ordering::Relaxed).max(1);
            let (moments, last_moment) = moments_due(due_ns, cpu_ns.max(due_ns), period_ns).unwrap_or((1, due_ns));
            self.last_sample_cpu_ns.store(last_moment, Ordering::Relaxed);
            return moments;
        }
        if moments_taken_at_start_up {
            // The first overflow after the start-up code took the moments due in it (see
            // `take_start_up_moments`): it stands for the moments since, none if it came
            // within a period of them.
            return self.take_perf_moments_due(cpu_ns, period_ns);
        }
        let periods = periods_in(cpu_ns.saturating_sub(counted_cpu), period_ns);
        self.last_sample_cpu_ns.store(counted_cpu.saturating_add(u64::from(periods) * period_ns), Ordering::Relaxed);
        periods
    }

    /// The perf event's sampling moments up to the thread's CPU time `now_ns` that no sample
    /// stood for (see `perf_moments_missed`), counted as stood for from here. Not to be
    /// interrupted by the thread's handler: the handler itself, or a thread whose source was
    /// cleared. Async-signal-safe.
    pub(super) fn take_perf_moments_due(&self, now_ns: u64, period_ns: u64) -> u32 {
        let counted = self.last_sample_cpu_ns.load(Ordering::Relaxed);
        let next_due = if counted == 0 { self.first_sample_due_cpu_ns.load(Ordering::Relaxed) } else { counted.saturating_add(period_ns) };
        let Some((moments, counted)) = moments_due(next_due, now_ns, period_ns) else { return 0 };
        self.last_sample_cpu_ns.store(counted, Ordering::Relaxed);
        moments
    }

    /// After the perf event's first period: gives it whole periods from now on.
    /// One `ioctl` per thread, on its first sample; the kernel restarts the count at the new
    /// period. A one-shot first period (see [`first_period_is_one_shot`]) disabled the event at
    /// its overflow: it is enabled again, with the whole period (a second `ioctl`). The pending period is cleared only once it was handed to our own event: `arm`
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
        if self.perf_first_period_one_shot.swap(false, Ordering::Relaxed) {
            enable_perf(fd);
        }
    }

    /// True when `fd` is this timer's perf event descriptor and still refers to the event.
    /// Async-signal-safe.
    pub fn owns_descriptor(&self, fd: i32) -> bool {
        self.own_perf_fd() == Some(fd)
    }

    /// The perf event's descriptor if it still refers to our event (the program may have closed
    /// the number and reused it). Async-signal-safe.
    pub(super) fn own_perf_fd(&self) -> Option<i32> {
        let fd = self.perf_fd();
        let id = self.perf_event_id.load(Ordering::Relaxed);
        (fd >= 0 && crate::descriptors::perf_event_id(fd, perf_identity()?) == Some(id)).then_some(fd)
    }

    /// Arms the perf event (see [`ThreadTimer::arm`]): descriptor, event id, pending period and
    /// source are published before the event is enabled. Returns the thread's CPU time when it
    /// was enabled, where its phase counts from. Async-signal-safe.
    pub(super) fn arm_perf(&self, tid: u32, signal: i32, period_ns: u64, draw: &PhaseDraw) -> std::io::Result<u64> {
        let first_ns = first_perf_period(draw.phase_ns, period_ns);
        let event = open_perf_task_clock(tid, first_ns, signal)?;
        self.arm_opened_perf(event, tid, first_ns, period_ns, draw)
    }

    /// Arms the perf event `event`, opened disabled by [`open_perf_task_clock`] with `first_ns`
    /// as its period (see [`ThreadTimer::arm_perf`]). Async-signal-safe.
    pub(super) fn arm_opened_perf(&self, event: OpenedEvent, tid: u32, first_ns: u64, period_ns: u64, draw: &PhaseDraw) -> std::io::Result<u64> {
        let OpenedEvent { fd, id } = event;
        self.perf_period_after_first.store(if first_ns == period_ns { 0 } else { period_ns }, Ordering::Relaxed);
        let one_shot = first_ns != period_ns && first_period_is_one_shot(first_ns);
        self.perf_first_period_one_shot.store(one_shot, Ordering::Relaxed);
        self.perf_event_id.store(id, Ordering::Relaxed);
        self.perf_fd_plus_one.store(fd + 1, Ordering::Relaxed);
        self.source.store(TimerSource::Perf as u8, Ordering::SeqCst);
        // A `disarm` from another thread may have released the event since it was published.
        if self.own_perf_fd() != Some(fd) {
            self.disarm_source();
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        // The event counts from its enabling: its phase too.
        let (cpu_at_enabling, start_up_sample) = self.start_counting(tid, period_ns);
        self.first_sample_due_cpu_ns.store(cpu_at_enabling.saturating_add(draw.phase_ns), Ordering::Relaxed);
        // SAFETY: enables the event we opened and configured above (checked just now); a
        // one-shot first period enables it for one overflow.
        let enabled = unsafe {
            if one_shot {
                libc::ioctl(fd, PERF_EVENT_IOC_REFRESH, 1)
            } else {
                libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
            }
        };
        if enabled != 0 {
            let error = std::io::Error::last_os_error();
            self.disarm_source();
            return Err(error);
        }
        self.raise_start_up_sample(tid, start_up_sample);
        Ok(cpu_at_enabling)
    }

    /// Gives the perf event its whole period again (the storm guard). Async-signal-safe.
    pub(super) fn reprogram_perf(&self, period_ns: u64) -> bool {
        self.perf_period_after_first.store(0, Ordering::Relaxed);
        let one_shot = self.perf_first_period_one_shot.swap(false, Ordering::Relaxed);
        self.own_perf_fd().is_some_and(|fd| set_perf_period(fd, period_ns) && (!one_shot || enable_perf(fd)))
    }

    /// Stops the perf event's signals without closing it. Async-signal-safe.
    pub(super) fn stop_perf_signals(&self) {
        if let Some(fd) = self.own_perf_fd() {
            // SAFETY: `fd` is our event: stop counting and stop signal delivery.
            unsafe {
                libc::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
            }
        }
    }

    /// Closes the perf event (the source was already cleared), if the descriptor still refers
    /// to it; a number the program closed and reused is forgotten. Closing the only descriptor
    /// of the event stops it (no `PERF_EVENT_IOC_DISABLE` first: a thread's exit pays one
    /// system call less); a signal it raised just before is still recognised as ours
    /// (`Registry::perf_is_ours`) and dropped as stale. Idempotent, also when two threads
    /// release at once: the descriptor is taken by one swap. Async-signal-safe.
    pub(super) fn release_perf(&self) {
        let fd = self.perf_fd_plus_one.swap(0, Ordering::AcqRel) - 1;
        let id = self.perf_event_id.load(Ordering::Relaxed);
        if fd >= 0 && perf_identity().is_some_and(|identity| crate::descriptors::perf_event_id(fd, identity) == Some(id)) {
            close_own(fd);
        }
    }

    /// In a forked child: closes the child's copy of the perf descriptor (the parent's stays
    /// open).
    pub(super) fn forget_perf_after_fork(&self) {
        if let Some(fd) = self.own_perf_fd() {
            close_own(fd);
        }
        self.perf_fd_plus_one.store(0, Ordering::Relaxed);
    }
}

/// The shortest first period a perf event is given (the kernel's own floor for its timer is
/// 10 µs). A short first period is one-shot (see [`first_period_is_one_shot`]), so that only
/// the thread's CPU time spent in the kernel before its first overflow in user mode (the
/// event excludes the kernel) can take its timer interrupts at this rate.
pub(super) const SHORTEST_FIRST_PERIOD_NS: u64 = 20_000;

/// First periods under this are one-shot: the event's timer interrupt costs microseconds on a
/// virtual machine, and an event repeating a 10 µs first period until the thread's handler
/// replaces it took all of a new thread's CPU when the thread could not take the signal (640
/// threads of 2 ms ran with 3.4 s of system time). A one-shot event disables itself at its
/// first overflow and the handler enables it again with the whole period; a thread that
/// blocks the signal takes one interrupt, then none until it takes the signal.
const ONE_SHOT_BELOW_NS: u64 = 100_000;

/// The first period of a perf event whose phase is `phase_ns`: the phase, never under
/// [`SHORTEST_FIRST_PERIOD_NS`]. The first sample stands for the CPU time since the phase was
/// due, so only where it lands in the thread's first 20 µs moves, not how much it weighs (and a
/// thread sigtrace started takes the moments due in its start-up code there, see
/// `take_start_up_moments`); a thread of any length gets its phase, drawn from its start, and
/// so its CPU time's worth of samples in expectation.
pub(super) fn first_perf_period(phase_ns: u64, period_ns: u64) -> u64 {
    phase_ns.max(SHORTEST_FIRST_PERIOD_NS.min(period_ns))
}

/// True when a first period of `first_ns` must be one-shot (see [`ONE_SHOT_BELOW_NS`]).
pub(super) fn first_period_is_one_shot(first_ns: u64) -> bool {
    first_ns < ONE_SHOT_BELOW_NS
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

/// Records `identity` as that of perf descriptors (read from our first event), once.
/// Async-signal-safe.
fn remember_perf_identity((device, inode): (u64, u64)) {
    if perf_identity().is_none() {
        PERF_DEVICE.store(device, Ordering::Relaxed);
        PERF_INODE.store(inode, Ordering::Release);
    }
}

/// The identity and the kernel's id of the perf event open as `fd`, or `None` when `fd` is not
/// one: a file with the identity of sigtrace's events once that is known; before, a file
/// without a type or a regular one (an anonymous inode reads as either, by kernel version)
/// that answers the perf-only id request. A program's socket, pipe or device is never asked.
/// One `fstat` and one `ioctl`. Async-signal-safe.
fn perf_event_at(fd: i32) -> Option<((u64, u64), u64)> {
    // SAFETY: stat is plain data; fstat writes it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any number is harmless; `stat` is valid for the call.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return None;
    }
    let identity = (stat.st_dev, stat.st_ino);
    match perf_identity() {
        Some(known) if known != identity => return None,
        None if !matches!(stat.st_mode & libc::S_IFMT, 0 | libc::S_IFREG) => return None,
        _ => {}
    }
    crate::descriptors::ask_perf_event_id(fd).map(|id| (identity, id))
}

/// Gives the perf event `fd` (checked to be ours) `period_ns` from now on; false when the
/// kernel refused. Async-signal-safe.
fn set_perf_period(fd: i32, period_ns: u64) -> bool {
    // SAFETY: PERF_EVENT_IOC_PERIOD reads one u64 from the pointer, valid for the call; the
    // caller checked that `fd` is our event.
    unsafe { libc::ioctl(fd, PERF_EVENT_IOC_PERIOD, &period_ns as *const u64) == 0 }
}

/// Enables the perf event `fd` (checked to be ours); false when the kernel refused.
/// Async-signal-safe.
fn enable_perf(fd: i32) -> bool {
    // SAFETY: the caller checked that `fd` is our event; enabling only makes it count.
    unsafe { libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) == 0 }
}

/// Closes a descriptor checked (or known) to be ours. Async-signal-safe.
pub(super) fn close_own(fd: i32) {
    crate::descriptors::close_own(fd);
}
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

/// Opens a task-clock event on thread `tid` that will send `signal` to that thread every
/// `period_ns` of its CPU time (user mode: `perf_event_paranoid` 2 forbids kernel sampling),
/// moved into the perf descriptor band (see [`crate::descriptors`]) and configured, but still
/// disabled: the caller publishes it to the handler, then enables it. Async-signal-safe.
pub(super) fn open_perf_task_clock(tid: u32, period_ns: u64, signal: i32) -> std::io::Result<OpenedEvent> {
    let event = open_disabled_task_clock(tid, period_ns)?;
    let fd = event.fd;
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
    Ok(event)
}

/// A perf event sigtrace opened and moved into the perf band: its descriptor and the kernel's
/// id of the event, read when the move checked the descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenedEvent {
    pub fd: i32,
    pub id: u64,
}

/// Opens a disabled task-clock event on thread `tid` with `period_ns`, moved into the perf
/// descriptor band, that signals nothing: what [`open_perf_task_clock`] configures, or a
/// quiet event to time. Async-signal-safe.
pub(super) fn open_disabled_task_clock(tid: u32, period_ns: u64) -> std::io::Result<OpenedEvent> {
    let attr = PerfEventAttr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_TASK_CLOCK,
        sample_period: period_ns,
        flags: ATTR_DISABLED | ATTR_EXCLUDE_KERNEL | ATTR_EXCLUDE_HV,
        wakeup_events: 1,
        ..Default::default()
    };
    let mut band_read_again = false;
    let mut tries_left = 4;
    let fd = loop {
        let (lo, hi) = crate::descriptors::perf_band();
        if lo >= hi {
            return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
        }
        // SAFETY: `attr` is a valid perf_event_attr of the size it declares; the kernel only reads it.
        let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, &attr as *const PerfEventAttr, tid as libc::pid_t, -1, -1, PERF_FLAG_FD_CLOEXEC) } as i32;
        if fd < 0 {
            return last_error();
        }
        // The first number checked (the copy, or the original when the move fails first) must
        // be a perf event; any other must be the same event: the one the kernel just opened.
        let first_seen = std::cell::Cell::new(None);
        let is_this_event = |number: i32| match (perf_event_at(number), first_seen.get()) {
            (Some(event), None) => {
                first_seen.set(Some(event));
                true
            }
            (Some(event), Some(first)) => event == first,
            (None, _) => false,
        };
        match crate::descriptors::move_above(fd, lo, hi, is_this_event) {
            Ok(fd) => {
                let Some((identity, id)) = first_seen.get() else {
                    // Not reached: the move took the copy only once it was checked.
                    close_own(fd);
                    return Err(std::io::Error::from_raw_os_error(libc::EBADF));
                };
                remember_perf_identity(identity);
                break OpenedEvent { fd, id };
            }
            // The program closed the number and may have taken it back: open another event.
            Err(NotMoved::Taken) if tries_left > 1 => tries_left -= 1,
            Err(NotMoved::Taken) => return Err(std::io::Error::from_raw_os_error(libc::EBADF)),
            // The band came from a limit read earlier: read it again once.
            Err(NotMoved::NoRoom) if !band_read_again => {
                band_read_again = true;
                crate::descriptors::forget_perf_band();
            }
            Err(NotMoved::NoRoom) => return Err(std::io::Error::from_raw_os_error(libc::EMFILE)),
        }
    };
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_phase_is_kept_and_one_shot() {
        let period = 1_000_000;
        assert_eq!(first_perf_period(1, period), SHORTEST_FIRST_PERIOD_NS);
        assert_eq!(first_perf_period(25_000, period), 25_000);
        assert_eq!(first_perf_period(period, period), period);
        assert!(first_period_is_one_shot(first_perf_period(1, period)));
        assert!(first_period_is_one_shot(99_999));
        assert!(!first_period_is_one_shot(100_000));
        // Above 50 kHz the period itself is the floor.
        assert_eq!(first_perf_period(1, 10_000), 10_000);
    }
}
