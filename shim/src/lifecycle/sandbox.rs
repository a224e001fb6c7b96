//! The sandbox state: once the program installs a seccomp filter (see `interpose::sandbox`),
//! the trace is ended and sigtrace makes no system call of its own any more.

use crate::lifecycle::state;
use crate::lifecycle::stop::finish_trace;
use format::EndReason;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the program entered a sandbox: sigtrace makes no more system calls of its own.
static SANDBOXED: AtomicBool = AtomicBool::new(false);

/// True once the program installed a seccomp filter. Async-signal-safe.
pub fn is_sandboxed() -> bool {
    SANDBOXED.load(Ordering::Acquire)
}

/// True when the process already runs under a seccomp filter at start-up (filters survive
/// `exec`: a sandboxed parent's child, or another preloaded library's constructor). Then
/// sigtrace must not start: its first `perf_event_open` could be what the filter kills.
pub fn runs_under_seccomp() -> bool {
    if is_sandboxed() {
        return true;
    }
    let Ok(status) = crate::proc_file::read_to_string("/proc/self/status") else { return false };
    status.lines().find_map(|line| line.strip_prefix("Seccomp:")).is_some_and(|mode| mode.trim() != "0")
}

/// Ends tracing before the program's filter is installed: the open generation and an end
/// record (`sandbox`) are written, timers stopped, the drain thread gone.
pub fn enter_sandbox() {
    if SANDBOXED.swap(true, Ordering::AcqRel) {
        return;
    }
    if std::panic::catch_unwind(|| finish_trace(EndReason::Sandbox)).is_err() {
        state::switch_off("internal error before the program's sandbox");
    }
    writer::drain::wait_for_drain_thread_exit(std::time::Duration::from_millis(100));
}
