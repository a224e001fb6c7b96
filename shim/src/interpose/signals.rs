//! Interposed signal dispositions and masks: `sigaction`, `signal`, `sigprocmask`,
//! `pthread_sigmask`, `sigpending`, `sigsuspend` and the `sigwait` family. sigtrace keeps its
//! handler on the sampling signal whatever the program installs (the program's action is
//! recorded and signals that are not samples go to it), and watches the signals whose default
//! action kills the process while the program leaves them at `SIG_DFL`
//! (`lifecycle::fatal_signals`); a handler or `SIG_IGN` of the program for those goes straight
//! to the kernel. These entries report to the program exactly what it set (see
//! `sigprof::program_signals`).
//!
//! Not covered: `signalfd` never sees a sampling-signal number the program blocks (the signal
//! is held for the thread instead); BSD/System V wrappers that call glibc's internal
//! `sigaction`/`sigprocmask` (`sigset`, `sighold`, `sigrelse`, `sigignore`, `sigblock`,
//! `sigsetmask`, `bsd_signal`, `sysv_signal`) and masks passed to `ppoll`/`pselect`/
//! `epoll_pwait` act on the kernel directly; `siglongjmp` and the return from a handler the
//! kernel ran restore the kernel's mask but not the per-thread record of the sampling signal.

use crate::next_fn::NextFn;
use crate::real_functions::{real_pthread_sigmask, real_sigaction};
use crate::sampling::call_marks::marked;
use sigprof::program_signals::{self, SigmaskFn};
use std::ffi::c_int;

type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
type SigpendingFn = unsafe extern "C" fn(*mut libc::sigset_t) -> c_int;
type SigsuspendFn = unsafe extern "C" fn(*const libc::sigset_t) -> c_int;

// SAFETY: the type is that of libc's signal.
static REAL_SIGNAL: NextFn<SignalFn> = unsafe { NextFn::new(c"signal") };
// SAFETY: the type is that of libc's sigprocmask.
static REAL_SIGPROCMASK: NextFn<SigmaskFn> = unsafe { NextFn::new(c"sigprocmask") };
// SAFETY: the type is that of libc's sigpending.
static REAL_SIGPENDING: NextFn<SigpendingFn> = unsafe { NextFn::new(c"sigpending") };
// SAFETY: the type is that of libc's sigsuspend.
static REAL_SIGSUSPEND: NextFn<SigsuspendFn> = unsafe { NextFn::new(c"sigsuspend") };
// SAFETY: the type is that of libc's sigtimedwait.
static REAL_SIGTIMEDWAIT: NextFn<program_signals::SigtimedwaitFn> = unsafe { NextFn::new(c"sigtimedwait") };

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
    let action = unsafe { action.as_ref() };
    match program_signals::program_sigaction(signal, action, real) {
        Ok(old) => {
            if let Some(action) = action {
                crate::sampling::pause::program_takes_signal(signal, action.sa_sigaction);
            }
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
    marked(const { format::call_code("sigsuspend") }, || unsafe { program_signals::program_sigsuspend(mask, real) })
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
    marked(const { format::call_code("sigtimedwait") }, || unsafe { program_signals::program_sigtimedwait(set, info, timeout, real) })
}

/// Interposed `sigwaitinfo` (glibc's calls its internal `sigtimedwait`).
///
/// # Safety
/// Same contract as libc's `sigwaitinfo`.
#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    // SAFETY: forwarding the caller's arguments (the outermost marked call names the wait).
    marked(const { format::call_code("sigwaitinfo") }, || unsafe { sigtimedwait(set, info, std::ptr::null()) })
}

/// Interposed `sigwait`: as glibc's, waits on through `EINTR` and returns an error number.
///
/// # Safety
/// Same contract as libc's `sigwait`.
#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const libc::sigset_t, signal: *mut c_int) -> c_int {
    // SAFETY: as below (the outermost marked call names the wait).
    marked(const { format::call_code("sigwait") }, || unsafe { sigwait_through_sigtimedwait(set, signal) })
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
