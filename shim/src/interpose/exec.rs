//! Interposed `execve` and friends: the open generation is written (with an `exec` end record)
//! before the image is replaced; the new program is traced again through the inherited
//! `LD_PRELOAD` into a file of its own (same pid, next free name). With
//! `SIGTRACE_FOLLOW_EXEC=0` sigtrace's library is removed from the `LD_PRELOAD` passed on, and
//! nothing else in the environment changes. If the exec fails, tracing resumes in a new file.

use crate::lifecycle::start::{resume_after_failed_exec, CONFIG};
use crate::lifecycle::state;
use crate::lifecycle::stop::finish_trace;
use crate::next_fn::NextFn;
use crate::real_functions::{real_pthread_sigmask, real_sigaction};
use format::EndReason;
use sigprof::program_signals;
use std::ffi::{c_char, c_int, CStr, CString};

type ExecveFn = unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;

// SAFETY: the types are those of libc's execve, execvpe and fexecve.
static REAL_EXECVE: NextFn<ExecveFn> = unsafe { NextFn::new(c"execve") };
// SAFETY: as above.
static REAL_EXECVPE: NextFn<ExecveFn> = unsafe { NextFn::new(c"execvpe") };
// SAFETY: as above.
static REAL_FEXECVE: NextFn<FexecveFn> = unsafe { NextFn::new(c"fexecve") };

extern "C" {
    static environ: *const *const c_char;
}

/// Ends the trace of this image before an exec and makes sure no sampling signal is left
/// pending: one arriving in the new image before it installs a handler would kill it. (Then
/// [`before_exec`] hands the program's ignored signals and mask to the kernel.)
/// Returns whether tracing was running (and must resume if the exec fails).
fn prepare_for_exec() -> bool {
    let was_running = state::is_running() && state::is_traced_process();
    if !was_running {
        return false;
    }
    if std::panic::catch_unwind(|| finish_trace(EndReason::Exec)).is_err() {
        state::switch_off("internal error before exec");
    }
    discard_pending_sampling_signals();
    true
}

/// With every timer stopped, consumes sampling signals still pending for this thread or the
/// process, so none reaches the next image.
fn discard_pending_sampling_signals() {
    let (Some(registry), Some(sigmask)) = (sigprof::Registry::get(), real_pthread_sigmask()) else { return };
    // SAFETY: sigset_t values are initialised before use; rt_sigtimedwait with a zero timeout
    // only dequeues already pending signals of the set (the raw call: the interposed
    // sigtimedwait would hand them to the handler); the previous mask is restored.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, registry.config.signal);
        sigmask(libc::SIG_BLOCK, &set, &mut previous);
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let no_info = std::ptr::null_mut::<libc::siginfo_t>();
        while libc::syscall(libc::SYS_rt_sigtimedwait, &set as *const libc::sigset_t, no_info, &zero as *const libc::timespec, 8) > 0 {}
        sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
    }
}

/// What [`before_exec`] changed, for [`after_failed_exec`].
struct ExecSignals {
    ignored: u128,
    mask: program_signals::MaskForExec,
}

/// Right before an exec (after sigtrace's timers stopped and their pending signals were
/// discarded): the kernel gets the program's `SIG_IGN` for the kept signals it ignores (handled
/// ones become `SIG_DFL` by the kernel anyway), and the program's block of the sampling signal
/// (with a held signal pending), so the next image inherits exactly what the program set.
fn before_exec() -> ExecSignals {
    let ignored = real_sigaction().map_or(0, program_signals::before_exec);
    ExecSignals { ignored, mask: program_signals::mask_before_exec() }
}

/// After an exec that failed: sigtrace's handlers and the program's mask view come back.
fn after_failed_exec(signals: ExecSignals) {
    program_signals::mask_after_failed_exec(signals.mask);
    if let Some(sigaction) = real_sigaction() {
        program_signals::after_failed_exec(signals.ignored, sigaction);
    }
}

/// The environment to pass on: unchanged, or (`SIGTRACE_FOLLOW_EXEC=0`) without sigtrace's
/// library in `LD_PRELOAD`. The returned strings must outlive the exec call.
fn environment_for_exec(envp: *const *const c_char) -> Option<(Vec<CString>, Vec<*const c_char>)> {
    if CONFIG.get().is_none_or(|config| config.follow_exec) || envp.is_null() {
        return None;
    }
    let mut strings = Vec::new();
    let mut index = 0;
    loop {
        // SAFETY: envp is a NULL-terminated array of C strings (the exec contract).
        let entry = unsafe { *envp.add(index) };
        if entry.is_null() {
            break;
        }
        // SAFETY: as above.
        let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
        index += 1;
        match bytes.strip_prefix(b"LD_PRELOAD=") {
            Some(list) => {
                let kept: Vec<&[u8]> = list.split(|&b| b == b':' || b == b' ').filter(|lib| !lib.is_empty() && !is_sigtrace_library(lib)).collect();
                if !kept.is_empty() {
                    strings.push(CString::new([b"LD_PRELOAD=".as_slice(), &kept.join(&b':')].concat()).ok()?);
                }
            }
            None => strings.push(CString::new(bytes).ok()?),
        }
    }
    let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    pointers.push(std::ptr::null());
    Some((strings, pointers))
}

fn is_sigtrace_library(path: &[u8]) -> bool {
    path.rsplit(|&b| b == b'/').next() == Some(b"libsigtrace.so".as_slice())
}

/// Runs `exec` with the environment to pass on; if it returns (it failed), tracing resumes.
fn exec_with(envp: *const *const c_char, exec: impl FnOnce(*const *const c_char) -> c_int) -> c_int {
    let was_running = prepare_for_exec();
    let replaced = environment_for_exec(envp);
    let signals = before_exec();
    let result = exec(replaced.as_ref().map_or(envp, |(_, pointers)| pointers.as_ptr()));
    // SAFETY: reads this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    after_failed_exec(signals);
    if was_running {
        resume_after_failed_exec();
    }
    // SAFETY: restores the exec's errno for the caller.
    unsafe { *libc::__errno_location() = errno };
    result
}

/// # Safety
/// Same contract as libc's `execve`.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let Some(real) = REAL_EXECVE.get() else { return -1 };
    // SAFETY: forwarding the caller's arguments (the environment possibly filtered).
    exec_with(envp, |envp| unsafe { real(path, argv, envp) })
}

/// # Safety
/// Same contract as libc's `execv`.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: `environ` is the process environment; forwarding to our execve.
    unsafe { execve(path, argv, environ) }
}

/// # Safety
/// Same contract as glibc's `execvpe`.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let Some(real) = REAL_EXECVPE.get() else { return -1 };
    // SAFETY: forwarding the caller's arguments (the environment possibly filtered).
    exec_with(envp, |envp| unsafe { real(file, argv, envp) })
}

/// # Safety
/// Same contract as libc's `execvp`.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: `environ` is the process environment; forwarding to our execvpe.
    unsafe { execvpe(file, argv, environ) }
}

/// # Safety
/// Same contract as libc's `fexecve`.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let Some(real) = REAL_FEXECVE.get() else { return -1 };
    // SAFETY: forwarding the caller's arguments (the environment possibly filtered).
    exec_with(envp, |envp| unsafe { real(fd, argv, envp) })
}
