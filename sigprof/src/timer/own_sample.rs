//! Samples a thread raises on itself: the CPU time its timer cannot stand for, carried by a real
//! sample of the thread taken where it is when that CPU time becomes known.
//!
//! * At its start: the CPU time a thread sigtrace started ran before its timer was armed (its
//!   start-up and sigtrace's registration), rounded to whole periods at random so that its
//!   expectation is exact. It is a sample of the start-up path, not of the code that happens
//!   to run at the thread's first overflow.
//! * At the hand-over to the program's start routine: the perf event's moments that came due in
//!   sigtrace's start-up code, which the event's shortest first period would sample later, in
//!   the program's code (see [`ThreadTimer::take_start_up_moments`]).
//! * At its exit: the sampling moments its timer passed without a sample. A perf event that
//!   excludes the kernel (`perf_event_paranoid` 2) drops an overflow that comes in kernel mode
//!   and the next one carries its weight, but a thread may end before that next one; a POSIX
//!   CPU timer fires only on a scheduler tick, which a short thread may never see. Each such
//!   moment is a period of CPU time the thread spent; the sample stands for them on the exit
//!   path's own stack, so a thread's expected weight is its CPU time, whatever its length.
//!
//! * At the process's end, under the process-wide itimer: the process CPU time since the
//!   timer's last signal, which a tick-limited timer may leave long (see `timer::itimer`).
//!
//! The thread queues our signal to itself (`rt_tgsigqueueinfo`, `SI_QUEUE`, tagged with
//! [`OWN_SAMPLE_TAG`]); its handler takes the weight from the slot, so a signal someone else
//! forges with the tag weighs nothing.

use super::{moments_due, periods_rounded_at_random, PhaseDraw, ThreadTimer, TimerSource};
use std::sync::atomic::Ordering;

/// A start-up sample to raise once the timer counts: its signal and the periods it stands for.
pub(super) struct StartUpSample {
    signal: i32,
    periods: u32,
}

/// The value our own samples carry in `si_value` ("SIOW").
pub const OWN_SAMPLE_TAG: usize = 0x5349_4f57;

/// Byte offsets in `siginfo_t` (Linux, 64-bit) of the sender's pid and uid and of the value.
const SI_PID_OFFSET: usize = 16;
const SI_UID_OFFSET: usize = 20;
const SI_VALUE_OFFSET: usize = 24;

impl ThreadTimer {
    /// Called right before the timer starts counting: returns the thread's CPU time from which
    /// the timer's sampling moments count, and the start-up sample due for the CPU time before
    /// it (see the module's documentation), which the caller raises with
    /// [`ThreadTimer::raise_start_up_sample`] once the timer counts. So the moments count from
    /// right before the enabling, and the first one is sampled where its phase falls; the
    /// start-up sample's handler then runs on CPU time the timer counts, and a moment that
    /// passes inside it is sampled right after it, still in sigtrace's start-up code.
    /// Async-signal-safe.
    pub(super) fn start_counting(&self, tid: u32, period_ns: u64) -> (u64, Option<StartUpSample>) {
        let cpu_ns = crate::clock::thread_cpu_ns(tid).max(1);
        let signal = self.start_up_sample_signal.load(Ordering::Relaxed);
        let sample = (signal != 0).then(|| {
            let draw = PhaseDraw::new(period_ns, tid.rotate_left(16));
            StartUpSample { signal, periods: periods_rounded_at_random(cpu_ns, period_ns, draw.rounding) }
        });
        (cpu_ns, sample)
    }

    /// Raises the start-up sample [`ThreadTimer::start_counting`] returned, once the timer
    /// counts (a timer that failed to start takes none: the source armed in its place does).
    /// Calling thread only.
    pub(super) fn raise_start_up_sample(&self, tid: u32, sample: Option<StartUpSample>) {
        if let Some(StartUpSample { signal, periods }) = sample {
            if self.start_up_sample_signal.swap(0, Ordering::Relaxed) != 0 {
                self.take_own_sample(tid, signal, periods);
            }
        }
    }

    /// At the hand-over of a thread sigtrace started to the program's start routine (calling
    /// thread only): takes on the start-up path the perf event's sampling moments that came due
    /// in sigtrace's start-up code. The event's first period is never under
    /// [`super::perf::SHORTEST_FIRST_PERIOD_NS`] (the kernel's timer floor), so a phase due sooner
    /// is sampled that long after the enabling: past the start-up code, in the program's first
    /// function, which would gain the start-up code's CPU time (in threads of 0.4 ms at 999 Hz
    /// a first function with 0.254 of the CPU had 0.27 of the weight). Taken here they are
    /// counted as stood for, and the event's first overflow stands only for the moments after
    /// them: mostly none, a sample that weighs nothing and is not written. Costs one read of the
    /// CPU clock a thread.
    pub fn take_start_up_moments(&self, tid: u32, signal: i32, period_ns: u64) {
        if self.source() != Some(TimerSource::Perf) || self.last_sample_cpu_ns.load(Ordering::Relaxed) != 0 {
            return;
        }
        let due = self.first_sample_due_cpu_ns.load(Ordering::Relaxed);
        let now = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        let Some((moments, counted)) = moments_due(due, now, period_ns) else { return };
        // The handler may take the first sample meanwhile: it reads the mark at once, and the
        // exchange below then fails; a sample after the exchange counts from its result.
        self.start_up_moments_taken.store(true, Ordering::Relaxed);
        if self.last_sample_cpu_ns.compare_exchange(0, counted, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.take_own_sample(tid, signal, moments);
        } else {
            self.start_up_moments_taken.store(false, Ordering::Relaxed);
        }
    }

    /// Stops and releases the timer of the exiting calling thread, like [`ThreadTimer::disarm`],
    /// and returns the sampling moments its timer passed without a sample (see the module's
    /// documentation). The source is cleared first: a signal of the timer that still arrives is
    /// dropped as stale, so no moment is counted twice. The moments are counted after the
    /// release, whose CPU time is the thread's too (closing a perf event takes 6–9 µs here).
    /// Calling thread only.
    pub fn disarm_at_exit(&self, period_ns: u64) -> u32 {
        self.adapt.stop();
        let source = TimerSource::from_u8(self.source.swap(0, Ordering::SeqCst));
        self.release_source(source);
        self.count_moments_missed(source, period_ns)
    }

    /// After [`ThreadTimer::disarm_at_exit`] and the own sample of what it returned: the
    /// sampling moments of the released timer that passed since, while that sample's handler
    /// ran (its CPU time is the thread's too, and on a new thread's first walk it is tens of
    /// µs). The caller samples them in turn, until none passes. Calling thread only.
    pub fn moments_missed_since_exit(&self, period_ns: u64) -> u32 {
        self.count_moments_missed(TimerSource::from_u8(self.last_source.load(Ordering::Relaxed)), period_ns)
    }

    /// The sampling moments of `source` up to the thread's CPU time now that no sample stood
    /// for, which are then counted as stood for.
    fn count_moments_missed(&self, source: Option<TimerSource>, period_ns: u64) -> u32 {
        match source {
            Some(TimerSource::Perf) => self.perf_moments_missed(period_ns),
            Some(TimerSource::Posix) => self.posix_moments_missed(period_ns),
            _ => 0,
        }
    }

    /// A perf event's sampling moments up to the thread's CPU time now that no sample carried:
    /// the first is its phase (if no sample came yet), the next ones a period after the CPU
    /// time its samples stood for. The last one returned becomes the last counted.
    fn perf_moments_missed(&self, period_ns: u64) -> u32 {
        self.take_perf_moments_due(crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID), period_ns)
    }

    /// A POSIX timer's expiries up to the thread's CPU time now that no sample stood for: the
    /// kernel fires it only on a scheduler tick, with the expiries since as its overrun, and a
    /// short thread may see no tick at all.
    fn posix_moments_missed(&self, period_ns: u64) -> u32 {
        let first_due = self.posix_first_due_cpu_ns.load(Ordering::Relaxed);
        let now = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        if first_due == 0 || now < first_due {
            return 0;
        }
        let passed = 1 + (now - first_due) / period_ns.max(1);
        let missed = passed.saturating_sub(self.posix_moments_sampled.load(Ordering::Relaxed)).min(u64::from(u32::MAX));
        self.posix_moments_sampled.fetch_add(missed, Ordering::Relaxed);
        missed as u32
    }

    /// Raises a sample of `periods` periods on the calling thread `tid` (nothing for 0), taken
    /// by its handler where the thread is when the signal is delivered (at once, unless the
    /// program blocks it). Calling thread only.
    pub fn take_own_sample(&self, tid: u32, signal: i32, periods: u32) {
        if periods == 0 {
            return;
        }
        self.own_sample_periods.fetch_add(periods, Ordering::Relaxed);
        // SAFETY: siginfo_t is plain data; all-zero is a valid start.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        info.si_signo = signal;
        info.si_code = libc::SI_QUEUE;
        // SAFETY: getpid and getuid are plain system calls.
        let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
        let base = &mut info as *mut libc::siginfo_t as *mut u8;
        // SAFETY: the offsets lie within siginfo_t, in its `_rt` member that SI_QUEUE selects.
        unsafe {
            base.add(SI_PID_OFFSET).cast::<i32>().write_unaligned(pid);
            base.add(SI_UID_OFFSET).cast::<u32>().write_unaligned(uid);
            base.add(SI_VALUE_OFFSET).cast::<usize>().write_unaligned(OWN_SAMPLE_TAG);
        }
        // SAFETY: `info` is valid for the call; the signal goes to the calling thread only.
        let sent = unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid as libc::pid_t, signal, &info as *const libc::siginfo_t) } == 0;
        if !sent {
            self.own_sample_periods.store(0, Ordering::Relaxed);
        }
    }

    /// The weight of an own sample now being taken (and forgets it): 0 for a signal we did not
    /// raise. Async-signal-safe; the thread's handler only.
    pub fn own_sample_weight(&self) -> u32 {
        self.own_sample_periods.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_id() -> u32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() as u32 }
    }

    /// A perf timer of the calling thread whose first moment came due at CPU time 1 ns (long
    /// passed), with a 10 s period (no second moment passes during the test).
    fn timer_due_long_ago() -> (ThreadTimer, u64) {
        let timer = ThreadTimer::new();
        timer.source.store(TimerSource::Perf as u8, Ordering::SeqCst);
        timer.first_sample_due_cpu_ns.store(1, Ordering::Relaxed);
        (timer, 10_000_000_000)
    }

    #[test]
    fn moments_due_in_the_start_up_code_are_taken_there_and_the_first_overflow_weighs_nothing() {
        let (timer, period) = timer_due_long_ago();
        // SIGWINCH is ignored by default: the own sample's signal does nothing in a test.
        timer.take_start_up_moments(thread_id(), libc::SIGWINCH, period);
        assert_eq!(timer.own_sample_periods.load(Ordering::Relaxed), 1, "the moment is sampled on the start-up path");
        assert_eq!(timer.last_sample_cpu_ns.load(Ordering::Relaxed), 1, "and counted as stood for");
        let wall = crate::clock::monotonic_ns();
        assert_eq!(timer.perf_sample_periods(wall, period), 0, "the event's first overflow stands for no further moment");
        assert_eq!(timer.perf_sample_periods(wall + 1, period), 1, "later overflows weigh as before");
    }

    #[test]
    fn a_first_sample_already_taken_leaves_nothing_to_take_at_start_up() {
        let (timer, period) = timer_due_long_ago();
        let wall = crate::clock::monotonic_ns();
        assert_eq!(timer.perf_sample_periods(wall, period), 1);
        timer.take_start_up_moments(thread_id(), libc::SIGWINCH, period);
        assert_eq!(timer.own_sample_periods.load(Ordering::Relaxed), 0);
        assert!(!timer.start_up_moments_taken.load(Ordering::Relaxed));
    }

    #[test]
    fn moments_due_while_an_exiting_thread_releases_its_perf_event_are_counted() {
        let tid = thread_id();
        let (timer, probe) = (ThreadTimer::new(), ThreadTimer::new());
        // One sample a second: no overflow comes during the test (and SIGWINCH is ignored).
        let arm = |timer: &ThreadTimer| timer.arm(TimerSource::Perf, tid, 1, libc::SIGWINCH, super::super::CountFrom::Arming, false);
        // A quarter of the cheapest of a few releases: the release under test takes longer.
        let mut cheapest = u64::MAX;
        for _ in 0..5 {
            if arm(&probe).is_err() {
                return; // no perf events here: nothing to release
            }
            let before = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
            probe.disarm();
            cheapest = cheapest.min(crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) - before);
        }
        if arm(&timer).is_err() {
            return;
        }
        let now = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        timer.first_sample_due_cpu_ns.store(now + cheapest / 4, Ordering::Relaxed);
        assert_eq!(timer.disarm_at_exit(1_000_000_000), 1, "a moment due {} ns into the release", cheapest / 4);
    }

    #[test]
    fn a_moment_not_yet_due_is_left_to_the_event() {
        let (timer, period) = timer_due_long_ago();
        timer.first_sample_due_cpu_ns.store(u64::MAX / 2, Ordering::Relaxed);
        timer.take_start_up_moments(thread_id(), libc::SIGWINCH, period);
        assert_eq!(timer.own_sample_periods.load(Ordering::Relaxed), 0);
        assert_eq!(timer.last_sample_cpu_ns.load(Ordering::Relaxed), 0);
    }
}
