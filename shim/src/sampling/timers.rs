//! Choosing the sampling source and arming each thread's timer.
//!
//! `SIGTRACE_TIMER=perf|posix|itimer` forces a source. `auto` (the default) starts every
//! thread on a perf event, which fires at the full rate (a thread that lives a few ms gets its
//! samples; a POSIX timer, checked on the scheduler tick, would lose them), and lets its handler
//! move it to a POSIX CPU timer, which costs nothing per context switch, while it switches
//! rather than computes (`sigprof`'s `timer::adapt`). Where perf events are refused, `auto`
//! uses POSIX timers only. A forked child's thread starts on the source its forking thread had
//! (a server that forks a worker per connection has moved to a POSIX timer, and so would each
//! worker, after paying for a perf event and its switches first); it moves on from there.

use crate::config::TimerChoice;
use crate::log;
use sigprof::{set_process_itimer, CountFrom, Registry, ThreadSlot, TimerSource};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// The process-wide source chosen at start-up (a `TimerSource` as u8): the one new threads
/// start on.
static SOURCE: AtomicU8 = AtomicU8::new(0);
/// True under `auto`: threads move between perf and POSIX by what their switches cost.
static ADAPTIVE: AtomicBool = AtomicBool::new(false);
static ARM_FAILURE_REPORTED: AtomicBool = AtomicBool::new(false);
/// A perf event was refused for want of descriptors (said by the next `arm_thread_timer`).
static DESCRIPTORS_SHORT: AtomicBool = AtomicBool::new(false);

/// Arms the first (calling) thread with the requested source and fixes the process's source;
/// when sampling starts paused, releases that timer again at once (`pause`).
/// `inherited`: under `auto`, the source the forking thread had, for a forked child's thread.
pub fn choose_source(choice: TimerChoice, slot: &ThreadSlot, tid: u32, registry: &Registry, inherited: Option<TimerSource>) -> Result<TimerSource, String> {
    crate::sampling::pause::with_arming_lock(|_| {
        let source = arm_first_thread(choice, slot, tid, registry, inherited)?;
        crate::sampling::pause::after_first_arming(slot, source);
        Ok(source)
    })
}

fn arm_first_thread(choice: TimerChoice, slot: &ThreadSlot, tid: u32, registry: &Registry, inherited: Option<TimerSource>) -> Result<TimerSource, String> {
    let (hz, signal) = (registry.config.hz, registry.config.signal);
    // Before the first event can fire: its signals must never be taken for the program's.
    registry.perf_is_ours.store(matches!(choice, TimerChoice::Perf | TimerChoice::Auto), Ordering::Release);
    let source = match choice {
        TimerChoice::Itimer => {
            sigprof::reset_itimer_account();
            registry.itimer_is_ours.store(true, Ordering::Relaxed);
            set_process_itimer(hz).map_err(|error| format!("setitimer(ITIMER_PROF) refused: {error}"))?;
            TimerSource::Itimer
        }
        TimerChoice::Perf => {
            slot.timer.arm(TimerSource::Perf, tid, hz, signal, CountFrom::Arming, false).map_err(|error| {
                if is_descriptor_shortage(&error) {
                    say_descriptors_are_scarce();
                }
                format!("perf_event_open refused: {error}")
            })?;
            TimerSource::Perf
        }
        TimerChoice::Posix => {
            slot.timer.arm(TimerSource::Posix, tid, hz, signal, CountFrom::Arming, false).map_err(|error| format!("timer_create refused: {error}"))?;
            TimerSource::Posix
        }
        TimerChoice::Auto if inherited == Some(TimerSource::Posix) && slot.timer.arm(TimerSource::Posix, tid, hz, signal, CountFrom::Arming, true).is_ok() => {
            // New threads of the child start as the parent's do: the process source stays.
            ADAPTIVE.store(true, Ordering::Relaxed);
            return Ok(TimerSource::Posix);
        }
        TimerChoice::Auto => {
            ADAPTIVE.store(true, Ordering::Relaxed);
            match slot.timer.arm(TimerSource::Perf, tid, hz, signal, CountFrom::Arming, true) {
                Ok(()) => TimerSource::Perf,
                Err(error) => {
                    if is_descriptor_shortage(&error) {
                        say_descriptors_are_scarce();
                    } else {
                        log::info(&format!(
                            "perf_event_open refused ({error}); using POSIX thread CPU timers, which fire at most at the kernel tick rate (samples carry their overruns as weight)"
                        ));
                        registry.perf_is_ours.store(false, Ordering::Release);
                        sigprof::refuse_perf_events();
                    }
                    slot.timer.arm(TimerSource::Posix, tid, hz, signal, CountFrom::Arming, true).map_err(|error| format!("timer_create refused: {error}"))?;
                    TimerSource::Posix
                }
            }
        }
    };
    SOURCE.store(source as u8, Ordering::Release);
    Ok(source)
}

/// The source new threads start on, once chosen.
pub fn current_source() -> Option<TimerSource> {
    TimerSource::from_u8(SOURCE.load(Ordering::Acquire))
}

/// The name the trace header gives the sampling source: `auto` when threads move between
/// sources, else the one forced.
pub fn source_name() -> &'static str {
    if ADAPTIVE.load(Ordering::Relaxed) {
        "auto"
    } else {
        current_source().map_or("none", TimerSource::name)
    }
}

/// Arms the timer of a newly registered thread with the process's source, unless sampling is
/// paused (`pause`: the resume arms it). Under `auto`, a perf event that is refused, or that
/// would take one of a program's scarce descriptors (see `sigprof::descriptors`), gives way to
/// a POSIX timer, which needs none. `count_from` says whether the thread's CPU time before now
/// is this trace's. Not for the handler.
pub fn arm_thread_timer(slot: &ThreadSlot, tid: u32, count_from: CountFrom) {
    let result = crate::sampling::pause::with_arming_lock(|paused| if paused { Ok(()) } else { try_arm_thread_timer(slot, tid, count_from) });
    if DESCRIPTORS_SHORT.load(Ordering::Relaxed) {
        say_descriptors_are_scarce();
    }
    if let Err(error) = result {
        if is_descriptor_shortage(&error) {
            say_descriptors_are_scarce();
        }
        if !ARM_FAILURE_REPORTED.swap(true, Ordering::Relaxed) {
            log::warn(&format!("cannot arm the sampling timer of thread {tid}: {error}; it is not sampled"));
        }
    }
}

/// [`arm_thread_timer`] without the arming lock and without a word: what failed is returned.
/// Async-signal-safe (system calls alone), for `pause`'s resume under the lock.
pub fn try_arm_thread_timer(slot: &ThreadSlot, tid: u32, count_from: CountFrom) -> std::io::Result<()> {
    let Some(registry) = Registry::get() else { return Ok(()) };
    let (hz, signal) = (registry.config.hz, registry.config.signal);
    let adaptive = ADAPTIVE.load(Ordering::Relaxed);
    match current_source() {
        Some(TimerSource::Perf) => match slot.timer.arm(TimerSource::Perf, tid, hz, signal, count_from, adaptive) {
            Err(error) if adaptive => {
                if is_descriptor_shortage(&error) {
                    DESCRIPTORS_SHORT.store(true, Ordering::Relaxed);
                }
                slot.timer.arm(TimerSource::Posix, tid, hz, signal, count_from, true)
            }
            armed => armed,
        },
        Some(TimerSource::Posix) => slot.timer.arm(TimerSource::Posix, tid, hz, signal, count_from, adaptive),
        _ => Ok(()), // itimer: process-wide, nothing per thread
    }
}

/// True when a perf event was refused for want of descriptors (the program's limit is tight,
/// or it uses most of it).
fn is_descriptor_shortage(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Says once that threads use POSIX timers because descriptors are scarce.
fn say_descriptors_are_scarce() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        let limit = sigprof::descriptor_limit();
        log::warn(&format!(
            "file descriptors are scarce (RLIMIT_NOFILE {limit}): threads are sampled with POSIX CPU timers, which take none (at most the kernel tick rate; samples carry their overruns as weight)"
        ));
    }
}

/// Waiting calls between two looks of `auto` from a thread's waits.
const WAITS_PER_LOOK: u32 = 32;

thread_local! {
    /// The calling thread's waiting calls since its last look (const-initialised: no lazy
    /// initialisation, so it may be touched from a signal handler).
    static WAITS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Called at the start of each interposed waiting call: every [`WAITS_PER_LOOK`]th lets `auto`
/// look at the calling thread's context switches (`sigprof`'s `ThreadTimer::adapt_at_wait`).
/// A thread that spends its time in system calls takes few perf samples, and would otherwise
/// keep a perf event it pays for at every switch. Async-signal-safe (the wrappers may run in a
/// program's signal handler): a thread-local `Cell`, atomics, `getrusage`, and on a move the
/// same system calls as the sampling handler's.
pub fn look_at_wait() {
    let due = WAITS.with(|waits| {
        let next = waits.get() + 1;
        waits.set(if next >= WAITS_PER_LOOK { 0 } else { next });
        next >= WAITS_PER_LOOK
    });
    if !due || !ADAPTIVE.load(Ordering::Relaxed) || sigprof::current_generation() == 0 {
        return;
    }
    let Some(registry) = Registry::get() else { return };
    let Some(slot) = registry.current_slot() else { return };
    let period_ns = sigprof::period_ns(registry.config.hz);
    registry.count_move(slot.timer.adapt_at_wait(period_ns, slot.tid.load(Ordering::Relaxed), registry.config.signal));
}
