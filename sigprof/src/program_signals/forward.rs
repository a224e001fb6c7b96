//! Forwarding a signal that is not a sample to the program's handler, as the kernel would
//! have run it (its mask, `SA_NODEFER`, `SA_RESETHAND`, `SA_SIGINFO`), or telling the caller
//! to carry out the default action.

use super::actions::{get, get_as_sigaction, set};
use super::mask::{hold_if_program_blocks, PROGRAM_BLOCKS};

/// What forwarding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// The program's handler ran (or the signal was ignored, as the program asked).
    Handled,
    /// The program's action is the default one: the caller must carry it out.
    Default,
}

/// Runs the program's action for a signal sigtrace does not consume: calls its handler with
/// its `SA_SIGINFO` convention, its mask added while it runs, and `SA_RESETHAND` honoured.
/// Async-signal-safe.
///
/// # Safety
/// Call only from a signal handler, with the kernel's `info` and `ucontext` for `signal`.
pub unsafe fn forward(signal: i32, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) -> Forwarded {
    // SAFETY: forwarded from the caller.
    if unsafe { hold_if_program_blocks(signal, info) } {
        return Forwarded::Handled;
    }
    let Some(action) = get(signal) else { return Forwarded::Default };
    match action.handler {
        libc::SIG_DFL => return Forwarded::Default,
        libc::SIG_IGN => return Forwarded::Handled,
        _ => {}
    }
    if action.flags & libc::SA_RESETHAND != 0 {
        // As the kernel does: the handler becomes SIG_DFL, flags and mask stay.
        if let Some(mut reset) = get_as_sigaction(signal) {
            reset.sa_sigaction = libc::SIG_DFL;
            set(signal, &reset);
        }
    }
    // SAFETY: sigset_t is plain data; zeroed is valid before rt_sigprocmask fills it.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut mask = action.mask;
    // SAFETY: valid sigset pointers; rt_sigprocmask is async-signal-safe. The program's handler
    // runs with its own mask added (and its signal blocked unless SA_NODEFER), as the kernel
    // would have run it.
    unsafe {
        if action.flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, signal);
        }
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &mask as *const libc::sigset_t, &mut previous as *mut libc::sigset_t, 8);
        // As the kernel's sigreturn would, the mask the program sees after its handler is the
        // one it had before (whatever the handler set).
        let program_blocked = PROGRAM_BLOCKS.get();
        if action.flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(action.handler);
            handler(signal, info, ucontext);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(action.handler);
            handler(signal);
        }
        PROGRAM_BLOCKS.set(program_blocked);
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &previous as *const libc::sigset_t, std::ptr::null_mut::<libc::sigset_t>(), 8);
    }
    Forwarded::Handled
}
