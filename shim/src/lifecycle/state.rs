//! The shim's life as one atomic state machine: UNINIT → STARTING → RUNNING → STOPPING → OFF.
//! Any failure goes straight to OFF with one line on stderr; the host runs on untouched.

use crate::log;
use sigprof::Registry;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Where the shim is in its life. Stored in one atomic; decoded only by [`current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Lifecycle {
    /// Before the constructor ran.
    Uninit = 0,
    /// Setting up (start-up, a forked child, a failed exec resuming).
    Starting = 1,
    /// Sampling.
    Running = 2,
    /// Writing the last generation (exit, exec).
    Stopping = 3,
    /// Off for good in this image (an error, the end of the trace).
    Off = 4,
}

static STATE: AtomicU8 = AtomicU8::new(Lifecycle::Uninit as u8);
/// The pid the trace belongs to; a forked child differs and must not write it.
static TRACED_PID: AtomicU32 = AtomicU32::new(0);

/// The current state. Async-signal-safe.
pub fn current() -> Lifecycle {
    match STATE.load(Ordering::Acquire) {
        0 => Lifecycle::Uninit,
        1 => Lifecycle::Starting,
        2 => Lifecycle::Running,
        3 => Lifecycle::Stopping,
        _ => Lifecycle::Off,
    }
}

/// Moves from `from` to `to`; false if the state was not `from`.
pub fn transition(from: Lifecycle, to: Lifecycle) -> bool {
    STATE.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

pub fn set_traced_pid(pid: u32) {
    TRACED_PID.store(pid, Ordering::Release);
}

/// True while sampling runs in the process that started it.
pub fn is_running() -> bool {
    current() == Lifecycle::Running
}

/// True when the calling process is the one being traced (not a forked child).
pub fn is_traced_process() -> bool {
    // SAFETY: getpid is a plain syscall.
    TRACED_PID.load(Ordering::Acquire) == unsafe { libc::getpid() } as u32
}

/// Stops sampling for good after an internal failure: one line, timers stopped, state OFF.
/// Not for the handler.
pub fn switch_off(reason: &str) {
    if STATE.swap(Lifecycle::Off as u8, Ordering::AcqRel) == Lifecycle::Off as u8 {
        return;
    }
    log::error(&format!("{reason}; sigtrace is off"));
    sigprof::switch_off_tracing();
    if let Some(registry) = Registry::get() {
        registry.disarm_all_timers();
    }
}

/// Sets the state in a forked child (where no other thread can race with it).
pub fn set_state_after_fork(state: Lifecycle) {
    STATE.store(state as u8, Ordering::Release);
}
