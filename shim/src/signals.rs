//! Signal dispositions and masks. sigtrace keeps its handler on the sampling signal whatever
//! the program installs (the program's action is recorded and signals that are not samples go
//! to it), and watches every signal whose default action kills the process while the program
//! leaves it at `SIG_DFL`: the open generation is written first (bounded wait), then the
//! process dies exactly as it would have. A handler or `SIG_IGN` of the program for those goes
//! straight to the kernel. The interposed `sigaction`, `signal`, `sigprocmask`,
//! `pthread_sigmask`, `sigpending`, `sigsuspend` and the `sigwait` family report to the program
//! exactly what it set (see `sigprof::program_signals`).
//!
//! Not covered: `signalfd` never sees a sampling-signal number the program blocks (the signal
//! is held for the thread instead); BSD/System V wrappers that call glibc's internal
//! `sigaction`/`sigprocmask` (`sigset`, `sighold`, `sigrelse`, `sigignore`, `sigblock`,
//! `sigsetmask`, `bsd_signal`, `sysv_signal`) and masks passed to `ppoll`/`pselect`/
//! `epoll_pwait` act on the kernel directly; `siglongjmp` and the return from a handler the
//! kernel ran restore the kernel's mask but not the per-thread record of the sampling signal.

use crate::lifecycle;
use crate::next_fn::NextFn;
use sigprof::program_signals::{self, forward, Forwarded, SigactionFn};
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

type SigmaskFn = program_signals::SigmaskFn;
type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
type SigpendingFn = unsafe extern "C" fn(*mut libc::sigset_t) -> c_int;
type SigsuspendFn = unsafe extern "C" fn(*const libc::sigset_t) -> c_int;

// SAFETY: the type is that of libc's sigaction.
static REAL_SIGACTION: NextFn<SigactionFn> = unsafe { NextFn::new(c"sigaction") };
// SAFETY: the type is that of libc's signal.
static REAL_SIGNAL: NextFn<SignalFn> = unsafe { NextFn::new(c"signal") };
// SAFETY: the type is that of libc's sigprocmask.
static REAL_SIGPROCMASK: NextFn<SigmaskFn> = unsafe { NextFn::new(c"sigprocmask") };
// SAFETY: the type is that of libc's pthread_sigmask.
static REAL_PTHREAD_SIGMASK: NextFn<SigmaskFn> = unsafe { NextFn::new(c"pthread_sigmask") };
// SAFETY: the type is that of libc's sigpending.
static REAL_SIGPENDING: NextFn<SigpendingFn> = unsafe { NextFn::new(c"sigpending") };
// SAFETY: the type is that of libc's sigsuspend.
static REAL_SIGSUSPEND: NextFn<SigsuspendFn> = unsafe { NextFn::new(c"sigsuspend") };
// SAFETY: the type is that of libc's sigtimedwait.
static REAL_SIGTIMEDWAIT: NextFn<program_signals::SigtimedwaitFn> = unsafe { NextFn::new(c"sigtimedwait") };

/// libc's `sigaction`.
pub fn real_sigaction() -> Option<SigactionFn> {
    REAL_SIGACTION.get()
}

/// libc's `pthread_sigmask` (sigtrace's own mask changes must not be filtered).
pub fn real_pthread_sigmask() -> Option<SigmaskFn> {
    REAL_PTHREAD_SIGMASK.get()
}

/// Installs the handlers of the signals that kill by default (after the sampling handler), and
/// from then on keeps the program's view of its mask for the sampling signal.
pub fn install_fatal_signal_handlers() {
    sigprof::handler::set_default_action(die_as_by_default);
    let Some(sigaction) = real_sigaction() else { return };
    let sampling = sigprof::Registry::get().map(|registry| registry.config.signal);
    if let Some(signal) = sampling.filter(|&signal| program_signals::mode(signal) == program_signals::KEPT) {
        program_signals::keep_mask_view(signal);
    }
    for signal in FATAL_SIGNALS.into_iter().chain(TERMINATING_SIGNALS) {
        if Some(signal) == sampling {
            continue; // kept by the sampling handler, whose default action ends the same way
        }
        if let Err(error) = program_signals::watch_while_default(signal, on_fatal_signal, sigaction) {
            crate::log::warn(&format!("cannot watch signal {signal}: {error}"));
        }
    }
}

/// The handler of the fatal signals. Async-signal-safe.
extern "C" fn on_fatal_signal(signal: c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
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
/// signal, same core dump). Async-signal-safe.
///
/// # Safety
/// Call only from a signal handler for `signal`.
unsafe fn die_as_by_default(signal: c_int, _info: *mut libc::siginfo_t, _ucontext: *mut libc::c_void) {
    if lifecycle::is_running() && lifecycle::is_traced_process() && !writer::drain::flush_for_fatal_signal(signal, FATAL_FLUSH_PATIENCE) {
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
    // SAFETY: kernel sigaction via the raw syscall (async-signal-safe); the zeroed struct is
    // SIG_DFL with no flags. The signal stays blocked until this handler returns, then the
    // pending one is delivered with the default action.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        libc::syscall(libc::SYS_rt_sigaction, signal, &default as *const libc::sigaction, std::ptr::null_mut::<libc::sigaction>(), 8);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), signal);
    }
}

/// Interposed `sigaction`: for the signals sigtrace watches, records the program's action
/// (and passes it to the kernel where the signal's mode allows) and reports the program's
/// previous one; others go to libc unchanged.
///
/// # Safety
/// Same contract as libc's `sigaction`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(signal: c_int, action: *const libc::sigaction, previous: *mut libc::sigaction) -> c_int {
    let Some(real) = real_sigaction() else { return -1 };
    if !program_signals::is_managed(signal) {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(signal, action, previous) };
    }
    // SAFETY: the caller's non-null action is a valid sigaction.
    match program_signals::program_sigaction(signal, unsafe { action.as_ref() }, real) {
        Ok(old) => {
            if !previous.is_null() {
                // SAFETY: the caller passed a writable sigaction.
                unsafe { *previous = old };
            }
            0
        }
        Err(error) => {
            // SAFETY: this thread's errno.
            unsafe { *libc::__errno_location() = error };
            -1
        }
    }
}

/// Interposed `signal` (BSD semantics, as glibc's: `SA_RESTART`, the signal blocked in its
/// handler); for watched signals it goes through the interposed `sigaction`.
///
/// # Safety
/// Same contract as libc's `signal`.
#[no_mangle]
pub unsafe extern "C" fn signal(signal: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if !program_signals::is_managed(signal) || handler == libc::SIG_ERR {
        let Some(real) = REAL_SIGNAL.get() else { return libc::SIG_ERR };
        // SAFETY: forwarding the caller's arguments to the real signal.
        return unsafe { real(signal, handler) };
    }
    // SAFETY: sigaction is plain data; zeroed is valid before the fields are set.
    let (mut action, mut previous): (libc::sigaction, libc::sigaction) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: sigemptyset/sigaddset on our own set.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
    }
    // SAFETY: valid pointers to our own structs.
    if unsafe { sigaction(signal, &action, &mut previous) } != 0 {
        return libc::SIG_ERR;
    }
    previous.sa_sigaction
}

/// Interposed `pthread_sigmask`: the program's own view of the sampling signal (see
/// `program_signals::program_sigmask`).
///
/// # Safety
/// Same contract as libc's `pthread_sigmask`.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, previous: *mut libc::sigset_t) -> c_int {
    let Some(real) = real_pthread_sigmask() else { return libc::EINVAL };
    // SAFETY: forwarding the caller's arguments.
    unsafe { program_signals::program_sigmask(how, set, previous, real) }
}

/// Interposed `sigprocmask`.
///
/// # Safety
/// Same contract as libc's `sigprocmask`.
#[no_mangle]
pub unsafe extern "C" fn sigprocmask(how: c_int, set: *const libc::sigset_t, previous: *mut libc::sigset_t) -> c_int {
    let Some(real) = REAL_SIGPROCMASK.get() else { return -1 };
    // SAFETY: forwarding the caller's arguments.
    unsafe { program_signals::program_sigmask(how, set, previous, real) }
}

/// Interposed `sigpending`: a sampling signal held for the program is pending.
///
/// # Safety
/// Same contract as libc's `sigpending`.
#[no_mangle]
pub unsafe extern "C" fn sigpending(set: *mut libc::sigset_t) -> c_int {
    let Some(real) = REAL_SIGPENDING.get() else { return -1 };
    // SAFETY: forwarding the caller's argument.
    unsafe { program_signals::program_sigpending(set, real) }
}

/// Interposed `sigsuspend`.
///
/// # Safety
/// Same contract as libc's `sigsuspend`.
#[no_mangle]
pub unsafe extern "C" fn sigsuspend(mask: *const libc::sigset_t) -> c_int {
    let Some(real) = REAL_SIGSUSPEND.get() else { return -1 };
    // SAFETY: forwarding the caller's argument.
    crate::blocking::marked(const { format::call_code("sigsuspend") }, || unsafe { program_signals::program_sigsuspend(mask, real) })
}

fn real_sigtimedwait() -> Option<program_signals::SigtimedwaitFn> {
    REAL_SIGTIMEDWAIT.get()
}

/// Interposed `sigtimedwait`.
///
/// # Safety
/// Same contract as libc's `sigtimedwait`.
#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(set: *const libc::sigset_t, info: *mut libc::siginfo_t, timeout: *const libc::timespec) -> c_int {
    let Some(real) = real_sigtimedwait() else { return -1 };
    // SAFETY: forwarding the caller's arguments.
    crate::blocking::marked(const { format::call_code("sigtimedwait") }, || unsafe { program_signals::program_sigtimedwait(set, info, timeout, real) })
}

/// Interposed `sigwaitinfo` (glibc's calls its internal `sigtimedwait`).
///
/// # Safety
/// Same contract as libc's `sigwaitinfo`.
#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    // SAFETY: forwarding the caller's arguments (the outermost marked call names the wait).
    crate::blocking::marked(const { format::call_code("sigwaitinfo") }, || unsafe { sigtimedwait(set, info, std::ptr::null()) })
}

/// Interposed `sigwait`: as glibc's, waits on through `EINTR` and returns an error number.
///
/// # Safety
/// Same contract as libc's `sigwait`.
#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const libc::sigset_t, signal: *mut c_int) -> c_int {
    // SAFETY: as below (the outermost marked call names the wait).
    crate::blocking::marked(const { format::call_code("sigwait") }, || unsafe { sigwait_through_sigtimedwait(set, signal) })
}

/// `sigwait` as glibc's: waits on through `EINTR` and returns an error number.
///
/// # Safety
/// Same contract as libc's `sigwait`.
unsafe fn sigwait_through_sigtimedwait(set: *const libc::sigset_t, signal: *mut c_int) -> c_int {
    loop {
        // SAFETY: forwarding the caller's set.
        let result = unsafe { sigtimedwait(set, std::ptr::null_mut(), std::ptr::null()) };
        if result > 0 {
            // SAFETY: the caller passed a writable int.
            unsafe { *signal = result };
            return 0;
        }
        // SAFETY: this thread's errno.
        let error = unsafe { *libc::__errno_location() };
        if error != libc::EINTR {
            return error;
        }
    }
}

/// What [`before_exec`] changed, for [`after_failed_exec`].
pub struct ExecSignals {
    ignored: u128,
    mask: program_signals::MaskForExec,
}

/// Right before an exec (after sigtrace's timers stopped and their pending signals were
/// discarded): the kernel gets the program's `SIG_IGN` for the kept signals it ignores (handled
/// ones become `SIG_DFL` by the kernel anyway), and the program's block of the sampling signal
/// (with a held signal pending), so the next image inherits exactly what the program set.
pub fn before_exec() -> ExecSignals {
    let ignored = real_sigaction().map_or(0, program_signals::before_exec);
    ExecSignals { ignored, mask: program_signals::mask_before_exec() }
}

/// After an exec that failed: sigtrace's handlers and the program's mask view come back.
pub fn after_failed_exec(state: ExecSignals) {
    program_signals::mask_after_failed_exec(state.mask);
    if let Some(sigaction) = real_sigaction() {
        program_signals::after_failed_exec(state.ignored, sigaction);
    }
}
