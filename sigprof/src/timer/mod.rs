//! Per-thread CPU-time sampling: a thread's timer ([`ThreadTimer`]) whatever its source, the
//! storm guard, and the period and weight arithmetic the sources share.
//!
//! The sources, one file each:
//! * [`perf`]: a software `perf_event_open` task-clock event per thread, counting only that
//!   thread's CPU time, with signal delivery on each overflow (`O_ASYNC`, `F_SETSIG`,
//!   `F_SETOWN_EX` to the thread). Fires at the full rate; needs `perf_event_paranoid` ≤ 2.
//! * [`posix`]: a POSIX timer on the thread's CPU clock with `SIGEV_THREAD_ID`. The kernel checks
//!   it on the scheduler tick, so it fires at most at the tick rate; each signal carries the
//!   timer's overrun count, and a sample weighs 1 + overrun so CPU time stays right.
//! * [`itimer`]: one process-wide `setitimer(ITIMER_PROF)`; tick-limited, no overrun count.
//!
//! Arming and disarming run outside the handler (start-up, thread start and exit, drain thread),
//! but for one case: under `auto` the thread's own handler moves it between perf and POSIX (see
//! [`adapt`]), which is why both sources are armed and released by system calls alone.
//!
//! The first period of every per-thread timer is drawn uniformly from (0, period], the later
//! ones are whole: a thread that runs for T of CPU then gets T / period samples *in
//! expectation*, where a whole first period would lose half a period per thread on average
//! (4% of the samples of 32 threads of 0.12 s at 100 Hz).

mod adapt;
mod itimer;
mod own_sample;
mod perf;
mod posix;

pub use adapt::{refuse_perf_events, switch_cost_ns, Adaptation, Moved};
pub(crate) use itimer::itimer_sample_periods;
pub use itimer::{itimer_periods_at_process_end, reset_itimer_account, set_process_itimer};
pub use own_sample::OWN_SAMPLE_TAG;
pub use posix::POSIX_TIMER_TAG;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

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
    /// The POSIX timer's kernel id + 1; 0 = none.
    posix_timer_plus_one: AtomicUsize,
    /// The source armed last (kept by `disarm`, for the thread's account after its exit).
    last_source: AtomicU8,
    /// The thread's CPU time when its current source was armed, and the CPU time each source
    /// sampled before that (ns): where its samples came from, for `info`.
    source_since_cpu_ns: AtomicU64,
    perf_cpu_ns: AtomicU64,
    posix_cpu_ns: AtomicU64,
    /// `auto`'s state: when and why the thread moves between sources.
    pub adapt: Adaptation,
    /// The whole period (ns) a perf event takes after its first, other one; 0 once set.
    perf_period_after_first: AtomicU64,
    /// The first period is one-shot: the event disables itself at its first overflow, and the
    /// handler enables it again with `perf_period_after_first`.
    perf_first_period_one_shot: AtomicBool,
    /// The thread's CPU time at which its first perf sample was due: its arming plus the drawn
    /// phase. That sample stands for the sampling moments (one a period) passed since (an
    /// overflow dropped in the kernel, a first period longer than the phase), and the later
    /// samples count from the last of them. The CPU time before the arming is carried by a
    /// sample of its own (see [`own_sample`]).
    first_sample_due_cpu_ns: AtomicU64,
    /// Set while the perf event's first overflow is still to come after the sampling moments
    /// due in sigtrace's start-up code were taken on it (see `take_start_up_moments`): that
    /// overflow stands only for the moments since. Cleared by the next perf sample.
    start_up_moments_taken: AtomicBool,
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
    /// The signal of the start-up sample to take when the timer starts counting, for a thread
    /// armed by itself and counted from its start; 0 = none (see [`own_sample`]).
    start_up_sample_signal: AtomicI32,
    /// The thread's CPU time at its POSIX timer's first expiry, and the expiries its samples
    /// stood for since (see [`own_sample`]).
    posix_first_due_cpu_ns: AtomicU64,
    posix_moments_sampled: AtomicU64,
    /// The periods of the own sample raised and not taken yet (see [`own_sample`]).
    own_sample_periods: AtomicU32,
}

/// Where a thread's samples came from (see [`ThreadTimer::source_account`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceAccount {
    /// The source armed last.
    pub last: Option<TimerSource>,
    /// CPU time sampled by a perf event and by a POSIX timer, ns.
    pub perf_ns: u64,
    pub posix_ns: u64,
    /// Moves made by `auto`, and the switches per second of CPU that decided the last one.
    pub moves_to_perf: u32,
    pub moves_to_posix: u32,
    pub last_move_switch_rate: u64,
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
            posix_timer_plus_one: AtomicUsize::new(0),
            last_source: AtomicU8::new(0),
            source_since_cpu_ns: AtomicU64::new(0),
            perf_cpu_ns: AtomicU64::new(0),
            posix_cpu_ns: AtomicU64::new(0),
            adapt: Adaptation::new(),
            perf_period_after_first: AtomicU64::new(0),
            perf_first_period_one_shot: AtomicBool::new(false),
            first_sample_due_cpu_ns: AtomicU64::new(0),
            start_up_moments_taken: AtomicBool::new(false),
            perf_event_id: AtomicU64::new(0),
            last_sample_wall_ns: AtomicU64::new(0),
            last_sample_cpu_ns: AtomicU64::new(0),
            guard_window_cpu_ns: AtomicU64::new(0),
            guard_window_samples: AtomicU32::new(0),
            storms: AtomicU32::new(0),
            start_up_sample_signal: AtomicI32::new(0),
            posix_first_due_cpu_ns: AtomicU64::new(0),
            posix_moments_sampled: AtomicU64::new(0),
            own_sample_periods: AtomicU32::new(0),
        }
    }

    pub fn source(&self) -> Option<TimerSource> {
        TimerSource::from_u8(self.source.load(Ordering::Acquire))
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
            Some(TimerSource::Perf) => self.reprogram_perf(period_ns),
            Some(TimerSource::Posix) => self.reprogram_posix(period_ns),
            _ => false,
        }
    }

    /// Stops the timer's signals without releasing it (the thread's exit or `disarm` does
    /// that). Async-signal-safe.
    fn stop_signals(&self) {
        match self.source() {
            Some(TimerSource::Perf) => self.stop_perf_signals(),
            Some(TimerSource::Posix) => self.stop_posix_signals(),
            _ => {}
        }
    }

    /// Arms a per-thread timer of `source` for thread `tid`, delivering `signal` every
    /// `1/hz` seconds of the thread's CPU time; `adaptive` lets the thread's handler move it
    /// between perf and POSIX later (`auto`, see [`adapt`]). Everything the handler needs
    /// (descriptor, event id, pending period, source) is published before the timer is
    /// enabled: its first signal may arrive before the enabling call returns. A perf event
    /// whose descriptor would crowd the program (see [`crate::descriptors`]) is refused with
    /// `EMFILE`.
    pub fn arm(&self, source: TimerSource, tid: u32, hz: u32, signal: i32, count_from: CountFrom, adaptive: bool) -> std::io::Result<()> {
        self.disarm();
        self.storms.store(0, Ordering::Relaxed);
        self.guard_window_samples.store(0, Ordering::Relaxed);
        let cpu_at_arming = crate::clock::thread_cpu_ns(tid).max(1);
        self.guard_window_cpu_ns.store(cpu_at_arming, Ordering::Relaxed);
        self.perf_cpu_ns.store(0, Ordering::Relaxed);
        self.posix_cpu_ns.store(0, Ordering::Relaxed);
        self.source_since_cpu_ns.store(if count_from == CountFrom::ThreadStart { 0 } else { cpu_at_arming }, Ordering::Relaxed);
        let period_ns = period_ns(hz);
        let draw = PhaseDraw::new(period_ns, tid);
        self.start_up_sample_signal.store(if count_from == CountFrom::ThreadStart { signal } else { 0 }, Ordering::Relaxed);
        let armed = match source {
            TimerSource::Perf => self.arm_perf(tid, signal, period_ns, &draw),
            TimerSource::Posix => self.arm_posix(tid, signal, period_ns, &draw),
            TimerSource::Itimer => {
                self.source.store(source as u8, Ordering::SeqCst); // process-wide: see set_process_itimer
                Ok(0)
            }
        };
        self.start_up_sample_signal.store(0, Ordering::Relaxed);
        armed?;
        self.last_source.store(source as u8, Ordering::Relaxed);
        self.adapt.reset(adaptive && source != TimerSource::Itimer);
        Ok(())
    }

    /// Stops and releases the timer. Idempotent, and safe beside a move the thread's handler
    /// is making (see [`adapt`]). A perf descriptor is closed only while it still refers to our
    /// event; a number the program closed and reused is forgotten.
    pub fn disarm(&self) {
        self.adapt.stop();
        self.disarm_source();
    }

    /// Releases the current source (the adaptive state stays). Async-signal-safe.
    fn disarm_source(&self) {
        self.perf_period_after_first.store(0, Ordering::Relaxed);
        self.last_sample_wall_ns.store(0, Ordering::Relaxed);
        self.last_sample_cpu_ns.store(0, Ordering::Relaxed);
        self.start_up_moments_taken.store(false, Ordering::Relaxed);
        self.release_source(TimerSource::from_u8(self.source.swap(0, Ordering::SeqCst)));
    }

    /// Releases `source`, just swapped out of the timer. Async-signal-safe.
    fn release_source(&self, source: Option<TimerSource>) {
        match source {
            Some(TimerSource::Perf) => self.release_perf(),
            Some(TimerSource::Posix) => self.release_posix(),
            Some(TimerSource::Itimer) | None => {}
        }
    }

    /// Adds the CPU time since the current source was armed to that source's account, up to
    /// `now_cpu_ns` (the thread's CPU clock). Async-signal-safe; the thread's handler only.
    fn close_source_interval(&self, now_cpu_ns: u64) {
        let since = self.source_since_cpu_ns.swap(now_cpu_ns, Ordering::Relaxed);
        let account = match self.source() {
            Some(TimerSource::Perf) => &self.perf_cpu_ns,
            Some(TimerSource::Posix) => &self.posix_cpu_ns,
            _ => return,
        };
        account.fetch_add(now_cpu_ns.saturating_sub(since), Ordering::Relaxed);
    }

    /// The thread's account of its sources for `info`, given its CPU time `cpu_ns` now (or at
    /// its exit): the source armed last, and the CPU time sampled by perf and by POSIX timers.
    /// Not for the handler.
    pub fn source_account(&self, cpu_ns: u64) -> SourceAccount {
        let last = TimerSource::from_u8(self.last_source.load(Ordering::Relaxed));
        let (mut perf_ns, mut posix_ns) = (self.perf_cpu_ns.load(Ordering::Relaxed), self.posix_cpu_ns.load(Ordering::Relaxed));
        let current_ns = cpu_ns.saturating_sub(self.source_since_cpu_ns.load(Ordering::Relaxed));
        match last {
            Some(TimerSource::Perf) => perf_ns += current_ns,
            Some(TimerSource::Posix) => posix_ns += current_ns,
            _ => {}
        }
        SourceAccount {
            last,
            perf_ns,
            posix_ns,
            moves_to_perf: self.adapt.moves_to_perf.load(Ordering::Relaxed),
            moves_to_posix: self.adapt.moves_to_posix.load(Ordering::Relaxed),
            last_move_switch_rate: self.adapt.last_move_switch_rate.load(Ordering::Relaxed),
        }
    }

    /// In a forked child: forgets a timer inherited from the parent. The child's copy of a perf
    /// descriptor is closed (the parent's stays open); POSIX timers and itimers are not
    /// inherited by `fork`, so there is nothing to delete.
    pub fn forget_after_fork(&self) {
        self.adapt.stop();
        self.source.store(0, Ordering::SeqCst);
        // The id of the parent's POSIX timer may be the child's own timer's some day.
        self.posix_timer_plus_one.store(0, Ordering::Relaxed);
        self.forget_perf_after_fork();
    }
}

impl Default for ThreadTimer {
    fn default() -> Self {
        Self::new()
    }
}

pub use config::period_ns;

/// `elapsed_ns` of CPU time in whole sampling periods, rounded, at least 1 (a sample stands for
/// its own period). Async-signal-safe.
pub fn periods_in(elapsed_ns: u64, period_ns: u64) -> u32 {
    (elapsed_ns.saturating_add(period_ns / 2) / period_ns.max(1)).clamp(1, u64::from(u32::MAX)) as u32
}

/// The sampling moments, one a period from `next_due_ns` on (0: none set), that passed by the
/// CPU time `now_ns`, and the last of them; `None` when none did.
fn moments_due(next_due_ns: u64, now_ns: u64, period_ns: u64) -> Option<(u32, u64)> {
    if next_due_ns == 0 || now_ns < next_due_ns {
        return None;
    }
    let moments = (1 + (now_ns - next_due_ns) / period_ns.max(1)).min(u64::from(u32::MAX));
    Some((moments as u32, next_due_ns.saturating_add((moments - 1) * period_ns)))
}

/// Where a thread's sample weights start counting its CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFrom {
    /// The thread's start: a thread sigtrace started, armed by itself, whose CPU time before its
    /// timer was armed (its start-up, sigtrace's registration) is the program's too: a sample
    /// of its start-up path stands for it (see [`own_sample`]).
    ThreadStart,
    /// The arming: a thread that ran before sigtrace saw it (the main thread, threads found at
    /// start-up or after a failed exec), whose earlier CPU time is not this trace's.
    Arming,
}

/// A thread's random draws at arming: its phase, uniform in (0, period], so that a thread of f
/// periods of CPU gets f samples in expectation, short threads included, and no two threads
/// started together share a phase; and a uniform fraction of 2^32 to round a weight at random.
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

/// `ns` in whole periods, rounded up with probability equal to the fraction left (`rounding`
/// is a uniform fraction of 2^32): the expectation is exactly `ns / period_ns`.
/// Async-signal-safe.
fn periods_rounded_at_random(ns: u64, period_ns: u64, rounding: u32) -> u32 {
    let period_ns = period_ns.max(1);
    let nudge = ((u128::from(period_ns) * u128::from(rounding)) >> 32) as u64;
    (ns.saturating_add(nudge) / period_ns).min(u64::from(u32::MAX)) as u32
}

fn last_error<T>() -> std::io::Result<T> {
    Err(std::io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::perf::{first_perf_period, SHORTEST_FIRST_PERIOD_NS};
    use super::*;

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
    fn moments_due_count_on_their_grid() {
        let period = 1_000;
        assert_eq!(moments_due(0, 5_000, period), None, "no moment set");
        assert_eq!(moments_due(2_000, 1_999, period), None);
        assert_eq!(moments_due(2_000, 2_000, period), Some((1, 2_000)));
        assert_eq!(moments_due(2_000, 4_999, period), Some((3, 4_000)));
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
