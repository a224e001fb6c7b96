//! Pausing and resuming sampling for the whole process: `SIGTRACE_PAUSED=1` (start paused),
//! `SIGTRACE_TOGGLE_SIGNAL` (each delivery flips the state) and `sigtrace_pause()` /
//! `sigtrace_resume()` (exported for programs that find them with `dlsym`).
//!
//! Paused, every registered thread keeps its slot but has no timer: nothing fires, nothing is
//! sampled, nothing costs. Resuming arms every active thread's timer again with
//! [`CountFrom::Arming`], so the first sample after a pause never stands for CPU time spent
//! while paused.
//!
//! **The arming lock.** Arming and disarming the timers of the registered threads, and the
//! arming of a new thread (`timers::arm_thread_timer`) and the disarming at a thread's exit,
//! happen under one lock, so a thread starting or ending during a resume is never left armed
//! while paused, nor its timer armed after its exit. A request (a toggle, a call) records the
//! state wanted ([`WANT_PAUSED`]) and only *tries* the lock: whoever holds it applies the
//! request when it lets go. So a request never waits, and may come from a signal handler: the
//! timers are armed and released by system calls alone (as `auto`'s moves are, invariant 11:
//! `disarm` stops the moves first; `arm` publishes everything before it enables the timer and
//! allows moves last).
//!
//! Each applied change is written as a `Paused` or `Resumed` event of the thread that applied
//! it (docs/FORMAT.md).

use crate::log;
use crate::sampling::timers;
use format::EventKind;
use sigprof::{CountFrom, Registry, SlotState, TimerSource};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

/// The state the last request asked for.
static WANT_PAUSED: AtomicBool = AtomicBool::new(false);
/// The state in force: timers armed (false) or not (true). Changed only under [`ARMING`].
static PAUSED: AtomicBool = AtomicBool::new(false);
/// The arming lock (see the module docs).
static ARMING: AtomicBool = AtomicBool::new(false);
/// What made the last request (a [`Cause`] as u8), for the event's text.
static CAUSE: AtomicU8 = AtomicU8::new(Cause::Call as u8);
/// `SIGTRACE_TOGGLE_SIGNAL`, 0 when none.
static TOGGLE_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// True when a toggle signal's handler is installed. Async-signal-safe.
pub fn toggle_signal_installed() -> bool {
    TOGGLE_SIGNAL.load(Ordering::Relaxed) != 0
}

/// What asked for a pause or a resume.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Cause {
    Start = 0,
    Signal = 1,
    Call = 2,
}

impl Cause {
    fn text(code: u8) -> &'static [u8] {
        match code {
            0 => b"start",
            1 => b"signal",
            _ => b"call",
        }
    }
}

/// True while sampling is paused. Async-signal-safe.
pub fn is_paused() -> bool {
    PAUSED.load(Ordering::SeqCst)
}

/// Start-up, before any thread is registered: the initial state (`SIGTRACE_PAUSED`) and the
/// toggle signal's handler, installed while the program's action for it is `SIG_DFL` (a
/// handler the program has, or installs later, wins: see [`program_takes_signal`]). Before
/// the fatal-signal watchers, which leave a signal watched already alone.
pub fn configure(paused: bool, toggle_signal: Option<i32>) {
    WANT_PAUSED.store(paused, Ordering::SeqCst);
    PAUSED.store(paused, Ordering::SeqCst);
    CAUSE.store(Cause::Start as u8, Ordering::Relaxed);
    // SAFETY: registers a handler with the required signature: a fork while another thread
    // held the arming lock must not leave the child's lock held.
    unsafe { libc::pthread_atfork(None, None, Some(release_lock_in_child)) };
    let Some(signal) = toggle_signal else { return };
    let Some(sigaction) = crate::real_functions::real_sigaction() else { return };
    match sigprof::program_signals::watch_while_default(signal, on_toggle_signal, sigaction) {
        Err(error) => log::warn(&format!("cannot install the handler of SIGTRACE_TOGGLE_SIGNAL ({}): {error}", format::signal_name(signal as u32))),
        Ok(()) if sigprof::program_signals::get(signal).is_some_and(|action| action.handler != libc::SIG_DFL) => {
            log::warn(&format!(
                "{} already has a handler or is ignored: it does not toggle sampling (SIGTRACE_TOGGLE_SIGNAL)",
                format::signal_name(signal as u32)
            ));
        }
        Ok(()) => TOGGLE_SIGNAL.store(signal, Ordering::Relaxed),
    }
}

extern "C" fn release_lock_in_child() {
    // Written only when held: a forked child copies each page it writes.
    if ARMING.load(Ordering::SeqCst) {
        ARMING.store(false, Ordering::SeqCst);
    }
}

/// The handler of `SIGTRACE_TOGGLE_SIGNAL` (in the kernel only while the program's action is
/// `SIG_DFL`; a delivery that meets a newer action of the program goes to it). Installed with
/// `SA_RESTART`. Async-signal-safe.
extern "C" fn on_toggle_signal(signal: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved_errno = unsafe { *libc::__errno_location() };
    crate::sampling::toggle_waits::count_toggle();
    let programs = sigprof::program_signals::get(signal).is_some_and(|action| action.handler != libc::SIG_DFL);
    // SAFETY: the kernel's arguments for this signal.
    if !programs || unsafe { sigprof::program_signals::forward(signal, info, ucontext) } == sigprof::program_signals::Forwarded::Default {
        request(!WANT_PAUSED.load(Ordering::SeqCst), Cause::Signal);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// The interposed `sigaction` saw the program set `handler` for `signal`: if that is the toggle
/// signal and the handler is its own (not `SIG_DFL`), says once that it no longer toggles.
/// Not for the handler.
pub fn program_takes_signal(signal: i32, handler: libc::sighandler_t) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if signal != 0 && signal == TOGGLE_SIGNAL.load(Ordering::Relaxed) && handler != libc::SIG_DFL && !SAID.swap(true, Ordering::Relaxed) {
        log::warn(&format!(
            "the program installed its own action for {}: it no longer toggles sampling (SIGTRACE_TOGGLE_SIGNAL)",
            format::signal_name(signal as u32)
        ));
    }
}

/// Asks for sampling paused (`true`) or running, and applies it unless the arming lock is
/// held (its holder applies it). Async-signal-safe.
fn request(paused: bool, cause: Cause) {
    CAUSE.store(cause as u8, Ordering::Relaxed);
    WANT_PAUSED.store(paused, Ordering::SeqCst);
    apply_requests();
}

/// Applies the state wanted, as long as it differs from the state in force and the arming lock
/// is free. Async-signal-safe.
fn apply_requests() {
    while WANT_PAUSED.load(Ordering::SeqCst) != PAUSED.load(Ordering::SeqCst) {
        if ARMING.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return; // the holder looks again when it lets go
        }
        let wanted = WANT_PAUSED.load(Ordering::SeqCst);
        if wanted != PAUSED.load(Ordering::SeqCst) && tracing_runs() {
            set_timers(!wanted);
            PAUSED.store(wanted, Ordering::SeqCst);
            let kind = if wanted { EventKind::Paused } else { EventKind::Resumed };
            crate::annotate::emit(kind, &[], Cause::text(CAUSE.load(Ordering::Relaxed)));
        } else if !tracing_runs() {
            PAUSED.store(wanted, Ordering::SeqCst);
        }
        ARMING.store(false, Ordering::SeqCst);
    }
}

/// True while this process's trace is being written. Async-signal-safe.
fn tracing_runs() -> bool {
    sigprof::current_generation() != 0 && Registry::get().is_some()
}

/// Arms (`armed`) or releases the timer of every active thread, and the process-wide itimer.
/// Under the arming lock. Async-signal-safe: system calls alone (a failure to arm leaves that
/// thread unsampled and is counted, not said: this may run in a signal handler).
fn set_timers(armed: bool) {
    let Some(registry) = Registry::get() else { return };
    if timers::current_source() == Some(TimerSource::Itimer) {
        if armed {
            sigprof::reset_itimer_account();
        }
        let _ = sigprof::set_process_itimer(if armed { registry.config.hz } else { 0 });
        return;
    }
    for slot in registry.live_slots() {
        if !armed {
            slot.timer.disarm();
        } else if slot.state.load() == SlotState::Active {
            let _ = timers::try_arm_thread_timer(slot, slot.tid.load(Ordering::Relaxed), CountFrom::Arming);
        }
    }
}

/// Runs `body` holding the arming lock, with the state in force (true: paused); waits for the
/// lock (it is held for the length of a few system calls per thread), then applies the
/// requests that came meanwhile. Not for a signal handler.
pub fn with_arming_lock<R>(body: impl FnOnce(bool) -> R) -> R {
    while ARMING.compare_exchange_weak(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        std::thread::yield_now();
    }
    let result = body(PAUSED.load(Ordering::SeqCst));
    ARMING.store(false, Ordering::SeqCst);
    apply_requests();
    result
}

/// At the start of a trace (start-up, a forked child): the first thread's timer, just armed to
/// choose the source, is released again when sampling starts paused, and the pause is
/// recorded. Not for the handler.
pub fn after_first_arming(slot: &sigprof::ThreadSlot, source: TimerSource) {
    if !is_paused() {
        return;
    }
    match source {
        TimerSource::Itimer => {
            let _ = sigprof::set_process_itimer(0);
        }
        _ => slot.timer.disarm(),
    }
    crate::annotate::emit(EventKind::Paused, &[], Cause::text(Cause::Start as u8));
}

/// Pauses sampling in the whole process (no-op when paused already, or without sigtrace's
/// trace running). Safe from any thread and from signal handlers.
#[no_mangle]
pub extern "C" fn sigtrace_pause() {
    request(true, Cause::Call);
}

/// Resumes sampling in the whole process (no-op when it runs). Safe from any thread and from
/// signal handlers.
#[no_mangle]
pub extern "C" fn sigtrace_resume() {
    request(false, Cause::Call);
}

/// 1 while sampling is paused, 0 while it runs (or without a trace).
#[no_mangle]
pub extern "C" fn sigtrace_is_paused() -> libc::c_int {
    libc::c_int::from(tracing_runs() && is_paused())
}
