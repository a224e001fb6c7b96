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
/// Asked with `prctl(PR_GET_SECCOMP)` (no process starts in strict mode: `exec` is not among
/// its four calls); when that fails (a filter refusing `prctl`), or the process may have more
/// than one thread, `/proc/self/status` is read, for both facts (~30 µs at a process's first
/// look into `/proc`). Also records the process's thread count at start-up
/// ([`threads_at_start`]).
pub fn runs_under_seccomp() -> bool {
    if is_sandboxed() {
        return true;
    }
    // SAFETY: PR_GET_SECCOMP takes no further arguments and changes nothing.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    if mode == 0 && libc_says_single_threaded() {
        THREADS_AT_START.store(1, Ordering::Relaxed);
        return false;
    }
    let Ok(status) = crate::proc_file::read_at_start(c"/proc/self/status") else { return mode > 0 };
    let status = String::from_utf8_lossy(&status);
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
    if let Some(threads) = field("Threads:").and_then(|count| count.parse().ok()) {
        THREADS_AT_START.store(threads, Ordering::Relaxed);
    }
    mode > 0 || field("Seccomp:").is_some_and(|mode| mode != "0")
}

/// glibc's `__libc_single_threaded` (2.32 and later): true until the process's first
/// `pthread_create`, and never set back. False when this libc does not have it.
fn libc_says_single_threaded() -> bool {
    // SAFETY: dlsym with a NUL-terminated name; a found `__libc_single_threaded` is glibc's
    // one-byte flag, which lives as long as libc.
    unsafe {
        let flag = libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()).cast::<libc::c_char>();
        !flag.is_null() && std::ptr::read_volatile(flag) != 0
    }
}

/// The threads at start-up as [`runs_under_seccomp`] found them (0: not known).
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
