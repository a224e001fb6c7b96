//! `auto`: each thread sampled by the source that costs it least.
//!
//! A perf task-clock event fires at the full rate, but the kernel cancels and restarts its
//! hrtimer at every context switch of its thread: ~9 µs per switch on a virtual machine, where
//! re-programming the timer exits to the hypervisor (~0.3 µs on bare metal). A POSIX CPU timer
//! costs nothing per switch but is checked only on the scheduler tick. So a thread that
//! computes earns the perf event, and a thread that switches (a server waiting on sockets,
//! a ping-pong of threads) keeps a POSIX timer:
//!
//! * Every thread starts on a perf event: a thread that lives a few milliseconds gets its
//!   samples at once (a POSIX timer fires only on a tick, and a thread that ends before it
//!   loses them). Its handler looks, once per window of at least [`WINDOW_CPU_NS`] of its CPU
//!   time, at the voluntary context switches the window held (`getrusage(RUSAGE_THREAD)`, one
//!   system call; the thread waited) and prices them at the perf event's per-switch cost: the
//!   share of the thread's CPU time the perf event takes (or would take). Preemptions are left
//!   out: a computing thread on a crowded machine has hundreds a second, and the full rate is
//!   worth their price to it.
//! * Under [`PROMOTE_BELOW_PPM`] the thread moves to a perf event, over [`DEMOTE_ABOVE_PPM`]
//!   back to a POSIX timer. Between the two it stays: hysteresis. After each move the next one
//!   waits for a hold of CPU time that doubles, so a thread whose behaviour keeps changing
//!   moves a bounded number of times.
//! * The per-switch cost is measured once per process, the first time a decision needs it (a
//!   window whose switches would cross the threshold at [`DEAREST_SWITCH_NS`] each: one with
//!   fewer needs no price), on
//!   a quiet perf event of the thread's own: the median of a few `PERF_EVENT_IOC_ENABLE` +
//!   `PERF_EVENT_IOC_DISABLE` pairs, which start and cancel the same hrtimer a switch does.
//!   Never a constant: bare metal, a VM or a different kernel each measure their own.
//!
//! A thread that spends its CPU time in system calls takes few perf samples (overflows in the
//! kernel are dropped at `perf_event_paranoid` 2), so some of its interposed waiting calls look
//! too (`shim::sampling::timers::look_at_wait`).
//!
//! Moves are made by the thread itself (its handler, or one of its waits; never both at once),
//! between two samples: the old timer is released
//! (a pending perf signal is then told stale by the handler and dropped; deleting a POSIX timer
//! takes its pending signal off the queue), and the new one is armed counting from now, with a
//! random phase, so the weights go on adding up to the CPU time with no sample lost or counted
//! twice. A concurrent [`ThreadTimer::disarm`] from another thread clears `enabled` first; the
//! move checks it again after arming and releases what it armed (both sides release by swaps,
//! so whoever comes second finds nothing).

use super::perf::{close_own, first_perf_period, open_disabled_task_clock, open_perf_task_clock, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE};
use super::{PhaseDraw, ThreadTimer, TimerSource};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The CPU time a decision looks at, at least.
pub const WINDOW_CPU_NS: u64 = 5_000_000;
/// A POSIX-timed thread moves to a perf event when its switches would cost it less than this
/// share of its CPU time (parts per million).
pub const PROMOTE_BELOW_PPM: u64 = 10_000;
/// A perf-timed thread moves to a POSIX timer when its switches cost it more than this share.
pub const DEMOTE_ABOVE_PPM: u64 = 40_000;
/// The hold after a thread's first move, in CPU time; it doubles with each move, up to
/// [`LONGEST_HOLD_NS`].
const FIRST_HOLD_NS: u64 = 50_000_000;
const LONGEST_HOLD_NS: u64 = 3_200_000_000;
/// Enable/disable pairs timed to measure the per-switch cost, on an event of this period (~25 µs
/// each on a VM that exits to its hypervisor at every timer write: a process pays ~0.2 ms once).
const COST_PAIRS: usize = 7;
/// Twice the dearest per-switch cost measured on any machine so far (24–29 µs, a VM): a window
/// whose switches stay under [`DEMOTE_ABOVE_PPM`] even at this price needs no measurement (a
/// program that waits a few times in its first milliseconds, reading its files, never pays
/// for it).
const DEAREST_SWITCH_NS: u64 = 60_000;
const CALIBRATION_PERIOD_NS: u64 = 20_000;

/// The perf event's cost per context switch on this machine, ns (measured once; 0 = not yet).
static SWITCH_COST_NS: AtomicU64 = AtomicU64::new(0);
/// The kernel refused perf events for good (`perf_event_paranoid`, no perf support).
static PERF_REFUSED: AtomicBool = AtomicBool::new(false);

/// Tells `auto` that the kernel refuses perf events (found at start-up): no thread is moved to
/// one. Not for the handler.
pub fn refuse_perf_events() {
    PERF_REFUSED.store(true, Ordering::Relaxed);
}

/// The perf event's measured cost per context switch, ns; `None` before any decision needed it.
pub fn switch_cost_ns() -> Option<u64> {
    Some(SWITCH_COST_NS.load(Ordering::Relaxed)).filter(|&cost| cost != 0)
}

/// A thread's adaptive state. All-zero: not adaptive (a source the user forced, or disarmed).
pub struct Adaptation {
    /// Moves are allowed (`auto`). Cleared first by `disarm`.
    enabled: AtomicBool,
    /// A look (and its move) is under way on the thread: set by a swap, so that its handler
    /// and one of its interposed waits never look at once.
    looking: AtomicBool,
    /// The thread's CPU time (µs, `getrusage`) and context switches at the window's start
    /// (0, 0: the thread's birth).
    window_cpu_us: AtomicU64,
    window_switches: AtomicU64,
    /// Periods of CPU sampled since the window started.
    window_periods: AtomicU32,
    /// No move before the thread's CPU time reaches this (µs), and the next hold (ns).
    hold_until_cpu_us: AtomicU64,
    next_hold_ns: AtomicU64,
    /// Moves so far, and the switch rate (per second of CPU) that decided the last one.
    pub moves_to_perf: AtomicU32,
    pub moves_to_posix: AtomicU32,
    pub last_move_switch_rate: AtomicU64,
}

/// What a window's look decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    ToPerf,
    ToPosix,
}

impl Adaptation {
    pub const fn new() -> Self {
        Adaptation {
            enabled: AtomicBool::new(false),
            looking: AtomicBool::new(false),
            window_cpu_us: AtomicU64::new(0),
            window_switches: AtomicU64::new(0),
            window_periods: AtomicU32::new(0),
            hold_until_cpu_us: AtomicU64::new(0),
            next_hold_ns: AtomicU64::new(0),
            moves_to_perf: AtomicU32::new(0),
            moves_to_posix: AtomicU32::new(0),
            last_move_switch_rate: AtomicU64::new(0),
        }
    }

    /// Starts (or stops) adapting for a newly armed timer. Not for the handler.
    pub(super) fn reset(&self, enabled: bool) {
        for counter in [&self.window_cpu_us, &self.window_switches, &self.hold_until_cpu_us, &self.next_hold_ns, &self.last_move_switch_rate] {
            counter.store(0, Ordering::Relaxed);
        }
        self.window_periods.store(0, Ordering::Relaxed);
        self.looking.store(false, Ordering::Relaxed);
        self.moves_to_perf.store(0, Ordering::Relaxed);
        self.moves_to_posix.store(0, Ordering::Relaxed);
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Stops adapting: after this no move starts, and one under way releases what it armed.
    /// Async-signal-safe.
    pub(super) fn stop(&self) {
        self.enabled.store(false, Ordering::SeqCst);
    }
}

impl Default for Adaptation {
    fn default() -> Self {
        Self::new()
    }
}

/// A thread's CPU time (µs) and voluntary context switches (it waited: a server's switches),
/// from `getrusage(RUSAGE_THREAD)`. Involuntary ones are left out: a thread that computes on a
/// crowded machine is preempted at every tick, and the full rate is worth their price to it.
/// Async-signal-safe.
fn thread_usage() -> Option<(u64, u64)> {
    // SAFETY: rusage is plain data; getrusage writes it and is a plain system call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `usage` is valid for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return None;
    }
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    Some((micros(usage.ru_utime) + micros(usage.ru_stime), usage.ru_nvcsw as u64))
}

/// The share of `cpu_us` of CPU time that `switches` context switches cost at `cost_ns` each,
/// in parts per million.
pub fn switch_share_ppm(switches: u64, cpu_us: u64, cost_ns: u64) -> u64 {
    (u128::from(switches) * u128::from(cost_ns) * 1000 / u128::from(cpu_us.max(1))).min(u128::from(u64::MAX)) as u64
}

impl ThreadTimer {
    /// The adaptive choice, called by the thread's handler after each of its samples, which
    /// stood for `periods` periods: once the samples since the last look stand for a window of
    /// CPU time, looks (see [`ThreadTimer::look_at_switches`]). Returns the move made, if any.
    /// Async-signal-safe; calling thread only.
    pub fn adapt(&self, periods: u32, period_ns: u64, tid: u32, signal: i32) -> Option<Moved> {
        let adapt = &self.adapt;
        if !adapt.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let window_periods = adapt.window_periods.load(Ordering::Relaxed).saturating_add(periods);
        if u64::from(window_periods).saturating_mul(period_ns) < WINDOW_CPU_NS {
            adapt.window_periods.store(window_periods, Ordering::Relaxed);
            return None;
        }
        adapt.window_periods.store(0, Ordering::Relaxed);
        self.look_at_switches(period_ns, tid, signal)
    }

    /// The adaptive choice, called from some of the thread's own waiting calls: a thread that
    /// spends its time in system calls takes few samples with a perf event (its overflows in
    /// the kernel are dropped), and would otherwise rarely be looked at. Async-signal-safe;
    /// calling thread only.
    pub fn adapt_at_wait(&self, period_ns: u64, tid: u32, signal: i32) -> Option<Moved> {
        if !self.adapt.enabled.load(Ordering::Relaxed) {
            return None;
        }
        self.look_at_switches(period_ns, tid, signal)
    }

    /// At the end of a window of at least [`WINDOW_CPU_NS`] of the thread's CPU time, moves it
    /// to the source its voluntary context switches make cheapest (see the module's
    /// documentation); a shorter window stays open. At most one look at a time per thread.
    /// Async-signal-safe; calling thread only.
    fn look_at_switches(&self, period_ns: u64, tid: u32, signal: i32) -> Option<Moved> {
        if self.adapt.looking.swap(true, Ordering::Acquire) {
            return None;
        }
        let moved = self.look_at_window(period_ns, tid, signal);
        self.adapt.looking.store(false, Ordering::Release);
        moved
    }

    fn look_at_window(&self, period_ns: u64, tid: u32, signal: i32) -> Option<Moved> {
        let adapt = &self.adapt;
        let (cpu_us, switches) = thread_usage()?;
        // The first window runs from the thread's birth (the counters' zero).
        let start_us = adapt.window_cpu_us.load(Ordering::Relaxed);
        let window_us = cpu_us.saturating_sub(start_us);
        if window_us < WINDOW_CPU_NS / 1000 {
            return None;
        }
        adapt.window_cpu_us.store(cpu_us.max(1), Ordering::Relaxed);
        let window_switches = switches.saturating_sub(adapt.window_switches.swap(switches, Ordering::Relaxed));
        if cpu_us < adapt.hold_until_cpu_us.load(Ordering::Relaxed) {
            return None;
        }
        let rate = window_switches.saturating_mul(1_000_000) / window_us;
        let moved = match self.source()? {
            TimerSource::Perf => {
                // A thread that did not wait, or too rarely to matter at any price, stays: no
                // measurement needed (a short program never pays for it).
                if switch_share_ppm(window_switches, window_us, DEAREST_SWITCH_NS) <= DEMOTE_ABOVE_PPM {
                    return None;
                }
                let cost = measured_switch_cost()?;
                if switch_share_ppm(window_switches, window_us, cost) <= DEMOTE_ABOVE_PPM {
                    return None;
                }
                self.move_to_posix(tid, signal, period_ns)?
            }
            TimerSource::Posix => {
                if PERF_REFUSED.load(Ordering::Relaxed) {
                    return None;
                }
                // A thread that did not switch at all needs no price; others need the measured one.
                if switch_cost_ns().is_some_and(|cost| switch_share_ppm(window_switches, window_us, cost) >= PROMOTE_BELOW_PPM) {
                    return None;
                }
                self.move_to_perf(tid, signal, period_ns, window_switches, window_us, cpu_us)?
            }
            TimerSource::Itimer => return None,
        };
        adapt.last_move_switch_rate.store(rate, Ordering::Relaxed);
        let hold = adapt.next_hold_ns.load(Ordering::Relaxed).max(FIRST_HOLD_NS / 2).saturating_mul(2).min(LONGEST_HOLD_NS);
        adapt.next_hold_ns.store(hold, Ordering::Relaxed);
        adapt.hold_until_cpu_us.store(cpu_us.saturating_add(hold / 1000), Ordering::Relaxed);
        match moved {
            Moved::ToPerf => adapt.moves_to_perf.fetch_add(1, Ordering::Relaxed),
            Moved::ToPosix => adapt.moves_to_posix.fetch_add(1, Ordering::Relaxed),
        };
        Some(moved)
    }

    /// Replaces the perf event by a POSIX timer counting from now. Async-signal-safe.
    fn move_to_posix(&self, tid: u32, signal: i32, period_ns: u64) -> Option<Moved> {
        let now_cpu = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).max(1);
        self.close_source_interval(now_cpu);
        self.disarm_source();
        let draw = PhaseDraw::new(period_ns, tid);
        let armed = self.arm_posix(tid, signal, period_ns, &draw).is_ok();
        if !armed {
            // No POSIX timer to be had (the kernel's limits): the thread keeps a perf event.
            let _ = self.arm_perf(tid, signal, period_ns, &draw);
        }
        self.after_move(armed, TimerSource::Posix).then_some(Moved::ToPosix)
    }

    /// Replaces the POSIX timer by a perf event counting from now, if the perf event's price
    /// (measured on it if still unknown) stays under [`PROMOTE_BELOW_PPM`]. Async-signal-safe.
    fn move_to_perf(&self, tid: u32, signal: i32, period_ns: u64, switches: u64, window_us: u64, cpu_us: u64) -> Option<Moved> {
        let draw = PhaseDraw::new(period_ns, tid);
        let first_ns = first_perf_period(draw.phase_ns, period_ns);
        let event = match open_perf_task_clock(tid, first_ns, signal) {
            Ok(event) => event,
            Err(error) => {
                if matches!(error.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    // Descriptors are short now: try again after a long hold.
                    self.adapt.hold_until_cpu_us.store(cpu_us.saturating_add(LONGEST_HOLD_NS / 1000), Ordering::Relaxed);
                } else {
                    PERF_REFUSED.store(true, Ordering::Relaxed);
                }
                return None;
            }
        };
        let Some(cost) = measured_switch_cost() else {
            close_own(event.fd);
            return None;
        };
        if switch_share_ppm(switches, window_us, cost) >= PROMOTE_BELOW_PPM {
            close_own(event.fd);
            return None;
        }
        let now_cpu = crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID).max(1);
        self.close_source_interval(now_cpu);
        self.disarm_source();
        let armed = self.arm_opened_perf(event, tid, first_ns, period_ns, &draw).is_ok();
        if !armed {
            // The event could not be enabled: the thread keeps a POSIX timer.
            let _ = self.arm_posix(tid, signal, period_ns, &draw);
        }
        self.after_move(armed, TimerSource::Perf).then_some(Moved::ToPerf)
    }

    /// Ends a move: if a `disarm` from another thread cleared `enabled` while the new timer
    /// was armed, releases it (the disarm may have released it already: both sides swap).
    /// True when the thread is left sampled by `source`. Async-signal-safe.
    fn after_move(&self, armed: bool, source: TimerSource) -> bool {
        if !self.adapt.enabled.load(Ordering::SeqCst) {
            self.disarm_source();
            return false;
        }
        let moved = armed && self.source() == Some(source);
        if moved {
            self.last_source.store(source as u8, Ordering::Relaxed);
        }
        moved
    }
}

/// The perf event's cost per context switch, measured the first time it is needed on a quiet
/// event of the calling thread (no signal) whose short period makes its hrtimer the first to
/// expire on the CPU, as a sampling event's usually is between two scheduler ticks: the median
/// of [`COST_PAIRS`] enable + disable pairs, each of which starts and cancels that hrtimer as
/// a switch in and out does. `None` when no event can be opened. Async-signal-safe.
fn measured_switch_cost() -> Option<u64> {
    if let Some(cost) = switch_cost_ns() {
        return Some(cost);
    }
    let fd = open_disabled_task_clock(0, CALIBRATION_PERIOD_NS).ok()?.fd;
    let mut pairs = [0u64; COST_PAIRS];
    let mut measured = true;
    for pair in pairs.iter_mut() {
        let start = crate::clock::monotonic_ns();
        // SAFETY: `fd` is the quiet event just opened; enabling and disabling it changes only
        // whether it counts.
        measured &= unsafe { libc::ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) == 0 && libc::ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) == 0 };
        *pair = crate::clock::monotonic_ns().saturating_sub(start);
    }
    close_own(fd);
    if !measured {
        return None;
    }
    pairs.sort_unstable();
    let cost = pairs[COST_PAIRS / 2].max(1);
    SWITCH_COST_NS.store(cost, Ordering::Relaxed);
    Some(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_servers_and_loops() {
        // A ping-pong thread: ~1 switch per 2 µs of CPU, at 9 µs a switch.
        assert!(switch_share_ppm(500_000, 1_000_000, 9_000) > DEMOTE_ABOVE_PPM);
        // A CPU-bound thread preempted at every 4 ms tick.
        assert!(switch_share_ppm(250, 1_000_000, 9_000) < PROMOTE_BELOW_PPM);
        // On bare metal (0.3 µs a switch) a server thread at 20 000 switches per CPU-second
        // keeps its perf event.
        assert!(switch_share_ppm(20_000, 1_000_000, 300) < PROMOTE_BELOW_PPM);
        assert_eq!(switch_share_ppm(u64::MAX, 0, u64::MAX), u64::MAX);
    }
}
