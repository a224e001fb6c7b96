//! Signal dispositions: sigtrace keeps its handlers on the sampling signal and the fatal signals
//! whatever the program installs; the interposed `sigaction`, `signal`, `sigprocmask` and
//! `pthread_sigmask` record the program's wishes, and signals that are not samples go to the
//! program's handler. A fatal signal the program left at `SIG_DFL` first writes the open
//! generation (bounded wait), then kills the process exactly as it would have died.

use crate::lifecycle;
use sigprof::program_signals::{self, forward, Forwarded, SigactionFn};
use std::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The signals whose default action kills the process with a core dump, handled so that the
/// open generation is written first.
pub const FATAL_SIGNALS: [c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];
/// How long a dying process waits for its generation to be written.
const FATAL_FLUSH_PATIENCE: Duration = Duration::from_millis(200);

type SigmaskFn = unsafe extern "C" fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int;
type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;

static REAL_SIGACTION: AtomicUsize = AtomicUsize::new(0);
static REAL_SIGNAL: AtomicUsize = AtomicUsize::new(0);
static REAL_SIGPROCMASK: AtomicUsize = AtomicUsize::new(0);
static REAL_PTHREAD_SIGMASK: AtomicUsize = AtomicUsize::new(0);

/// The next definition of `name` after ours (libc's), cached in `slot`; 0 if none.
pub fn next_symbol(slot: &AtomicUsize, name: &std::ffi::CStr) -> usize {
    let mut address = slot.load(Ordering::Acquire);
    if address == 0 {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT skips our own definition.
        address = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
        slot.store(address, Ordering::Release);
    }
    address
}

/// libc's `sigaction`.
pub fn real_sigaction() -> Option<SigactionFn> {
    let address = next_symbol(&REAL_SIGACTION, c"sigaction");
    // SAFETY: libc's sigaction has this signature.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, SigactionFn>(address) })
}

/// libc's `pthread_sigmask` (sigtrace's own mask changes must not be filtered).
pub fn real_pthread_sigmask() -> Option<SigmaskFn> {
    let address = next_symbol(&REAL_PTHREAD_SIGMASK, c"pthread_sigmask");
    // SAFETY: libc's pthread_sigmask has this signature.
    (address != 0).then(|| unsafe { std::mem::transmute::<usize, SigmaskFn>(address) })
}

/// Installs the fatal-signal handlers and the default-action hook of the sampling handler.
pub fn install_fatal_signal_handlers() {
    sigprof::handler::set_default_action(die_as_by_default);
    let Some(sigaction) = real_sigaction() else { return };
    for signal in FATAL_SIGNALS {
        // SA_ONSTACK: a thread that overflowed its stack handles the fault on its alternate
        // stack, if it set one up (as Rust programs do).
        if let Err(error) = program_signals::install_handler(signal, on_fatal_signal, libc::SA_ONSTACK, sigaction) {
            crate::log::warn(&format!("cannot watch signal {signal} for crashes: {error}"));
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
    if lifecycle::is_running() && lifecycle::is_traced_process() {
        writer::drain::flush_for_fatal_signal(signal, FATAL_FLUSH_PATIENCE);
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

/// Interposed `sigaction`: for the signals sigtrace keeps, records the program's action and
/// reports the program's previous one; others go to libc unchanged.
///
/// # Safety
/// Same contract as libc's `sigaction`.
#[no_mangle]
pub unsafe extern "C" fn sigaction(signal: c_int, action: *const libc::sigaction, previous: *mut libc::sigaction) -> c_int {
    if !program_signals::is_managed(signal) {
        let Some(real) = real_sigaction() else { return -1 };
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(signal, action, previous) };
    }
    if !previous.is_null() {
        if let Some(current) = program_signals::get_as_sigaction(signal) {
            // SAFETY: the caller passed a writable sigaction.
            unsafe { *previous = current };
        }
    }
    if !action.is_null() {
        // SAFETY: the caller passed a valid sigaction.
        program_signals::set(signal, unsafe { &*action });
    }
    0
}

/// Interposed `signal` (BSD semantics, as glibc's: `SA_RESTART`, the signal blocked in its handler).
///
/// # Safety
/// Same contract as libc's `signal`.
#[no_mangle]
pub unsafe extern "C" fn signal(signal: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if !program_signals::is_managed(signal) {
        let address = next_symbol(&REAL_SIGNAL, c"signal");
        if address == 0 {
            return libc::SIG_ERR;
        }
        // SAFETY: libc's signal has this signature; forwarding the caller's arguments.
        return unsafe { std::mem::transmute::<usize, SignalFn>(address)(signal, handler) };
    }
    let previous = program_signals::get(signal).map_or(libc::SIG_DFL, |action| action.handler);
    // SAFETY: sigaction is plain data; zeroed is valid before the fields are set.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    program_signals::set(signal, &action);
    previous
}

/// The set to pass on: the program may not block the sampling signal (samples would stop and
/// pile up); everything else it asks for is kept.
fn without_sampling_signal(how: c_int, set: *const libc::sigset_t) -> Option<libc::sigset_t> {
    let sampling = sigprof::Registry::get()?.config.signal;
    // SAFETY: the caller's non-null set is a valid sigset_t.
    let requested = unsafe { set.as_ref()? };
    // SAFETY: sigismember reads a valid set.
    if (how != libc::SIG_BLOCK && how != libc::SIG_SETMASK) || unsafe { libc::sigismember(requested, sampling) } != 1 {
        return None;
    }
    let mut filtered = *requested;
    // SAFETY: sigdelset on our own copy.
    unsafe { libc::sigdelset(&mut filtered, sampling) };
    Some(filtered)
}

/// Interposed `pthread_sigmask`.
///
/// # Safety
/// Same contract as libc's `pthread_sigmask`.
#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, previous: *mut libc::sigset_t) -> c_int {
    let Some(real) = real_pthread_sigmask() else { return libc::EINVAL };
    let filtered = without_sampling_signal(how, set);
    let set = filtered.as_ref().map_or(set, |f| f as *const libc::sigset_t);
    // SAFETY: forwarding the caller's arguments (the set possibly filtered).
    unsafe { real(how, set, previous) }
}

/// Interposed `sigprocmask`.
///
/// # Safety
/// Same contract as libc's `sigprocmask`.
#[no_mangle]
pub unsafe extern "C" fn sigprocmask(how: c_int, set: *const libc::sigset_t, previous: *mut libc::sigset_t) -> c_int {
    let address = next_symbol(&REAL_SIGPROCMASK, c"sigprocmask");
    if address == 0 {
        return -1;
    }
    // SAFETY: libc's sigprocmask has this signature.
    let real = unsafe { std::mem::transmute::<usize, SigmaskFn>(address) };
    let filtered = without_sampling_signal(how, set);
    let set = filtered.as_ref().map_or(set, |f| f as *const libc::sigset_t);
    // SAFETY: forwarding the caller's arguments (the set possibly filtered).
    unsafe { real(how, set, previous) }
}
