//! Death by a signal: sigtrace watches every signal whose default action kills the process
//! while the program leaves it at `SIG_DFL`; the open generation is written first (bounded
//! wait), then the process dies exactly as it would have. A handler or `SIG_IGN` of the
//! program for those goes straight to the kernel (see `interpose::signals`).

use crate::lifecycle::state;
use crate::log;
use crate::real_functions::real_sigaction;
use sigprof::program_signals::{self, forward, Forwarded};
use std::ffi::c_int;
use std::time::Duration;

/// The signals whose default action kills the process with a core dump, handled so that the
/// open generation is written first.
pub const FATAL_SIGNALS: [c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];
/// The other signals whose default action ends the process (some with a core dump): watched
/// the same way while the program leaves them at `SIG_DFL`.
pub const TERMINATING_SIGNALS: [c_int; 12] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGALRM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGSYS,
    libc::SIGTRAP,
];
/// How long a dying process waits for its generation to be written.
const FATAL_FLUSH_PATIENCE: Duration = Duration::from_millis(200);

/// Installs the handlers of the signals that kill by default (after the sampling handler), and
/// from then on keeps the program's view of its mask for the sampling signal.
pub fn install_fatal_signal_handlers() {
    sigprof::set_default_action(die_as_by_default);
    let Some(sigaction) = real_sigaction() else { return };
    let sampling = sigprof::Registry::get().map(|registry| registry.config.signal);
    if let Some(signal) = sampling.filter(|&signal| program_signals::mode(signal) == program_signals::KEPT) {
        program_signals::keep_mask_view(signal);
    }
    let watched: Vec<c_int> = FATAL_SIGNALS.into_iter().chain(TERMINATING_SIGNALS).filter(|&signal| Some(signal) != sampling).collect();
    // The sampling signal is kept by the sampling handler, whose default action ends the same way.
    for (signal, error) in program_signals::watch_all_while_default(&watched, on_fatal_signal, sigaction) {
        log::warn(&format!("cannot watch signal {signal}: {error}"));
    }
}

/// The handler of the fatal signals. Async-signal-safe.
extern "C" fn on_fatal_signal(signal: c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: the kernel's arguments for this signal.
    if unsafe { pyframes::probe::recover(info, ucontext) } {
        return; // a fault-recovering read of the Python walk: it resumes at its landing pad
    }
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved_errno = unsafe { *libc::__errno_location() };
    // A fault raised by the kernel that the program ignores would fault again forever; the
    // kernel kills the process in that case, and so do we.
    // SAFETY: the kernel's siginfo for this signal.
    let kernel_fault = unsafe { (*info).si_code } > 0;
    let ignored = program_signals::get(signal).is_some_and(|action| action.handler == libc::SIG_IGN);
    // SAFETY: the kernel's arguments for this signal.
    if (ignored && kernel_fault) || unsafe { forward(signal, info, ucontext) } == Forwarded::Default {
        // SAFETY: as above.
        unsafe { die_as_by_default(signal, info, ucontext) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Writes the open generation (waiting at most 200 ms), restores `SIG_DFL` and raises `signal`
/// again: once this handler returns, the process dies of it exactly as without sigtrace (same
/// signal, same core dump). Async-signal-safe while the drain thread runs (it writes); without
/// one (a single-threaded program, `SIGTRACE_DRAIN_THREAD=with-program-threads`) the generation
/// is written here, which allocates (see `writer::on_program_thread`).
///
/// # Safety
/// Call only from a signal handler for `signal`.
unsafe fn die_as_by_default(signal: c_int, _info: *mut libc::siginfo_t, _ucontext: *mut libc::c_void) {
    if state::is_running() && state::is_traced_process() && writer::drain::drain_tid() == 0 {
        // No drain thread: this thread writes the generation itself, once (see
        // `writer::on_program_thread`), unless it runs on a small alternate stack.
        if !on_small_alternate_stack() {
            writer::drain::flush_for_fatal_signal(signal, FATAL_FLUSH_PATIENCE);
        }
    } else if state::is_running() && state::is_traced_process() && !writer::drain::flush_for_fatal_signal(signal, FATAL_FLUSH_PATIENCE) {
        // Another thread's signal asked for the flush first: wait for it (as long again at
        // most) rather than kill the process in the middle of the write.
        let step = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
        for _ in 0..FATAL_FLUSH_PATIENCE.as_millis() {
            if writer::drain::flush_for_fatal_signal(signal, FATAL_FLUSH_PATIENCE) {
                break;
            }
            // SAFETY: nanosleep on a valid timespec (async-signal-safe).
            unsafe { libc::nanosleep(&step, std::ptr::null_mut()) };
        }
    }
    pyframes::probe::forget_ours(signal);
    // SAFETY: kernel sigaction via the raw syscall (async-signal-safe); the zeroed struct is
    // SIG_DFL with no flags. The signal stays blocked until this handler returns, then the
    // pending one is delivered with the default action.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        libc::syscall(libc::SYS_rt_sigaction, signal, &default as *const libc::sigaction, std::ptr::null_mut::<libc::sigaction>(), 8);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), signal);
    }
}

/// True when the calling thread runs on an alternate signal stack under 256 KiB (Go and Rust
/// give small ones): too small for writing a generation. Async-signal-safe.
fn on_small_alternate_stack() -> bool {
    // SAFETY: sigaltstack with no new stack writes the current one into `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let read = unsafe { libc::syscall(libc::SYS_sigaltstack, std::ptr::null::<libc::stack_t>(), &mut current as *mut libc::stack_t) } == 0;
    !read || (current.ss_flags & libc::SS_ONSTACK != 0 && current.ss_size < 256 << 10)
}
