//! The shim's life as one atomic state machine: UNINIT → STARTING → RUNNING → STOPPING → OFF.
//! Any failure goes straight to OFF with one line on stderr; the host runs on untouched.

use crate::log;
use sigprof::Registry;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

pub const UNINIT: u8 = 0;
pub const STARTING: u8 = 1;
pub const RUNNING: u8 = 2;
pub const STOPPING: u8 = 3;
pub const OFF: u8 = 4;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
/// The pid the trace belongs to; a forked child differs and must not write it.
static TRACED_PID: AtomicU32 = AtomicU32::new(0);

pub fn state() -> u8 {
    STATE.load(Ordering::Acquire)
}

/// Moves from `from` to `to`; false if the state was not `from`.
pub fn transition(from: u8, to: u8) -> bool {
    STATE.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

pub fn set_traced_pid(pid: u32) {
    TRACED_PID.store(pid, Ordering::Release);
}

/// True while sampling runs in the process that started it.
pub fn is_running() -> bool {
    state() == RUNNING
}

/// True when the calling process is the one being traced (not a forked child).
pub fn is_traced_process() -> bool {
    // SAFETY: getpid is a plain syscall.
    TRACED_PID.load(Ordering::Acquire) == unsafe { libc::getpid() } as u32
}

/// Stops sampling for good after an internal failure: one line, timers stopped, state OFF.
/// Not for the handler.
pub fn switch_off(reason: &str) {
    if STATE.swap(OFF, Ordering::AcqRel) == OFF {
        return;
    }
    log::error(&format!("{reason}; sigtrace is off"));
    sigprof::generation::switch_off();
    if let Some(registry) = Registry::get() {
        registry.disarm_all_timers();
    }
}

/// Sets the state in a forked child (where no other thread can race with it).
pub fn set_state_after_fork(state: u8) {
    STATE.store(state, Ordering::Release);
}
