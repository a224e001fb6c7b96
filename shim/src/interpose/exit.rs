//! Interposed `_exit` and `_Exit`: they skip the exit handlers, so the open generation is
//! written here first (only by the traced process itself, never by a forked or vforked child).

use crate::lifecycle::state;
use crate::lifecycle::stop::finish_trace;
use format::EndReason;

fn exit_now(status: libc::c_int) -> ! {
    if std::panic::catch_unwind(|| finish_trace(EndReason::UnderscoreExit)).is_err() {
        state::switch_off("internal error at _exit");
    }
    // SAFETY: exit_group ends the process; it is what libc's _exit does.
    unsafe { libc::syscall(libc::SYS_exit_group, status) };
    unreachable!("exit_group returned")
}

/// # Safety
/// Same contract as libc's `_exit`.
#[no_mangle]
pub unsafe extern "C" fn _exit(status: libc::c_int) -> ! {
    exit_now(status)
}

/// # Safety
/// Same contract as libc's `_Exit`.
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: libc::c_int) -> ! {
    exit_now(status)
}
