//! `sigsuspend` and `sigtimedwait` (with `sigwait` and `sigwaitinfo`) with the sampling
//! signal's mask as the program sees it: a held signal is let in or taken, and one the kernel
//! delivers during the wait is told from a sample.

use super::mask::{held_here, hold, kernel_sigmask, masked_signal, release_held, set_of, take_held, PROGRAM_BLOCKS, SIGINFO_WORDS};

/// The program's `sigsuspend(mask)` with libc's `real`. A mask holding the masked signal is
/// passed on unchanged (the kernel blocks it while the thread sleeps, when it takes no
/// samples anyway); one without it lets a held signal in (queued while blocked, so the
/// suspension takes it atomically and returns `EINTR` after the program's handler).
///
/// # Safety
/// Same contract as `sigsuspend`.
pub unsafe fn program_sigsuspend(mask: *const libc::sigset_t, real: unsafe extern "C" fn(*const libc::sigset_t) -> libc::c_int) -> libc::c_int {
    let signal = masked_signal();
    // SAFETY: the caller's non-null mask is a valid sigset_t.
    if signal == 0 || mask.is_null() || unsafe { libc::sigismember(mask, signal) } == 1 {
        // SAFETY: forwarding the caller's argument.
        return unsafe { real(mask) };
    }
    let was = PROGRAM_BLOCKS.replace(false);
    let result = if held_here() {
        // SAFETY: sigset_t is plain data; the kernel fills it.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), Some(&mut old));
        release_held(signal);
        // SAFETY: forwarding the caller's argument.
        let result = unsafe { real(mask) };
        // SAFETY: __errno_location is this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        result
    } else {
        // SAFETY: forwarding the caller's argument.
        unsafe { real(mask) }
    };
    PROGRAM_BLOCKS.set(was);
    result
}

/// libc's `sigtimedwait`.
pub type SigtimedwaitFn = unsafe extern "C" fn(*const libc::sigset_t, *mut libc::siginfo_t, *const libc::timespec) -> libc::c_int;

/// The program's `sigtimedwait(set, info, timeout)` (also behind `sigwait` and `sigwaitinfo`)
/// with libc's `real`. When `set` holds the masked signal: a held one is taken at once;
/// otherwise the kernel blocks it during the wait (the thread sleeps, so no samples are held
/// up), and one taken there is queued again so that sigtrace's handler tells a sample (kept)
/// from the program's signal (held, then taken here).
///
/// # Safety
/// Same contract as `sigtimedwait`.
pub unsafe fn program_sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    timeout: *const libc::timespec,
    real: SigtimedwaitFn,
) -> libc::c_int {
    let signal = masked_signal();
    // SAFETY: the caller's non-null set is a valid sigset_t.
    if signal == 0 || set.is_null() || unsafe { libc::sigismember(set, signal) } != 1 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(set, info, timeout) };
    }
    // SAFETY: the caller's non-null timeout is a valid timespec.
    let deadline =
        unsafe { timeout.as_ref() }.map(|t| crate::clock::monotonic_ns().saturating_add(t.tv_sec.max(0) as u64 * 1_000_000_000 + t.tv_nsec.max(0) as u64));
    loop {
        if let Some(words) = take_held() {
            if !info.is_null() {
                // SAFETY: the caller's info is a writable siginfo_t of SIGINFO_WORDS words.
                unsafe { std::ptr::write_unaligned(info.cast::<[u64; SIGINFO_WORDS]>(), words) };
            }
            return signal;
        }
        let remaining = deadline.map(|deadline| {
            let left = deadline.saturating_sub(crate::clock::monotonic_ns());
            libc::timespec { tv_sec: (left / 1_000_000_000) as libc::time_t, tv_nsec: (left % 1_000_000_000) as libc::c_long }
        });
        // SAFETY: sigset_t and siginfo_t are plain data; the kernel fills them.
        let (mut old, mut taken): (libc::sigset_t, libc::siginfo_t) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        kernel_sigmask(libc::SIG_BLOCK, Some(&set_of(signal)), Some(&mut old));
        // SAFETY: valid pointers; the caller's set.
        let result = unsafe { real(set, &mut taken, remaining.as_ref().map_or(std::ptr::null(), |r| r as *const libc::timespec)) };
        // SAFETY: __errno_location is this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        if result == signal {
            // Queued again while still blocked, delivered when the mask is restored below.
            let was = PROGRAM_BLOCKS.replace(true);
            // SAFETY: siginfo_t is plain data of SIGINFO_WORDS words.
            hold(unsafe { std::mem::transmute_copy::<libc::siginfo_t, [u64; SIGINFO_WORDS]>(&taken) });
            release_held(signal);
            kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
            PROGRAM_BLOCKS.set(was);
            continue;
        }
        kernel_sigmask(libc::SIG_SETMASK, Some(&old), None);
        if result > 0 && !info.is_null() {
            // SAFETY: the caller's info is a writable siginfo_t.
            unsafe { *info = taken };
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        return result;
    }
}
