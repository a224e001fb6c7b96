//! What sigtrace puts into the kernel for a watched signal: its own handler (always, for a
//! [`KEPT`] signal; while the program's action is `SIG_DFL`, for a [`WHILE_DEFAULT`] one) or the
//! program's action; the interposed `sigaction`; and ignored signals across exec.

use super::actions::{
    as_kernel_reports, block_all_signals, entry, get, get_as_sigaction, is_managed, manage, manage_with_signals_blocked, mode, restore_signal_mask, set, KEPT,
    RESTORER, SA_RESTORER, SIGNALS, WHILE_DEFAULT,
};
use std::sync::atomic::Ordering;

/// libc's `sigaction`.
pub type SigactionFn = unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;
/// An `SA_SIGINFO` handler.
pub type SiginfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The action sigtrace installs for `signal`: `handler` with `SA_SIGINFO | SA_RESTART |
/// SA_ONSTACK | extra_flags`, the signal blocked while it runs. `SA_ONSTACK` always: Go and
/// other runtimes with small stacks require every handler in the process to run on the
/// thread's alternate stack (a thread without one runs it on its own stack, as before).
fn our_action(signal: i32, handler: usize, extra_flags: i32) -> libc::sigaction {
    // SAFETY: sigaction is plain data; zeroed is a valid start; sa_mask is initialised by
    // sigemptyset before sigaddset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK | extra_flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, signal);
        action
    }
}

/// Learns glibc's restorer from the kernel's report of `signal`'s action (just installed
/// through glibc). Not for the handler.
fn learn_restorer(signal: i32, sigaction: SigactionFn) {
    // SAFETY: sigaction is plain data; a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    if unsafe { sigaction(signal, std::ptr::null(), &mut current) } == 0 && current.sa_flags & SA_RESTORER != 0 {
        if let Some(restorer) = current.sa_restorer {
            RESTORER.store(restorer as usize, Ordering::Relaxed);
        }
    }
}

/// Installs `handler` for `signal` (see `our_action`) through the real `sigaction`, and keeps
/// it there for good ([`KEPT`]), with the previous action as the program's. Not for the handler.
pub fn install_handler(signal: i32, handler: SiginfoHandler, extra_flags: i32, sigaction: SigactionFn) -> std::io::Result<()> {
    let action = our_action(signal, handler as usize, extra_flags);
    // SAFETY: sigaction is plain data; zeroed is a valid start for the previous action.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; the handler has the SA_SIGINFO signature.
    if unsafe { sigaction(signal, &action, &mut previous) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    learn_restorer(signal, sigaction);
    if previous.sa_sigaction != handler as usize && !is_managed(signal) {
        manage(signal, &previous, KEPT, handler as usize);
    }
    Ok(())
}

/// Watches `signal` ([`WHILE_DEFAULT`]): installs `handler` only if the action in place is
/// `SIG_DFL`; a handler or `SIG_IGN` already there (inherited `SIG_IGN` as under `nohup`, or
/// installed by an earlier constructor) stays untouched and is the program's. Not for the handler.
pub fn watch_while_default(signal: i32, handler: SiginfoHandler, sigaction: SigactionFn) -> std::io::Result<()> {
    if is_managed(signal) {
        return Ok(());
    }
    // SAFETY: sigaction is plain data; a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    if unsafe { sigaction(signal, std::ptr::null(), &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if current.sa_sigaction == handler as usize {
        pyframes::probe::set_ours(signal, Some(handler as usize));
        return Ok(());
    }
    manage(signal, &current, WHILE_DEFAULT, handler as usize);
    if current.sa_sigaction == libc::SIG_DFL {
        let action = our_action(signal, handler as usize, 0);
        // SAFETY: valid pointers; the handler has the SA_SIGINFO signature.
        if unsafe { sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        pyframes::probe::set_ours(signal, Some(handler as usize));
    }
    Ok(())
}

/// [`watch_while_default`] for each of `signals`, in one `sigaction` a signal (a process start
/// pays for each system call): with every signal blocked on the calling thread for the whole
/// batch, sigtrace's handler is swapped in and the action it replaced read back in the same
/// call, then put back at once when it was not `SIG_DFL`. No signal is delivered in between
/// (blocked), and an ignored one that was pending is discarded when `SIG_IGN` is put back, as
/// it would have been. Returns the signals that could not be watched, with the error. Not for
/// the handler.
pub fn watch_all_while_default(signals: &[i32], handler: SiginfoHandler, sigaction: SigactionFn) -> Vec<(i32, std::io::Error)> {
    let mut failed = Vec::new();
    let blocked = block_all_signals();
    for &signal in signals.iter().filter(|&&signal| !is_managed(signal)) {
        let ours = our_action(signal, handler as usize, 0);
        // SAFETY: sigaction is plain data; zeroed is a valid start for the replaced action.
        let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; the handler has the SA_SIGINFO signature.
        if unsafe { sigaction(signal, &ours, &mut replaced) } != 0 {
            failed.push((signal, std::io::Error::last_os_error()));
            continue;
        }
        if replaced.sa_sigaction == handler as usize {
            pyframes::probe::set_ours(signal, Some(handler as usize));
            continue;
        }
        // SAFETY: valid pointers; puts back exactly what the kernel reported through libc.
        if replaced.sa_sigaction != libc::SIG_DFL && unsafe { sigaction(signal, &replaced, std::ptr::null_mut()) } != 0 {
            failed.push((signal, std::io::Error::last_os_error()));
            continue;
        }
        manage_with_signals_blocked(signal, &replaced, WHILE_DEFAULT, handler as usize);
        if replaced.sa_sigaction == libc::SIG_DFL {
            pyframes::probe::set_ours(signal, Some(handler as usize));
        }
    }
    restore_signal_mask(&blocked);
    failed
}

/// The program's `sigaction(signal, action, oldact)` for a managed signal: records `action`
/// and puts into the kernel what the signal's mode asks for. Returns the previous action as the
/// program must see it, or an errno. `sigaction` is libc's. Not for the handler.
pub fn program_sigaction(signal: i32, action: Option<&libc::sigaction>, sigaction: SigactionFn) -> Result<libc::sigaction, i32> {
    let recorded = get_as_sigaction(signal).ok_or(libc::EINVAL)?;
    let Some(entry) = entry(signal) else { return Err(libc::EINVAL) };
    if entry.mode.load(Ordering::Acquire) == KEPT {
        if let Some(action) = action {
            set(signal, &as_kernel_reports(action));
        }
        return Ok(recorded);
    }
    let ours = entry.ours.load(Ordering::Relaxed);
    // SAFETY: sigaction is plain data; zeroed is a valid start for the kernel's old action.
    let mut kernel_old: libc::sigaction = unsafe { std::mem::zeroed() };
    let result = match action {
        Some(action) => {
            // Recorded first: a signal meeting sigtrace's handler from here on finds the new
            // action (a signal meeting the program's old handler in the kernel runs it, as it
            // would have an instant earlier).
            set(signal, &as_kernel_reports(action));
            let ours_to_kernel = action.sa_sigaction == libc::SIG_DFL;
            let to_kernel = if ours_to_kernel { our_action(signal, ours, 0) } else { *action };
            if !ours_to_kernel {
                // No fault-recovering read may meet the program's handler (waits for those
                // in flight).
                pyframes::probe::set_ours(signal, None);
            }
            // SAFETY: valid pointers; the program's action is passed on unchanged.
            let result = unsafe { sigaction(signal, &to_kernel, &mut kernel_old) };
            // Ours is in the kernel now, or still (the change failed and it was there before).
            let ours_in_kernel = if result == 0 { ours_to_kernel } else { recorded.sa_sigaction == libc::SIG_DFL };
            if ours_in_kernel {
                pyframes::probe::set_ours(signal, Some(ours));
            }
            result
        }
        // SAFETY: a null new action only reads the current one into `kernel_old`.
        None => unsafe { sigaction(signal, std::ptr::null(), &mut kernel_old) },
    };
    if result != 0 {
        // SAFETY: reads this thread's errno.
        let error = unsafe { *libc::__errno_location() };
        set(signal, &recorded);
        return Err(error);
    }
    Ok(if kernel_old.sa_sigaction == ours { recorded } else { kernel_old })
}

/// Before an exec: every [`KEPT`] signal the program ignores gets `SIG_IGN` in the kernel (the
/// kernel keeps an ignored signal ignored across exec, but resets handled ones to `SIG_DFL`).
/// Returns the signals changed, for [`after_failed_exec`]. Not for the handler.
pub fn before_exec(sigaction: SigactionFn) -> u128 {
    let mut changed = 0u128;
    for signal in 1..SIGNALS as i32 {
        if mode(signal) != KEPT || get(signal).is_none_or(|action| action.handler != libc::SIG_IGN) {
            continue;
        }
        // SAFETY: sigaction is plain data; zeroed with SIG_IGN set is a valid action.
        let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
        ignore.sa_sigaction = libc::SIG_IGN;
        // SAFETY: valid pointer; no old action asked for.
        if unsafe { sigaction(signal, &ignore, std::ptr::null_mut()) } == 0 {
            changed |= 1 << signal;
        }
    }
    changed
}

/// After an exec that failed: sigtrace's handlers back on the signals [`before_exec`] changed.
pub fn after_failed_exec(changed: u128, sigaction: SigactionFn) {
    for signal in 1..SIGNALS as i32 {
        let Some(entry) = entry(signal) else { continue };
        if changed & (1 << signal) != 0 {
            let action = our_action(signal, entry.ours.load(Ordering::Relaxed), 0);
            // SAFETY: valid pointer; sigtrace's own handler with the SA_SIGINFO signature.
            unsafe { sigaction(signal, &action, std::ptr::null_mut()) };
        }
    }
}
