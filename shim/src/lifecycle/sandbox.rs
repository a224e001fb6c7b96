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
///
/// The same read of `/proc/self/status` gives the process's thread count at start-up
/// ([`threads_at_start`]).
pub fn runs_under_seccomp() -> bool {
    if is_sandboxed() {
        return true;
    }
    let Ok(status) = crate::proc_file::read_at_start(c"/proc/self/status") else { return false };
    let status = String::from_utf8_lossy(&status);
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
    if let Some(threads) = field("Threads:").and_then(|count| count.parse().ok()) {
        THREADS_AT_START.store(threads, Ordering::Relaxed);
    }
    field("Seccomp:").is_some_and(|mode| mode != "0")
}

/// The threads `/proc/self/status` listed when [`runs_under_seccomp`] read it (0: not read).
static THREADS_AT_START: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The process's thread count at start-up, if it was read.
pub fn threads_at_start() -> Option<u32> {
    Some(THREADS_AT_START.load(Ordering::Relaxed)).filter(|&threads| threads > 0)
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
